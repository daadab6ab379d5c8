"""`fidelia ledger`: verify, balance, adjust, reverse, and a catch-up of due releases/expiries."""

from __future__ import annotations

import uuid
from decimal import Decimal

import typer
from rich.table import Table

from fidelia.cli.common import console, database, err_console, failing_cleanly, programme_by_slug
from fidelia.kit.clock import utcnow
from fidelia.ledger import operations, returns, wallets
from fidelia.ledger.repository import find_member_account
from fidelia.ledger.verify import verify
from fidelia.programmes import service as programmes

ledger_app = typer.Typer(help="The points ledger.", no_args_is_help=True)
ProgrammeOpt = typer.Option(..., "--programme", "-p", help="The programme's slug")


@ledger_app.command("verify")
def verify_command(
    programme: str = typer.Option(None, "--programme", "-p", help="Only this programme"),
) -> None:
    """Re-derive every balance and lot from the entries; exit 1 on any discrepancy."""
    db = database()
    with failing_cleanly(), db.transaction(readonly=True) as session:
        programme_id = programme_by_slug(session, programme).id if programme else None
        report = verify(session, programme_id=programme_id)
    console.print(
        f"checked {report.transactions} transactions, {report.accounts} accounts, "
        f"{report.lots} lots"
    )
    if report.ok:
        console.print("[green]ledger OK[/green]")
        return
    table = Table("check", "subject", "detail")
    for problem in report.problems:
        table.add_row(problem.check, problem.subject, problem.detail)
    err_console.print(table)
    err_console.print(f"[red]{len(report.problems)} discrepancies[/red]")
    raise typer.Exit(1)


@ledger_app.command("balance")
def balance_command(member_id: uuid.UUID, programme: str = ProgrammeOpt) -> None:
    """Print a member's balances in every wallet."""
    db = database()
    with failing_cleanly(), db.transaction(readonly=True) as session:
        found = programme_by_slug(session, programme)
        table = Table("wallet", "available", "pending", "earned", "spent", "expired")
        for wallet in wallets.list_wallets(session, programme=found):
            account = find_member_account(session, wallet=wallet, member_id=member_id)
            values = [
                getattr(account, c, 0) if account else 0
                for c in ("available", "pending", "lifetime_earned", "lifetime_spent")
            ] + [account.lifetime_expired if account else 0]
            table.add_row(wallet.code, *(str(wallets.from_minor(wallet, v)) for v in values))
    console.print(table)


@ledger_app.command("adjust")
def adjust_command(
    member_id: uuid.UUID,
    amount: Decimal,
    programme: str = ProgrammeOpt,
    wallet: str = typer.Option("points", help="Wallet code"),
    reason: str = typer.Option(..., help="Why (kept in the ledger)"),
    actor: str = typer.Option(..., help="Who"),
    key: str = typer.Option(None, help="Idempotency key [default: a new one]"),
) -> None:
    """Credit (positive) or debit (negative) a member's wallet."""
    db = database()
    with failing_cleanly(), db.transaction() as session:
        txn = operations.adjust(
            session,
            programme=programme_by_slug(session, programme),
            member_id=member_id,
            wallet=wallet,
            amount=amount,
            reason=reason,
            actor=actor,
            idempotency_key=key or f"cli-adjust:{uuid.uuid4()}",
        )
    console.print(f"posted adjustment {txn.id}")


@ledger_app.command("reverse")
def reverse_command(
    transaction_id: uuid.UUID,
    programme: str = ProgrammeOpt,
    reason: str = typer.Option(..., help="Why (kept in the ledger)"),
    actor: str = typer.Option(..., help="Who"),
) -> None:
    """Reverse one transaction (at most once)."""
    db = database()
    with failing_cleanly(), db.transaction() as session:
        txn = returns.reverse(
            session,
            programme=programme_by_slug(session, programme),
            transaction_id=transaction_id,
            idempotency_key=f"reverse:{transaction_id}",
            reason=reason,
            actor=actor,
        )
    console.print(f"posted reversal {txn.id}")


@ledger_app.command("expire")
def expire_command(
    programme: str = typer.Option(None, "--programme", "-p", help="Only this programme"),
) -> None:
    """Release and expire every lot due now (what the worker's jobs do), then exit."""
    db = database()
    now = utcnow()
    released = expired = 0
    with failing_cleanly(), db.transaction(readonly=True) as session:
        targets = (
            [programme_by_slug(session, programme)] if programme else programmes.list_all(session)
        )
    for target in targets:
        with db.transaction() as session:
            to_release, to_expire = operations.due_lots(session, programme=target, now=now)
        for lot_id in to_release:
            with db.transaction() as session:
                released += (
                    operations.release_lot(session, programme=target, lot_id=lot_id, now=now)
                    is not None
                )
        for lot_id in to_expire:
            with db.transaction() as session:
                expired += (
                    operations.expire_lot(session, programme=target, lot_id=lot_id, now=now)
                    is not None
                )
    console.print(f"released {released} lots, expired {expired} lots")
