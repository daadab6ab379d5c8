"""Examples of the messaging API's documents (see ``fidelia.examples``)."""

from __future__ import annotations

from fidelia.examples import MEMBER_ID, JsonObject

MESSAGE_ID = "01a2b5c0-3f10-7a41-9c2e-5d8b1e4f7a90"

SEND_IN: JsonObject = {
    "member": {"id": MEMBER_ID},
    "template": "points-expiring",
    "channels": ["email", "sms"],
    "kind": "transactional",
    "content_key": "points-expiring-2026-12",
    "event": {"points": 200, "expires_on": "2026-12-31"},
    "idempotency_key": "expiry-notice-2026-12-019ceb9e",
}

CONTENT: JsonObject = {
    "subject": "{{ member.first_name }}, vos points expirent",
    "text": "Il vous reste {{ points.points }} points.",
    "sms": "{{ member.first_name }}, {{ points.points }} pts vous attendent",
}

LOG: JsonObject = {"status": "sent", "at": "2026-11-30T10:00:01.402118Z", "detail": "250 OK"}

PREVIEW_IN: JsonObject = {
    "member_id": MEMBER_ID,
    "content": {
        "fr": {
            "subject": "{{ member.first_name }}, vos points expirent",
            "text": "Il vous reste {{ points.points }} points.",
        }
    },
    "channel": "email",
}

PREVIEW_OUT: JsonObject = {
    "channel": "email",
    "locale": "fr",
    "subject": "Laure, vos points expirent",
    "text": "Il vous reste 1250 points.",
    "html": None,
    "sms": None,
}

MESSAGE: JsonObject = {
    "id": MESSAGE_ID,
    "member_id": MEMBER_ID,
    "source": "api-key:019b8d64-7650-75d9-bd78-bf154dad2986",
    "template": "points-expiring",
    "kind": "transactional",
    "content_key": "points-expiring-2026-12",
    "channels": ["email", "sms"],
    "channel": "email",
    "locale": "fr",
    "recipient": "laure.moulin@example.org",
    "subject": "Laure, 200 points expirent le 31 décembre",
    "status": "delivered",
    "reason": None,
    "attempts": 1,
    "due_at": "2026-11-30T10:00:00.120443Z",
    "expires_at": None,
    "created_at": "2026-11-30T10:00:00.120443Z",
    "sent_at": "2026-11-30T10:00:01.402118Z",
    "delivered_at": "2026-11-30T10:00:01.402118Z",
    "opened_at": None,
    "clicked_at": None,
    "read_at": None,
}

DETAIL: JsonObject = {
    **MESSAGE,
    "body_text": "Bonjour Laure, 200 points expirent le 31 décembre.",
    "body_html": None,
    "log": [
        {"status": "queued", "at": "2026-11-30T10:00:00.120443Z", "detail": None},
        {"status": "sent", "at": "2026-11-30T10:00:01.402118Z", "detail": "250 OK"},
    ],
}

INBOX_ITEM: JsonObject = {
    "id": MESSAGE_ID,
    "subject": "Votre bon de 10 € est arrivé",
    "text": "Bonjour Laure, votre bon est dans votre espace.",
    "sent_at": "2026-11-30T10:00:01.402118Z",
    "read_at": None,
}

BOUNCES_OUT = {"hard": 1, "soft": 0, "logged": 0, "unmatched": 0}
BOUNCED_ADDRESS = {
    "address": "ana@example.org",
    "reason": "5.1.1 smtp; 550 5.1.1 user unknown",
    "message_id": "01935f2e-8b9a-7c3d-9e4f-5a6b7c8d9e0f",
    "bounced_at": "2026-11-30T08:15:00Z",
}
