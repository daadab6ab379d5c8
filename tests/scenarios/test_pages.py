"""The back-office's scenarios page: each scenario with its arms, lift and steps, in French
for a French reader; another programme's reader gets a 404."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from sqlalchemy import select

from fidelia.db import Database
from fidelia.models.scenarios import ScenarioJourney
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
    # The arm is a hash of the member: enrol until both arms have someone (8 members leave one
    # arm empty once in 128 runs; 40 never in practice).
    for _ in range(40):
        enrol(api, email=unique_email(), consents={"email": True})
        tick(database, api.programme, datetime.now(UTC) + timedelta(seconds=1))
        with database.transaction(readonly=True) as session:
            arms = set(
                session.scalars(
                    select(ScenarioJourney.holdout).where(
                        ScenarioJourney.programme_id == api.programme.id
                    )
                )
            )
        if arms == {True, False}:
            break
    assert arms == {True, False}
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


def test_the_page_previews_one_member_s_path_with_the_message_rendered(
    api: Api,
    database: Database,
    web_app: FastAPI,  # noqa: F811
) -> None:
    scenario = {
        "code": "hello", "name": "Bonjour", "entry": {"kind": "event", "event": "enrolment"},
        "holdout_percent": 0,
        "steps": [{"id": "pause", "kind": "wait", "duration": {"days": 2}},
                  {"id": "send", "kind": "action",
                   "do": {"type": "message", "template": "welcome", "channels": ["inbox"]}}],
    }  # fmt: skip
    doc = messaging_doc(templates=[WELCOME])
    doc["scenarios"] = {"definitions": [scenario]}
    apply(api, doc)
    member = enrol(api, email=unique_email(), first_name="Léa")
    browser = Browser(web_app)
    browser.sign_in(new_user(database, [(api.programme, Role.analyst)], locale="fr"))
    url = f"/admin/p/{api.programme.slug}/scenarios"
    page = browser.get(f"{url}?code=hello&member={member}")
    assert page.status_code == 200, page.text
    assert "Prévisualiser le parcours d&#39;un membre" in page.text
    assert "<code>pause</code>" in page.text
    assert "2d 0h 0m" in page.text
    assert "<strong>Bienvenue Léa !</strong>" in page.text
    assert "Bonjour Léa, vous avez 0 points." in page.text
    wrong = browser.get(f"{url}?code=hello&member=not-an-id")
    assert "Pas de prévisualisation : not a member id" in wrong.text or (
        "Pas de prévisualisation: not a member id" in wrong.text
    )
    stranger = browser.get(f"{url}?code=hello&member={uuid.uuid4()}")
    assert "Pas de prévisualisation" in stranger.text
