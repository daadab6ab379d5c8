from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel


class ErasureOut(BaseModel):
    """What an erasure did: its record (when, by whom, why) and where it rewrote data."""

    member_id: uuid.UUID
    erased_at: datetime
    actor: str
    reason: str
    already_erased: bool
    events_rewritten: int
    tables_scrubbed: list[str]
    tables_refused: list[str]
