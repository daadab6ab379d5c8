"""The ceiling for HTTP intake: a trivial FastAPI app that parses the same JSON (``EventIn``)
and writes nothing. Served by uvicorn exactly like Fidelia: ``uvicorn bench.ceiling_app:app``.

The endpoint is a plain ``def`` (like Fidelia's, which runs in the thread pool) and returns a
small JSON body, so the difference with Fidelia is the intake work: authentication, checks,
the database transaction.
"""

from __future__ import annotations

from fastapi import FastAPI, status

from fidelia.events.schemas import EventIn

app = FastAPI(title="Fidelia bench ceiling")


@app.post("/api/v1/events", status_code=status.HTTP_201_CREATED)
def post_event(body: EventIn) -> dict[str, str]:
    return {"id": body.id, "status": "accepted"}


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
