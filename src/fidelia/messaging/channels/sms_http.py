"""SMS through a generic HTTP gateway: URL, auth header, JSON body template, and the id of
the gateway's answer (its delivery reports come back to ``callback_url``)."""

from __future__ import annotations

import json
from typing import Any

from fidelia.messaging import templates
from fidelia.messaging.channels.base import Adapter, Outgoing, Permanent, Sent, register, secret
from fidelia.messaging.channels.http import post_json
from fidelia.messaging.schemas import SmsChannel


def body_of(config: SmsChannel, out: Outgoing) -> dict[str, str]:
    context = {
        "to": out.to,
        "text": out.sms or out.text or "",
        "sender": config.sender or "",
        "message_id": str(out.message_id),
        "callback_url": out.callback_url or "",
    }
    return {key: templates.render(value, context) for key, value in config.body.items()}


@register
class SmsHttp(Adapter):
    name = "sms"
    address_kind = "phone"
    consent = "sms"

    def send(self, config: Any, out: Outgoing) -> Sent:
        cfg: SmsChannel = config
        token = secret(cfg.token_env)
        headers = {}
        if token is not None:
            headers[cfg.auth_header] = f"{cfg.auth_scheme} {token}" if cfg.auth_scheme else token
        status, answer = post_json(
            cfg.url, body_of(cfg, out), headers=headers, timeout=cfg.timeout_seconds
        )
        provider_id = None
        try:
            parsed = json.loads(answer) if answer else {}
        except ValueError as exc:
            raise Permanent(f"HTTP {status}: not JSON: {answer[:500]}") from exc
        if isinstance(parsed, dict) and parsed.get(cfg.id_field) is not None:
            provider_id = str(parsed[cfg.id_field])[:200]
        return Sent(answer=f"HTTP {status}", provider_id=provider_id)
