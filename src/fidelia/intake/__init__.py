"""The intake: one write path for every event (API, batch, imports, enrolment), applying the
engine's effects to the ledger, tiers, rewards and engagement in set-based steps."""

from datetime import datetime as _datetime
from typing import Any as _Any

from sqlalchemy.orm import Session as _Session

from fidelia.models import Programme as _Programme
from fidelia.scenarios.jobs import set_emitter as _set_emitter


def _emit(
    session: _Session, programme: _Programme, payloads: list[dict[str, _Any]], now: _datetime
) -> None:
    """Scenarios' ``emit`` actions go through the one intake path (scenarios sit below it)."""
    from fidelia.intake.service import ingest_payloads

    ingest_payloads(session, programme=programme, payloads=payloads, now=now, actor="scenario")


_set_emitter(_emit)
