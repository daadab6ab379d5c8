"""Settings of the Python runtime for a long-running API process (not for tests or commands).

The garbage collector: an API process holds some 380,000 tracked objects once its app is built
(routers, models, SQLAlchemy's and Pydantic's caches), and each full collection walked them
all: under the intake benchmark's load a full collection came every 3-4 s and stopped every
thread for 50-500 ms (measured with ``gc.callbacks``), the p99 of ``POST /events``. The objects
made while starting never become garbage, so they are moved out of the collector's sight
(``gc.freeze``) once the app is built, and the youngest generation is collected every 10,000
allocations instead of 700 (a request makes a few thousand short-lived objects: most of them
are freed by reference counting before any collection)."""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Call once the app is built, just before serving."""
    gc.collect()
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(10_000, second, third)
