from __future__ import annotations

from sqlalchemy import inspect

from fidelia.db import Database
from fidelia.migrations import alembic_config
from fidelia.models import Base


def test_migrations_build_every_table_of_the_models(database: Database) -> None:
    tables = set(inspect(database.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables


def test_migrations_have_one_head() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1
