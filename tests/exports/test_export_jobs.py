"""Export jobs: ``POST /exports/jobs`` starts a file written by the worker chunk by chunk,
``GET /exports/jobs/{id}`` shows its progress and link, the file expires after N days."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from fidelia.config import get_settings
from fidelia.db import Database
from fidelia.exports import jobs as export_jobs
from fidelia.exports import service as export_service
from fidelia.jobs import service as jobs
from fidelia.kit.clock import utcnow
from fidelia.models import Job, Programme
from fidelia.models.exports import ExportRun
from tests.fixtures.factories import Api
from tests.privacy.conftest import buy, demo, enrol

__all__ = ["demo"]


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(get_settings(), "export_rows_per_run", 3)
    monkeypatch.setattr(get_settings(), "export_dir", str(tmp_path / "exports"))


def _runs_of(database: Database, export_id: str) -> list[str]:
    with database.transaction(readonly=True) as s:
        return [
            j.status
            for j in s.scalars(select(Job).where(Job.kind == export_jobs.RUN_JOB))
            if j.payload.get("export_id") == export_id
        ]


def test_members_export_job_in_chunks_matches_the_streamed_download(
    database: Database, demo: Api
) -> None:
    for i in range(7):
        enrol(demo, f"job-{i}-{uuid.uuid4().hex[:6]}@example.com", card=f"J-{i}")
    started = demo.post("/exports/jobs", json={"table": "members", "format": "csv"})
    assert started.status_code == 202, started.text
    run = started.json()
    assert (run["status"], run["rows_done"], run["rows_estimated"]) == ("queued", 0, 7)
    assert run["download_url"] is None
    early = demo.get(f"/exports/jobs/{run['id']}/file")
    assert (early.status_code, early.json()["error"]) == (409, "conflict")

    jobs.run_due(database)
    assert _runs_of(database, run["id"]) == ["done"] * 3  # 3 + 3 + 1 rows
    done = demo.get(f"/exports/jobs/{run['id']}").json()
    assert (done["status"], done["rows_done"], done["progress"]) == ("done", 7, 1.0)
    assert done["expires_at"] is not None
    assert done["download_url"].endswith(f"/exports/jobs/{run['id']}/file")
    file = demo.get(f"/exports/jobs/{run['id']}/file")
    assert file.status_code == 200
    assert file.headers["content-type"].startswith("text/csv")
    streamed = demo.get("/exports/members", params={"format": "csv"}).text
    assert file.text.count("\n") == 8  # one header, seven rows
    assert list(csv.DictReader(io.StringIO(file.text))) == list(
        csv.DictReader(io.StringIO(streamed))
    )
    assert done["size_bytes"] == len(file.content)


def test_ledger_as_jsonl_since_and_expiry(
    database: Database, demo: Api, api_factory: Callable[[Programme], Api],
    programme_factory: Callable[..., Programme],
) -> None:  # fmt: skip
    ann = enrol(demo, f"ann-{uuid.uuid4().hex[:6]}@example.com")
    for i in range(2):
        buy(demo, ann, f"o-{uuid.uuid4().hex[:8]}-{i}")
    run = demo.post("/exports/jobs", json={"table": "ledger", "format": "jsonl"}).json()
    jobs.run_due(database)
    file = demo.get(f"/exports/jobs/{run['id']}/file")
    lines = [json.loads(line) for line in file.text.splitlines()]
    streamed = demo.get("/exports/ledger", params={"format": "jsonl"}).text.splitlines()
    assert lines == [json.loads(line) for line in streamed]
    assert len(lines) >= 4  # two earns, both sides

    # Another programme sees nothing of it; bad input starts nothing.
    other = api_factory(programme_factory())
    assert other.get(f"/exports/jobs/{run['id']}").status_code == 404
    with database.transaction(readonly=True) as s:
        before = len(s.scalars(select(ExportRun.id)).all())
    for body in ({"table": "secrets"}, {"table": "members", "format": "xml"},
                 {"table": "members", "since": "2026-01-01T00:00:00"}):  # fmt: skip
        assert demo.post("/exports/jobs", json=body).status_code == 422
    with database.transaction(readonly=True) as s:
        assert len(s.scalars(select(ExportRun.id)).all()) == before

    # Once its keeping time is over, the file goes and the link answers 410.
    with database.transaction(readonly=True) as s:
        found = s.get(ExportRun, uuid.UUID(run["id"]))
        assert found is not None
        assert found.expires_at is not None
        path, expires = export_jobs.path_of(found), found.expires_at
    assert path.exists()
    jobs.run_due(database, now=expires + timedelta(seconds=1), programme_id=demo.programme.id)
    assert not path.exists()
    assert demo.get(f"/exports/jobs/{run['id']}").json()["status"] == "expired"
    gone = demo.get(f"/exports/jobs/{run['id']}/file")
    assert (gone.status_code, gone.json()["error"]) == (410, "export_expired")


def test_a_failed_chunk_is_retried_without_writing_rows_twice(
    database: Database, demo: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(5):
        enrol(demo, f"retry-{i}-{uuid.uuid4().hex[:6]}@example.com")
    real = export_service.render
    failures = [1]

    def flaky(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        for n, chunk in enumerate(real(*args, **kwargs)):  # type: ignore[arg-type]
            yield chunk
            if n == 0 and failures:  # once the first page reached the file
                failures.pop()
                raise OSError("disk hiccup")

    monkeypatch.setattr("fidelia.exports.jobs.render", flaky)
    run = demo.post("/exports/jobs", json={"table": "members", "format": "jsonl"}).json()
    # the first chunk fails and waits for its retry (now fixed: the shared database's other
    # due jobs may take longer to run than the retry's backoff)
    jobs.run_due(database, now=utcnow(), programme_id=demo.programme.id)
    assert demo.get(f"/exports/jobs/{run['id']}").json()["status"] in ("queued", "running")
    with database.transaction(readonly=True) as s:
        found = s.get(ExportRun, uuid.UUID(run["id"]))
        assert found is not None
        path = export_jobs.path_of(found)
    assert path.exists()
    assert path.stat().st_size > 0  # the failed attempt left bytes behind
    jobs.run_due(database, now=utcnow() + timedelta(hours=7), programme_id=demo.programme.id)
    done = demo.get(f"/exports/jobs/{run['id']}").json()
    assert (done["status"], done["rows_done"]) == ("done", 5)
    lines = demo.get(f"/exports/jobs/{run['id']}/file").text.splitlines()
    streamed = demo.get("/exports/members", params={"format": "jsonl"}).text.splitlines()
    assert [json.loads(x) for x in lines] == [json.loads(x) for x in streamed]
