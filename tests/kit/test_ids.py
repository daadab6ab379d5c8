"""Time-ordered ids (fidelia.kit.ids): valid UUIDv7s, ordered, unique, across threads."""

from __future__ import annotations

import os
import threading
import uuid

import pytest

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


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_does_not_reuse_the_parents_random_bits() -> None:
    ids.uuid7()  # the parent holds a batch of random bits
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.close(read)
        os.write(write, b"".join(ids.uuid7().bytes for _ in range(8)))
        os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 4096):
        data += chunk
    os.close(read)
    os.waitpid(pid, 0)
    child = [uuid.UUID(bytes=data[i : i + 16]) for i in range(0, len(data), 16)]
    mine = [ids.uuid7() for _ in range(8)]
    low = (1 << 62) - 1
    assert len(child) == 8
    assert not {c.int & low for c in child} & {m.int & low for m in mine}
