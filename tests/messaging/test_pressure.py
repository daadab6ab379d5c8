"""Contact pressure: caps and quiet hours defer marketing messages to their next slot (never
drop them, unless they expire); transactional messages are exempt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from fidelia.db import Database
from fidelia.models import Job
from tests.fixtures.factories import Api, unique_email
from tests.messaging.conftest import SmtpSink, apply, deliver, enrol, message, messaging_doc, send

ONE_A_DAY = {"caps": [{"max": 1, "hours": 24}]}
CONTENT = {"fr": {"subject": "Promo", "text": "Bonjour {{ member.first_name }}"}}


def _due_jobs(database: Database, message_id: str) -> list[datetime]:
    with database.transaction(readonly=True) as session:
        jobs = session.scalars(
            select(Job).where(Job.kind == "messaging.deliver", Job.status == "pending")
        ).all()
        return [j.due_at for j in jobs if j.payload["message_id"] == message_id]


def test_a_capped_message_is_deferred_to_its_slot_then_sent(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, messaging_doc(port, pressure=ONE_A_DAY))
    member = enrol(api, email=unique_email(), consents={"email": True})
    first = send(api, member, content=CONTENT)
    deliver(database)
    sent_at = datetime.fromisoformat(message(api, first["id"])["sent_at"])
    second = send(api, member, content=CONTENT)
    deliver(database)
    held = message(api, second["id"])
    assert held["status"] == "deferred"
    assert len(sink.received) == 1
    slot = datetime.fromisoformat(held["due_at"])
    assert sent_at + timedelta(hours=24) < slot <= sent_at + timedelta(hours=24, seconds=2)
    assert _due_jobs(database, second["id"]) == [slot]
    deliver(database, now=slot - timedelta(minutes=1), api=api)
    assert message(api, second["id"])["status"] == "deferred"
    deliver(database, now=slot, api=api)
    assert message(api, second["id"])["status"] == "sent"
    assert len(sink.received) == 2


def test_transactional_messages_are_exempt_and_do_not_count(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, messaging_doc(port, pressure=ONE_A_DAY))
    member = enrol(api, email=unique_email(), consents={"email": True})
    send(api, member, content=CONTENT, kind="transactional")
    send(api, member, content=CONTENT)
    send(api, member, content=CONTENT, kind="transactional")
    deliver(database)
    assert len(sink.received) == 3


def test_a_cap_on_one_channel_leaves_the_others_free(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    pressure = {"caps": [{"max": 1, "hours": 24, "channels": ["email"]}]}
    apply(api, messaging_doc(port, pressure=pressure))
    member = enrol(api, email=unique_email(), consents={"email": True})
    send(api, member, content=CONTENT)
    inbox = send(api, member, content=CONTENT, channels=["inbox"])
    deliver(database)
    assert message(api, inbox["id"])["status"] == "delivered"
    assert len(sink.received) == 1


def test_quiet_hours_defer_to_their_end_in_the_programme_time_zone(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    tz = ZoneInfo(api.programme.timezone)
    local_now = datetime.now(UTC).astimezone(tz)
    start = (local_now - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (local_now + timedelta(hours=2)).time().replace(second=0, microsecond=0)
    quiet = {"quiet_hours": {"start": start.isoformat(), "end": end.isoformat()}}
    apply(api, messaging_doc(port, pressure=quiet))
    member = enrol(api, email=unique_email(), consents={"email": True})
    queued = send(api, member, content=CONTENT)
    deliver(database)
    held = message(api, queued["id"])
    assert held["status"] == "deferred"
    assert sink.received == []
    slot = datetime.fromisoformat(held["due_at"]).astimezone(tz)
    assert slot.time() == end
    assert slot > local_now
    deliver(database, now=slot.astimezone(UTC), api=api)
    assert message(api, queued["id"])["status"] == "sent"


def test_a_message_held_past_its_expiry_expires_instead(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, messaging_doc(port, pressure=ONE_A_DAY))
    member = enrol(api, email=unique_email(), consents={"email": True})
    send(api, member, content=CONTENT)
    deliver(database)
    expires = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    late = send(api, member, content=CONTENT, expires_at=expires)
    deliver(database)
    got = message(api, late["id"])
    assert got["status"] == "expired"
    assert "contact pressure" in got["reason"]
    assert len(sink.received) == 1


def test_consent_withdrawn_before_delivery_stops_the_message(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, messaging_doc(port))
    email = unique_email()
    member = enrol(api, email=email, consents={"email": True})
    queued = send(api, member, content=CONTENT)
    withdraw = {
        "id": f"consent-{member}",
        "type": "consent_changed",
        "occurred_at": datetime.now(UTC).isoformat(),
        "member": {"id": member},
        "properties": {"channel": "email", "granted": False},
    }
    assert api.post("/events", json=withdraw, scope="integration").status_code == 201
    deliver(database)
    got = message(api, queued["id"])
    assert (got["status"], got["reason"]) == ("not_sent", "email consent withdrawn")
    assert sink.received == []
