"""`fidelia scenarios`: a programme applied from YAML, members imported, a tick, the figures."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.cli.test_cli import Run, db_url, ready, run  # noqa: F401  (fixtures)

DOC = {
    "rules": [{"id": "base", "name": "1 point per euro", "award": {"kind": "spend", "rate": 1}}],
    "scenarios": {"definitions": [{
        "code": "bonus-on-signup",
        "name": "Bonus on sign-up",
        "entry": {"kind": "event", "event": "page_view"},
        "holdout_percent": 0,
        "steps": [{"id": "gift", "kind": "action",
                   "do": {"type": "award", "wallet": "points", "amount": 10}}],
    }]},
}  # fmt: skip


def test_list_tick_stats_and_backtest_from_the_cli(run: Run, ready: str, tmp_path: Path) -> None:  # noqa: F811
    document = tmp_path / "programme.yaml"
    document.write_text(yaml.safe_dump(DOC))
    run("programme", "apply", str(document), "-p", ready)
    (tmp_path / "members.csv").write_text("card,email,consent_email\nC1,a@example.com,yes\n")
    run("members", "import", str(tmp_path / "members.csv"), "-p", ready)
    lines = [{"id": "v1", "type": "page_view", "occurred_at": "2026-01-05T10:00:00Z",
              "member": {"card": "C1"}}]  # fmt: skip
    (tmp_path / "events.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    run("events", "import", str(tmp_path / "events.jsonl"), "-p", ready)

    ticked = run("scenarios", "tick", "-p", ready).output
    assert "entered 1, advanced 1" in ticked
    listed = run("scenarios", "list", "-p", ready).output
    assert "bonus-on-signup" in listed
    figures = json.loads(run("scenarios", "stats", "bonus-on-signup", "-p", ready).output)
    assert figures["entered"] == 1
    assert figures["steps"]["gift"] == {"awarded": 1}
    replay = run("scenarios", "backtest", "bonus-on-signup", "-p", ready,
                 "--since", "2026-01-01", "--until", "2026-02-01").output  # fmt: skip
    assert json.loads(replay)["per_day"] == {"2026-01-05": 1}
    missing = run("scenarios", "stats", "nope", "-p", ready, ok=False)
    assert missing.exit_code != 0
    assert "not in the live programme document" in missing.output
