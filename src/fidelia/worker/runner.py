from __future__ import annotations

import logging
import threading
import time

from fidelia.db import Database
from fidelia.jobs import service as jobs
from fidelia.messaging import batch as mail
from fidelia.messaging import jobs as mail_jobs
from fidelia.webhooks import dispatch as webhooks

log = logging.getLogger("fidelia.worker")


def run_until(
    database: Database,
    stop: threading.Event,
    *,
    poll_seconds: float = 1.0,
    backoff_seconds: float | None = None,
    mail_batch: int = 500,
) -> int:
    """Run due jobs, batches of due email messages and webhooks until ``stop`` is set,
    sleeping ``poll_seconds`` when there is nothing to do. Returns how many jobs ran.

    Email goes out in batches (:func:`fidelia.messaging.batch.pump`, outside any job's
    transaction): a batch first, then up to 20 jobs and a round of webhooks, then the next
    batch while email is due; an idle worker looks for email once per poll. In this thread a
    ``messaging.deliver`` job of an email message leaves it to the batches."""
    ran = sent = streak = 0
    next_mail = 0.0
    with webhooks.new_client() as client, mail_jobs.left_to_batches():
        while not stop.is_set():
            try:
                if streak == 0 and time.monotonic() >= next_mail:
                    outcome = mail.pump(database, limit=mail_batch)
                    busy = outcome.claimed + outcome.skipped > 0
                    next_mail = 0.0 if busy else time.monotonic() + poll_seconds
                if streak < 20 and jobs.run_one(database, backoff_seconds=backoff_seconds):
                    ran, streak = ran + 1, streak + 1
                    continue
                streak = 0  # webhooks get a round at least every 20 jobs
                if webhooks.pump(database, client):
                    sent += 1
                    continue
                if next_mail == 0.0:
                    continue  # more email is due
            except Exception:  # a database outage must not kill the worker; log and poll again
                log.exception("worker loop error")
            stop.wait(poll_seconds)
    return ran


class BackgroundWorker:
    """A worker thread inside the API process, for the embedded (single-process) default."""

    def __init__(self, database: Database, *, poll_seconds: float = 1.0) -> None:
        self._database = database
        self._poll = poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fidelia-worker", daemon=True)

    def _loop(self) -> None:
        run_until(self._database, self._stop, poll_seconds=self._poll)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
