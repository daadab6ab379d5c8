"""FR and EN for the back-office: its message catalogues (``locales/<lang>/LC_MESSAGES/
messages.po``) with the shared formatting of :mod:`fidelia.kit.formatting`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from fidelia.kit import formatting
from fidelia.kit.formatting import DEFAULT, LANGUAGES

__all__ = ["DEFAULT", "LANGUAGES", "Formatter", "best_language", "language_of"]

_LOCALES = Path(__file__).parent / "locales"


def _messages(language: str) -> dict[str, str]:
    return formatting.messages(_LOCALES, language)


def language_of(locale: str | None) -> str:
    """``fr-FR`` -> ``fr``; anything not French or English -> the default."""
    return formatting.language_of(locale)


def best_language(accept: str | None) -> str:
    """The first of FR/EN an ``Accept-Language`` header asks for (else the default)."""
    return formatting.best_language(accept)


@dataclass(frozen=True)
class Formatter(formatting.Formatter):
    """Translation and formatting for one back-office reader."""

    CATALOGUES: ClassVar[Path | None] = _LOCALES
