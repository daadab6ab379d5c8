from __future__ import annotations

import getpass
import json
import uuid
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.syntax import Syntax
from rich.table import Table

from fidelia.auth import service as apikeys
from fidelia.auth.schemas import Scope
from fidelia.cli.common import (
    console,
    database,
    failing_cleanly,
    id_column,
    programme_by_slug,
)
from fidelia.programmes import documents
from fidelia.programmes import service as programmes
from fidelia.programmes.schemas import ProgrammeCreate, ProgrammeOut, ProgrammeSettings

programme_app = typer.Typer(help="Programmes (brands, tenants).", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys of a programme.", no_args_is_help=True)


@programme_app.command("create")
def create(
    slug: str = typer.Argument(..., help="Short unique name, e.g. earth-care"),
    name: str = typer.Option(..., help="Display name"),
    currency: str = typer.Option("EUR", help="ISO 4217 currency"),
    timezone: str = typer.Option("Europe/Paris", help="IANA time zone"),
    locale: str = typer.Option("fr-FR", help="Default locale"),
    country: str = typer.Option("FR", help="Country (default region of phone numbers)"),
    enrol_unknown: bool = typer.Option(
        False, help="Enrol prospects for events of unknown identities"
    ),
) -> None:
    """Create a programme."""
    from pydantic import ValidationError

    try:
        data = ProgrammeCreate(
            slug=slug,
            name=name,
            currency=currency,
            timezone=timezone,
            locale=locale,
            country=country,
            settings=ProgrammeSettings(
                unknown_member="enrol_prospect" if enrol_unknown else "reject"
            ),
        )
    except ValidationError as exc:
        for err in exc.errors():
            console.print(f"[red]error:[/red] {'.'.join(str(p) for p in err['loc'])}: {err['msg']}")
        raise typer.Exit(1) from exc
    with failing_cleanly(), database().transaction() as session:
        programme = programmes.create(session, data=data)
        console.print(f"created programme [bold]{programme.slug}[/bold] ({programme.id})")


@programme_app.command("list")
def list_programmes() -> None:
    """List the programmes."""
    table = Table("slug", "name", "currency", "time zone", "locale", "id")
    with database().transaction(readonly=True) as session:
        for p in programmes.list_all(session):
            table.add_row(p.slug, p.name, p.currency, p.timezone, p.locale, str(p.id))
    console.print(table)


@programme_app.command("show")
def show(slug: str) -> None:
    """Show one programme as JSON."""
    with failing_cleanly(), database().transaction(readonly=True) as session:
        console.print_json(
            ProgrammeOut.model_validate(programme_by_slug(session, slug)).model_dump_json()
        )


@apikey_app.command("create")
def create_key(
    programme: str = typer.Option(..., "--programme", "-p", help="The programme's slug"),
    name: str = typer.Option(..., help="What the key is for, e.g. 'POS Lyon'"),
    scope: Scope = typer.Option(Scope.integration, help="admin, integration or read"),
) -> None:
    """Create a key; the secret is printed once and cannot be shown again."""
    with failing_cleanly(), database().transaction() as session:
        prog = programme_by_slug(session, programme)
        key, secret = apikeys.create(session, programme=prog, name=name, scope=scope)
    console.print(f"key {key.id} ({scope.value}) for {prog.slug}:")
    console.print(secret, highlight=False, soft_wrap=True)


@apikey_app.command("list")
def list_keys(
    programme: str = typer.Option(..., "--programme", "-p", help="The programme's slug"),
) -> None:
    """List a programme's keys (never their secrets)."""
    table = Table(id_column(), "name", "scope", "prefix", "created", "revoked")
    with failing_cleanly(), database().transaction(readonly=True) as session:
        for k in apikeys.list_keys(session, programme=programme_by_slug(session, programme)):
            revoked = k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else ""
            table.add_row(
                str(k.id),
                k.name,
                k.scope,
                k.prefix,
                k.created_at.isoformat(timespec="seconds"),
                revoked,
            )
    console.print(table)


@apikey_app.command("revoke")
def revoke_key(
    key_id: uuid.UUID,
    programme: str = typer.Option(..., "--programme", "-p", help="The programme's slug"),
) -> None:
    """Revoke a key; calls with it get 401 from now on."""
    with failing_cleanly(), database().transaction() as session:
        apikeys.revoke(session, programme=programme_by_slug(session, programme), key_id=key_id)
    console.print(f"revoked {key_id}")


def load_document(path: Path) -> Any:
    """A programme document from a YAML (.yaml/.yml) or JSON file; exits 1 if unreadable."""
    text = path.read_text(encoding="utf-8")
    try:
        return (
            yaml.safe_load(text) if path.suffix.lower() in (".yaml", ".yml") else json.loads(text)
        )
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        console.print(
            f"[red]error:[/red] {path.name} is not valid {path.suffix[1:].upper()}: {exc}"
        )
        raise typer.Exit(1) from exc


@programme_app.command("apply")
def apply(
    path: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="Programme document (YAML or JSON)"
    ),
    programme: str = typer.Option(..., "--programme", "-p", help="The programme's slug"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and show the diff only"),
    comment: str = typer.Option("", help="Why this version (kept with it)"),
) -> None:
    """Validate a programme document, show its diff against the live version, apply it."""
    raw = load_document(path)
    actor = f"cli:{getpass.getuser()}"
    with failing_cleanly(), database().transaction() as session:
        prog = programme_by_slug(session, programme)
        result = documents.apply(
            session, programme=prog, raw=raw, actor=actor, comment=comment, dry_run=dry_run
        )
        if not result.changed:
            console.print(f"no change: the live version {result.version} is the same")
            return
        console.print(Syntax(result.diff, "diff", theme="ansi_dark", background_color="default"))
        if dry_run:
            console.print("[yellow]dry run: nothing applied[/yellow]")
        else:
            console.print(f"applied as version [bold]{result.version}[/bold]")


@programme_app.command("export")
def export(
    programme: str = typer.Option(..., "--programme", "-p", help="The programme's slug"),
    version: int = typer.Option(None, help="A past version [default: the live one]"),
    out: Path = typer.Option(None, "--out", "-o", help="Write to this file instead of stdout"),
) -> None:
    """Write the live (or a past) programme document as YAML."""
    with failing_cleanly(), database().transaction(readonly=True) as session:
        prog = programme_by_slug(session, programme)
        number = version if version is not None else prog.live_version
        if number == 0:
            console.print("[red]error:[/red] no programme document has been applied yet")
            raise typer.Exit(1)
        text = documents.to_yaml(
            documents.get_version(session, programme=prog, version=number).document
        )
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"version {number} written to {out}")


@programme_app.command("versions")
def versions(
    programme: str = typer.Option(..., "--programme", "-p", help="The programme's slug"),
) -> None:
    """List the programme's document versions."""
    table = Table("version", "applied at", "by", "comment")
    with failing_cleanly(), database().transaction(readonly=True) as session:
        prog = programme_by_slug(session, programme)
        for row in documents.list_versions(session, programme=prog):
            live = " (live)" if row.version == prog.live_version else ""
            table.add_row(
                f"{row.version}{live}",
                row.created_at.isoformat(timespec="seconds"),
                row.actor,
                row.comment,
            )
    console.print(table)
