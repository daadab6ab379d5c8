"""Voucher pools, codes, issuance and the till, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from fidelia.db import Database
from fidelia.errors import Conflict, NotFound, ValidationFailed
from fidelia.models import Programme, Voucher, VoucherUse
from fidelia.rewards import codes, pools, till, vouchers
from fidelia.rewards.errors import PoolExhausted, VoucherRejected
from fidelia.rewards.schemas import BasketIn, RedeemVoucherIn, ValidateIn
from tests.fixtures.factories import count_rows
from tests.rewards.conftest import T0, make_pool, vouchers_of

NewMember = Callable[..., uuid.UUID]


def issue(
    database: Database,
    p: Programme,
    member_id: uuid.UUID | None,
    pool: str = "ten-euros",
    key: str = "i1",
    source: str = "rule",
) -> Voucher:
    with database.transaction() as s:
        return vouchers.issue_voucher(
            s,
            programme=p,
            member_id=member_id,
            pool=pool,
            source=source,
            idempotency_key=key,
            now=T0,
        )


def basket(total: str | None = None, *lines: tuple[str, str, str]) -> BasketIn:
    return BasketIn(
        total=Decimal(total) if total else None,
        lines=[
            {"sku": sku, "category": cat, "quantity": 1, "unit_price": price}
            for sku, cat, price in lines
        ],
    )  # type: ignore[misc]


def check(
    database: Database,
    p: Programme,
    code: str,
    member_id: uuid.UUID | None,
    b: BasketIn,
    at: Any = T0,
) -> till.Verdict:
    with database.transaction(readonly=True) as s:
        return till.validate(
            s, programme=p, data=ValidateIn(code=code, member_id=member_id, basket=b), now=at
        )


def use(
    database: Database,
    p: Programme,
    code: str,
    member_id: uuid.UUID | None,
    order: str,
    b: BasketIn | None = None,
) -> tuple[VoucherUse, Voucher, bool]:
    data = RedeemVoucherIn(code=code, member_id=member_id, basket=b or basket("50"), order_id=order)
    with database.transaction() as s:
        return till.redeem(s, programme=p, data=data, now=T0)


def test_codes_follow_the_pattern_without_ambiguous_characters() -> None:
    made = codes.generate_many("WELCOME-XXXX-XXXX", 2000, set())
    assert len(set(made)) == 2000
    assert all(re.fullmatch(r"WELCOME-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}", c) for c in made)
    assert not any(ch in c[8:] for c in made for ch in "01OIL")


def test_a_pattern_needs_eight_random_characters(
    database: Database, rewards_programme: Programme
) -> None:
    with pytest.raises(ValueError, match="at least 8"):
        make_pool(database, rewards_programme, pattern="WELCOME-XXXX")


def test_generated_codes_stock_the_pool_and_are_handed_out_first(
    database: Database, rewards_programme: Programme, new_member: NewMember
) -> None:
    p = rewards_programme
    make_pool(database, p)
    with database.transaction() as s:
        made = pools.generate_codes(s, programme=p, code="ten-euros", count=50)
    assert len(set(made)) == 50
    voucher = issue(database, p, new_member())
    assert voucher.code in made
    assert voucher.status == "active"
    assert voucher.source == "rule"
    with database.transaction(readonly=True) as s:
        assert pools.counts(s, pool_ids=[voucher.pool_id])[voucher.pool_id] == {
            "available": 49,
            "active": 1,
        }


def test_issue_voucher_is_idempotent_by_key(
    database: Database, rewards_programme: Programme, new_member: NewMember
) -> None:
    p, m = rewards_programme, new_member()
    make_pool(database, p)
    first = issue(database, p, m, key="welcome:m1")
    again = issue(database, p, m, key="welcome:m1")
    assert again.id == first.id
    assert len(vouchers_of(database, p)) == 1


def test_issue_voucher_errors_change_nothing(
    database: Database, rewards_programme: Programme, new_member: NewMember
) -> None:
    p = rewards_programme
    make_pool(database, p, code="imported", pattern=None)
    with pytest.raises(NotFound):
        issue(database, p, new_member(), pool="nope")
    with pytest.raises(NotFound):
        issue(database, p, uuid.uuid4(), pool="imported")
    with pytest.raises(PoolExhausted):
        issue(database, p, new_member(), pool="imported")
    with pytest.raises(ValidationFailed):
        issue(database, p, new_member(), pool="imported", source="magic")
    assert vouchers_of(database, p) == []


def test_imported_codes_all_or_nothing(
    database: Database, rewards_programme: Programme, new_member: NewMember
) -> None:
    p = rewards_programme
    make_pool(database, p, code="imported", pattern=None)
    with database.transaction() as s:
        pools.import_codes(
            s, programme=p, code="imported", raw=["abc-123", "ABC-124"], bearer=False
        )
    with pytest.raises(ValidationFailed), database.transaction() as s:
        pools.import_codes(s, programme=p, code="imported", raw=["NEW-1", "new-1"], bearer=False)
    with pytest.raises(Conflict), database.transaction() as s:
        pools.import_codes(s, programme=p, code="imported", raw=["NEW-2", "ABC-123"], bearer=False)
    assert [v.code for v in vouchers_of(database, p)] == ["ABC-123", "ABC-124"]
    assert issue(database, p, new_member(), pool="imported").code == "ABC-123"


def test_validate_gives_the_discount_for_this_basket(
    database: Database, rewards_programme: Programme, new_member: NewMember
) -> None:
    p, m = rewards_programme, new_member()
    make_pool(database, p, min_basket=Decimal(30))
    make_pool(
        database,
        p,
        code="toys-20",
        discount_type="percent",
        discount_value=Decimal(20),
        categories=["toys"],
    )
    ten, toys = issue(database, p, m), issue(database, p, m, pool="toys-20", key="i2")
    assert check(database, p, ten.code, m, basket("45")).discount == Decimal("10.00")
    assert check(database, p, ten.code.lower(), m, basket(None, ("a", "toys", "35"))).valid
    found = check(
        database, p, toys.code, m, basket(None, ("a", "toys", "12.34"), ("b", "food", "50"))
    )
    assert found.valid
    assert found.discount == Decimal("2.47")
    assert (
        check(database, p, toys.code, m, basket(None, ("b", "food", "50"))).reason
        == "no_applicable_items"
    )
    assert check(database, p, ten.code, m, basket("29.99")).reason == "min_basket"


def test_validate_explains_every_invalid_code(
    database: Database, rewards_programme: Programme, new_member: NewMember
) -> None:
    p, owner, other = rewards_programme, new_member(), new_member()
    make_pool(database, p, valid_from=T0 - timedelta(days=1))
    v = issue(database, p, owner)
    b = basket("50")
    assert check(database, p, "NOPE-0000", owner, b).reason == "unknown"
    assert check(database, p, v.code, other, b).reason == "foreign"
    assert check(database, p, v.code, None, b).reason == "member_required"
    assert check(database, p, v.code, owner, b, T0 + timedelta(days=90)).reason == "expired"
    assert check(database, p, v.code, owner, b, T0 - timedelta(days=2)).reason == "not_yet_valid"
    use(database, p, v.code, owner, "order-1")
    assert check(database, p, v.code, owner, b).reason == "used"
    with database.transaction() as s:
        stocked = pools.generate_codes(s, programme=p, code="ten-euros", count=1)
    assert check(database, p, stocked[0], owner, b).reason == "not_issued"


def test_redeem_is_idempotent_by_order_and_refuses_a_second_order(
    database: Database, rewards_programme: Programme, new_member: NewMember
) -> None:
    p, m = rewards_programme, new_member()
    make_pool(database, p)
    v = issue(database, p, m)
    first, voucher, replay = use(database, p, v.code, m, "order-1")
    assert (first.discount, voucher.status, replay) == (Decimal("10.00"), "used", False)
    again, _, replay = use(database, p, v.code, m, "order-1")
    assert again.id == first.id
    assert replay
    with pytest.raises(VoucherRejected) as caught:
        use(database, p, v.code, m, "order-2")
    assert caught.value.as_dict()["error"] == "voucher_used"
    assert count_rows(database, VoucherUse, VoucherUse.programme_id == p.id) == 1


def test_a_multi_use_bearer_code(
    database: Database, rewards_programme: Programme, new_member: NewMember
) -> None:
    p = rewards_programme
    make_pool(
        database,
        p,
        code="summer",
        pattern=None,
        discount_type="percent",
        discount_value=Decimal(10),
        max_uses=2,
    )
    with database.transaction() as s:
        pools.import_codes(s, programme=p, code="summer", raw=["SUMMER10"], bearer=True)
    a, c = new_member(), new_member()
    assert use(database, p, "summer10", a, "o-a")[1].uses == 1
    assert use(database, p, "SUMMER10", None, "o-anon")[1].status == "used"
    with pytest.raises(VoucherRejected):
        use(database, p, "SUMMER10", c, "o-c")
    assert count_rows(database, VoucherUse, VoucherUse.programme_id == p.id) == 2


def test_a_rejected_redeem_changes_nothing(
    database: Database, rewards_programme: Programme, new_member: NewMember
) -> None:
    p, owner, other = rewards_programme, new_member(), new_member()
    make_pool(database, p)
    v = issue(database, p, owner)
    with pytest.raises(VoucherRejected) as caught:
        use(database, p, v.code, other, "order-1")
    assert caught.value.reason == "foreign"
    assert caught.value.status_code == 409
    (after,) = vouchers_of(database, p)
    assert (after.status, after.uses) == ("active", 0)
    assert count_rows(database, VoucherUse, VoucherUse.programme_id == p.id) == 0
