"""Leaderboard reads at 1,000,000 members on PostgreSQL: the top 100 and one member's rank.

One board, one month, 1,000,000 members with a score row each (scores 0 to 5,000: many
ties, broken by ``reached_at``), 80 % of them opted in. The rows are generated in SQL
(``generate_series``), then ``VACUUM ANALYZE`` (as autovacuum would), outside the clock.

Timed, through the functions the API calls (``fidelia.engagement.leaderboards``), each in its
own read transaction:

- ``top``: the first 100 visible members with their display names (index range read plus
  the joins for names);
- ``position``: one member's rank (the counts of the scores above summed, plus a COUNT of the
  ties ahead), for members drawn at random over the whole board;
- the same for the last-ranked member (the most scores above it).

The references, measured in the same run on the same rows: a COUNT of every visible member
ahead over the ranking index (the first design: one index-only range scan), and the naive
rank, ``row_number() OVER (ORDER BY score DESC, reached_at)`` over the board.

    python bench/bench_leaderboards.py [--members 1000000] [--runs 15] [--quick]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    baseline,
    create_pg_database,
    drop_pg_database,
    emit,
    figure,
    log,
    postgres_available,
    quick_mode,
    stats,
)

NAME = "leaderboards"


def build(url: str, members: int) -> uuid.UUID:
    from sqlalchemy import create_engine, text

    from fidelia.db import Database, make_engine
    from fidelia.migrations import upgrade
    from fidelia.programmes import service as programmes
    from fidelia.programmes.schemas import ProgrammeCreate

    engine = make_engine(url)
    upgrade(engine)
    database = Database(engine)
    with database.transaction() as s:
        p = programmes.create(
            s,
            data=ProgrammeCreate(
                slug="bench", name="Bench", currency="EUR", timezone="Europe/Paris",
                locale="fr-FR", country="FR",
            ),
        )  # fmt: skip
        programme_id = p.id
    database.dispose()
    raw = create_engine(url, isolation_level="AUTOCOMMIT")
    params = {"p": programme_id, "n": members}
    with raw.connect() as conn:
        log(f"inserting {members:,} members and score rows")
        conn.execute(
            text(
                "INSERT INTO members (id, programme_id, status, enrolment_channel, enrolled_at,"
                " first_name, last_name, attributes, created_at, updated_at)"
                " SELECT md5('m' || i)::uuid, :p, 'active', 'store', now(), 'First' || i,"
                " 'Last' || i, '{}'::jsonb, now(), now() FROM generate_series(1, :n) i"
            ),
            params,
        )
        conn.execute(
            text(
                "INSERT INTO leaderboard_scores (programme_id, board, period, scope, member_id,"
                " score, rank_score, reached_at, visible)"
                " SELECT :p, 'monthly', '2026-11', '', md5('m' || i)::uuid, s, -s,"
                " timestamptz '2026-11-01' + (random() * interval '29 days'), random() < 0.8"
                " FROM (SELECT i, floor(random() * 5000)::numeric AS s"
                "       FROM generate_series(1, :n) i) g"
            ),
            params,
        )
        conn.execute(
            text(
                "INSERT INTO leaderboard_counts (programme_id, board, period, scope, rank_score,"
                " members) SELECT programme_id, board, period, scope, rank_score, count(*)"
                " FROM leaderboard_scores WHERE visible"
                " GROUP BY programme_id, board, period, scope, rank_score"
            )
        )
        conn.execute(text("VACUUM ANALYZE leaderboard_counts"))
        conn.execute(text("VACUUM ANALYZE members"))
        conn.execute(text("VACUUM ANALYZE leaderboard_scores"))
    raw.dispose()
    return programme_id


def measure(url: str, programme_id: uuid.UUID, members: int, runs: int) -> list[dict[str, object]]:
    from sqlalchemy import text

    from fidelia.db import Database, make_engine
    from fidelia.engagement import leaderboards
    from fidelia.models import Programme

    database = Database(make_engine(url))
    rng = random.Random(14)
    where = {"programme": None, "board": "monthly", "period": "2026-11", "scope": ""}
    with database.transaction(readonly=True) as s:
        p = s.get_one(Programme, programme_id)
        where["programme"] = p
        visible = list(
            s.scalars(
                text(
                    "SELECT member_id FROM leaderboard_scores WHERE visible"
                    " ORDER BY member_id LIMIT 20000"
                )
            )
        )
        last = s.scalar(
            text(
                "SELECT member_id FROM leaderboard_scores WHERE visible"
                " ORDER BY rank_score DESC, reached_at DESC, member_id DESC LIMIT 1"
            )
        )

    def timed(fn: object) -> float:
        start = time.perf_counter()
        with database.transaction(readonly=True) as s:
            fn(s)  # type: ignore[operator]
        return (time.perf_counter() - start) * 1000

    def top(s: object) -> None:
        entries = leaderboards.top(s, limit=100, **where)  # type: ignore[arg-type]
        assert len(entries) == 100

    def rank_of(member: uuid.UUID) -> object:
        def run(s: object) -> None:
            found = leaderboards.position(s, member_id=member, **where)  # type: ignore[arg-type]
            assert found.rank is not None

        return run

    def naive(member: uuid.UUID) -> object:
        def run(s: object) -> None:
            s.execute(  # type: ignore[attr-defined]
                text(
                    "SELECT r FROM (SELECT member_id, row_number() OVER (ORDER BY score DESC,"
                    " reached_at, member_id) AS r FROM leaderboard_scores WHERE programme_id = :p"
                    " AND board = 'monthly' AND period = '2026-11' AND scope = '' AND visible) x"
                    " WHERE member_id = :m"
                ),
                {"p": programme_id, "m": member},
            ).one()

        return run

    for _ in range(2):  # warm the caches
        timed(top)
        timed(rank_of(rng.choice(visible)))
    tops = stats([timed(top) for _ in range(runs)])
    ranks = stats([timed(rank_of(rng.choice(visible))) for _ in range(runs)])
    worst = stats([timed(rank_of(last)) for _ in range(max(runs // 3, 3))])

    def counted(member: uuid.UUID) -> object:
        def run(s: object) -> None:
            s.execute(  # type: ignore[attr-defined]
                text(
                    "SELECT count(*) FROM leaderboard_scores a, leaderboard_scores m"
                    " WHERE m.programme_id = :p AND m.board = 'monthly' AND m.period = '2026-11'"
                    " AND m.scope = '' AND m.member_id = :m AND a.programme_id = :p"
                    " AND a.board = 'monthly' AND a.period = '2026-11' AND a.scope = ''"
                    " AND a.visible AND (a.rank_score, a.reached_at, a.member_id)"
                    " < (m.rank_score, m.reached_at, m.member_id)"
                ),
                {"p": programme_id, "m": member},
            ).one()

        return run

    def select_one(s: object) -> None:
        s.execute(text("SELECT 1")).one()  # type: ignore[attr-defined]

    floor = stats([timed(select_one) for _ in range(runs)])
    counts = stats([timed(counted(rng.choice(visible))) for _ in range(5)])
    naives = stats([timed(naive(rng.choice(visible))) for _ in range(3)])
    database.dispose()
    ref = baseline("naive rank: row_number() over the board", naives, unit="ms", kind="reference")
    by_count = baseline(
        "COUNT of everyone ahead over the ranking index", counts, unit="ms", kind="reference"
    )
    note = f"{members:,} members, 80 % opted in; PostgreSQL; machine shared and loaded"
    return [
        figure("top 100 (PostgreSQL)", tops, unit="ms", base=ref, higher_is_better=False,
               note=note),
        figure("one member's rank, random member (PostgreSQL)", ranks, unit="ms", base=by_count,
               higher_is_better=False, note=note),
        figure("a read transaction with SELECT 1 (PostgreSQL)", floor, unit="ms",
               higher_is_better=False, note="the floor: what the machine's load costs any read"),
        figure("last-ranked member's rank (PostgreSQL)", worst, unit="ms", base=ref,
               higher_is_better=False, note="the whole board counted; " + note),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    members = 100_000 if quick_mode(args.quick) else args.members
    if not postgres_available():
        emit(NAME, [], skipped=[{"figure": "leaderboards", "reason": "no PostgreSQL"}])
        return
    url = create_pg_database()
    try:
        programme_id = build(url, members)
        figures = measure(url, programme_id, members, args.runs)
    finally:
        drop_pg_database(url)
    emit(NAME, figures)


if __name__ == "__main__":
    main()
