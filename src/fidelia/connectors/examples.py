"""Examples of the connectors API: Earth Care's Shopify shop (``eshop``) and a mapped sign-up
form (``forms``); Laure's online order of 29 November arrives through the shop's webhook (see
``fidelia.examples``)."""

from __future__ import annotations

from fidelia.events.examples import OUTCOME, PURCHASE_TOTALS
from fidelia.examples import MEMBER_ID, JsonObject

SHOP_CONNECTOR_ID = "01a10b57-759f-7dde-abf0-1c516f9c8323"
FORMS_CONNECTOR_ID = "01a130c5-ba55-7e28-9afb-8e86362beba5"
ORDER_EVENT_ID = "01a228c1-9f62-71d9-8a00-26d1fbc70f7d"
ORDER_KEY = "eshop:order:5873120951"

SHOPIFY_IN: JsonObject = {
    "slug": "eshop",
    "kind": "shopify",
    "secret": "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",
    "settings": {"enrol_unknown": "active"},
}
"""The online shop: a customer Fidelia does not know yet is enrolled with their first order."""

FORM_MAPPING: JsonObject = {
    "id": "$.signup.id",
    "type": "enrolment",
    "occurred_at": "$.signup.at",
    "member": {"email": "$.signup.email"},
    "properties": {"profile": {"first_name": "$.signup.name"}},
}

MAPPED_IN: JsonObject = {
    "slug": "forms",
    "kind": "mapped",
    "secret": "b3e7c1a94d2f8e6057c9a1d3",
    "settings": {"mapping": FORM_MAPPING},
}
"""The sign-up form of the Earth Care website, mapped to an enrolment event."""

SHOPIFY: JsonObject = {
    "id": SHOP_CONNECTOR_ID,
    "slug": "eshop",
    "kind": "shopify",
    "status": "active",
    "settings": {"enrol_unknown": "active"},
    "received": 3182,
    "last_received_at": "2026-11-29T19:21:47.702514Z",
    "created_at": "2026-10-05T09:14:03.551208Z",
    "url": f"/api/v1/connectors/{SHOP_CONNECTOR_ID}/receive",
}

MAPPED: JsonObject = {
    "id": FORMS_CONNECTOR_ID,
    "slug": "forms",
    "kind": "mapped",
    "status": "active",
    "settings": {"mapping": FORM_MAPPING},
    "received": 0,
    "last_received_at": None,
    "created_at": "2026-10-12T15:40:27.093614Z",
    "url": f"/api/v1/connectors/{FORMS_CONNECTOR_ID}/receive",
}
"""Just declared: nothing received yet."""

_OUTCOME = {k: v for k, v in OUTCOME.items() if k != "index"}

RECEIVED: JsonObject = {
    "status": "accepted",
    "event_id": ORDER_EVENT_ID,
    "event": ORDER_KEY,
    "detail": None,
    "outcome": {
        **_OUTCOME,
        "id": ORDER_KEY,
        "event_id": ORDER_EVENT_ID,
        "member_id": MEMBER_ID,
        "totals": PURCHASE_TOTALS,
    },
}
"""A Shopify ``orders/create`` webhook became a purchase event: its points are earned."""

RECEIVED_IGNORED: JsonObject = {
    "status": "ignored",
    "event_id": None,
    "event": None,
    "detail": "nothing to record for this topic or status",
    "outcome": None,
}
"""A topic that records nothing (e.g. a WooCommerce order still ``pending``)."""
