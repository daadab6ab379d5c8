"""Every back-office route checks, on the server, who may do what: signed out -> the sign-in
form; another programme -> 404 (its data never shown); an analyst -> reads only; only owners
manage API keys; a form without the session's CSRF token -> 403. Refused writes change
nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from fidelia.db import Database
from fidelia.models import ApiKey, LedgerTransaction, Member, Programme
from fidelia.models.audit import AuditEntry
from fidelia.users.service import Role
from tests.web.conftest import Browser

READS = ["/", "/members?q=a", "/members/{member}", "/keys", "/audit"]


def writes(member: Member, key: ApiKey) -> list[tuple[str, dict[str, str]]]:
    return [
        (f"/members/{member.id}/adjust", {"wallet": "points", "amount": "10", "reason": "test"}),
        ("/keys", {"name": "till", "scope": "read"}),
        (f"/keys/{key.id}/revoke", {}),
    ]


def counts(database: Database, programme: Programme) -> tuple[int, int, int]:
    with database.transaction(readonly=True) as session:

        def n(model: type, *where: object) -> int:
            return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

        return (
            n(LedgerTransaction, LedgerTransaction.programme_id == programme.id),
            n(ApiKey, ApiKey.programme_id == programme.id, ApiKey.revoked_at.is_(None)),
            n(AuditEntry, AuditEntry.programme_id == programme.id),
        )


@pytest.fixture
def setting(
    database: Database, programme: Programme, member_factory: Callable[..., Member]
) -> tuple[Programme, Member, ApiKey]:
    from fidelia.auth import service as apikeys
    from fidelia.auth.schemas import Scope

    member = member_factory(first_name="Ada", last_name="Lovelace")
    with database.transaction() as session:
        key, _ = apikeys.create(session, programme=programme, name="pos", scope=Scope.read)
    return programme, member, key


def url(programme: Programme, path: str, member: Member) -> str:
    return f"/admin/p/{programme.slug}{path.format(member=member.id)}"


def test_signed_out_every_route_leads_to_the_sign_in_form(
    browser: Callable[..., Browser], setting: tuple[Programme, Member, ApiKey], database: Database
) -> None:
    programme, member, key = setting
    anonymous = browser()
    before = counts(database, programme)
    for path in READS:
        response = anonymous.get(url(programme, path, member))
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/admin/login?next=")
    for path, form in writes(member, key):
        assert anonymous.post(url(programme, path, member), form).status_code == 303
    assert counts(database, programme) == before


def test_another_programmes_pages_and_members_are_not_found(
    signed_in: Callable[..., Browser],
    programme_factory: Callable[..., Programme],
    setting: tuple[Programme, Member, ApiKey],
    member_factory: Callable[..., Member],
    database: Database,
) -> None:
    programme, member, key = setting
    mine = programme_factory()
    owner_elsewhere = signed_in(mine, Role.owner)
    before = counts(database, programme)
    for path in READS:
        response = owner_elsewhere.get(url(programme, path, member))
        assert response.status_code == 404, path
        assert "Lovelace" not in response.text
    for path, form in writes(member, key):
        assert owner_elsewhere.post(url(programme, path, member), form).status_code == 404
    # their own programme's URL with the other programme's member or key: 404 too
    assert owner_elsewhere.get(url(mine, "/members/{member}", member)).status_code == 404
    for path, form in writes(member, key)[::2]:
        assert owner_elsewhere.post(url(mine, path, member), form).status_code == 404
    search = owner_elsewhere.get(url(mine, "/members?q=Lovelace", member)).text
    assert "No member matches" in search
    assert str(member.id) not in search
    assert counts(database, programme) == before


@pytest.mark.parametrize("role", list(Role))
def test_each_role_reads_every_page(
    role: Role, signed_in: Callable[..., Browser], setting: tuple[Programme, Member, ApiKey]
) -> None:
    programme, member, _key = setting
    reader = signed_in(programme, role)
    for path in READS:
        response = reader.get(url(programme, path, member))
        assert response.status_code == 200, path
    page = reader.get(url(programme, "/members/{member}", member)).text
    assert ("/adjust" in page) == role.can_write
    assert ("/revoke" in reader.get(url(programme, "/keys", member)).text) == role.can_manage


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.analyst, []),
        (Role.support, [0]),
        (Role.marketer, [0]),
        (Role.owner, [0, 1, 2]),
    ],
)
def test_writes_are_refused_to_roles_that_may_not_make_them(
    role: Role,
    allowed: list[int],
    signed_in: Callable[..., Browser],
    setting: tuple[Programme, Member, ApiKey],
    database: Database,
) -> None:
    programme, member, key = setting
    writer = signed_in(programme, role)
    for index, (path, form) in enumerate(writes(member, key)):
        before = counts(database, programme)
        response = writer.post(url(programme, path, member), form)
        if index in allowed:
            assert response.status_code in (201, 303), (path, response.text[:500])
            assert counts(database, programme) != before
        else:
            assert response.status_code == 403, path
            assert counts(database, programme) == before


def test_a_form_without_the_sessions_csrf_token_is_refused(
    signed_in: Callable[..., Browser], setting: tuple[Programme, Member, ApiKey], database: Database
) -> None:
    programme, member, key = setting
    owner = signed_in(programme, Role.owner)
    before = counts(database, programme)
    for path, form in writes(member, key):
        missing = owner.post(url(programme, path, member), form, csrf=False)
        assert missing.status_code == 403
        assert "security token" in missing.text
        forged = owner.post(url(programme, path, member), {**form, "csrf_token": "forged"})
        assert forged.status_code == 403
    other = signed_in(programme, Role.owner)  # another session's token does not do either
    path, form = writes(member, key)[0]
    stolen = owner.client.post(
        url(programme, path, member), data={**form, "csrf_token": other.tokens["csrf_token"]}
    )
    assert stolen.status_code == 403
    assert counts(database, programme) == before
