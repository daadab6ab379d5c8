"""A real SMTP server for tests (aiosmtpd on 127.0.0.1), which the settings point at."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from fidelia.config import get_settings


class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, _server: object, _session: object, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    """A real SMTP server on 127.0.0.1 (a free port), which the settings point at."""
    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("FIDELIA_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("FIDELIA_SMTP_PORT", str(port))
    get_settings.cache_clear()
    yield inbox
    controller.stop()
    get_settings.cache_clear()


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashes() -> None:
    """argon2's cheapest parameters: the real ones cost a second a hash on a loaded machine."""
    from argon2.profiles import CHEAPEST

    from fidelia.users import passwords

    passwords.use_parameters(CHEAPEST)
