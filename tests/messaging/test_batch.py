"""``queue_many``, the door of a scheduled send: the same outcome per member as one by one,
with the reads and writes done for the whole group."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select

from fidelia.db import Database
from fidelia.kit.clock import utcnow
from fidelia.messaging import service
from fidelia.models import Job, Member, Programme
from tests.fixtures.events import purchase
from tests.fixtures.factories import Api, count_rows, unique_email
from tests.messaging.conftest import SmtpSink, apply, deliver, enrol, messaging_doc


def _request(member: Member, key: str | None = "weekly-48") -> service.Request:
    return service.Request(
        member=member, template="welcome", content=None, channels=[], kind=None,
        content_key=key, event={}, expires_at=None, idempotency_key=None, source="test",
    )  # fmt: skip


def test_a_group_is_queued_with_each_member_judged_as_alone(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, messaging_doc(port))
    reachable = [enrol(api, email=unique_email(), consents={"email": True}) for _ in range(3)]
    refused = enrol(api, email=unique_email(), consents={"email": False})
    bought = purchase({"id": reachable[1]}, occurred_at=datetime.now(UTC))  # 20 € = 20 points
    assert api.post("/events", json=bought, scope="integration").status_code == 201
    ids = [uuid.UUID(m) for m in [*reachable, refused]]
    with database.transaction() as session:
        programme = session.get(Programme, api.programme.id)
        assert programme is not None
        members = {m.id: m for m in session.scalars(select(Member).where(Member.id.in_(ids)))}
        requests = [_request(members[i]) for i in ids]
        requests.append(_request(members[ids[0]]))  # the same content twice in the group
        out = service.queue_many(session, programme=programme, requests=requests, now=utcnow())
        statuses = [(m.status, m.reason) for m in out]
    assert [s for s, _ in statuses] == ["queued"] * 3 + ["not_sent", "not_sent"]
    assert statuses[3][1] == "no reachable channel (email: no email consent)"
    assert statuses[4][1] == "content key 'weekly-48' already used"
    jobs = count_rows(
        database, Job, Job.programme_id == api.programme.id, Job.kind == "messaging.deliver"
    )
    assert jobs == 3
    deliver(database)
    assert len(sink.received) == 3
    assert {mime["Subject"] for _, mime in sink.received} == {"Bienvenue Ana !"}
    texts = [mime.get_body(("plain",)).get_content() for _, mime in sink.received]
    points = sorted(int(t.split("vous avez ")[1].split(" ")[0]) for t in texts)
    assert points == [0, 0, 20], texts
