"""Password reset: a single-use, short-lived token, sent through a real SMTP server."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from fidelia.db import Database
from fidelia.errors import ValidationFailed
from fidelia.kit.clock import utcnow
from fidelia.users import resets, sessions
from fidelia.users import service as users
from tests.users.mailbox import Inbox

PASSWORD = "correct horse battery"


def make_user(database: Database) -> str:
    email = f"r-{uuid.uuid4().hex[:10]}@example.com"
    with database.transaction() as session:
        users.create_user(session, email=email, password=PASSWORD)
    return email


def test_a_reset_sets_the_password_once_and_ends_the_sessions(database: Database) -> None:
    email, now = make_user(database), utcnow()
    with database.transaction() as session:
        token = sessions.sign_in(session, email=email, password=PASSWORD, ip="1", now=now).token
        reset = resets.request_reset(session, email=email, now=now)
    assert reset is not None
    assert token is not None
    with database.transaction() as session:
        resets.complete_reset(session, token=reset, password="a brand new secret", now=now)
    with database.transaction() as session:
        assert sessions.resolve(session, token=token, now=now) is None
        assert sessions.sign_in(session, email=email, password=PASSWORD, ip="1", now=now).error
        again = sessions.sign_in(
            session, email=email, password="a brand new secret", ip="1", now=now
        )
        assert again.token is not None
    with pytest.raises(ValidationFailed), database.transaction() as session:
        resets.complete_reset(session, token=reset, password="yet another secret", now=now)


def test_an_expired_or_replaced_token_is_refused(database: Database) -> None:
    email, now = make_user(database), utcnow()
    with database.transaction() as session:
        first = resets.request_reset(session, email=email, now=now)
        second = resets.request_reset(session, email=email, now=now)
        assert resets.request_reset(session, email="nobody@example.com", now=now) is None
    assert first
    assert second
    with database.transaction(readonly=True) as session:
        assert resets.token_user(session, token=first, now=now) is None
        assert resets.token_user(session, token=second, now=now + timedelta(minutes=61)) is None
    with pytest.raises(ValidationFailed), database.transaction() as session:
        resets.complete_reset(
            session, token=second, password="a brand new secret", now=now + timedelta(hours=2)
        )


def test_the_link_goes_out_through_the_smtp_server(smtp: Inbox) -> None:
    resets.send_reset_email(
        to="ann@example.com", link="http://x/admin/reset/abc", subject="Reset", body="Open it:"
    )
    (message,) = smtp.messages
    assert message["To"] == "ann@example.com"
    assert "http://x/admin/reset/abc" in message.get_payload()
