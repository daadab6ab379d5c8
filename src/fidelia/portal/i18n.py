"""FR and EN for the portal: the portal's own message catalogues (``locales/<lang>/
LC_MESSAGES/messages.po``, read with Babel at start-up) and Babel's formatting of dates,
numbers and money in the member's locale and the programme's time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal

LANGUAGES = ("fr", "en")
_LOCALES = Path(__file__).parent / "locales"
_REGION = {"fr": "fr_FR", "en": "en_GB"}


@cache
def _messages(language: str) -> dict[str, str]:
    path = _LOCALES / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    return {str(m.id): str(m.string) for m in catalog if m.id and m.string}


def language_of(locale: str | None, default: str = "fr") -> str:
    """``fr-FR`` -> ``fr``; anything not French or English -> ``default``."""
    code = (locale or "").replace("-", "_").split("_")[0].lower()
    return code if code in LANGUAGES else default


def best_language(accept: str | None, default: str) -> str:
    """The first of FR/EN an ``Accept-Language`` header asks for (else ``default``)."""
    for part in (accept or "").split(","):
        code = part.split(";")[0].strip()[:2].lower()
        if code in LANGUAGES:
            return code
    return default


@cache
def _parse(name: str) -> Locale:
    return Locale.parse(name)


@dataclass(frozen=True)
class Formatter:
    """Translation and formatting for one member: ``language`` and the programme's zone."""

    language: str
    timezone: ZoneInfo
    region_locale: str | None = None

    @property
    def locale(self) -> Locale:
        wanted = (self.region_locale or "").replace("-", "_")
        if wanted and language_of(wanted) == self.language:
            return _parse(wanted)
        return _parse(_REGION[self.language])

    def gettext(self, message: str, **values: object) -> str:
        """The message in the member's language (the English text is the key)."""
        text = _messages(self.language).get(message, message)
        return text.format(**values) if values else text

    def label(self, value: object, any_language: bool = False) -> str:
        """A programme label in the reader's language: a plain string, or the reader's entry
        of ``{"fr": ..., "en": ...}`` ("" if none, so that ``or name`` falls back; with
        ``any_language``, another language's entry rather than nothing)."""
        if isinstance(value, dict):
            found = value.get(self.language)
            if not found and any_language:
                found = next(iter(value.values()), "")
            return str(found or "")
        return "" if value is None else str(value)

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
        return "—" if value is None else format_decimal(value, locale=self.locale)

    def money(self, value: Decimal | None, currency: str) -> str:
        return "—" if value is None else format_currency(value, currency, locale=self.locale)
