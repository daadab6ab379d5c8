"""Shop platforms' webhook payloads turned into Fidelia events (pure functions, no I/O).

Shopify (``X-Shopify-Topic``): ``orders/create`` and ``orders/paid`` -> a purchase,
``refunds/create`` -> a return, ``customers/create`` -> an enrolment, ``customers/update`` ->
a profile update. WooCommerce (``X-WC-Webhook-Topic``): ``order.created`` / ``order.updated``
-> a purchase once the order is ``processing`` or ``completed``, a return of every line once
it is ``refunded``; ``customer.created`` -> an enrolment, ``customer.updated`` -> a profile
update. Event ids are built from the platform's ids (``<connector>:order:<id>``...), so a
webhook sent twice is one event.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from fidelia.errors import ValidationFailed

Payload = Mapping[str, Any]
PAID_WOO = {"processing", "completed"}


def money(value: Any, field: str) -> Decimal:
    try:
        found = Decimal(str(value if value not in (None, "") else "0"))
    except InvalidOperation:
        raise ValidationFailed.on(field, f"{value!r} is not an amount") from None
    return found


def _ref(slug: str, email: Any, customer_id: Any) -> dict[str, Any]:
    if isinstance(email, str) and "@" in email:
        return {"email": email.strip()}
    if customer_id not in (None, "", 0):
        return {"external": {"namespace": slug, "value": str(customer_id)}}
    raise ValidationFailed.on("customer", "the order names no customer email or id")


def _lines(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lines with unique skus (the same sku twice is one line: quantities and discounts
    summed, the unit price averaged)."""
    merged: dict[str, dict[str, Any]] = {}
    for line in raw:
        found = merged.get(line["sku"])
        if found is None:
            merged[line["sku"]] = dict(line)
            continue
        quantity = found["quantity"] + line["quantity"]
        cost = found["unit_price"] * found["quantity"] + line["unit_price"] * line["quantity"]
        found.update(quantity=quantity, unit_price=(cost / quantity).quantize(Decimal("0.0001")),
                     discount=found["discount"] + line["discount"])  # fmt: skip
    return list(merged.values())


def _purchase(
    slug: str, order_id: Any, lines: list[dict[str, Any]], shipping: Decimal, currency: Any
) -> dict[str, Any]:
    lines = _lines(lines)
    if not lines:
        raise ValidationFailed.on("line_items", "the order has no line")
    total = sum((x["unit_price"] * x["quantity"] - x["discount"] for x in lines), Decimal(0))
    return {
        "order_id": f"{slug}:{order_id}",
        "lines": [
            {k: str(v) if isinstance(v, Decimal) else v for k, v in x.items()} for x in lines
        ],
        "shipping": str(shipping),
        "total": str(total + shipping),
        **({"currency": currency} if isinstance(currency, str) and len(currency) == 3 else {}),
    }


def _sku(line: Payload) -> str:
    for key, prefix in (("sku", ""), ("variant_id", "variant-"), ("variation_id", "variant-"),
                        ("product_id", "product-")):  # fmt: skip
        value = line.get(key)
        if value not in (None, "", 0):
            return f"{prefix}{value}"[:64]
    return f"line-{line.get('id')}"


# --- Shopify ---------------------------------------------------------------------------


def shopify_order(slug: str, order: Payload) -> dict[str, Any]:
    lines = []
    for i, li in enumerate(order.get("line_items") or []):
        allocations = li.get("discount_allocations") or []
        discount = (
            sum((money(a.get("amount"), f"line_items.{i}.discount") for a in allocations),
                Decimal(0))
            if allocations else money(li.get("total_discount"), f"line_items.{i}.total_discount")
        )  # fmt: skip
        lines.append({
            "sku": _sku(li), "name": (li.get("title") or li.get("name") or None),
            "brand": li.get("vendor") or None, "quantity": Decimal(int(li.get("quantity") or 0)),
            "unit_price": money(li.get("price"), f"line_items.{i}.price"), "discount": discount,
        })  # fmt: skip
    shipping = sum(
        (money(s.get("price"), "shipping_lines.price") for s in order.get("shipping_lines") or []),
        Decimal(0),
    )
    customer = order.get("customer") or {}
    return {
        "id": f"{slug}:order:{order.get('id')}",
        "type": "purchase",
        "occurred_at": order.get("processed_at") or order.get("created_at"),
        "member": _ref(slug, order.get("email") or customer.get("email"), customer.get("id")),
        "channel": "web",
        "properties": _purchase(slug, order.get("id"), lines, shipping, order.get("currency")),
    }


def shopify_refund(slug: str, refund: Payload) -> tuple[str, dict[str, Any]]:
    """The return (without its member: the purchase's member is looked up by the caller)
    and the id of the purchase event it returns."""
    lines = [
        {"sku": _sku(item.get("line_item") or {}), "quantity": str(int(item.get("quantity") or 0))}
        for item in refund.get("refund_line_items") or []
        if int(item.get("quantity") or 0) > 0
    ]
    if not lines:
        raise ValidationFailed.on("refund_line_items", "the refund returns no line")
    refunded = sum(
        (money(t.get("amount"), "transactions.amount") for t in refund.get("transactions") or []
         if t.get("kind") == "refund"),
        Decimal(0),
    )  # fmt: skip
    event = {
        "id": f"{slug}:refund:{refund.get('id')}",
        "type": "return",
        "occurred_at": refund.get("processed_at") or refund.get("created_at"),
        "channel": "web",
        "properties": {
            "order_id": f"{slug}:{refund.get('order_id')}",
            "return_id": str(refund.get("id")),
            "lines": _return_lines(lines),
            **({"refund_total": str(refunded)} if refunded else {}),
        },
    }
    return f"{slug}:order:{refund.get('order_id')}", event


def _return_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged: dict[str, Decimal] = {}
    for line in lines:
        merged[line["sku"]] = merged.get(line["sku"], Decimal(0)) + Decimal(line["quantity"])
    return [{"sku": sku, "quantity": str(q)} for sku, q in merged.items()]


def _consents(email_state: Any) -> list[dict[str, Any]]:
    if email_state in ("subscribed", True):
        return [{"channel": "email", "granted": True, "source": "shop"}]
    if email_state in ("unsubscribed", "not_subscribed"):
        return [{"channel": "email", "granted": False, "source": "shop"}]
    return []


def shopify_customer(slug: str, customer: Payload, *, created: bool) -> dict[str, Any]:
    profile = {k: customer.get(k) for k in ("first_name", "last_name") if customer.get(k)}
    consent = (customer.get("email_marketing_consent") or {}).get("state")
    if consent is None and "accepts_marketing" in customer:
        consent = bool(customer["accepts_marketing"])
    return _customer(slug, customer, profile, _consents(consent), created, "updated_at")


def _customer(
    slug: str,
    customer: Payload,
    profile: dict[str, Any],
    consents: list[dict[str, Any]],
    created: bool,
    stamp: str,
) -> dict[str, Any]:
    ref = _ref(slug, customer.get("email"), customer.get("id"))
    at = customer.get("created_at" if created else stamp) or customer.get("date_created_gmt")
    if created:
        return {
            "id": f"{slug}:customer:{customer.get('id')}",
            "type": "enrolment",
            "occurred_at": at,
            "member": ref,
            "channel": "web",
            "properties": {
                "profile": profile,
                "consents": consents,
                "external_ids": [{"namespace": slug, "value": str(customer.get("id"))}],
            },
        }
    return {
        "id": f"{slug}:customer:{customer.get('id')}:{at}",
        "type": "profile_updated",
        "occurred_at": at,
        "member": ref,
        "channel": "web",
        "properties": {"profile": profile},
    }


# --- WooCommerce -----------------------------------------------------------------------


def _gmt(value: Any) -> Any:
    """WooCommerce's ``*_gmt`` times carry no offset: they are UTC."""
    if isinstance(value, str) and value and value[-1] != "Z" and "+" not in value[10:]:
        return value + "+00:00"
    return value


def woo_order(slug: str, order: Payload) -> dict[str, Any] | None:
    """The purchase of a paid order, the return of a refunded one, None otherwise."""
    status = order.get("status")
    billing = order.get("billing") or {}
    member = _ref(slug, billing.get("email"), order.get("customer_id"))
    items = order.get("line_items") or []
    if status == "refunded":
        returned: list[dict[str, Any]] = [
            {"sku": _sku(li), "quantity": str(int(li.get("quantity") or 0))} for li in items
        ]
        return {
            "id": f"{slug}:refund:{order.get('id')}:full",
            "type": "return",
            "occurred_at": _gmt(order.get("date_modified_gmt") or order.get("date_created_gmt")),
            "member": member,
            "channel": "web",
            "properties": {
                "order_id": f"{slug}:{order.get('id')}",
                "lines": _return_lines(returned),
            },
        }
    if status not in PAID_WOO:
        return None
    lines: list[dict[str, Any]] = []
    for i, li in enumerate(items):
        quantity = Decimal(int(li.get("quantity") or 0))
        subtotal = money(li.get("subtotal"), f"line_items.{i}.subtotal")
        total = money(li.get("total"), f"line_items.{i}.total")
        unit = (subtotal / quantity).quantize(Decimal("0.0001")) if quantity else subtotal
        discount = max(unit * quantity - total, Decimal(0))
        lines.append({"sku": _sku(li), "name": li.get("name") or None, "quantity": quantity,
                      "unit_price": unit, "discount": discount})  # fmt: skip
    shipping = money(order.get("shipping_total"), "shipping_total")
    return {
        "id": f"{slug}:order:{order.get('id')}",
        "type": "purchase",
        "occurred_at": _gmt(order.get("date_paid_gmt") or order.get("date_created_gmt")),
        "member": member,
        "channel": "web",
        "properties": _purchase(slug, order.get("id"), lines, shipping, order.get("currency")),
    }


def woo_customer(slug: str, customer: Payload, *, created: bool) -> dict[str, Any]:
    profile = {k: customer.get(k) for k in ("first_name", "last_name") if customer.get(k)}
    data = {**customer, "created_at": _gmt(customer.get("date_created_gmt")),
            "modified": _gmt(customer.get("date_modified_gmt"))}  # fmt: skip
    return _customer(slug, data, profile, [], created, "modified")
