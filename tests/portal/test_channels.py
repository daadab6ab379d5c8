"""Codes through the programme's own messaging channels (its SMTP server, its SMS gateway on a
real local HTTP receiver), the throttle per IP address, the inbox, and the consent centre an
unsubscribe token opens."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select

from fidelia.db import Database
from fidelia.kit.clock import utcnow
from fidelia.messaging import tracking
from fidelia.models import ConsentChange, Programme
from fidelia.models.messaging import Message
from fidelia.portal import signin
from tests.fixtures.factories import Api, make_member, make_programme, unique_email
from tests.messaging.conftest import Receiver, SmtpSink, http_receiver, smtp_sink
from tests.portal.conftest import Phone, apply, document, signed_in
from tests.users.mailbox import Inbox

__all__ = ["http_receiver", "smtp_sink"]


def _messaging(smtp_port: int | None = None, http_port: int | None = None) -> dict[str, Any]:
    channels: dict[str, Any] = {"inbox": {}}
    if smtp_port is not None:
        channels["email"] = {
            "host": "127.0.0.1",
            "port": smtp_port,
            "security": "none",
            "from_address": "club@shop.example.org",
            "from_name": "Le Club",
        }
    if http_port is not None:
        channels["sms"] = {"url": f"http://127.0.0.1:{http_port}/sms", "sender": "CLUB"}
    return {"channels": channels}


def test_the_code_goes_through_the_programmes_smtp_channel(
    portal_app: FastAPI, database: Database, smtp_sink: tuple[SmtpSink, int], smtp: Inbox
) -> None:
    sink, port = smtp_sink
    programme = apply(
        database, make_programme(database), {**document(), "messaging": _messaging(port)}
    )
    email = unique_email()
    make_member(database, programme, email=email)
    phone = Phone(portal_app, programme)

    assert phone.ask_code(email).status_code == 200

    assert smtp.messages == []  # not the configured server: the programme's own
    ((to, message),) = sink.received
    assert to == [email]
    assert "Le Club" in message["From"]
    code = re.search(r"\b(\d{6})\b", message.get_content())
    assert code is not None
    assert phone.post("/code", {"identity": email, "code": code.group(1)}).status_code == 303


def test_the_code_goes_by_sms_through_the_programmes_gateway(
    portal_app: FastAPI, database: Database, http_receiver: tuple[Receiver, int]
) -> None:
    receiver, port = http_receiver
    programme = apply(
        database, make_programme(database), {**document(), "messaging": _messaging(http_port=port)}
    )
    make_member(database, programme, phone="06 12 34 56 78")
    phone = Phone(portal_app, programme)

    assert phone.ask_code("06 12 34 56 78").status_code == 200

    ((path, _, body),) = receiver.requests
    assert path == "/sms"
    assert body["to"] == "+33612345678"
    code = re.search(r"\b(\d{6})\b", body["text"])
    assert code is not None
    assert (
        phone.post("/code", {"identity": "06 12 34 56 78", "code": code.group(1)}).status_code
        == 303
    )


def test_without_an_sms_channel_the_page_asks_for_the_email(
    portal_app: FastAPI, club: Programme, smtp: Inbox
) -> None:
    response = Phone(portal_app, club).ask_code("06 98 76 54 32")

    assert response.status_code == 422
    assert "use your email" in response.text


def test_one_address_asking_codes_for_many_identities_is_throttled(
    portal_app: FastAPI, club: Programme, smtp: Inbox
) -> None:
    phone = Phone(portal_app, club)
    answers = [
        phone.ask_code(f"someone-{i}@example.com").status_code
        for i in range(signin.SENDS_PER_IP + 1)
    ]

    assert answers == [200] * signin.SENDS_PER_IP + [429]
    assert Phone(portal_app, club).ask_code("another@example.com").status_code == 200


def _inbox_message(database: Database, programme: Programme, member_id: str, text: str) -> Message:
    now = utcnow()
    with database.transaction() as session:
        message = Message(
            id=uuid.uuid4(),
            programme_id=programme.id,
            member_id=uuid.UUID(member_id),
            source="test",
            kind="marketing",
            channels=["inbox"],
            channel="inbox",
            subject="Double points",
            body_text=text,
            status="delivered",
            due_at=now,
            sent_at=now,
        )
        session.add(message)
    return message


def test_the_inbox_shows_the_members_messages_and_marks_them_read(
    portal_app: FastAPI,
    database: Database,
    club: Programme,
    smtp: Inbox,
    api_factory: Callable[[Programme], Api],
) -> None:
    api = api_factory(club)
    phone, member_id, _ = signed_in(portal_app, club, api, smtp)
    _, other_id, _ = signed_in(portal_app, club, api, smtp)
    mine = _inbox_message(database, club, member_id, "Double points this weekend.")
    theirs = _inbox_message(database, club, other_id, "Private to the other member.")

    page = phone.get("/inbox").text
    assert "Double points this weekend." in page
    assert "Private to the other member." not in page

    assert phone.post(f"/inbox/{theirs.id}/read").status_code == 404
    assert phone.post(f"/inbox/{mine.id}/read").status_code == 303
    with database.transaction(readonly=True) as session:
        assert session.get(Message, mine.id).read_at is not None  # type: ignore[union-attr]
        assert session.get(Message, theirs.id).read_at is None  # type: ignore[union-attr]


def test_an_unsubscribe_token_opens_the_consent_centre_without_signing_in(
    portal_app: FastAPI,
    database: Database,
    club: Programme,
    smtp: Inbox,
    api_factory: Callable[[Programme], Api],
) -> None:
    api = api_factory(club)
    member_id = api.post(
        "/members",
        json={"email": unique_email(), "consents": [{"channel": "email", "granted": True}]},
        scope="integration",
    ).json()["id"]
    message = _inbox_message(database, club, member_id, "News")
    with database.transaction() as session:
        token = tracking.sign(tracking.key_for(session, club.id) or b"", message.id, "u")
    phone = Phone(portal_app, club)

    page = phone.get(f"/consents/{token}")
    assert page.status_code == 200
    assert 'value="email" checked' in page.text
    saved = phone.post(f"/consents/{token}", {})

    assert saved.status_code == 303
    with database.transaction(readonly=True) as session:
        last = session.scalars(
            select(ConsentChange)
            .where(ConsentChange.member_id == uuid.UUID(member_id))
            .order_by(ConsentChange.changed_at.desc())
        ).first()
    assert last is not None
    assert (last.channel, last.granted, last.source) == ("email", False, "portal:unsubscribe")
    assert phone.get(f"/consents/{token[:-3]}xyz").status_code == 404
