"""The rewards and vouchers page (issue 12): the catalogue with stock and redemptions per
state, pools with their codes per state, generating codes and importing a CSV of codes (all or
nothing, audited), the latest redemptions and the donation totals."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import func, select

from fidelia.db import Database
from fidelia.ledger import operations
from fidelia.models import Programme, Voucher, VoucherPool
from fidelia.models.audit import AuditEntry
from fidelia.rewards import redemptions
from fidelia.users.service import Role
from tests.fixtures.factories import make_member, make_programme
from tests.web.conftest import Browser

PATH = "/admin/p/{slug}/rewards"


def codes_in(database: Database, programme: Programme, pool: str) -> dict[str, int]:
    with database.transaction(readonly=True) as s:
        rows = s.execute(
            select(Voucher.status, func.count())
            .join(VoucherPool, VoucherPool.id == Voucher.pool_id)
            .where(VoucherPool.programme_id == programme.id, VoucherPool.code == pool)
            .group_by(Voucher.status)
        )
        return {str(status): int(n) for status, n in rows}


def test_the_page_shows_catalogue_pools_redemptions_and_donations(
    signed_in: Callable[..., Browser], database: Database, demo: Programme
) -> None:
    member = make_member(database, demo)
    with database.transaction() as session:
        operations.award(
            session,
            programme=demo,
            member_id=member.id,
            wallet="points",
            amount=1000,
            idempotency_key=f"t-{member.id}",
        )
        redemptions.redeem(
            session,
            programme=demo,
            member_id=member.id,
            reward="tote-bag",
            idempotency_key="r1",
        )
        redemptions.redeem(
            session,
            programme=demo,
            member_id=member.id,
            reward="donation-planete-verte",
            idempotency_key="r2",
        )
    page = signed_in(demo, Role.analyst).get(PATH.format(slug=demo.slug))
    assert page.status_code == 200
    assert re.search(r'data-reward="tote-bag" data-field="stock">499<', page.text)
    assert "Planète Verte" in page.text
    assert re.search(r"<td class=\"num\">100</td><td class=\"num\">€1.00</td>", page.text)
    assert f"/members/{member.id}" in page.text
    assert "/generate" not in page.text  # an analyst reads only


def test_generating_and_importing_codes(
    signed_in: Callable[..., Browser], database: Database, demo: Programme
) -> None:
    b = signed_in(demo, Role.marketer)
    b.get(PATH.format(slug=demo.slug))
    made = b.post(PATH.format(slug=demo.slug) + "/pools/bon-10/generate", {"count": "25"})
    assert made.status_code == 303
    assert codes_in(database, demo, "bon-10") == {"available": 25}
    for bad in ("0", "lots", "1000000"):
        refused = b.post(PATH.format(slug=demo.slug) + "/pools/bon-10/generate", {"count": bad})
        assert refused.status_code == 422, bad
    assert codes_in(database, demo, "bon-10") == {"available": 25}

    url = PATH.format(slug=demo.slug) + "/pools/welcome/import"
    token = {"csrf_token": b.tokens["csrf_token"]}
    csv_text = "code\nSPRING-0001\nSPRING-0002\n\nspring-0003\n"
    done = b.client.post(url, data=token, files={"file": ("codes.csv", csv_text, "text/csv")})
    assert done.status_code == 303
    assert codes_in(database, demo, "welcome") == {"available": 3}
    # all or nothing: one code taken already refuses the whole file
    again = "SPRING-0004\nSPRING-0001\n"
    refused = b.client.post(url, data=token, files={"file": ("codes.csv", again, "text/csv")})
    assert refused.status_code == 409
    assert codes_in(database, demo, "welcome") == {"available": 3}
    empty = b.client.post(url, data=token, files={"file": ("codes.csv", "code\n", "text/csv")})
    assert empty.status_code == 422
    assert "holds no code" in empty.text
    with database.transaction(readonly=True) as s:
        actions = sorted(
            s.scalars(
                select(AuditEntry.action).where(
                    AuditEntry.programme_id == demo.id,
                    AuditEntry.action.like("voucher_pool.%"),
                )
            )
        )
    assert actions == ["voucher_pool.generate", "voucher_pool.import"]
    unknown = b.post(PATH.format(slug=demo.slug) + "/pools/nope/generate", {"count": "2"})
    assert unknown.status_code == 404


def test_read_only_roles_cannot_stock_pools(
    signed_in: Callable[..., Browser], database: Database, demo: Programme
) -> None:
    b = signed_in(demo, Role.analyst)
    b.get(PATH.format(slug=demo.slug))
    refused = b.post(PATH.format(slug=demo.slug) + "/pools/bon-10/generate", {"count": "5"})
    assert refused.status_code == 403
    assert codes_in(database, demo, "bon-10") == {}
    other = signed_in(make_programme(database), Role.owner)
    assert other.get(PATH.format(slug=demo.slug)).status_code == 404
