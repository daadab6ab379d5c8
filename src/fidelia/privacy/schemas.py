from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from fidelia.examples import examples

ERASURE = {
    "member_id": "019ceb9e-6018-78a4-ad11-f033b48438b5",
    "erased_at": "2026-11-30T15:00:00Z",
    "actor": "api_key:019ceb9e-5f00-7c11-9d2e-4b1f0c3a9e10",
    "reason": "request",
    "already_erased": False,
    "events_rewritten": 2,
    "tables_scrubbed": ["messages"],
    "tables_refused": [],
}


class ErasureOut(BaseModel):
    """What an erasure did: its record (when, by whom, why) and where it rewrote data."""

    model_config = ConfigDict(json_schema_extra=examples(ERASURE))

    member_id: uuid.UUID
    erased_at: datetime
    actor: str
    reason: str
    already_erased: bool
    events_rewritten: int
    tables_scrubbed: list[str]
    tables_refused: list[str]
