"""`fidelia report ...`: the programme's numbers as rich tables (issue 15).

Each analytics module adds its commands here: ``clv`` and ``lift`` (fidelia.cli.report_models).
"""

from __future__ import annotations

import typer

from fidelia.cli import report_kpis, report_models

report_app = typer.Typer(help="Programme analytics: KPIs, cohorts, liability, CLV, lift.",
                         no_args_is_help=True)  # fmt: skip
report_app.command("kpis")(report_kpis.kpis_command)
report_app.command("cohorts")(report_kpis.cohorts_command)
report_app.command("liability")(report_kpis.liability_command)
report_app.command("tiers")(report_kpis.tiers_command)
report_app.command("refresh")(report_kpis.refresh_command)
report_app.command("clv")(report_models.clv_command)
report_app.command("lift")(report_models.lift_command)
