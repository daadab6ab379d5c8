"""Group commit: the single events that arrive together share one transaction.

Design note
-----------
A till waits for the answer to its purchase, and most of what one event costs is fixed per
transaction: begin, the lookups of a preparation pass, the commit, and on SQLite the wait for
the one writer. So each API process runs one writer thread. ``POST /events`` requests put their
event on its queue and wait; the writer takes whatever has queued up (at most
``max_group``), and ingests it in one transaction: the callers' keys are checked in one query
(a key revoked a moment ago is refused here even if the request's own check passed), events
are grouped per key (so per programme) and each group goes through one
:func:`fidelia.intake.service.ingest` call, in arrival order: two events of one member are
applied in the order they came. Then one commit, and only then is each request answered with
its own outcome: durability is unchanged.

An event that is refused writes nothing and never fails its neighbours (``ingest`` checks each
event before writing anything for it). If the group's transaction fails as a whole (an
unexpected error, a failed commit), each of its requests is run again alone in its own
transaction, so only the culprit sees the error. Nothing waits for a group to fill: the writer
takes what is there, so a lone request costs no more than before, and under load groups grow
by themselves while the previous one commits. Only when the previous group was larger does the
writer wait a little for the rest of the burst (:meth:`GroupCommit._gather`): the callers just
answered send their next requests together, and without that wait the first of them would be
committed alone, every other group a group of one.

With several processes on PostgreSQL, each process groups its own requests; their
transactions lock members in key order and rule counters by compare-and-set, as any batch does.
On PostgreSQL a process can run more than one writer (``writers``, setting
``FIDELIA_INTAKE_WRITERS``): a writer waits for the server's answers for much of a group, with
the interpreter free, so a second one can prepare and write the next group meanwhile, on its
own connection, exactly as a second process would (two groups of one member take its row lock
in turn). On 2 cores shared with the database it gained nothing (the groups halve, and the
database has no idle core to answer faster: docs/benchmarks.md), so the default is one writer;
more is for machines where the database has cores of its own. SQLite has one writer at a time.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from fidelia.db import Database
from fidelia.errors import Unauthorized
from fidelia.events.schemas import EventIn, EventOutcome
from fidelia.intake import service
from fidelia.models import ApiKey, Programme

log = logging.getLogger("fidelia.intake")

Result = EventOutcome | BaseException


@dataclass(frozen=True, slots=True)
class Submission:
    """One request's event, the key that sent it, and where to deliver its result."""

    key_id: uuid.UUID
    event: EventIn
    future: asyncio.Future[EventOutcome]
    loop: asyncio.AbstractEventLoop


_STOP = object()


class GroupCommit:
    """The writer thread of one API process; :meth:`submit` from request handlers."""

    def __init__(
        self,
        database: Database,
        *,
        max_group: int = 64,
        gap: float = 0.002,
        linger: float = 0.010,
        writers: int | None = None,
    ) -> None:
        self.database = database
        self.max_group = max_group
        self.gap = gap  # how long the writer waits for the next request of a burst...
        self.linger = linger  # ...and at most in all, before committing a smaller group
        writers = 1 if writers is None else writers
        if writers < 1:
            raise ValueError("writers must be at least 1")
        self.writers = writers
        self._queue: queue.SimpleQueue[Submission | object] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.groups = 0  # committed groups, and the events they held (for benchmarks)
        self.grouped = 0

    async def submit(self, *, key_id: uuid.UUID, event: EventIn) -> EventOutcome:
        """Queue ``event`` and wait until the group holding it has committed."""
        self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[EventOutcome] = loop.create_future()
        self._queue.put(Submission(key_id, event, future, loop))
        return await future

    def stop(self) -> None:
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(_STOP)  # each writer takes one and stops
        for thread in threads:
            thread.join(timeout=30)

    def _start(self) -> None:
        if self._threads:
            return
        with self._lock:
            if not self._threads:
                self._threads = [
                    threading.Thread(
                        target=self._run, name=f"fidelia-group-commit-{n}", daemon=True
                    )
                    for n in range(self.writers)
                ]
                for thread in self._threads:
                    thread.start()

    def _run(self) -> None:
        last_size = 1
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            group = self._gather(first, last_size)
            last_size = len(group)
            self.process([g for g in group if isinstance(g, Submission)])

    def _gather(self, first: object, last_size: int = 1) -> list[object]:
        """``first`` and what follows it: what has queued up, and while the previous group was
        larger than this one, what arrives within ``gap`` of the last arrival (at most
        ``linger`` in all). The callers answered by the previous commit are sending their next
        request: without the wait, the writer would commit the first of them alone, and the
        others in the next group, halving the group's size under a steady load. A lone caller
        (previous group of one) never waits."""
        group = [first]
        deadline = time.monotonic() + self.linger
        while len(group) < self.max_group:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                left = deadline - time.monotonic()
                if len(group) >= last_size or left <= 0:
                    break
                try:
                    item = self._queue.get(timeout=min(self.gap, left))
                except queue.Empty:
                    break
            if item is _STOP:
                self._queue.put(_STOP)  # finish this group, then stop
                break
            group.append(item)
        return group

    def process(self, group: list[Submission]) -> None:
        """Commit one group and deliver each submission its result."""
        try:
            results = self._commit(group)
        except Exception as exc:  # the whole group failed: find the culprit
            if len(group) == 1:
                log.debug("event %s failed", group[0].event.id, exc_info=True)
                results = [exc]
            else:
                results = [self._alone(s) for s in group]
        else:
            with self._lock:
                self.groups += 1
                self.grouped += len(group)
        # One wake-up of each waiting event loop for the whole group (usually there is one
        # loop): a call per request cost a write to the loop's self-pipe and a wake-up each.
        answers: dict[asyncio.AbstractEventLoop, list[tuple[Submission, Result]]] = {}
        for submission, result in zip(group, results, strict=True):
            answers.setdefault(submission.loop, []).append((submission, result))
        for loop, delivered in answers.items():
            try:
                loop.call_soon_threadsafe(_settle_all, delivered)
            except RuntimeError:  # its event loop has closed (shutdown): nobody is waiting
                for submission, _ in delivered:
                    log.warning("event %s committed after its caller left", submission.event.id)

    def _alone(self, submission: Submission) -> Result:
        try:
            return self._commit([submission])[0]
        except Exception as exc:
            return exc

    def _commit(self, group: Sequence[Submission]) -> list[Result]:
        results: list[Result | None] = [None] * len(group)
        with self.database.transaction() as session:
            programmes = _live_keys(session, {s.key_id for s in group})
            by_key: dict[uuid.UUID, list[int]] = {}
            for i, submission in enumerate(group):
                if submission.key_id in programmes:
                    by_key.setdefault(submission.key_id, []).append(i)
                else:
                    results[i] = Unauthorized("this API key has been revoked")
            for key_id, indexes in by_key.items():
                outcomes = service.ingest(
                    session,
                    programme=programmes[key_id],
                    events=[group[i].event for i in indexes],
                    actor=f"api_key:{key_id}",
                )
                for i, outcome in zip(indexes, outcomes, strict=True):
                    results[i] = outcome.model_copy(update={"index": None})
        return [r for r in results if r is not None]


def _live_keys(session: Session, key_ids: set[uuid.UUID]) -> dict[uuid.UUID, Programme]:
    """The programme of each key that is still valid, in one query."""
    rows = session.execute(
        select(ApiKey.id, Programme)
        .join(Programme, Programme.id == ApiKey.programme_id)
        .where(ApiKey.id.in_(sorted(key_ids)), ApiKey.revoked_at.is_(None))
    )
    return {key_id: programme for key_id, programme in rows}


def _settle_all(delivered: list[tuple[Submission, Result]]) -> None:
    for submission, result in delivered:
        future = submission.future
        if future.done():  # the client went away
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
