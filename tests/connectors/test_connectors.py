"""Shop connectors: signed Shopify, WooCommerce and mapped webhooks, shaped as the platforms
document them, become purchases, returns and enrolments through the intake, once each; a
wrong signature is refused and writes nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any

import httpx
import pytest

from fidelia.db import Database
from fidelia.models import Event, Programme
from tests.fixtures.factories import Api, count_rows

SECRET = "shpss_4f1c9e0b7a2d48c1b5e6"


def b64(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def connect(api: Api, kind: str, **settings: Any) -> str:
    slug = f"{kind[:4]}-{uuid.uuid4().hex[:6]}"
    body = {"slug": slug, "kind": kind, "secret": SECRET, "settings": settings}
    created = api.post("/connectors", json=body)
    assert created.status_code == 201, created.text
    return str(created.json()["url"])


def send(api: Api, url: str, payload: Any, headers: dict[str, str]) -> httpx.Response:
    return api.client.post(url, content=payload, headers=headers)


def shopify(api: Api, url: str, topic: str, payload: dict[str, Any], *, secret: str = SECRET
            ) -> httpx.Response:  # fmt: skip
    raw = json.dumps(payload).encode()
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": b64(raw, secret),
        "X-Shopify-Shop-Domain": "demo.myshopify.com",
        "Content-Type": "application/json",
    }
    return send(api, url, raw, headers)


def events(database: Database, programme: Programme) -> int:
    return count_rows(database, Event, Event.programme_id == programme.id)


SHOPIFY_CUSTOMER = {
    "id": 706405506930370000, "email": "bob@example.com", "first_name": "Bob",
    "last_name": "Biller", "created_at": "2026-11-02T10:00:00-05:00",
    "updated_at": "2026-11-02T10:00:00-05:00",
    "email_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in"},
}  # fmt: skip
SHOPIFY_ORDER = {
    "id": 820982911946154500, "email": "bob@example.com", "currency": "EUR",
    "created_at": "2026-11-03T12:30:00+01:00", "total_price": "71.50",
    "customer": {"id": 706405506930370000, "email": "bob@example.com"},
    "line_items": [
        {"id": 466157049, "sku": "IPOD-2GB", "title": "IPod Nano - 8gb", "vendor": "Apple",
         "quantity": 1, "price": "49.00", "total_discount": "0.00",
         "discount_allocations": [{"amount": "4.00", "discount_application_index": 0}]},
        {"id": 518995019, "sku": "CABLE", "title": "Cable", "vendor": "Apple",
         "quantity": 2, "price": "10.00", "total_discount": "0.00", "discount_allocations": []},
    ],
    "shipping_lines": [{"id": 369256396, "title": "Free Shipping", "price": "6.50"}],
}  # fmt: skip
SHOPIFY_REFUND = {
    "id": 509562969, "order_id": 820982911946154500, "created_at": "2026-11-05T09:00:00+01:00",
    "refund_line_items": [{"id": 104689539, "quantity": 1, "line_item_id": 518995019,
                           "line_item": {"id": 518995019, "sku": "CABLE"}, "subtotal": 10.0}],
    "transactions": [{"id": 179259969, "kind": "refund", "amount": "10.00"}],
}  # fmt: skip


def test_shopify_customer_order_and_refund(
    api: Api, database: Database, programme: Programme
) -> None:
    url = connect(api, "shopify")
    enrolled = shopify(api, url, "customers/create", SHOPIFY_CUSTOMER)
    assert enrolled.status_code == 200, enrolled.text
    assert enrolled.json()["status"] == "accepted"
    member = enrolled.json()["outcome"]["member_id"]

    before = events(database, programme)
    forged = shopify(api, url, "orders/create", SHOPIFY_ORDER, secret="not-the-secret")
    assert forged.status_code == 401
    assert "X-Shopify-Hmac-Sha256".lower() in forged.json()["detail"].lower()
    assert events(database, programme) == before  # nothing written

    bought = shopify(api, url, "orders/create", SHOPIFY_ORDER)
    assert bought.status_code == 200, bought.text
    assert bought.json()["status"] == "accepted"
    assert bought.json()["outcome"]["member_id"] == member
    again = shopify(api, url, "orders/paid", SHOPIFY_ORDER)  # the same order, another topic
    assert again.json()["status"] == "duplicate"

    stored = api.get(f"/members/{member}/events").json()
    items = stored["items"] if isinstance(stored, dict) else stored
    purchase = next(e for e in items if e["type"] == "purchase")
    props = purchase["properties"]
    assert [(x["sku"], x["quantity"], x["discount"]) for x in props["lines"]] == [
        ("IPOD-2GB", "1", "4.00"), ("CABLE", "2", "0.00")
    ]  # fmt: skip
    assert (props["shipping"], props["total"]) == ("6.50", "71.50")

    returned = shopify(api, url, "refunds/create", SHOPIFY_REFUND)
    assert returned.status_code == 200, returned.text
    assert returned.json()["status"] == "accepted"
    assert returned.json()["outcome"]["member_id"] == member
    orphan = shopify(api, url, "refunds/create", {**SHOPIFY_REFUND, "id": 1, "order_id": 42})
    assert orphan.status_code == 404
    assert shopify(api, url, "products/update", {"id": 1}).json()["status"] == "ignored"


def woo(api: Api, url: str, topic: str, payload: dict[str, Any], *, secret: str = SECRET
        ) -> httpx.Response:  # fmt: skip
    raw = json.dumps(payload).encode()
    headers = {
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Signature": b64(raw, secret),
        "X-WC-Webhook-Delivery-ID": str(uuid.uuid4()),
        "Content-Type": "application/json",
    }
    return send(api, url, raw, headers)


def woo_order(status: str) -> dict[str, Any]:
    return {
        "id": 727, "status": status, "currency": "EUR", "customer_id": 26,
        "date_created_gmt": "2026-11-03T11:00:00", "date_paid_gmt": "2026-11-03T11:05:00",
        "date_modified_gmt": "2026-11-06T08:00:00", "shipping_total": "5.00",
        "discount_total": "3.00", "total": "52.00",
        "billing": {"first_name": "John", "last_name": "Doe", "email": "john.doe@example.com"},
        "line_items": [
            {"id": 315, "name": "Woo Single #1", "product_id": 93, "variation_id": 0,
             "quantity": 2, "subtotal": "30.00", "total": "27.00", "sku": "WS-1", "price": 13.5},
            {"id": 316, "name": "Ship Your Idea", "product_id": 22, "variation_id": 23,
             "quantity": 1, "subtotal": "20.00", "total": "20.00", "sku": "", "price": 20},
        ],
        "refunds": [],
    }  # fmt: skip


def test_woocommerce_ping_orders_statuses_and_refund(
    api: Api, database: Database, programme: Programme
) -> None:
    url = connect(api, "woocommerce", enrol_unknown="active")
    ping = send(api, url, b"webhook_id=12", {"Content-Type": "application/x-www-form-urlencoded"})
    assert ping.json()["status"] == "ping"
    assert woo(api, url, "order.created", woo_order("pending")).json()["status"] == "ignored"
    before = events(database, programme)
    forged = woo(api, url, "order.updated", woo_order("processing"), secret="wrong-secret")
    assert forged.status_code == 401
    assert events(database, programme) == before

    paid = woo(api, url, "order.updated", woo_order("processing"))
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "accepted"
    assert woo(api, url, "order.updated", woo_order("completed")).json()["status"] == "duplicate"
    member = paid.json()["outcome"]["member_id"]
    stored = api.get(f"/members/{member}/events").json()
    items = stored["items"] if isinstance(stored, dict) else stored
    props = next(e for e in items if e["type"] == "purchase")["properties"]
    assert [(x["sku"], x["discount"]) for x in props["lines"]] == [
        ("WS-1", "3.0000"),
        ("variant-23", "0.0000"),
    ]
    assert props["total"] == "52.0000"

    refunded = woo(api, url, "order.updated", woo_order("refunded"))
    assert refunded.json()["status"] == "accepted"
    assert woo(api, url, "order.updated", woo_order("refunded")).json()["status"] == "duplicate"


def test_mapped_connector_and_bad_mapping(api: Api) -> None:
    bad = api.post(
        "/connectors",
        json={
            "slug": "forms",
            "kind": "mapped",
            "secret": SECRET,
            "settings": {"mapping": {"type": "enrolment"}},
        },
    )
    assert bad.status_code == 422
    assert bad.json()["fields"][0]["loc"][-3:] == ["settings", "mapping", "id"]
    mapping = {
        "id": "$.signup.id", "type": "enrolment", "occurred_at": "$.signup.at",
        "member": {"email": "$.signup.email"},
        "properties": {"profile": {"first_name": "$.signup.name"}},
    }  # fmt: skip
    url = connect(api, "mapped", mapping=mapping)
    raw = json.dumps({"signup": {"id": "s-1", "at": "2026-11-03T10:00:00Z",
                                 "email": "form@example.com", "name": "Léa"}}).encode()  # fmt: skip
    sig = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert send(api, url, raw, {"Fidelia-Connector-Signature": "sha256=00"}).status_code == 401
    done = send(api, url, raw, {"Fidelia-Connector-Signature": sig})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "accepted"
    assert done.json()["event"].endswith(":s-1")
    empty = json.dumps({"signup": {"at": "2026-11-03T10:00:00Z"}}).encode()
    sig2 = "sha256=" + hmac.new(SECRET.encode(), empty, hashlib.sha256).hexdigest()
    missing = send(api, url, empty, {"Fidelia-Connector-Signature": sig2})
    assert missing.status_code == 422
    assert "$.signup.id" in missing.json()["detail"]


@pytest.mark.parametrize("kind", ["shopify"])
def test_unknown_connector_is_404(api: Api, kind: str) -> None:
    response = shopify(api, f"/api/v1/connectors/{uuid.uuid4()}/receive", "orders/create", {})
    assert response.status_code == 404
