"""Examples of the member documents (see ``fidelia.examples``)."""

from __future__ import annotations

from fidelia.examples import (
    ADMIN_KEY_ID,
    CARD,
    EMAIL,
    ENROLLED_AT,
    ENROLMENT_EVENT_ID,
    MEMBER_ID,
    MEMBER_UPDATED_AT,
    PHONE,
    POS_KEY_ID,
    STORE,
    JsonObject,
)

CONSENT_IN: JsonObject = {"channel": "sms", "granted": True, "source": "pos"}

ENROLMENT: JsonObject = {
    "first_name": "Laure",
    "last_name": "Moulin",
    "birth_date": "1989-05-29",
    "locale": "fr-FR",
    "postal_code": "69003",
    "attributes": {"home_store": STORE, "newsletter_topics": ["zero-waste", "outdoor"]},
    "card": CARD,
    "email": EMAIL,
    "phone": PHONE,
    "external_ids": [{"namespace": "shopify", "value": "7421094518"}],
    "channel": "store",
    "store": STORE,
    "enrolled_at": "2026-03-14T10:12:31+01:00",
    "consents": [{"channel": "email", "granted": True}, {"channel": "postal", "granted": False}],
}
"""Enrolment at the till: identities, profile and consents in one call."""

UPDATE: JsonObject = {"postal_code": "69007", "attributes": {"home_store": "lyon-confluence"}}

IDENTITY_ADD: JsonObject = {"kind": "external", "namespace": "shopify", "value": "7421094518"}

STATUS_CHANGE: JsonObject = {"status": "suspended", "reason": "Card reported stolen (ticket 48197)"}

CONSENT: JsonObject = {
    "channel": "email",
    "granted": True,
    "changed_at": ENROLLED_AT,
    "source": "event:store",
}

IDENTITY: JsonObject = {"kind": "card", "namespace": "", "value": CARD}

MEMBER: JsonObject = {
    "id": MEMBER_ID,
    "status": "active",
    "enrolment_channel": "store",
    "enrolment_store": STORE,
    "enrolled_at": ENROLLED_AT,
    "first_name": "Laure",
    "last_name": "Moulin",
    "birth_date": "1989-05-29",
    "locale": "fr-FR",
    "postal_code": "69003",
    "attributes": {"home_store": STORE, "newsletter_topics": ["zero-waste", "outdoor"]},
    "identities": [
        IDENTITY,
        {"kind": "email", "namespace": "", "value": EMAIL},
        {"kind": "phone", "namespace": "", "value": PHONE},
        {"kind": "external", "namespace": "shopify", "value": "7421094518"},
    ],
    "consents": [
        CONSENT,
        {**CONSENT, "channel": "postal", "granted": False},
        {**CONSENT, "channel": "sms", "changed_at": "2026-11-02T18:05:44.912330Z", "source": "pos"},
    ],
    "created_at": "2026-03-14T09:12:31.482913Z",
    "updated_at": MEMBER_UPDATED_AT,
}

ENROLMENT_OUTCOME: JsonObject = {
    "id": "till-lyon-0412-enrol-0031",
    "event_id": ENROLMENT_EVENT_ID,
    "status": "accepted",
    "totals": {},
    "effects": [
        {"kind": "voucher", "rule": {"id": "welcome-coupon", "version": 1}, "reward": "welcome"},
        {
            "kind": "voucher_issued",
            "reward": "welcome",
            "status": "issued",
            "voucher_id": "019ceb9e-6018-7a52-b3d8-41c7e2f05a96",
            "code": "WELCOME-6555-ESWU",
        },
        {
            "kind": "tier",
            "from": None,
            "to": "bronze",
            "reason": "joined",
            "metric": {"purchases": 0, "spend": "0", "status_points": 0},
        },
    ],
}
"""The enrolment event ran the programme: a welcome coupon issued, the base tier joined."""

ENROLLED: JsonObject = {**MEMBER, "enrolment": ENROLMENT_OUTCOME}

JOINED: JsonObject = {
    "from_status": None,
    "to_status": "active",
    "reason": "enrolment",
    "at": ENROLLED_AT,
    "actor": f"api_key:{POS_KEY_ID}",
    "event_id": ENROLMENT_EVENT_ID,
}

SUSPENDED: JsonObject = {
    "from_status": "active",
    "to_status": "suspended",
    "reason": "Card reported stolen (ticket 48197)",
    "at": "2026-11-30T08:40:12.315527Z",
    "actor": f"api_key:{ADMIN_KEY_ID}",
    "event_id": None,
}
