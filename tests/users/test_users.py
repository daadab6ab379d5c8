"""Back-office users: accounts, roles, throttled sign-in, sessions and their expiry."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from fidelia.db import Database
from fidelia.errors import Conflict, ValidationFailed
from fidelia.kit.clock import utcnow
from fidelia.models import Programme
from fidelia.models.users import BackofficeUser, LoginAttempt
from fidelia.users import service as users
from fidelia.users import sessions
from fidelia.users.service import Role

PASSWORD = "correct horse battery"


def new_email() -> str:
    return f"u-{uuid.uuid4().hex[:10]}@example.com"


def make_user(
    database: Database, programme: Programme | None = None, role: Role = Role.owner
) -> str:
    email = new_email()
    with database.transaction() as session:
        user = users.create_user(session, email=email.upper(), password=PASSWORD)
        if programme is not None:
            users.grant(session, user=user, programme=programme, role=role)
    return email


def test_a_user_is_stored_lower_cased_with_an_argon2_hash(database: Database) -> None:
    email = make_user(database)
    with database.transaction(readonly=True) as session:
        user = session.scalars(select(BackofficeUser).where(BackofficeUser.email == email)).one()
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


def test_an_email_taken_is_a_conflict_and_a_short_password_is_refused(database: Database) -> None:
    email = make_user(database)
    with pytest.raises(Conflict), database.transaction() as session:
        users.create_user(session, email=email, password=PASSWORD)
    with pytest.raises(ValidationFailed) as caught, database.transaction() as session:
        users.create_user(session, email=new_email(), password="short")
    assert caught.value.fields[0].loc == ("password",)


def test_roles_are_per_programme(database: Database, programme_factory: object) -> None:
    first, second = programme_factory(), programme_factory()  # type: ignore[operator]
    email = make_user(database, first, Role.analyst)
    with database.transaction() as session:
        user = users.find_by_email(session, email=email)
        assert user is not None
        assert users.role_in(session, user_id=user.id, programme_id=first.id) is Role.analyst
        assert users.role_in(session, user_id=user.id, programme_id=second.id) is None
        users.grant(session, user=user, programme=first, role=Role.marketer)
        assert [r for _p, r in users.programmes_of(session, user_id=user.id)] == [Role.marketer]
    assert not Role.analyst.can_write
    assert Role.support.can_write
    assert Role.owner.can_manage
    assert not Role.marketer.can_manage


def sign_in(
    database: Database, email: str, password: str, ip: str, **kw: object
) -> sessions.SignIn:
    with database.transaction() as session:
        return sessions.sign_in(
            session,
            email=email,
            password=password,
            ip=ip,
            now=kw.get("now", utcnow()),  # type: ignore[arg-type]
        )


def test_sign_in_opens_a_session_and_a_wrong_password_does_not(database: Database) -> None:
    email = make_user(database)
    wrong = sign_in(database, email, "not the password", "10.0.0.1")
    assert wrong.token is None
    assert wrong.error == "invalid"
    unknown = sign_in(database, new_email(), PASSWORD, "10.0.0.1")
    assert unknown.error == "invalid"
    right = sign_in(database, email.upper(), PASSWORD, "10.0.0.1")
    assert right.token is not None
    assert right.user is not None
    with database.transaction(readonly=True) as session:
        current = sessions.resolve(session, token=right.token, now=utcnow())
        assert current is not None
        assert current.user.email == email
        attempts = session.scalars(select(LoginAttempt).where(LoginAttempt.email == email)).all()
    assert sorted(a.succeeded for a in attempts) == [False, True]


def test_five_failures_lock_the_account_for_the_window(database: Database) -> None:
    email = make_user(database)
    ip = f"10.1.{uuid.uuid4().int % 250}.1"
    for _ in range(5):
        assert sign_in(database, email, "wrong password!", ip).error == "invalid"
    assert sign_in(database, email, PASSWORD, "10.9.9.9").error == "throttled"
    later = utcnow() + timedelta(minutes=16)
    assert sign_in(database, email, PASSWORD, "10.9.9.9", now=later).token is not None


def test_twenty_failures_from_one_address_lock_that_address(database: Database) -> None:
    email = make_user(database)
    ip = f"10.2.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    for _ in range(20):
        sign_in(database, new_email(), "whatever password", ip)
    assert sign_in(database, email, PASSWORD, ip).error == "throttled"
    assert sign_in(database, email, PASSWORD, "10.3.3.3").token is not None


def test_sessions_end_by_sign_out_idleness_and_age(database: Database) -> None:
    email = make_user(database)
    now = utcnow()
    tokens = [sign_in(database, email, PASSWORD, "10.0.0.2", now=now).token for _ in range(3)]
    with database.transaction() as session:
        sessions.sign_out(session, token=tokens[0], now=now)
    with database.transaction(readonly=True) as session:
        assert sessions.resolve(session, token=tokens[0], now=now) is None
        assert (
            sessions.resolve(session, token=tokens[1], now=now + timedelta(minutes=59)) is not None
        )
        assert sessions.resolve(session, token=tokens[1], now=now + timedelta(minutes=61)) is None
        assert sessions.resolve(session, token="forged", now=now) is None
    for minutes in range(50, 13 * 60, 50):  # active every 50 minutes: only the age ends it
        at = now + timedelta(minutes=minutes)
        with database.transaction() as session:
            current = sessions.resolve(session, token=tokens[2], now=at)
            if minutes < 12 * 60:
                assert current is not None
                sessions.touch(session, session_id=current.session_id, now=at)
            else:
                assert current is None
