"""Webhook: the rendered message and its data POSTed as JSON, signed with HMAC-SHA256."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from fidelia.messaging.channels.base import Adapter, Outgoing, Sent, register, secret
from fidelia.messaging.channels.http import post_json
from fidelia.messaging.schemas import WebhookChannel


def payload_of(out: Outgoing) -> dict[str, Any]:
    return {
        "message_id": str(out.message_id),
        "member_id": str(out.member_id),
        "kind": out.kind,
        "subject": out.subject,
        "text": out.text,
        "data": out.data,
    }


def signature(key: str, body: dict[str, Any]) -> str:
    raw = json.dumps(body, separators=(",", ":"), default=str).encode()
    return hmac.new(key.encode(), raw, hashlib.sha256).hexdigest()


@register
class Webhook(Adapter):
    name = "webhook"

    def send(self, config: Any, out: Outgoing) -> Sent:
        cfg: WebhookChannel = config
        body = payload_of(out)
        key = secret(cfg.secret_env)
        headers = {"X-Fidelia-Signature": f"sha256={signature(key, body)}"} if key else {}
        status, _ = post_json(cfg.url, body, headers=headers, timeout=cfg.timeout_seconds)
        return Sent(answer=f"HTTP {status}", delivered=True)
