from __future__ import annotations

import uuid

import typer
from rich.table import Table

from fidelia.auth import service as apikeys
from fidelia.auth.schemas import Scope
from fidelia.cli.common import console, database, failing_cleanly, programme_by_slug, run_server
from fidelia.config import get_settings
from fidelia.migrations import upgrade
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
    table = Table("id", "name", "scope", "prefix", "created", "revoked")
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


def demo(
    serve: bool = typer.Option(True, help="Serve the API after setting up"),
    reset: bool = typer.Option(False, "--reset", help="Start again from an empty database"),
) -> None:
    """Create (or reuse) the demo database and programme, print an admin key, and serve."""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    settings = get_settings()
    url = make_url(settings.database_url)
    if reset and url.get_backend_name() == "sqlite" and url.database:
        for suffix in ("", "-wal", "-shm"):
            Path(url.database + suffix).unlink(missing_ok=True)
    db = database()
    upgrade(db.engine)
    with db.transaction() as session:
        existing = {p.slug: p for p in programmes.list_all(session)}
        prog = existing.get("demo") or programmes.create(
            session, data=ProgrammeCreate(slug="demo", name="Earth Care (demo)")
        )
        _, secret = apikeys.create(session, programme=prog, name="demo admin", scope=Scope.admin)
    base = f"http://{settings.host}:{settings.port}"
    console.print(
        f"[bold]Fidelia demo[/bold] — programme [bold]{prog.slug}[/bold]"
        f" on {url.render_as_string()}"
    )
    console.print(f"API docs:  {base}/docs")
    console.print("admin API key (shown once):")
    console.print(secret, highlight=False, soft_wrap=True)
    console.print("try:")
    console.print(
        f"  curl -H 'Authorization: Bearer {secret}' {base}/api/v1/programme",
        highlight=False,
        soft_wrap=True,
    )
    if serve:
        run_server(settings.host, settings.port, 1, settings.embedded_worker)
