"""Signed links of a message: unsubscribe (consent through the members service, with its
history), open pixel, click redirect (no open redirect), surveys recorded as events."""

from __future__ import annotations

import html
import re
import uuid
from email.message import EmailMessage

from sqlalchemy import select

from fidelia.db import Database
from fidelia.models import Consent, ConsentChange, Event
from tests.fixtures.factories import Api, count_rows, unique_email
from tests.messaging.conftest import (
    BASE,
    SmtpSink,
    apply,
    deliver,
    enrol,
    message,
    messaging_doc,
    send,
)


def _html(mime: EmailMessage) -> str:
    part = mime.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def _sent_email(
    api: Api, database: Database, sink: SmtpSink, template: str
) -> tuple[uuid.UUID, str, EmailMessage]:
    member = uuid.UUID(enrol(api, email=unique_email(), consents={"email": True}))
    queued = send(api, str(member), template=template)
    deliver(database)
    return member, queued["id"], sink.received[-1][1]


def test_unsubscribe_withdraws_the_consent_with_its_history(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, messaging_doc(port))
    member, message_id, mime = _sent_email(api, database, sink, "welcome")
    path = mime["List-Unsubscribe"].strip("<>").removeprefix(BASE)
    page = api.client.get(path)
    assert page.status_code == 200
    assert '<form method="post"' in page.text
    with database.transaction(readonly=True) as session:
        assert session.scalar(select(Consent.granted).where(Consent.member_id == member)) is True
    # the portal's preference centre opens with the same token (every channel's consent)
    centre = re.search(r'href="(/portal/[^"]+/consents/[^"]+)"', page.text)
    assert centre is not None, page.text
    assert "Manage all my preferences" in page.text
    assert api.client.get(html.unescape(centre.group(1))).status_code == 200
    done = api.client.post(path, content="List-Unsubscribe=One-Click")
    assert done.status_code == 200
    with database.transaction(readonly=True) as session:
        assert session.scalar(select(Consent.granted).where(Consent.member_id == member)) is False
        sources = session.scalars(
            select(ConsentChange.source)
            .where(ConsentChange.member_id == member)
            .order_by(ConsentChange.changed_at)
        ).all()
    assert sources[-1] == f"unsubscribe:{message_id}"
    again = send(api, str(member), template="welcome")
    assert again["status"] == "not_sent"
    assert api.client.post(path[:-4] + "AAAA").status_code == 404


def test_the_pixel_and_the_click_redirect_record_opens_and_clicks(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, messaging_doc(port))
    _, message_id, mime = _sent_email(api, database, sink, "welcome")
    html = _html(mime)
    pixel = re.search(r'src="http://testserver(/t/o/[^"]+)"', html)
    link = re.search(r'href="http://testserver(/t/c/[^"]+)"', html)
    assert pixel
    assert link
    assert api.client.get(pixel.group(1)).headers["content-type"] == "image/gif"
    assert message(api, message_id)["status"] == "opened"
    followed = api.client.get(link.group(1), follow_redirects=False)
    assert followed.status_code == 302
    assert followed.headers["location"] == "https://shop.example.org/offre?c=1"
    got = message(api, message_id)
    assert got["status"] == "clicked"
    assert got["clicked_at"] is not None
    steps = [s["status"] for s in got["log"]]
    assert steps == ["queued", "sent", "opened", "clicked"]
    api.client.get(link.group(1), follow_redirects=False)  # a second click is not a new step
    assert len(message(api, message_id)["log"]) == 4


def test_click_tokens_cannot_redirect_elsewhere(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, messaging_doc(port))
    _, _, mime = _sent_email(api, database, sink, "welcome")
    link = re.search(r'href="http://testserver/t/c/([^".]+)\.c0\.([^"]+)"', _html(mime))
    assert link
    msg_part, mac = link.group(1), link.group(2)
    for forged in (
        f"{msg_part}.c1.{mac}",
        f"{msg_part}.c0.{mac[:-2]}AA",
        "garbage",
        f"{msg_part}.o.{mac}",
    ):
        answer = api.client.get(f"/t/c/{forged}", follow_redirects=False)
        assert answer.status_code == 404, forged


def test_a_survey_answer_is_a_survey_answered_event_recorded_once(
    api: Api, database: Database, smtp_sink: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_sink
    apply(api, messaging_doc(port))
    member, message_id, mime = _sent_email(api, database, sink, "nps")
    choices = re.findall(r'href="http://testserver(/survey/[^"?]+)\?score=(\d+)"', _html(mime))
    assert [int(score) for _, score in choices] == list(range(11))
    path = choices[9][0]
    answered = api.client.get(f"{path}?score=9")
    assert answered.status_code == 200
    assert "<textarea" in answered.text
    assert api.client.get(f"{path}?score=9").status_code == 200  # the same click again
    assert api.client.get(f"{path}?score=3").status_code == 409
    commented = api.client.post(path, data={"comment": "Très bon accueil"})
    assert commented.status_code == 200
    with database.transaction(readonly=True) as session:
        events = session.scalars(
            select(Event)
            .where(
                Event.member_id == member, Event.type.in_(("survey_answered", "survey_commented"))
            )
            .order_by(Event.type)
        ).all()
    assert [(e.type, e.properties.get("score")) for e in events] == [
        ("survey_answered", 9), ("survey_commented", 9)
    ]  # fmt: skip
    assert events[0].properties["survey"] == "nps-visit"
    assert events[1].properties["comment"] == "Très bon accueil"
    assert message(api, message_id)["status"] == "clicked"
    assert api.client.get(f"{path}?score=11").status_code == 422
    assert (
        count_rows(database, Event, Event.member_id == member, Event.type == "survey_answered") == 1
    )
