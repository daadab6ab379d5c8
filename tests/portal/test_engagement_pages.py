"""The portal's leaderboards and referral pages (issue 13 over issue 14): a member opts in to
the rankings under a chosen name and sees the top and their rank; the referral page shows the
member's code and link, and a friend enrolling with it counts there; a programme without
these sections shows neither tab, and its pages are not found."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from fidelia.db import Database
from fidelia.models import Programme
from tests.fixtures.factories import Api
from tests.portal.conftest import apply, buy, document, enrol, signed_in
from tests.users.mailbox import Inbox


def with_engagement() -> dict[str, Any]:
    doc = document()
    doc["referral"] = {
        "link": "https://club.example/join?ref={code}",
        "at_enrolment": {"points": 100},
    }
    doc["leaderboards"] = [
        {"code": "monthly", "name": "Points this month", "period": "month",
         "metric": {"kind": "points"}},
    ]  # fmt: skip
    return doc


def test_rankings_show_the_members_who_opt_in_under_their_chosen_name(
    portal_app: FastAPI,
    database: Database,
    programme: Programme,
    smtp: Inbox,
    api_factory: Callable[[Programme], Api],
) -> None:
    club = apply(database, programme, with_engagement())
    api = api_factory(club)
    phone, member_id, _ = signed_in(portal_app, club, api, smtp, first_name="Ana")
    other = enrol(api, first_name="Bob")
    buy(api, member_id, "120.00")
    buy(api, other, "80.00")
    home = phone.get("/")
    assert 'href="/portal/' + club.slug + '/leaderboards"' in home.text
    page = phone.get("/leaderboards")
    assert page.status_code == 200
    assert "You do not appear in the rankings" in page.text
    assert "Your rank" not in page.text  # hidden until opted in
    saved = phone.post("/leaderboards/profile", {"opted_in": "yes", "display_name": "Ana K."})
    assert saved.status_code == 303
    page = phone.get("/leaderboards")
    assert "You appear as Ana K.." in page.text
    ranking = re.search(r'id="board-monthly">(.*?)</section>', page.text, re.S)
    assert ranking is not None
    assert "Ana K." in ranking.group(1)
    assert "Your rank: 1 (270)" in ranking.group(1)  # 150 welcome + 120
    assert "Bob" not in ranking.group(1)  # Bob did not opt in
    refused = phone.post("/leaderboards/profile", {"opted_in": "yes", "display_name": "<b>"})
    assert refused.status_code == 422


def test_the_referral_page_shows_the_code_and_counts_the_friends_who_join(
    portal_app: FastAPI,
    database: Database,
    programme: Programme,
    smtp: Inbox,
    api_factory: Callable[[Programme], Api],
) -> None:
    club = apply(database, programme, with_engagement())
    api = api_factory(club)
    phone, _, _ = signed_in(portal_app, club, api, smtp)
    page = phone.get("/referral")
    assert page.status_code == 200
    code = re.search(r'id="referral-code">([^<]+)<', page.text)
    assert code is not None
    assert f"https://club.example/join?ref={code.group(1)}" in page.text
    enrol(api, referral_code=code.group(1))
    page = phone.get("/referral")
    joined = re.search(r"Friends who joined</dt><dd>(\d+)<", page.text)
    assert joined is not None
    assert joined.group(1) == "1"


def test_a_programme_without_them_has_neither_tab_nor_page(
    portal_app: FastAPI,
    database: Database,
    club: Programme,
    smtp: Inbox,
    api_factory: Callable[[Programme], Api],
) -> None:
    api = api_factory(club)
    phone, _, _ = signed_in(portal_app, club, api, smtp)
    home = phone.get("/")
    assert "/leaderboards" not in home.text
    assert "/referral" not in home.text
    assert phone.get("/leaderboards").status_code == 404
    assert phone.get("/referral").status_code == 404
