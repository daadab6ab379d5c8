"""Who reads a portal page: the programme of the URL with its white label and the reader's
language (:class:`Site`), and for member pages the signed-in member (:class:`Me`).

Member sessions are the portal's own (cookie ``fidelia_member``, table ``portal_sessions``),
scoped to the programme: a member's session of one programme opens nothing in another, and
no page takes a member id from the URL, so a member can only ever read their own data. Forms
before sign-in carry a double-submit token (cookie and hidden field); forms after sign-in carry
the session's CSRF token, checked by :func:`write_me`.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Form, Request

from fidelia.auth.dependencies import get_database
from fidelia.engagement.plus import plus_for
from fidelia.errors import Forbidden, NotFound
from fidelia.kit.clock import utcnow
from fidelia.models import Member, Programme
from fidelia.portal import signin
from fidelia.portal.branding import section_for
from fidelia.portal.i18n import Formatter, best_language, language_of
from fidelia.programmes import service as programmes
from fidelia.programmes.portal_section import PortalSection
from fidelia.transfers import service as transfers

BASE = "/portal"
SESSION_COOKIE = "fidelia_member"
FORM_COOKIE = "fidelia_member_form"
LANG_COOKIE = "fidelia_member_lang"


class NotSignedIn(Exception):
    """No live member session: the page redirects to the sign-in form."""

    def __init__(self, slug: str) -> None:
        super().__init__(slug)
        self.slug = slug


class BadCsrf(Forbidden):
    code = "csrf"


@dataclass(frozen=True)
class Site:
    """A portal page's programme, its white label and the reader's formatting."""

    programme: Programme
    section: PortalSection
    fmt: Formatter
    features: frozenset[str] = frozenset()  # "leaderboards", "referral", "transfers": tabs

    @property
    def base(self) -> str:
        return f"{BASE}/{self.programme.slug}"

    @property
    def name(self) -> str:
        return self.section.name or self.programme.name


@dataclass(frozen=True)
class Me:
    """The signed-in member on a page of their programme."""

    site: Site
    member: Member
    session_id: uuid.UUID
    csrf_token: str

    @property
    def fmt(self) -> Formatter:
        return self.site.fmt

    @property
    def programme(self) -> Programme:
        return self.site.programme


def default_language(programme: Programme, section: PortalSection) -> str:
    return section.default_locale or language_of(programme.locale)


def formatter(programme: Programme, language: str) -> Formatter:
    return Formatter(language, ZoneInfo(programme.timezone), programme.locale)


def _language(
    request: Request, programme: Programme, section: PortalSection, member: Member | None = None
) -> str:
    default = default_language(programme, section)
    chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    if chosen:
        return language_of(chosen, default)
    if member is not None and member.locale:
        return language_of(member.locale, default)
    return best_language(request.headers.get("accept-language"), default)


def load_site(request: Request, slug: str) -> Site:
    """The programme named by the URL (404 when there is none)."""
    with get_database(request).transaction(readonly=True) as session:
        try:
            programme = programmes.get_by_slug(session, slug=slug[:64])
        except NotFound:
            raise NotFound("there is no such programme") from None
        section = section_for(session, programme)
    return Site(programme, section, formatter(programme, _language(request, programme, section)))


SiteDep = Annotated[Site, Depends(load_site)]


def current_member(request: Request, slug: str) -> Me:
    """The member of this browser's live session in the programme, or :class:`NotSignedIn`."""
    database = get_database(request)
    now = utcnow()
    with database.transaction(readonly=True) as session:
        try:
            programme = programmes.get_by_slug(session, slug=slug[:64])
        except NotFound:
            raise NotFound("there is no such programme") from None
        section = section_for(session, programme)
        current = signin.resolve(
            session, programme=programme, token=request.cookies.get(SESSION_COOKIE), now=now
        )
        plus = plus_for(session, programme)  # cached per live version
        giving = transfers.policy(session, programme)  # cached per live version (issue 16)
        features = frozenset(
            name
            for name, on in (
                ("leaderboards", plus.leaderboards),
                ("referral", plus.referral),
                ("transfers", giving.enabled and giving.portal and "points" in giving.wallets),
            )
            if on
        )
    if current is None:
        raise NotSignedIn(programme.slug)
    if current.stale:
        with database.transaction() as session:
            signin.touch(session, session_id=current.session_id, now=now)
    language = _language(request, programme, section, current.member)
    site = Site(programme, section, formatter(programme, language), features)
    return Me(site, current.member, current.session_id, current.csrf_token)


MeDep = Annotated[Me, Depends(current_member)]
Csrf = Annotated[str, Form(max_length=200)]


def check_token(expected: str, token: str) -> None:
    if not token or not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        raise BadCsrf("the form's security token is missing or out of date: reload the page")


def write_me(me: MeDep, csrf_token: Csrf = "") -> Me:
    """A write by the signed-in member, with their session's CSRF token."""
    check_token(me.csrf_token, csrf_token)
    return me


WriteMe = Annotated[Me, Depends(write_me)]


def form_token(request: Request) -> str:
    """The double-submit token of forms shown before sign-in (its cookie is set on render)."""
    return request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(32)


def check_form_token(request: Request, token: str) -> None:
    check_token(request.cookies.get(FORM_COOKIE, ""), token)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def secure(request: Request) -> bool:
    return request.url.scheme == "https"
