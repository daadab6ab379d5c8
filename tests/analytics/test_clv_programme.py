"""CLV on a programme's stored purchases (SQL-aggregated figures), on both databases.

The CDNOW sample (2,357 customers) is imported as purchase events through the real import
(noon New York time, programme time zone America/New_York so that UTC days are the file's
days); the programme's fit must then reproduce the published estimates as the file-based fit
does (tests/analytics/test_clv.py), the holdout must count what the file says, and the refresh
must write every purchaser's traits."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fidelia.analytics import clv_service
from fidelia.db import Database
from fidelia.intake.imports import run_import
from fidelia.models import ClvFit, Job, MemberIdentity, MemberTraits, Programme
from fidelia.traits import fields as trait_fields
from tests.fixtures.factories import Api, make_member, make_programme

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "cdnow_sample.txt"
pytestmark = pytest.mark.skipif(not SAMPLE.exists(), reason="the shared CDNOW sample is absent")


@pytest.fixture(scope="module")
def cdnow(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Programme:
    """A programme holding the CDNOW sample's 6,919 purchases."""
    programme = make_programme(database, currency="USD", timezone="America/New_York")
    path = tmp_path_factory.mktemp("cdnow") / "sample.txt"
    lines = ["customer_id date number_of_cds dollar_value"]
    for text in SAMPLE.read_text(encoding="ascii").splitlines():
        cells = text.split()
        if len(cells) == 5:
            lines.append(" ".join((cells[0], *cells[2:])))
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    report = run_import(database, programme_id=programme.id, path=path, kind="events",
                        fmt="cdnow", chunk_size=2000, enrol_unknown="active",
                        rejects_path=path.with_suffix(".rejects"))  # fmt: skip
    assert report.accepted == 6919
    return programme


def file_holdout() -> dict[str, int]:
    """Holdout purchase days (1997-10-01 .. 1998-06-30) per customer, from the file."""
    days: dict[str, set[str]] = {}
    for text in SAMPLE.read_text(encoding="ascii").splitlines():
        cells = text.split()
        if len(cells) == 5 and cells[2] >= "19971001":
            days.setdefault(cells[0], set()).add(cells[2])
    return {c: len(d) for c, d in days.items()}


def test_programme_fit_reproduces_the_published_estimates(
    database: Database, cdnow: Programme
) -> None:
    with database.transaction(readonly=True) as session:
        result = clv_service.fit(session, programme=cdnow, as_of=date(1997, 10, 1))
    assert len(result.rfm) == 2357
    assert int((result.rfm.x > 0).sum()) == 946
    bg, gg = result.bg, result.gg
    assert (round(bg.r, 3), round(bg.alpha, 3), round(bg.a, 3), round(bg.b, 3)) == (
        0.243, 4.414, 0.793, 2.426,
    )  # fmt: skip
    assert round(bg.log_likelihood, 1) == -9582.4
    assert (round(gg.p, 2), round(gg.q, 2), round(gg.gamma, 2)) == (6.25, 3.74, 15.44)
    out = clv_service.describe(result)
    assert out["summary"]["customers"] == 2357
    assert sum(out["summary"]["churn_risk"].values()) == 2357


def test_holdout_counts_what_the_file_says(database: Database, cdnow: Programme) -> None:
    with database.transaction(readonly=True) as session:
        report = clv_service.holdout(
            session, programme=cdnow, calibration_end=date(1997, 10, 1), until=date(1998, 7, 1)
        )
    assert report["actual_total"] == sum(file_holdout().values())
    assert report["customers"] == 2357
    # The model's aggregate holdout forecast is within 15 % of what happened.
    assert abs(report["predicted_total"] / report["actual_total"] - 1) < 0.15
    assert report["correlation"] > 0.5


def test_refresh_writes_every_purchasers_traits(database: Database, cdnow: Programme) -> None:
    now = datetime(1998, 6, 30, 12, tzinfo=UTC)
    with database.transaction() as session:
        stored = clv_service.refresh(session, programme=cdnow, now=now)
        assert stored.customers == 2357
    with database.transaction(readonly=True) as session:
        rows = session.execute(
            select(MemberIdentity.value, MemberTraits.p_alive, MemberTraits.clv,
                   MemberTraits.churn_risk)
            .join(MemberTraits, MemberTraits.member_id == MemberIdentity.member_id)
            .where(MemberTraits.programme_id == cdnow.id)
        ).all()  # fmt: skip
    assert len(rows) == 2357
    for _, p_alive, value, risk in rows:
        assert p_alive is not None
        assert 0 <= p_alive <= 1
        assert math.isfinite(p_alive)
        assert value is not None
        assert value >= Decimal(0)
        assert risk == clv_service.band(p_alive)
    by_customer = {c: (p, v, r) for c, p, v, r in rows}
    # The sample's most frequent buyer is alive and worth more than a single-purchase customer
    # of the first week of 1997 who never came back.
    assert {r for _, _, _, r in rows} == {"low", "medium", "high"}
    best = max(by_customer.items(), key=lambda kv: kv[1][1])
    assert best[1][2] == "low"


def test_churn_traits_read_by_conditions(database: Database, cdnow: Programme) -> None:
    """traits.p_alive / clv / churn_risk are declared like every trait: SQL and Python agree."""
    for name in ("traits.p_alive", "traits.clv", "traits.churn_risk"):
        assert trait_fields.resolve(name, None) is not None
    with database.transaction() as session:  # on its own: tests run in any order, any worker
        clv_service.refresh(session, programme=cdnow, now=datetime(1998, 6, 30, 12, tzinfo=UTC))
    with database.transaction(readonly=True) as session:
        n_high = session.scalar(
            select(func.count())
            .select_from(MemberTraits)
            .where(MemberTraits.programme_id == cdnow.id, MemberTraits.churn_risk == "high")
        )
    assert n_high
    assert n_high > 0


def test_api_fit_csv_refresh_and_latest(
    database: Database, cdnow: Programme, api_factory: Callable[[Programme], Api]
) -> None:
    api = api_factory(cdnow)
    got = api.get("/analytics/clv", params={"as_of": "1997-10-01"}, scope="read")
    assert got.status_code == 200, got.text
    body = got.json()
    assert round(body["bgnbd"]["r"], 3) == 0.243
    assert body["time_unit"] == "week"
    held = api.get("/analytics/clv", params={"as_of": "1998-07-01", "holdout_days": 273},
                   scope="read")  # fmt: skip
    assert held.status_code == 200, held.text
    assert held.json()["holdout"]["calibration_end"] == "1997-10-01"
    csv = api.get("/analytics/clv", params={"as_of": "1997-10-01", "format": "csv"}, scope="read")
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0].startswith("member_id,repeat_purchases")
    assert len(lines) == 2358
    assert "nan" not in csv.text.lower()
    assert api.post("/analytics/clv/refresh", json={}, scope="read").status_code == 403
    done = api.post("/analytics/clv/refresh", json={"horizon_months": 6, "daily": True})
    assert done.status_code == 200, done.text
    assert done.json()["settings"]["horizon_months"] == 6
    with database.transaction(readonly=True) as session:
        scored = session.scalar(
            select(MemberTraits.member_id)
            .where(MemberTraits.programme_id == cdnow.id, MemberTraits.p_alive.is_not(None))
            .limit(1)
        )
    traits = api.get(f"/members/{scored}/traits", scope="read").json()
    assert 0 <= traits["p_alive"] <= 1
    assert traits["churn_risk"] == clv_service.band(traits["p_alive"])
    assert traits["clv"] is not None
    latest = api.get("/analytics/clv/latest", scope="read")
    assert latest.status_code == 200
    assert latest.json()["stored_at"] == done.json()["stored_at"]
    with database.transaction(readonly=True) as session:
        job = session.scalar(select(Job).where(Job.programme_id == cdnow.id,
                                               Job.kind == clv_service.REFRESH_JOB))  # fmt: skip
        assert job is not None
        assert job.payload["settings"]["horizon_months"] == 6
        # The job's handler, run as the worker runs it: refits with the job's settings, stores
        # the fit and schedules the next day.
        before = session.scalar(select(func.count()).select_from(ClvFit).where(
            ClvFit.programme_id == cdnow.id))  # fmt: skip
    with database.transaction() as session:
        found = session.get(Job, job.id)
        assert found is not None
        clv_service.run_refresh(session, found)
    with database.transaction(readonly=True) as session:
        after = session.scalar(select(func.count()).select_from(ClvFit).where(
            ClvFit.programme_id == cdnow.id))  # fmt: skip
        jobs = session.scalar(select(func.count()).select_from(Job).where(
            Job.programme_id == cdnow.id, Job.kind == clv_service.REFRESH_JOB))  # fmt: skip
    assert after == (before or 0) + 1
    assert jobs == 2


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"horizon_months": 0}, "horizon_months"),
        ({"discount_rate": 1.5}, "discount_rate"),
        ({"as_of": "yesterday"}, "as_of"),
        ({"format": "xml"}, "format"),
        ({"holdout_days": 1}, "holdout_days"),
        ({"as_of": "0001-01-02", "holdout_days": 30}, "as_of"),
    ],
)
def test_bad_parameters_are_422_naming_the_field(
    cdnow: Programme,
    api_factory: Callable[[Programme], Api],
    params: dict[str, object],
    field: str,
) -> None:
    got = api_factory(cdnow).get("/analytics/clv", params=params, scope="read")
    assert got.status_code == 422
    assert field in got.text


def test_too_little_history_is_a_clear_422_and_nothing_is_written(
    database: Database, api_factory: Callable[[Programme], Api]
) -> None:
    programme = make_programme(database)
    api = api_factory(programme)
    got = api.get("/analytics/clv", scope="read")
    assert got.status_code == 422
    assert got.json()["fields"][0]["loc"][-1] == "customers"
    assert "at least 30 customers" in got.json()["detail"]
    refreshed = api.post("/analytics/clv/refresh", json={})
    assert refreshed.status_code == 422
    with database.transaction(readonly=True) as session:
        count = session.scalar(
            select(func.count()).select_from(ClvFit).where(ClvFit.programme_id == programme.id)
        )
    assert count == 0
    assert api.get("/analytics/clv/latest", scope="read").status_code == 404


def test_recent_programme_needs_four_weeks_of_history(
    database: Database, api_factory: Callable[[Programme], Api]
) -> None:
    programme = make_programme(database)
    api = api_factory(programme)
    members = [make_member(database, programme) for _ in range(40)]
    today = datetime.now(UTC).replace(microsecond=0)
    events = []
    for i, member in enumerate(members):
        for k in range(2):
            events.append({
                "id": f"o-{i}-{k}", "type": "purchase",
                "occurred_at": (today - timedelta(days=3 - k)).isoformat(),
                "member": {"id": str(member.id)},
                "properties": {"order_id": f"o-{i}-{k}", "total": "10.00",
                               "lines": [{"sku": "a", "quantity": 1, "unit_price": "10.00"}]},
            })  # fmt: skip
    sent = api.post("/events/batch", json={"events": events},
                    scope="integration")  # fmt: skip
    assert sent.status_code in (200, 207), sent.text
    got = api.get("/analytics/clv", scope="read")
    assert got.status_code == 422, got.text
    assert got.json()["fields"][0]["loc"][-1] == "history"
