"""`fidelia report clv` and `fidelia report lift`: CLV/churn fits and experiment lift."""

from __future__ import annotations

import csv
import gzip
import json
from datetime import date, timedelta
from pathlib import Path

import typer
from rich.table import Table

from fidelia.analytics import clv_service, lift
from fidelia.cli.common import console, database, failing_cleanly, programme_by_slug
from fidelia.kit.clock import utcnow


def clv_command(
    programme: str = typer.Option(..., "--programme", "-p", help="The programme's slug"),
    as_of: str = typer.Option(None, "--as-of", help="UTC day YYYY-MM-DD, excluded"),
    horizon_months: int = typer.Option(12, min=1, max=120, help="CLV horizon"),
    discount_rate: float = typer.Option(0.10, min=0.0, max=0.99, help="Yearly discount rate"),
    margin: float = typer.Option(1.0, min=0.01, max=1.0, help="Gross margin on spend"),
    holdout_days: int = typer.Option(None, min=7, help="Also report a calibration/holdout split"),
    refresh: bool = typer.Option(False, "--refresh", help="Store the fit and write the traits"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables"),
) -> None:
    """Fit BG/NBD + Gamma-Gamma on the programme's purchases: parameters, churn bands, CLV."""
    settings = clv_service.Settings(horizon_months, discount_rate, margin)
    db = database()
    with failing_cleanly(), db.transaction() as session:
        found = programme_by_slug(session, programme)
        if refresh:
            clv_service.refresh(session, programme=found, now=utcnow(), settings=settings)
        day = _day(as_of) if as_of else utcnow().date() + timedelta(days=1)
        result = clv_service.fit(session, programme=found, as_of=day, settings=settings)
        out = clv_service.describe(result)
        if holdout_days:
            out["holdout"] = clv_service.holdout(
                session, programme=found, calibration_end=day - timedelta(days=holdout_days),
                until=day,
            )  # fmt: skip
    if as_json:
        console.print_json(json.dumps(out))
        return
    params = Table(title=f"CLV models of {programme} (as of {out['as_of']}, weeks)")
    params.add_column("model")
    params.add_column("parameters")
    params.add_column("log-likelihood", justify="right")
    params.add_column("customers", justify="right")
    bg, gg = out["bgnbd"], out["gamma_gamma"]
    params.add_row(
        "BG/NBD",
        f"r={bg['r']:.4f} alpha={bg['alpha']:.4f} a={bg['a']:.4f} b={bg['b']:.4f}",
        f"{bg['log_likelihood']:.1f}",
        str(bg["customers"]),
    )
    params.add_row("Gamma-Gamma", f"p={gg['p']:.4f} q={gg['q']:.4f} gamma={gg['gamma']:.4f}",
                   f"{gg['log_likelihood']:.1f}", str(gg["customers"]))  # fmt: skip
    console.print(params)
    s = out["summary"]
    summary = Table(title="Scores")
    for col in ("purchasers", "repeat", "churn low/medium/high", "mean P(alive)", "CLV total",
                "CLV mean"):  # fmt: skip
        summary.add_column(col, justify="right")
    bands = s["churn_risk"]
    summary.add_row(str(s["customers"]), str(s["repeat_customers"]),
                    f"{bands['low']}/{bands['medium']}/{bands['high']}",
                    f"{s['mean_p_alive']:.3f}", s["clv_total"], s["clv_mean"])  # fmt: skip
    console.print(summary)
    if "holdout" in out:
        h = out["holdout"]
        table = Table(title=f"Holdout {h['calibration_end']} .. {h['holdout_end']}")
        for col in ("calibration repeats", "customers", "actual mean", "predicted mean"):
            table.add_column(col, justify="right")
        for g in h["by_calibration_frequency"]:
            table.add_row(g["calibration_repeats"], str(g["customers"]),
                          f"{g['actual_mean']:.3f}", f"{g['predicted_mean']:.3f}")  # fmt: skip
        table.add_row("all", str(h["customers"]), str(h["actual_total"]),
                      f"{h['predicted_total']:.1f}")  # fmt: skip
        console.print(table)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"--as-of: {text!r} is not a day YYYY-MM-DD") from exc


def lift_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV or CSV.gz"),
    group: str = typer.Option(..., "--group", help="Column naming each row's arm"),
    control: str = typer.Option(..., "--control", help="The control arm's value"),
    rate: list[str] = typer.Option([], "--rate", help="0/1 outcome column (repeatable)"),
    mean: list[str] = typer.Option([], "--mean", help="Numeric outcome column (repeatable)"),
    confidence: float = typer.Option(0.95, min=0.5, max=0.999),
) -> None:
    """Lift of every arm against the control, per outcome, with confidence intervals."""
    opener = gzip.open if file.suffix == ".gz" else open
    values: dict[str, dict[str, list[float]]] = {}
    with failing_cleanly(), opener(file, "rt", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in (group, *rate, *mean) if c not in (reader.fieldnames or [])]
        if missing:
            raise typer.BadParameter(f"no column {', '.join(missing)} in {file}")
        for row in reader:
            arm = values.setdefault(row[group], {c: [] for c in (*rate, *mean)})
            for c in (*rate, *mean):
                arm[c].append(float(row[c]))
        if control not in values:
            raise typer.BadParameter(f"no row has {group} = {control!r}")
        table = Table(title=f"Lift against {control} ({confidence:.0%} intervals)")
        for col in ("arm", "outcome", "treated", "control", "difference", "interval", "p"):
            table.add_column(col, justify="right" if col not in ("arm", "outcome") else "left")
        for name, cols in sorted(values.items()):
            if name == control:
                continue
            for c in rate:
                t, k = cols[c], values[control][c]
                r = lift.compare_rates(int(sum(t)), len(t), int(sum(k)), len(k),
                                       confidence=confidence)  # fmt: skip
                table.add_row(name, c, f"{r.treatment_rate:.4%}", f"{r.control_rate:.4%}",
                              f"{r.difference:+.4%}", f"[{r.ci_low:+.4%}, {r.ci_high:+.4%}]",
                              f"{r.p_value:.2g}" if r.p_value is not None else "-")  # fmt: skip
            for c in mean:
                m = lift.compare_means(
                    lift.summarise(cols[c]),
                    lift.summarise(values[control][c]),
                    confidence=confidence,
                )
                table.add_row(name, c, f"{m.treatment_mean:.4f}", f"{m.control_mean:.4f}",
                              f"{m.difference:+.4f}", f"[{m.ci_low:+.4f}, {m.ci_high:+.4f}]",
                              f"{m.p_value:.2g}" if m.p_value is not None else "-")  # fmt: skip
    console.print(table)
