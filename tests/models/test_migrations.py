from __future__ import annotations

from sqlalchemy import inspect

from fidelia.db import Database
from fidelia.kit.clock import utcnow
from fidelia.kit.ids import uuid7
from fidelia.migrations import alembic_config
from fidelia.models import (
    Base,
    Consent,
    ConsentChange,
    Member,
    MemberIdentity,
    MemberState,
    Programme,
)


def test_migrations_build_every_table_of_the_models(database: Database) -> None:
    tables = set(inspect(database.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables


def test_migrations_have_one_head() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1


def test_a_flush_writes_a_new_member_before_the_rows_that_point_at_it(
    database: Database, programme: Programme
) -> None:
    member_id, now = uuid7(), utcnow()
    common = {"programme_id": programme.id, "member_id": member_id}
    with database.transaction() as session:  # added children first, on purpose
        consent = {"channel": "email", "granted": True, "changed_at": now, "source": "test"}
        session.add(Consent(**common, **consent))
        session.add(ConsentChange(**common, **consent))
        session.add(MemberIdentity(**common, kind="card", namespace="", value=member_id.hex))
        session.add(MemberState(**common, state={}))
        session.add(
            Member(
                id=member_id,
                programme_id=programme.id,
                status="active",
                enrolment_channel="web",
                enrolled_at=now,
                attributes={},
            )
        )
    with database.transaction(readonly=True) as session:
        assert session.get(Member, member_id) is not None
