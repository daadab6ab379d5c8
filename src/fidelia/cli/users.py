"""`fidelia user`: back-office users (the first owner of a programme, and the next ones)."""

from __future__ import annotations

import sys

import typer

from fidelia.cli.common import console, database, failing_cleanly, programme_by_slug
from fidelia.errors import ValidationFailed
from fidelia.users import service as users
from fidelia.users.service import Role

user_app = typer.Typer(help="Back-office users.", no_args_is_help=True)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@user_app.command("create")
def create(
    programme: str = typer.Option(..., "--programme", help="Programme slug"),
    email: str = typer.Option(..., "--email", help="The user's email (their login)"),
    role: Role = typer.Option(Role.owner, "--role", help="owner, marketer, support or analyst"),
    name: str = typer.Option("", "--name", help="Display name"),
    locale: str = typer.Option(None, "--locale", help="fr or en [default: the programme's]"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin"
    ),
) -> None:
    """Create a back-office user with a role in a programme; an existing user gets the role."""
    secret = _password(password_stdin)
    with failing_cleanly(), database().transaction() as session:
        target = programme_by_slug(session, programme)
        user = users.find_by_email(session, email=email)
        if user is None:
            user = users.create_user(
                session, email=email, password=secret, name=name, locale=locale
            )
        elif not secret:
            raise ValidationFailed.on("password", "required")
        users.grant(session, user=user, programme=target, role=role)
    console.print(f"{user.email} is {role.value} of {target.slug}; sign in at /admin/login")
