"""Back-office test helpers: a browser-like client per user (its own cookies), signed in
through the real form, which reads the CSRF token from the pages it gets."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fidelia.api.app import create_app
from fidelia.db import Database
from fidelia.models import Programme
from fidelia.programmes import documents
from fidelia.rules.demo import programme_document
from fidelia.users import service as users
from fidelia.users.service import Role
from tests.fixtures.factories import make_programme
from tests.users.mailbox import cheap_password_hashes, smtp

__all__ = ["cheap_password_hashes", "smtp"]

PASSWORD = "correct horse battery"
_TOKEN = re.compile(r'name="(csrf_token|login_token|nonce)" value="([^"]+)"')


class Browser:
    """A TestClient with its own cookie jar; ``post_form`` sends the page's CSRF token."""

    def __init__(self, app: FastAPI, *, https: bool = False) -> None:
        base = "https://testserver" if https else "http://testserver"
        self.client = TestClient(app, base_url=base, follow_redirects=False)
        self.tokens: dict[str, str] = {}
        self.email = ""

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response = self.client.get(path, **kwargs)
        self.tokens.update(dict(_TOKEN.findall(response.text)))
        return response

    def post(
        self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True
    ) -> httpx.Response:
        form = dict(data or {})
        if csrf and "csrf_token" in self.tokens:
            form.setdefault("csrf_token", self.tokens["csrf_token"])
        response = self.client.post(path, data=form)
        self.tokens.update(dict(_TOKEN.findall(response.text)))
        return response

    def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        self.get("/admin/login")
        response = self.post(
            "/admin/login",
            {"email": email, "password": password, "login_token": self.tokens["login_token"]},
            csrf=False,
        )
        if response.status_code == 303:
            self.email = email
            self.get("/admin/", follow_redirects=True)  # a page with the session's CSRF token
        return response


def new_user(
    database: Database, grants: list[tuple[Programme, Role]], locale: str | None = None
) -> str:
    email = f"bo-{uuid.uuid4().hex[:10]}@example.com"
    with database.transaction() as session:
        user = users.create_user(session, email=email, password=PASSWORD, locale=locale)
        for programme, role in grants:
            users.grant(session, user=user, programme=programme, role=role)
    return email


@pytest.fixture
def web_app(database: Database) -> FastAPI:
    return create_app(database)


@pytest.fixture
def browser(web_app: FastAPI) -> Callable[..., Browser]:
    """``browser()``: a fresh anonymous browser on the app."""
    return lambda **kw: Browser(web_app, **kw)


@pytest.fixture
def signed_in(database: Database, browser: Callable[..., Browser]) -> Callable[..., Browser]:
    """``signed_in(programme, role)``: a browser signed in as a new user with that role."""

    def make(programme: Programme, role: Role = Role.owner, locale: str | None = "en") -> Browser:
        b = browser()
        response = b.sign_in(new_user(database, [(programme, role)], locale))
        assert response.status_code == 303, response.text
        return b

    return make


@pytest.fixture
def demo(database: Database) -> Programme:
    """A fresh programme with the demo document (Earth Care) as its live version."""
    programme = make_programme(database)
    with database.transaction() as session:
        documents.apply(session, programme=programme, raw=programme_document(), actor="test")
        live = session.get(Programme, programme.id)
        assert live is not None
    return live
