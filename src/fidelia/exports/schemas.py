"""The export job API's documents."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fidelia.examples import PROGRAMME_ID, examples
from fidelia.kit.bounds import Instant

EXPORT_ID = "01a1dab9-2c38-7bf1-b42c-02436259ee01"

EXPORT_IN = {"table": "members", "format": "csv", "since": "2026-11-01T00:00:00+01:00"}
EXPORT_OUT = {
    "id": EXPORT_ID,
    "programme_id": PROGRAMME_ID,
    "table": "members",
    "format": "csv",
    "since": "2026-10-31T23:00:00Z",
    "status": "running",
    "rows_done": 100000,
    "rows_estimated": 250000,
    "progress": 0.4,
    "size_bytes": 18350112,
    "download_url": None,
    "error": None,
    "created_at": "2026-11-30T20:00:00Z",
    "started_at": "2026-11-30T20:00:01Z",
    "finished_at": None,
    "expires_at": None,
}


class ExportJobIn(BaseModel):
    """Start an export of one table of the programme as a file written by the worker."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(EXPORT_IN))

    table: Literal["members", "events", "ledger", "redemptions"]
    format: Literal["csv", "jsonl"] = "csv"
    since: Instant | None = Field(
        default=None,
        description="Only rows changed (members, redemptions), received (events) or posted "
        "(ledger) at or after this instant",
    )


class ExportJobOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(EXPORT_OUT))

    id: uuid.UUID
    programme_id: uuid.UUID
    table: str
    format: str
    since: datetime | None
    status: Literal["queued", "running", "done", "failed", "expired"]
    rows_done: int
    rows_estimated: int = Field(description="Counted when the export started")
    progress: float = Field(description="rows_done / rows_estimated, 0 to 1 (1 when done)")
    size_bytes: int
    download_url: str | None = Field(description="Once done, until expires_at")
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None = Field(description="When the file is deleted")
