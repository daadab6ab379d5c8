"""The one interface every channel adapter implements, and the registry of adapters.

An adapter is a class in its own file with a ``name`` (the channel), the identity kind that
addresses a member on it (``address_kind``; None: the member id), the consent it needs for
marketing (``consent``) and ``send(config, outgoing) -> Sent``. It raises :class:`Transient`
for failures worth retrying (connection refused, timeouts, 4xx SMTP codes, 5xx/429 HTTP) and
:class:`Permanent` for the rest; both carry the provider's answer, which the delivery log keeps.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Outgoing:
    """A rendered message, ready for one channel."""

    message_id: uuid.UUID
    member_id: uuid.UUID
    to: str
    subject: str | None
    text: str | None
    html: str | None
    sms: str | None
    kind: str
    unsubscribe_url: str | None = None
    callback_url: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    return_path: str | None = None  # the envelope sender (VERP) when bounces are configured


@dataclass(frozen=True)
class Sent:
    answer: str
    provider_id: str | None = None
    delivered: bool = False  # the channel itself is the destination (inbox)


class ChannelFailure(Exception):
    def __init__(self, answer: str) -> None:
        super().__init__(answer)
        self.answer = answer[:4000]


class Transient(ChannelFailure):
    """Worth retrying: the provider may accept it later."""


class Permanent(ChannelFailure):
    """Retrying will not help (refused recipient, bad configuration)."""


class Adapter:
    name: ClassVar[str]
    address_kind: ClassVar[str | None] = None
    consent: ClassVar[str | None] = None

    def send(self, config: Any, out: Outgoing) -> Sent:
        raise NotImplementedError


ADAPTERS: dict[str, Adapter] = {}


def register(cls: type[Adapter]) -> type[Adapter]:
    """Class decorator: make ``cls`` the adapter of its channel."""
    ADAPTERS[cls.name] = cls()
    return cls


def secret(env: str | None) -> str | None:
    """The value of the environment variable a channel's configuration names (None: none)."""
    import os

    if env is None:
        return None
    value = os.environ.get(env)
    if value is None:
        raise Permanent(f"environment variable {env} is not set")
    return value
