"""offers, first-N, plans and subscriptions, till payments, perks (issue 14)

Revision ID: 20261130_0020
Revises: 20261130_0019
Create Date: 2026-11-30 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import fidelia.models.base

revision: str = "20261130_0020"
down_revision: str | None = "20261130_0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _big() -> sa.types.TypeEngine[Any]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, fidelia.models.base.UTCDateTime(timezone=True), nullable=nullable)


def _id(name: str = "id", *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.Uuid(), nullable=nullable)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def _pk(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*(columns or ("id",)), name=op.f(f"pk_{table}"))


def _money(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.String(length=40), nullable=False)


LIVE = "status IN ('trialing', 'active', 'past_due')"


def upgrade() -> None:
    _offers()
    _plans()
    op.create_table(
        "till_payments",
        _id(),
        _id("programme_id"),
        _id("member_id"),
        sa.Column("order_id", sa.String(length=100), nullable=False),
        sa.Column("wallet", sa.String(length=32), nullable=False),
        sa.Column("amount", _big(), nullable=False),
        _money("value"),
        _money("order_total"),
        _id("transaction_id"),
        sa.Column("refunded", _big(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.CheckConstraint(
            "refunded >= 0 AND refunded <= amount", name=op.f("ck_till_payments_refunded_bounds")
        ),
        _fk("till_payments", "programme_id", "programmes"),
        _fk("till_payments", "member_id", "members"),
        _pk("till_payments"),
    )
    op.create_index(
        "uq_till_payments_order", "till_payments", ["programme_id", "order_id", "wallet"],
        unique=True,
    )  # fmt: skip


def _offers() -> None:
    op.create_table(
        "offer_targets",
        _id(),
        _id("programme_id"),
        sa.Column("offer", sa.String(length=64), nullable=False),
        _id("member_id"),
        sa.Column("source", sa.String(length=16), nullable=False),
        _at("given_at"),
        _at("valid_from"),
        _at("valid_until", nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        _money("revenue"),
        _id("voucher_id", nullable=True),
        sa.Column("slot", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=True),
        _at("last_used_at", nullable=True),
        sa.CheckConstraint("uses >= 0", name=op.f("ck_offer_targets_uses_not_negative")),
        _fk("offer_targets", "programme_id", "programmes"),
        _fk("offer_targets", "member_id", "members"),
        _pk("offer_targets"),
    )
    op.create_index(
        "uq_offer_targets_member", "offer_targets", ["programme_id", "offer", "member_id"],
        unique=True,
    )  # fmt: skip
    op.create_index("ix_offer_targets_member_id", "offer_targets", ["member_id"])
    op.create_table(
        "offer_uses",
        _id(),
        _id("programme_id"),
        sa.Column("offer", sa.String(length=64), nullable=False),
        _id("target_id"),
        _id("member_id"),
        sa.Column("ref", sa.String(length=200), nullable=False),
        _money("revenue"),
        _at("used_at"),
        _fk("offer_uses", "programme_id", "programmes"),
        _fk("offer_uses", "target_id", "offer_targets"),
        _fk("offer_uses", "member_id", "members"),
        _pk("offer_uses"),
    )
    op.create_index("uq_offer_uses_target_ref", "offer_uses", ["target_id", "ref"], unique=True)
    op.create_index("ix_offer_uses_programme_offer", "offer_uses", ["programme_id", "offer"])
    op.create_table(
        "offer_counters",
        _id("programme_id"),
        sa.Column("offer", sa.String(length=64), nullable=False),
        sa.Column("claimed", sa.Integer(), nullable=False),
        _at("created_at"),
        sa.CheckConstraint("claimed >= 0", name=op.f("ck_offer_counters_claimed_not_negative")),
        _fk("offer_counters", "programme_id", "programmes"),
        _pk("offer_counters", "programme_id", "offer"),
    )


def _plans() -> None:
    op.create_table(
        "subscriptions",
        _id(),
        _id("programme_id"),
        _id("member_id"),
        sa.Column("plan", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("provider_ref", sa.String(length=200), nullable=True),
        _at("started_at"),
        _at("trial_ends_at", nullable=True),
        _at("period_end"),
        _at("grace_until", nullable=True),
        _at("cancelled_at", nullable=True),
        _at("ended_at", nullable=True),
        _at("created_at"),
        _at("updated_at"),
        sa.CheckConstraint(
            "status IN ('trialing', 'active', 'past_due', 'cancelled', 'expired')",
            name=op.f("ck_subscriptions_status"),
        ),
        _fk("subscriptions", "programme_id", "programmes"),
        _fk("subscriptions", "member_id", "members"),
        _pk("subscriptions"),
    )
    op.create_index(
        "uq_subscriptions_live_member", "subscriptions", ["programme_id", "member_id"],
        unique=True, sqlite_where=sa.text(LIVE), postgresql_where=sa.text(LIVE),
    )  # fmt: skip
    ref = sa.text("provider_ref IS NOT NULL")
    op.create_index(
        "uq_subscriptions_provider_ref", "subscriptions", ["programme_id", "provider_ref"],
        unique=True, sqlite_where=ref, postgresql_where=ref,
    )  # fmt: skip
    op.create_index("ix_subscriptions_member_id", "subscriptions", ["member_id"])
    op.create_table(
        "subscription_changes",
        _id(),
        _id("programme_id"),
        _id("subscription_id"),
        _id("member_id"),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        _at("at"),
        sa.Column("cause", sa.String(length=16), nullable=False),
        _id("payment_event_id", nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=True),
        _at("period_end", nullable=True),
        _fk("subscription_changes", "programme_id", "programmes"),
        _fk("subscription_changes", "subscription_id", "subscriptions"),
        _fk("subscription_changes", "member_id", "members"),
        _pk("subscription_changes"),
    )
    op.create_index(
        "ix_subscription_changes_sub", "subscription_changes", ["subscription_id", "at"]
    )
    op.create_table(
        "payment_endpoints",
        _id(),
        _id("programme_id"),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        _at("created_at"),
        _at("revoked_at", nullable=True),
        _fk("payment_endpoints", "programme_id", "programmes"),
        _pk("payment_endpoints"),
    )
    op.create_table(
        "payment_events",
        _id(),
        _id("programme_id"),
        _id("endpoint_id"),
        sa.Column("provider_event_id", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        _id("subscription_id", nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        _at("received_at"),
        _fk("payment_events", "programme_id", "programmes"),
        _fk("payment_events", "endpoint_id", "payment_endpoints"),
        _pk("payment_events"),
    )
    op.create_index(
        "uq_payment_events_provider_event", "payment_events", ["endpoint_id", "provider_event_id"],
        unique=True,
    )  # fmt: skip


def downgrade() -> None:
    for table in (
        "payment_events", "payment_endpoints", "subscription_changes", "subscriptions",
        "offer_counters", "offer_uses", "offer_targets", "till_payments",
    ):  # fmt: skip
        op.drop_table(table)
