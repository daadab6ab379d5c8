"""The back-office's scenarios page: each scenario with its arms, lift and steps, in French
for a French reader; another programme's reader gets a 404."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import FastAPI

from fidelia.db import Database
from fidelia.users.service import Role
from tests.fixtures.factories import Api, make_programme, unique_email
from tests.messaging.conftest import WELCOME, apply, enrol, messaging_doc
from tests.scenarios.conftest import tick
from tests.users.mailbox import cheap_password_hashes  # noqa: F401  (fixture)
from tests.web.conftest import Browser, new_user, web_app  # noqa: F401  (fixture)


def test_the_scenarios_page_shows_arms_lift_and_steps(
    api: Api,
    database: Database,
    web_app: FastAPI,  # noqa: F811
) -> None:
    scenario = {
        "code": "hello", "name": "Bonjour", "entry": {"kind": "event", "event": "enrolment"},
        "holdout_percent": 50,
        "steps": [{"id": "send", "kind": "action",
                   "do": {"type": "message", "template": "welcome", "channels": ["inbox"]}}],
    }  # fmt: skip
    doc = messaging_doc(templates=[WELCOME])
    doc["scenarios"] = {"definitions": [scenario]}
    apply(api, doc)
    for _ in range(8):
        enrol(api, email=unique_email(), consents={"email": True})
    tick(database, api.programme, datetime.now(UTC) + timedelta(seconds=1))
    browser = Browser(web_app)
    browser.sign_in(new_user(database, [(api.programme, Role.analyst)], locale="fr"))
    page = browser.get(f"/admin/p/{api.programme.slug}/scenarios")
    assert page.status_code == 200, page.text
    assert "<h1>Scénarios</h1>" in page.text
    assert "Bonjour <code>hello</code>" in page.text
    assert "Groupe témoin" in page.text
    assert "Écart" in page.text  # both arms have members at 50 %
    assert "<code>send</code>" in page.text
    other = make_programme(database)
    stranger = Browser(web_app)
    stranger.sign_in(new_user(database, [(other, Role.owner)]))
    assert stranger.get(f"/admin/p/{api.programme.slug}/scenarios").status_code == 404
