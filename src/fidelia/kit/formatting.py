"""FR and EN for the back-office and the portal alike: the choice of language, the message
catalogues (``<dir>/<lang>/LC_MESSAGES/messages.po``, read with Babel at start-up, no compile
step) and Babel's formatting of dates, numbers and money in the reader's locale and the
programme's time zone. Each delivery layer subclasses :class:`Formatter` with its own
catalogue (``CATALOGUES``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.pofile import read_po
from babel.numbers import (
    format_currency,
    format_decimal,
    get_group_symbol,
    get_minus_sign_symbol,
)

LANGUAGES = ("fr", "en")
DEFAULT = "fr"
# The full locale each language formats with when the programme's own does not fit.
REGION = {"fr": "fr_FR", "en": "en_GB"}


@cache
def messages(directory: Path, language: str) -> dict[str, str]:
    """The translated messages of ``directory``'s catalogue for ``language`` (English text as
    the key; untranslated ones left out)."""
    path = directory / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    return {str(m.id): str(m.string) for m in catalog if m.id and m.string}


def language_of(locale: str | None, default: str = DEFAULT) -> str:
    """``fr-FR`` -> ``fr``; anything not French or English -> ``default``."""
    code = (locale or "").replace("-", "_").split("_")[0].lower()
    return code if code in LANGUAGES else default


def best_language(accept: str | None, default: str = DEFAULT) -> str:
    """The first of FR/EN an ``Accept-Language`` header asks for (else ``default``)."""
    for part in (accept or "").split(","):
        code = part.split(";")[0].strip()[:2].lower()
        if code in LANGUAGES:
            return code
    return default


@cache
def _parse(name: str) -> Locale:
    return Locale.parse(name)


def _grouped(value: int, group: str, minus: str) -> str:
    text = f"{abs(value):,}".replace(",", group)
    return f"{minus}{text}" if value < 0 else text


@cache
def _integer_symbols(locale: str) -> tuple[str, str] | None:
    """The group separator and minus sign of a locale, when grouping by three gives what
    Babel gives (None otherwise: some locales group differently). Integers are most of what
    pages show, and Babel's general number formatting costs ~0.2 ms a call."""
    symbols = get_group_symbol(locale), get_minus_sign_symbol(locale)
    probes = (0, 7, 1234, -1234567, 10**12)
    if all(_grouped(v, *symbols) == format_decimal(v, locale=locale) for v in probes):
        return symbols
    return None


@dataclass(frozen=True)
class Formatter:
    """Translation and formatting for one reader: ``language`` and the programme's time zone
    (``region_locale``: the programme's locale, used when it is in that language)."""

    CATALOGUES: ClassVar[Path | None] = None  # the subclass's locales directory

    language: str
    timezone: ZoneInfo
    region_locale: str | None = None

    @property
    def locale(self) -> Locale:
        wanted = (self.region_locale or "").replace("-", "_")
        if wanted and language_of(wanted) == self.language:
            return _parse(wanted)
        return _parse(REGION[self.language])

    def gettext(self, message: str, **values: object) -> str:
        """The message in the reader's language (the English text is the key)."""
        found = messages(self.CATALOGUES, self.language) if self.CATALOGUES else {}
        text = found.get(message, message)
        return text.format(**values) if values else text

    def when(self, value: datetime | None, fmt: str = "medium") -> str:
        if value is None:
            return "—"
        return format_datetime(value.astimezone(self.timezone), fmt, locale=self.locale)

    def day(self, value: date | datetime | None, fmt: str = "medium") -> str:
        if value is None:
            return "—"
        if isinstance(value, datetime):
            value = value.astimezone(self.timezone).date()
        return format_date(value, fmt, locale=self.locale)

    def number(self, value: int | Decimal | float | None) -> str:
        if value is None:
            return "—"
        symbols = _integer_symbols(str(self.locale)) if isinstance(value, int) else None
        if symbols is not None and isinstance(value, int):
            return _grouped(value, *symbols)
        return format_decimal(value, locale=self.locale)

    def money(self, value: Decimal | None, currency: str) -> str:
        return "—" if value is None else format_currency(value, currency, locale=self.locale)
