"""Time-ordered ids (fidelia.kit.ids): valid UUIDv7s, ordered, unique, across threads."""

from __future__ import annotations

import threading
import uuid

from fidelia.kit import ids


def test_ids_are_version_7_and_the_same_as_the_constructor_makes() -> None:
    made = [ids.uuid7() for _ in range(2_000)]  # past several batches of random bits
    for one in made:
        assert one.version == 7
        assert one.variant == uuid.RFC_4122
        again = uuid.UUID(str(one))
        assert again == one
        assert hash(again) == hash(one)
        assert again.int == one.int
        assert uuid.UUID(bytes=one.bytes) == one
        assert one.hex == again.hex
    assert made == sorted(made)  # monotonic within the process
    assert len(set(made)) == len(made)
    # the random part is not repeated between batches of the system's random bits
    assert len({m.int & ((1 << 62) - 1) for m in made}) == len(made)


def test_ids_made_by_threads_at_once_are_unique() -> None:
    found: list[list[uuid.UUID]] = [[] for _ in range(4)]

    def make(into: list[uuid.UUID]) -> None:
        into.extend(ids.uuid7() for _ in range(3_000))

    threads = [threading.Thread(target=make, args=(f,)) for f in found]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for f in found for i in f]
    assert len(set(every)) == len(every) == 12_000
    for f in found:
        assert f == sorted(f)  # each thread sees them in order
