"""Passwordless sign-in against a real database and a real local SMTP server: joining
through the enrolment path, codes (wrong, expired, burnt, throttled), no enumeration, CSRF,
member sessions kept apart from the back-office and from other programmes."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy import func, select, update

from fidelia.db import Database
from fidelia.kit.clock import utcnow
from fidelia.models import Account, Consent, Member, MemberIdentity, Programme, Wallet
from fidelia.models.portal import PortalCode, PortalSession
from fidelia.portal import signin
from tests.fixtures.factories import make_member, make_programme, unique_email
from tests.portal.conftest import Phone, apply, document, last_code
from tests.users.mailbox import Inbox


def _member_by_email(database: Database, programme: Programme, email: str) -> Member | None:
    with database.transaction(readonly=True) as session:
        return session.scalar(
            select(Member)
            .join(MemberIdentity, MemberIdentity.member_id == Member.id)
            .where(MemberIdentity.programme_id == programme.id, MemberIdentity.value == email)
        )


def _points(database: Database, member: Member) -> int:
    with database.transaction(readonly=True) as session:
        value = session.scalar(
            select(Account.available)
            .join(Wallet, Wallet.id == Account.wallet_id)
            .where(Account.member_id == member.id, Wallet.code == "points")
        )
    return value or 0


def test_joining_enrols_through_the_intake_and_signs_in_with_the_emailed_code(
    portal_app: FastAPI, database: Database, club: Programme, smtp: Inbox
) -> None:
    phone = Phone(portal_app, club)
    email = unique_email()
    phone.get("/join")
    response = phone.post(
        "/join",
        {
            "email": email,
            "first_name": "Léa",
            "last_name": "Martin",
            "consents": ["email"],
            "terms": "yes",
        },
    )

    assert response.status_code == 200, response.text
    assert "Enter your code" in response.text
    member = _member_by_email(database, club, email)
    assert member is not None
    assert member.enrolment_channel == "web"
    assert _points(database, member) == 150  # the welcome rule ran on the enrolment event
    with database.transaction(readonly=True) as session:
        consents = dict(
            session.execute(
                select(Consent.channel, Consent.granted).where(Consent.member_id == member.id)
            ).all()
        )
    assert consents == {"email": True, "sms": False, "push": False, "postal": False}
    assert smtp.messages[-1]["To"] == email
    assert "Club Test" in smtp.messages[-1]["Subject"]

    signed = phone.post("/code", {"identity": email, "code": last_code(smtp)})
    assert signed.status_code == 303
    assert signed.headers["location"] == f"{phone.base}/"
    home = phone.get("/")
    assert home.status_code == 200
    assert "Hello Léa" in home.text
    assert "150" in home.text


def test_joining_needs_the_terms_and_writes_nothing_without_them(
    portal_app: FastAPI, database: Database, club: Programme, smtp: Inbox
) -> None:
    phone = Phone(portal_app, club)
    email = unique_email()
    phone.get("/join")
    response = phone.post("/join", {"email": email})

    assert response.status_code == 422
    assert "accept the programme" in response.text
    assert _member_by_email(database, club, email) is None
    assert smtp.messages == []


def test_an_unknown_email_gets_the_same_answer_and_no_message(
    portal_app: FastAPI, club: Programme, smtp: Inbox, database: Database
) -> None:
    known = make_member(database, club).id
    with database.transaction(readonly=True) as session:
        known_email = session.scalar(
            select(MemberIdentity.value).where(MemberIdentity.member_id == known)
        )
    phone = Phone(portal_app, club)
    unknown = phone.ask_code("nobody-here@example.com")
    member = phone.ask_code(str(known_email))

    assert unknown.status_code == member.status_code == 200
    assert unknown.text.replace("nobody-here@example.com", "X") == member.text.replace(
        str(known_email), "X"
    )
    assert [m["To"] for m in smtp.messages] == [known_email]


def test_joining_with_an_email_already_enrolled_sends_that_member_a_code(
    portal_app: FastAPI, database: Database, club: Programme, smtp: Inbox
) -> None:
    email = unique_email()
    make_member(database, club, email=email)
    phone = Phone(portal_app, club)
    phone.get("/join")
    response = phone.post("/join", {"email": email, "terms": "yes"})

    assert response.status_code == 200
    assert "Enter your code" in response.text
    assert [m["To"] for m in smtp.messages] == [email]
    with database.transaction(readonly=True) as session:
        count = session.scalar(
            select(func.count())
            .select_from(MemberIdentity)
            .where(MemberIdentity.programme_id == club.id, MemberIdentity.value == email)
        )
    assert count == 1


def test_a_wrong_code_is_refused_then_five_burn_the_code(
    portal_app: FastAPI, database: Database, club: Programme, smtp: Inbox
) -> None:
    email = unique_email()
    make_member(database, club, email=email)
    phone = Phone(portal_app, club)
    phone.ask_code(email)
    right = last_code(smtp)
    wrong = "000000" if right != "000000" else "111111"

    first = phone.post("/code", {"identity": email, "code": wrong})
    assert first.status_code == 422
    assert "This code is wrong" in first.text
    assert "fidelia_member=" not in first.headers.get("set-cookie", "")
    for _ in range(4):
        last = phone.post("/code", {"identity": email, "code": wrong})
    assert "expired or was already used" in last.text
    burnt = phone.post("/code", {"identity": email, "code": right})
    assert burnt.status_code == 422  # the right code no longer works after five wrong ones
    with database.transaction(readonly=True) as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(PortalSession)
                .where(PortalSession.programme_id == club.id)
            )
            == 0
        )


def test_an_expired_code_is_refused_in_french(
    portal_app: FastAPI, database: Database, club: Programme, smtp: Inbox
) -> None:
    email = unique_email()
    make_member(database, club, email=email)
    phone = Phone(portal_app, club, lang="fr")
    phone.ask_code(email)
    with database.transaction() as session:
        session.execute(
            update(PortalCode)
            .where(PortalCode.programme_id == club.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )

    response = phone.post("/code", {"identity": email, "code": last_code(smtp)})

    assert response.status_code == 422
    assert "a expiré" in response.text


def test_a_code_is_used_once_and_is_stored_as_a_digest(
    portal_app: FastAPI, database: Database, club: Programme, smtp: Inbox
) -> None:
    email = unique_email()
    make_member(database, club, email=email)
    phone = Phone(portal_app, club)
    phone.sign_in(email, smtp)
    code = last_code(smtp)
    with database.transaction(readonly=True) as session:
        rows = list(session.scalars(select(PortalCode).where(PortalCode.programme_id == club.id)))
    assert len(rows) == 1
    assert rows[0].used_at is not None
    assert code not in rows[0].digest

    again = Phone(portal_app, club).post("/code", {"identity": email, "code": code}, tokens=False)
    assert again.status_code == 403  # no form token
    other = Phone(portal_app, club)
    other.get("/sign-in")
    assert other.post("/code", {"identity": email, "code": code}).status_code == 422


def test_asking_too_many_codes_is_throttled_known_or_not(
    portal_app: FastAPI, database: Database, club: Programme, smtp: Inbox
) -> None:
    email = unique_email()
    make_member(database, club, email=email)
    phone = Phone(portal_app, club)
    for identity in (email, "ghost@example.com"):
        answers = [
            phone.ask_code(identity).status_code for _ in range(signin.SENDS_PER_IDENTITY + 1)
        ]
        assert answers == [200] * signin.SENDS_PER_IDENTITY + [429]
    assert len(smtp.messages) == signin.SENDS_PER_IDENTITY


def test_forms_without_their_token_are_refused(
    portal_app: FastAPI, database: Database, club: Programme, smtp: Inbox
) -> None:
    phone = Phone(portal_app, club)
    email = unique_email()
    response = phone.post("/join", {"email": email, "terms": "yes"}, tokens=False)
    assert response.status_code == 403
    assert _member_by_email(database, club, email) is None
    assert phone.post("/sign-in", {"identity": email}, tokens=False).status_code == 403


def test_a_member_session_opens_neither_the_back_office_nor_another_programme(
    portal_app: FastAPI, database: Database, club: Programme, smtp: Inbox
) -> None:
    other = apply(database, make_programme(database), document())
    email = unique_email()
    make_member(database, club, email=email)
    phone = Phone(portal_app, club)
    phone.sign_in(email, smtp)
    cookie = phone.client.cookies.get("fidelia_member")
    assert cookie

    elsewhere = Phone(portal_app, other)
    elsewhere.client.cookies.set("fidelia_member", cookie)
    assert elsewhere.get("/").status_code == 303
    admin = phone.client.get("/admin/", follow_redirects=False)
    assert admin.status_code == 303
    assert "/admin/login" in admin.headers["location"]


def test_signing_out_ends_the_session(
    portal_app: FastAPI, database: Database, club: Programme, smtp: Inbox
) -> None:
    email = unique_email()
    make_member(database, club, email=email)
    phone = Phone(portal_app, club)
    phone.sign_in(email, smtp)
    cookie = phone.client.cookies.get("fidelia_member")

    assert phone.post("/sign-out").status_code == 303
    replay = Phone(portal_app, club)
    replay.client.cookies.set("fidelia_member", str(cookie))
    assert replay.get("/").status_code == 303
