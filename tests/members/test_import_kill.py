"""``fidelia members import`` killed with SIGKILL half-way, then run again: every member is
there exactly once, with its identities and consent, and the reject report is complete."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from sqlalchemy import select

from fidelia.db import Database
from fidelia.models import Consent, ImportRun, Member, MemberIdentity, Programme
from tests.fixtures import processes
from tests.fixtures.factories import count_rows

MEMBERS = 6000
BAD_LINES = {7: "validation_error", 4500: "unreadable"}  # line numbers in the file


def write_members(path: Path) -> None:
    lines = []
    for i in range(MEMBERS):
        lines.append(
            json.dumps(
                {
                    "card": f"K-{i:05d}",
                    "email": f"k{i:05d}@example.com",
                    "first_name": f"Member {i}",
                    "consents": [{"channel": "email", "granted": i % 2 == 0}],
                }
            )
        )
    lines.insert(6, json.dumps({"card": "BAD-7", "email": "not-an-email"}))  # line 7
    lines.insert(4499, "{not json")  # line 4500
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_members_import_killed_mid_way_resumes_without_duplicates(
    database: Database, programme: Programme, tmp_path: Path
) -> None:
    path = tmp_path / "members.jsonl"
    write_members(path)
    command = ("members", "import", str(path), "-p", programme.slug, "--chunk", "50")

    def members() -> int:
        return count_rows(database, Member, Member.programme_id == programme.id)

    processes.kill_when(processes.start(database, tmp_path / "first.log", *command),
                        lambda: members() >= 500)  # fmt: skip

    left = members()
    assert 500 <= left < MEMBERS
    assert left % 50 in (48, 49)  # whole chunks of 50 lines only, less the bad lines
    output = processes.run(database, tmp_path / "second.log", *command)
    assert "resumed after line" in output

    mine = Member.programme_id == programme.id
    assert count_rows(database, Member, mine) == MEMBERS
    with database.transaction(readonly=True) as session:
        identities = session.execute(
            select(MemberIdentity.member_id, MemberIdentity.kind, MemberIdentity.value).where(
                MemberIdentity.programme_id == programme.id
            )
        ).all()
        consents = session.execute(
            select(Consent.member_id, Consent.channel, Consent.granted).where(
                Consent.programme_id == programme.id
            )
        ).all()
        names = {
            member_id: name
            for member_id, name in session.execute(select(Member.id, Member.first_name).where(mine))
        }
        run = session.scalar(select(ImportRun).where(ImportRun.programme_id == programme.id))
    assert len(identities) == 2 * MEMBERS
    by_member: dict[object, dict[str, str]] = {}
    for member_id, kind, value in identities:
        assert kind not in by_member.setdefault(member_id, {}), (member_id, kind)
        by_member[member_id][kind] = value
    expected = {
        f"Member {i}": {"card": f"K-{i:05d}", "email": f"k{i:05d}@example.com"}
        for i in range(MEMBERS)
    }
    assert {names[m]: ids for m, ids in by_member.items()} == expected
    granted = {names[m]: g for m, channel, g in consents if channel == "email"}
    assert len(consents) == MEMBERS
    assert granted == {f"Member {i}": i % 2 == 0 for i in range(MEMBERS)}
    assert run is not None
    assert (run.status, run.lines_done, run.accepted, run.duplicates, run.rejected) == (
        "done",
        MEMBERS + len(BAD_LINES),
        MEMBERS,
        0,
        len(BAD_LINES),
    )
    with (tmp_path / "members.jsonl.rejects.csv").open(encoding="utf-8") as handle:
        rejects = [(int(r["line"]), r["error"]) for r in csv.DictReader(handle)]
    assert rejects == sorted(BAD_LINES.items())
