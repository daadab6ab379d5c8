"""Settings of the Python runtime for a long-running API process (not for tests or commands).

The garbage collector: an API process holds some 380,000 tracked objects once its app is built
(routers, models, SQLAlchemy's and Pydantic's caches), and each full collection walked them
all: under the intake benchmark's load a full collection came every 3-4 s and stopped every
thread for 50-500 ms (measured with ``gc.callbacks``), the p99 of ``POST /events``. The objects
made while starting never become garbage, so they are moved out of the collector's sight
(``gc.freeze``) once the app is built, and the youngest generation is collected every 10,000
allocations instead of 700 (a request makes a few thousand short-lived objects: most of them
are freed by reference counting before any collection).

Commands (imports, rebuilds, the worker) take the second half only (:func:`collect_less`, from
the CLI's callback): an import makes ORM objects by the thousand, full of reference cycles, and
with the default threshold the collector ran 2,907 young, 265 middle and 24 full collections
in an import of 30,000 CDNOW lines, 8.4 of its 17.5 s; with 10,000, 138, 13 and 1 collections
and 7.7 s in all (measured with ``gc.callbacks``). No freeze there: a command's heap is not
built once and kept, and in a test process (commands run in process) frozen objects would
never be collected."""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # allocations between collections of the youngest generation


def collect_less() -> None:
    """The youngest generation collected every 10,000 allocations instead of 700."""
    _, second, third = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, second, third)


def settle_heap() -> None:
    """Call once the app is built, just before serving."""
    gc.collect()
    gc.freeze()
    collect_less()
