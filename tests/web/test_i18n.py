"""FR and EN throughout: every message of the templates and pages has its French text, and
dates and money follow the reader's locale and the programme's time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from fidelia.web import i18n
from fidelia.web.i18n import Formatter

WEB = Path(i18n.__file__).parent


def messages_of_the_code() -> set[str]:
    method_map = [("**/templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(WEB), method_map=method_map, keywords={"_": None, "gettext": None}
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_message_has_its_french_text_and_an_english_entry() -> None:
    used = messages_of_the_code()
    assert len(used) > 100
    french = i18n._messages("fr")
    assert sorted(used - set(french)) == []
    with (WEB / "locales/en/LC_MESSAGES/messages.po").open("rb") as handle:
        english = {str(m.id) for m in read_po(handle) if m.id}
    assert sorted(used - english) == []


def test_formatting_follows_the_language_and_the_time_zone() -> None:
    at = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 in Paris, the day summer time starts
    fr = Formatter("fr", ZoneInfo("Europe/Paris"), "fr-FR")
    en = Formatter("en", ZoneInfo("America/New_York"), "fr-FR")
    assert fr.day(at, "long") == "29 mars 2026"
    assert en.day(at, "long") == "28 March 2026"
    assert fr.money(Decimal("1234.5"), "EUR") == "1\u202f234,50\xa0€"
    assert en.money(Decimal("1234.5"), "EUR") == "€1,234.50"
    assert fr.gettext("{n} members found", n=3) == "3 membres trouvés"
    assert en.gettext("{n} members found", n=3) == "3 members found"
    assert i18n.best_language("de-DE,en;q=0.8") == "en"
    assert i18n.language_of("it-IT") == "fr"


def test_whole_numbers_read_as_babel_writes_them() -> None:
    """Integers take a fast path; it must agree with Babel's own formatting."""
    from babel.numbers import format_decimal

    for language, locale in (("fr", "fr-FR"), ("en", "en-GB"), ("fr", "fr-CH")):
        fmt = Formatter(language, ZoneInfo("Europe/Paris"), locale)
        for value in (0, 7, -12, 1234, -1234567, 10**12):
            assert fmt.number(value) == format_decimal(value, locale=fmt.locale), (locale, value)
