"""FR and EN for the portal: the portal's own message catalogues (``locales/<lang>/
LC_MESSAGES/messages.po``) with the shared formatting of :mod:`fidelia.kit.formatting`, plus
programme labels given in several languages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from fidelia.kit import formatting
from fidelia.kit.formatting import LANGUAGES, best_language, language_of

__all__ = ["LANGUAGES", "Formatter", "best_language", "language_of"]

_LOCALES = Path(__file__).parent / "locales"


def _messages(language: str) -> dict[str, str]:
    return formatting.messages(_LOCALES, language)


@dataclass(frozen=True)
class Formatter(formatting.Formatter):
    """Translation and formatting for one member: ``language`` and the programme's zone."""

    CATALOGUES: ClassVar[Path | None] = _LOCALES

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
