"""Transfers of value between members, under the programme's ``transfers`` policy.

Design note
-----------
:func:`give` checks the policy, locks both members' accounts in the wallet (primary-key order,
through the ledger's repository), then reads the month's sums from ``point_transfers`` in
statements of their own, so that on PostgreSQL a concurrent transfer of the same sender or
receiver, which holds the same account lock until it commits, is counted: two transfers at
once can neither overspend nor pass a monthly limit. The value moves through
:func:`fidelia.ledger.operations.transfer` (the sender's lots consumed soonest-expiring first,
the receiver given one lot per lot consumed with the same expiry: a transfer never extends
validity), and the transfer row, the audit entry and the ledger's ``points.transferred``
notices are written in the same transaction. Every refusal is raised before anything is
written. A transfer is final for the members; an administrator undoes one with the ledger's
reversal (``POST /ledger/transactions/{id}/reverse``), which takes back what the receiver still
holds of the received lots and gives the sender back what was taken.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from fidelia import versions
from fidelia.audit import service as audit
from fidelia.errors import FideliaError, FieldError, NotFound, ValidationFailed
from fidelia.events.schemas import MemberRef
from fidelia.kit.clock import utcnow
from fidelia.kit.pagination import decode_cursor, encode_cursor
from fidelia.ledger import operations
from fidelia.ledger import repository as repo
from fidelia.ledger.wallets import from_minor, get_wallet, to_minor
from fidelia.members import service as members
from fidelia.models import Member, Programme, Wallet
from fidelia.models.transfers import PointTransfer
from fidelia.transfers.schemas import TransferOut, TransfersSection

CHANNELS = ("api", "portal", "admin")


class TransferRefused(FideliaError):
    """A transfer the policy or the members' state refuses; ``error`` is the reason code."""

    status_code: ClassVar[int] = 409
    code: ClassVar[str] = "transfer_refused"

    def __init__(self, reason: str, detail: str, loc: tuple[str | int, ...] = ()) -> None:
        super().__init__(detail, fields=[FieldError(loc, detail)] if loc else None)
        self.reason = reason

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "error": self.reason}


class TransferForbidden(TransferRefused):
    """Transfers are off for the programme (or for the channel)."""

    status_code = 403


class TransferInvalid(TransferRefused):
    """The amount or the receiver can never be accepted (below the minimum, oneself)."""

    status_code = 422


def _parse(document: Mapping[str, Any]) -> TransfersSection:
    raw = document.get("transfers")
    return TransfersSection.model_validate(raw) if raw else TransfersSection()


def policy(session: Session, programme: Programme) -> TransfersSection:
    """The live ``transfers`` section (disabled when the document has none)."""
    return versions.section(session, programme, "transfers", _parse)


@dataclass(frozen=True, slots=True)
class Given:
    transfer: PointTransfer
    wallet: Wallet
    replayed: bool


def month_start(now: datetime, timezone: str) -> datetime:
    """The first instant of ``now``'s calendar month in the programme's time zone."""
    local = now.astimezone(ZoneInfo(timezone))
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _sums(
    session: Session, programme: Programme, wallet: Wallet, column: Any, member_id: uuid.UUID,
    since: datetime,
) -> tuple[int, int]:  # fmt: skip
    """(minor units, count) of the member's transfers on ``column``'s side since ``since``."""
    row = session.execute(
        select(func.coalesce(func.sum(PointTransfer.amount), 0), func.count()).where(
            PointTransfer.programme_id == programme.id,
            PointTransfer.wallet_id == wallet.id,
            column == member_id,
            PointTransfer.created_at >= since,
        )
    ).one()
    return int(row[0]), int(row[1])


def _check_member(member: Member, side: str, loc: tuple[str | int, ...]) -> None:
    if member.status != "active":
        raise TransferRefused(f"{side}_inactive", f"the {side} is {member.status}, not active", loc)


def _replay(
    session: Session, programme: Programme, sender_id: uuid.UUID, reference: str
) -> PointTransfer | None:
    return session.scalar(
        select(PointTransfer).where(
            PointTransfer.programme_id == programme.id,
            PointTransfer.sender_id == sender_id,
            PointTransfer.reference == reference,
        )
    )


def give(
    session: Session,
    *,
    programme: Programme,
    sender_id: uuid.UUID,
    to: MemberRef,
    wallet: str,
    amount: Any,
    reference: str,
    channel: str,
    actor: str,
    reason: str | None = None,
    user_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> Given:
    """Move ``amount`` of ``wallet`` from ``sender_id`` to the member ``to`` names, under the
    programme's policy; the same ``reference`` from the same sender gives back the first
    transfer (``replayed``). Raises :class:`TransferRefused` (or a subclass), 404 for an
    unknown member (another programme's members are unknown here), 409 ``insufficient_balance``
    when the sender's available lots do not cover it; nothing is written then."""
    now = now or utcnow()
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    sender = members.get(session, programme=programme, member_id=sender_id)
    rules = policy(session, programme)
    if not rules.enabled:
        raise TransferForbidden("transfers_disabled", "transfers are not enabled in this programme")
    if channel == "portal" and not rules.portal:
        raise TransferForbidden("transfers_disabled", "members cannot give from the portal")
    previous = _replay(session, programme, sender.id, reference)
    if previous is not None:
        return _replayed(session, previous, to, wallet, amount, programme)
    if wallet not in rules.wallets:
        raise TransferRefused(
            "wallet_not_transferable", f"wallet {wallet!r} cannot be given", ("wallet",)
        )
    found = get_wallet(session, programme=programme, code=wallet)
    minor = to_minor(found, amount)
    if minor <= 0:
        raise ValidationFailed.on("amount", "must be greater than zero")
    _check_amount(found, rules, minor)
    try:
        receiver_id, _ = members.resolve(session, programme=programme, ref=to, loc=("to",))
    except NotFound:  # an id of no member here (another programme's members are unknown)
        receiver_id = None
    if receiver_id is None:
        raise NotFound("no member of this programme has this identity", fields=[
            FieldError(("to",), "no such member")
        ])  # fmt: skip
    if receiver_id == sender.id:
        raise TransferInvalid("self_transfer", "a member cannot give to themself", ("to",))
    receiver = members.get(session, programme=programme, member_id=receiver_id)
    _check_member(sender, "sender", ("member_id",))
    _check_member(receiver, "receiver", ("to",))
    if rules.min_member_age_days and sender.enrolled_at > now - timedelta(
        days=rules.min_member_age_days
    ):
        raise TransferRefused(
            "member_too_new",
            f"a member may give after {rules.min_member_age_days} days of membership",
            ("member_id",),
        )
    # Lock both accounts first (primary-key order), then read the month's transfers: a
    # concurrent transfer of either member has committed (and is counted) or waits for us.
    repo.lock_member_accounts(
        session, programme=programme, wallet=found, member_ids=[sender.id, receiver.id]
    )
    _check_month(session, programme, found, rules, sender.id, receiver.id, minor, now)
    txn = operations.transfer(
        session,
        programme=programme,
        from_member_id=sender.id,
        to_member_id=receiver.id,
        wallet=wallet,
        amount=amount,
        idempotency_key=f"transfer:{sender.id}:{reference}",
        reason=reason,
        now=now,
    )
    row = PointTransfer(
        programme_id=programme.id,
        wallet_id=found.id,
        sender_id=sender.id,
        receiver_id=receiver.id,
        amount=minor,
        transaction_id=txn.id,
        reference=reference,
        channel=channel,
        actor=actor[:200],
        reason=reason,
        created_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        programme_id=programme.id,
        actor=actor,
        user_id=user_id,
        action="points.transfer",
        target_type="member",
        target_id=str(sender.id),
        after={
            "transfer_id": str(row.id),
            "receiver_id": str(receiver.id),
            "wallet": wallet,
            "amount": str(from_minor(found, minor)),
            "channel": channel,
        },
        reason=reason,
        at=now,
    )
    return Given(row, found, False)


def _check_amount(wallet: Wallet, rules: TransfersSection, minor: int) -> None:
    if rules.min_amount is not None and minor < to_minor(wallet, rules.min_amount):
        raise TransferInvalid(
            "amount_below_minimum", f"the smallest transfer is {rules.min_amount}", ("amount",)
        )
    if rules.max_per_transfer is not None and minor > to_minor(wallet, rules.max_per_transfer):
        raise TransferInvalid(
            "amount_above_maximum",
            f"the largest transfer is {rules.max_per_transfer}",
            ("amount",),
        )


def _check_month(
    session: Session, programme: Programme, wallet: Wallet, rules: TransfersSection,
    sender_id: uuid.UUID, receiver_id: uuid.UUID, minor: int, now: datetime,
) -> None:  # fmt: skip
    limits = (rules.max_sent_per_month, rules.max_received_per_month, rules.max_transfers_per_month)
    if all(limit is None for limit in limits):
        return
    since = month_start(now, programme.timezone)
    sent, count = _sums(session, programme, wallet, PointTransfer.sender_id, sender_id, since)
    if rules.max_transfers_per_month is not None and count >= rules.max_transfers_per_month:
        raise TransferRefused(
            "monthly_count_limit",
            f"a member may give {rules.max_transfers_per_month} times a month",
            ("member_id",),
        )
    if rules.max_sent_per_month is not None:
        cap = to_minor(wallet, rules.max_sent_per_month)
        if sent + minor > cap:
            left = from_minor(wallet, max(cap - sent, 0))
            raise TransferRefused(
                "monthly_sent_limit",
                f"this would pass the monthly limit of {rules.max_sent_per_month} given "
                f"({left} left this month)",
                ("amount",),
            )
    if rules.max_received_per_month is not None:
        cap = to_minor(wallet, rules.max_received_per_month)
        got, _ = _sums(session, programme, wallet, PointTransfer.receiver_id, receiver_id, since)
        if got + minor > cap:
            raise TransferRefused(
                "monthly_received_limit",
                f"the receiver may receive {rules.max_received_per_month} a month",
                ("to",),
            )


def _replayed(
    session: Session, previous: PointTransfer, to: MemberRef, wallet: str, amount: Any,
    programme: Programme,
) -> Given:  # fmt: skip
    """The first transfer under this reference, if the retry asks for the same thing."""
    found = session.get(Wallet, previous.wallet_id)
    assert found is not None
    receiver_id, _ = members.resolve(session, programme=programme, ref=to, loc=("to",))
    same = (
        found.code == wallet
        and receiver_id == previous.receiver_id
        and to_minor(found, amount) == previous.amount
    )
    if not same:
        raise TransferRefused(
            "reference_reused",
            f"reference {previous.reference!r} was used for another transfer",
            ("reference",),
        )
    return Given(previous, found, True)


def out(transfer: PointTransfer, wallet: Wallet, member_id: uuid.UUID | None = None) -> TransferOut:
    direction = None
    if member_id is not None:
        direction = "sent" if transfer.sender_id == member_id else "received"
    return TransferOut(
        id=transfer.id,
        sender_id=transfer.sender_id,
        receiver_id=transfer.receiver_id,
        wallet=wallet.code,
        amount=from_minor(wallet, transfer.amount),
        reference=transfer.reference,
        channel=transfer.channel,
        transaction_id=transfer.transaction_id,
        direction=direction,
        reason=transfer.reason,
        created_at=transfer.created_at,
    )


def of_member(
    session: Session,
    *,
    programme: Programme,
    member_id: uuid.UUID,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[TransferOut], str | None]:
    """The member's transfers, given and received, newest first; the next page's cursor."""
    members.get(session, programme=programme, member_id=member_id)
    query = (
        select(PointTransfer, Wallet)
        .join(Wallet, Wallet.id == PointTransfer.wallet_id)
        .where(
            PointTransfer.programme_id == programme.id,
            or_(PointTransfer.sender_id == member_id, PointTransfer.receiver_id == member_id),
        )
        .order_by(PointTransfer.created_at.desc(), PointTransfer.id.desc())
        .limit(limit + 1)
    )
    if cursor:
        try:
            at, last = decode_cursor(cursor)
            after = (datetime.fromisoformat(at), uuid.UUID(last))
        except (ValueError, TypeError) as exc:
            raise ValidationFailed.on("cursor", "not a cursor of this list") from exc
        query = query.where(
            or_(
                PointTransfer.created_at < after[0],
                (PointTransfer.created_at == after[0]) & (PointTransfer.id < after[1]),
            )
        )
    rows = [(t, w) for t, w in session.execute(query)]
    items = [out(t, w, member_id) for t, w in rows[:limit]]
    nxt = None
    if len(rows) > limit:
        last_row = rows[limit - 1][0]
        nxt = encode_cursor([last_row.created_at.isoformat(), str(last_row.id)])
    return items, nxt
