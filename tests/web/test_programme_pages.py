"""The programme pages of the back-office (issue 12): the document as tables with its version
history, and the editor where a YAML draft is checked (errors pointed at their line, the text
kept), dry-run against an event, back-tested against the live version over the stored events
and published as a new version — by the roles that may, with the audit log, and nothing
written by any other action."""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from fidelia.db import Database
from fidelia.intake import service as intake
from fidelia.models import Event, Member, Programme, ProgrammeVersion
from fidelia.models.audit import AuditEntry
from fidelia.programmes import documents
from fidelia.rules.demo import programme_document
from fidelia.users.service import Role
from tests.fixtures.events import enrolment, line, purchase
from tests.fixtures.factories import make_programme
from tests.web.conftest import Browser

PATH = "/admin/p/{slug}/programme"


@pytest.fixture
def demo(database: Database) -> Programme:
    """The demo programme applied as version 1, with two members' purchases of 100 € each
    a few days ago (status points: 1 per 10 €, so 10 each)."""
    programme = make_programme(database)
    with database.transaction() as session:
        documents.apply(session, programme=programme, raw=programme_document(), actor="test")
    with database.transaction() as session:
        live = session.get(Programme, programme.id)
        assert live is not None
        when = datetime.now(UTC) - timedelta(days=3)
        emails = [f"pp{uuid.uuid4().hex[:8]}@example.org" for _ in range(2)]
        payloads = [enrolment({"email": e}, occurred_at=when) for e in emails] + [
            purchase(
                {"email": e},
                lines=[line(f"sku-{n}", 1, "100.00", category="garden")],
                occurred_at=when + timedelta(minutes=1 + n),
            )
            for n, e in enumerate(emails)
        ]
        outcomes = intake.ingest_payloads(
            session, programme=live, payloads=payloads, now=datetime.now(UTC)
        )
    assert all(o.status == "accepted" for o in outcomes), [o.detail for o in outcomes]
    return live


def draft(change: Callable[[dict[str, Any]], None] | None = None) -> str:
    document = copy.deepcopy(programme_document())
    if change is not None:
        change(document)
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def doubled_status_points(document: dict[str, Any]) -> None:
    (rule,) = [r for r in document["rules"] if r["id"] == "status-points"]
    rule["award"]["rate"] = 0.2


def counts(database: Database, programme: Programme) -> tuple[int, int, int]:
    with database.transaction(readonly=True) as s:
        return (
            s.scalar(select(func.count()).where(Event.programme_id == programme.id)) or 0,
            s.scalar(select(func.count()).where(Member.programme_id == programme.id)) or 0,
            s.scalar(select(func.count()).where(ProgrammeVersion.programme_id == programme.id))
            or 0,
        )


def problems(html: str) -> str:
    """The page's problems section (what the user is told), for assertion messages."""
    found = re.search(r'id="problems">(.*?)</section>', html, re.S)
    return found.group(1) if found else ""


def post(b: Browser, programme: Programme, **form: str) -> Any:
    b.get(PATH.format(slug=programme.slug) + "/edit")
    return b.post(PATH.format(slug=programme.slug) + "/edit", form)


def test_the_document_reads_as_tables_with_its_versions(
    signed_in: Callable[..., Browser], demo: Programme
) -> None:
    b = signed_in(demo, Role.analyst)
    page = b.get(PATH.format(slug=demo.slug))
    assert page.status_code == 200
    assert "Live version: 1" in page.text
    assert 'id="s-rules"' in page.text
    assert 'id="s-wallets"' in page.text
    assert "base-earn" in page.text
    assert "status-points" in page.text
    assert f"{PATH.format(slug=demo.slug)}/versions/1" in page.text
    version = b.get(PATH.format(slug=demo.slug) + "/versions/1")
    assert version.status_code == 200
    assert "The first version." in version.text
    assert b.get(PATH.format(slug=demo.slug) + "/versions/9").status_code == 404


def test_a_yaml_error_shows_its_line_and_keeps_the_text(
    signed_in: Callable[..., Browser], database: Database, demo: Programme
) -> None:
    b = signed_in(demo, Role.marketer)
    before = counts(database, demo)
    broken = draft().replace("rules:\n", "rules:\n  - id: [unclosed\n", 1)
    answer = post(b, demo, text=broken, action="publish")
    assert answer.status_code == 422
    assert re.search(r"line \d+: YAML", answer.text)
    assert "id: [unclosed" in answer.text  # the user's text is kept
    assert counts(database, demo) == before


def test_an_invalid_value_is_pointed_at_its_path_and_line(
    signed_in: Callable[..., Browser], database: Database, demo: Programme
) -> None:
    def bad(document: dict[str, Any]) -> None:
        (rule,) = [r for r in document["rules"] if r["id"] == "status-points"]
        rule["award"]["rate"] = "lots"

    text = draft(bad)
    b = signed_in(demo, Role.owner)
    before = counts(database, demo)
    answer = post(b, demo, text=text, action="publish")
    assert answer.status_code == 422
    found = re.search(r"line (\d+): <code>(rules\.\d+\.award[^<]*)</code>", answer.text)
    assert found is not None, answer.text[:3000]
    line_no = int(found.group(1))
    assert "rate" in text.splitlines()[line_no - 1] or "award" in text.splitlines()[line_no - 1]
    assert counts(database, demo) == before


def test_check_shows_the_diff_against_the_live_version(
    signed_in: Callable[..., Browser], demo: Programme
) -> None:
    b = signed_in(demo, Role.analyst)
    same = post(b, demo, text=draft(), action="check")
    assert same.status_code == 200
    assert "It is the live version: nothing to publish." in same.text
    changed = post(b, demo, text=draft(doubled_status_points), action="check")
    assert changed.status_code == 200
    assert 'id="diff"' in changed.text
    assert re.search(r'class="added">\+\s+rate: &#39;0\.2', changed.text)


def test_a_dry_run_applies_the_draft_and_writes_nothing(
    signed_in: Callable[..., Browser], database: Database, demo: Programme
) -> None:
    b = signed_in(demo, Role.analyst)
    event = (
        '{"id": "dry-1", "type": "purchase", "occurred_at": "2026-05-04T10:00:00+00:00",'
        ' "member": {"email": "new-dry@example.org"},'
        ' "properties": {"order_id": "D-1", "total": "100.00",'
        ' "lines": [{"sku": "x", "quantity": 1, "unit_price": "100.00"}]}}'
    )
    before = counts(database, demo)
    live = post(b, demo, text=draft(), action="dryrun", event=event)
    changed = post(b, demo, text=draft(doubled_status_points), action="dryrun", event=event)
    assert live.status_code == changed.status_code == 200

    def status_total(html: str) -> int:
        found = re.search(r'<th scope="row">status</th><td class="num">(\d+)</td>', html)
        assert found is not None, html[-4000:]
        return int(found.group(1))

    assert (status_total(live.text), status_total(changed.text)) == (10, 20)
    assert counts(database, demo) == before
    bad = post(b, demo, text=draft(), action="dryrun", event='{"type": "purchase"')
    assert bad.status_code == 422
    assert "JSON" in bad.text


def test_a_back_test_compares_the_draft_with_the_live_version(
    signed_in: Callable[..., Browser], database: Database, demo: Programme
) -> None:
    b = signed_in(demo, Role.analyst)
    before = counts(database, demo)
    answer = post(b, demo, text=draft(doubled_status_points), action="backtest")
    assert answer.status_code == 200, problems(answer.text)
    cells = r'\s*<td class="num">(\d+)</td>' * 4
    row = re.search(r'<th scope="row">status-points</th><td>status</td>' + cells, answer.text)
    assert row is not None, problems(answer.text)
    assert [int(x) for x in row.groups()] == [2, 20, 2, 40]
    assert "<svg" in answer.text  # the chart, with its table
    wrong = post(b, demo, text=draft(), action="backtest", start="2026-05-01", end="2026-04-01")
    assert wrong.status_code == 422
    assert "the end must come after the start" in wrong.text
    assert counts(database, demo) == before


def test_publishing_makes_a_version_for_the_roles_that_may_and_is_audited(
    signed_in: Callable[..., Browser], database: Database, demo: Programme
) -> None:
    analyst = signed_in(demo, Role.analyst)
    refused = post(analyst, demo, text=draft(doubled_status_points), action="publish")
    assert refused.status_code == 403
    no_token = signed_in(demo, Role.marketer)
    no_token.get(PATH.format(slug=demo.slug) + "/edit")
    forged = no_token.post(
        PATH.format(slug=demo.slug) + "/edit",
        {"text": draft(doubled_status_points), "action": "publish"},
        csrf=False,
    )
    assert forged.status_code == 403
    assert counts(database, demo)[2] == 1

    marketer = signed_in(demo, Role.marketer)
    done = post(
        marketer, demo, text=draft(doubled_status_points), action="publish", comment="more status"
    )
    assert done.status_code == 303
    assert done.headers["location"].endswith("/programme?published=2")
    with database.transaction(readonly=True) as s:
        live = s.get(Programme, demo.id)
        assert live is not None
        assert live.live_version == 2
        entry = s.scalars(
            select(AuditEntry).where(
                AuditEntry.programme_id == demo.id, AuditEntry.action == "programme.publish"
            )
        ).one()
    assert (entry.target_id, entry.reason) == ("2", "more status")
    page = marketer.get(done.headers["location"])
    assert "Version 2 is published and live." in page.text
    diff = marketer.get(PATH.format(slug=demo.slug) + "/versions/2")
    assert re.search(r'class="added">\+\s+rate: &#39;0\.2', diff.text)
    again = post(marketer, demo, text=draft(doubled_status_points), action="publish")
    assert again.status_code == 422
    assert "nothing changed" in again.text


def test_another_programmes_pages_are_not_found(
    signed_in: Callable[..., Browser], database: Database, demo: Programme
) -> None:
    other = make_programme(database)
    b = signed_in(other, Role.owner)
    assert b.get(PATH.format(slug=demo.slug)).status_code == 404
    assert b.get(PATH.format(slug=demo.slug) + "/edit").status_code == 404
