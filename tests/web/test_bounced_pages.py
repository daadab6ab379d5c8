"""The bounced addresses page (issue 11): listed and filtered; an owner clears one (audited,
the row gone); a viewer sees no clear button and cannot clear; an unknown address is a 404."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from fidelia.db import Database
from fidelia.kit.clock import utcnow
from fidelia.models import Programme
from fidelia.models.audit import AuditEntry
from fidelia.models.messaging import BouncedAddress
from fidelia.users.service import Role
from tests.fixtures.factories import count_rows
from tests.web.conftest import Browser


def _bounced(database: Database, programme: Programme) -> set[str]:
    with database.transaction(readonly=True) as session:
        return set(
            session.scalars(
                select(BouncedAddress.address).where(BouncedAddress.programme_id == programme.id)
            )
        )


def test_an_owner_filters_and_clears_a_bounced_address(
    signed_in: Callable[..., Browser], database: Database, programme: Programme
) -> None:
    with database.transaction() as session:
        for address in ("ana@dead.example", "bob@gone.example"):
            row = {"address": address, "reason": "5.1.1 user unknown", "bounced_at": utcnow()}
            session.add(BouncedAddress(programme_id=programme.id, **row))
    owner = signed_in(programme, Role.owner)
    page = f"/admin/p/{programme.slug}/bounced"
    listed = owner.get(page)
    assert listed.status_code == 200
    assert "ana@dead.example" in listed.text
    assert "bob@gone.example" in listed.text
    filtered = owner.get(page, params={"address": "gone"}).text
    assert "bob@gone.example" in filtered
    assert "ana@dead.example" not in filtered

    done = owner.post(f"{page}/clear", {"address": "bob@gone.example"})
    assert done.status_code == 303
    assert _bounced(database, programme) == {"ana@dead.example"}
    with database.transaction(readonly=True) as session:
        entry = session.scalars(
            select(AuditEntry).where(
                AuditEntry.programme_id == programme.id,
                AuditEntry.action == "bounced_address.clear",
            )
        ).one()
    assert entry.target_id == "bob@gone.example"
    assert entry.before is not None
    assert entry.before["reason"] == "5.1.1 user unknown"
    missing = owner.post(f"{page}/clear", {"address": "nobody@example.org"})
    assert missing.status_code == 404
    assert _bounced(database, programme) == {"ana@dead.example"}


def test_a_viewer_reads_but_cannot_clear(
    signed_in: Callable[..., Browser], database: Database, programme: Programme
) -> None:
    with database.transaction() as session:
        session.add(BouncedAddress(programme_id=programme.id, address="cat@dead.example",
                                   reason="5.1.1", bounced_at=utcnow()))  # fmt: skip
    viewer = signed_in(programme, Role.analyst)
    page = f"/admin/p/{programme.slug}/bounced"
    listed = viewer.get(page)
    assert listed.status_code == 200
    assert "cat@dead.example" in listed.text
    assert "/bounced/clear" not in listed.text
    refused = viewer.post(f"{page}/clear", {"address": "cat@dead.example"})
    assert refused.status_code == 403
    assert count_rows(database, BouncedAddress, BouncedAddress.programme_id == programme.id) == 1
