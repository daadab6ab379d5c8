"""The in-app inbox: the message row itself is what the member reads (portal and API)."""

from __future__ import annotations

from typing import Any

from fidelia.messaging.channels.base import Adapter, Outgoing, Sent, register


@register
class Inbox(Adapter):
    name = "inbox"

    def send(self, config: Any, out: Outgoing) -> Sent:
        return Sent(answer="stored in the inbox", delivered=True)
