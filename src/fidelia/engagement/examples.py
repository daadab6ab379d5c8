"""Examples of the engagement documents: badges and challenges, referrals, leaderboards and
streaks (see ``fidelia.examples``)."""

from __future__ import annotations

from fidelia.examples import BADGE_EVENT_ID, MEMBER_ID, OTHER_MEMBER_ID, JsonObject

BADGE: JsonObject = {
    "badge": "eco-hero",
    "name": "Eco Hero",
    "labels": {"fr": "Éco-héros", "en": "Eco Hero"},
    "level": 1,
    "levels": 1,
    "earned_at": "2026-08-08T14:21:09Z",
    "source": "rule:recycling-drop-off",
    "event_id": BADGE_EVENT_ID,
}

CRITIC: JsonObject = {
    "badge": "critic",
    "name": "Critic",
    "labels": {"fr": "Critique", "en": "Critic"},
    "level": 2,
    "levels": 3,
    "earned_at": "2026-11-16T19:03:38Z",
    "source": "condition",
    "event_id": "01a1e4f8-9c58-7b20-8d41-3f6a2c9e1b75",
}
"""The second of three levels: five reviews written (levels at 1, 5 and 10)."""

GOAL: JsonObject = {
    "event_type": "purchase",
    "measure": "spend",
    "target": "300",
    "progress": "295.29",
    "left": "4.71",
}

CHALLENGE: JsonObject = {
    "challenge": "winter-2026",
    "name": "Winter challenge: 5 purchases and 300 € between December and February",
    "labels": {"fr": "Défi de l'hiver : 5 achats et 300 € de décembre à février"},
    "starts_at": "2026-12-01T00:00:00+01:00",
    "ends_at": "2027-03-01T00:00:00+01:00",
    "status": "active",
    "completions": 0,
    "repeatable": False,
    "goals": [
        {"event_type": "purchase", "measure": "count", "target": "5", "progress": "3", "left": "2"},
        GOAL,
    ],
    "reward": {"points": 500, "wallet": "points", "badge": "winter-champion"},
}

RECYCLER: JsonObject = {
    "challenge": "recycler",
    "name": "Drop off 3 used items",
    "labels": {"fr": "Déposez 3 articles usagés"},
    "starts_at": None,
    "ends_at": None,
    "status": "active",
    "completions": 1,
    "repeatable": True,
    "goals": [
        {
            "event_type": "recycling_drop_off",
            "measure": "count",
            "target": "3",
            "progress": "1",
            "left": "2",
        }
    ],
    "reward": {"points": 150, "wallet": "points"},
}
"""Repeatable: completed once, progress restarted from zero."""


# -- referrals (the demo programme's scheme: 100 points at enrolment, 200 + 300 at the
# referee's first purchase of 30 EUR or more within 60 days, 10 referrer rewards a year) ------
REFERRAL_CODE = "PWLCCTOSBJ"
"""Laure's code (derived from the programme and the member)."""
QUALIFIED_REFERRAL_ID = "019de98f-dbe0-74c6-ada2-6be6f93f078c"
ENROLLED_REFERRAL_ID = "01a20822-1496-7e24-9e1a-b0631c0515e0"
REFUSED_REFERRAL_ID = "01a1012a-01b3-7a52-8c6e-2f94d1b7e508"
NEW_REFEREE_ID = "01a20822-1359-76eb-b94e-21d961ca2276"
REFUSED_REFEREE_ID = "01a1012a-0091-73bd-a55b-7fcde8b86a11"
TOP_REFERRER_ID = "019ee58e-3d86-7152-a067-4c7cb1887689"

REFERRAL_QUALIFIED: JsonObject = {
    "id": QUALIFIED_REFERRAL_ID,
    "referrer_id": MEMBER_ID,
    "referee_id": OTHER_MEMBER_ID,
    "status": "qualified",
    "reason": None,
    "enrolled_at": "2026-05-02T16:40:12Z",
    "qualified_at": "2026-05-09T10:14:52Z",
    "order_id": "LYO-20260509-0112",
    "referrer_rewarded": True,
}
"""The referee's first purchase (42.80 EUR, a week after joining) paid both gifts."""

REFERRAL_ENROLLED: JsonObject = {
    "id": ENROLLED_REFERRAL_ID,
    "referrer_id": MEMBER_ID,
    "referee_id": NEW_REFEREE_ID,
    "status": "enrolled",
    "reason": None,
    "enrolled_at": "2026-11-23T11:19:40Z",
    "qualified_at": None,
    "order_id": None,
    "referrer_rewarded": False,
}
"""Linked at enrolment (the referee got 100 points); no qualifying purchase yet."""

REFERRAL_REFUSED: JsonObject = {
    "id": REFUSED_REFERRAL_ID,
    "referrer_id": MEMBER_ID,
    "referee_id": REFUSED_REFEREE_ID,
    "status": "refused",
    "reason": "already_referred",
    "enrolled_at": "2026-10-03T09:48:12Z",
    "qualified_at": None,
    "order_id": None,
    "referrer_rewarded": False,
}
"""Refused with its reason code: the referee had named another member's code already."""

MEMBER_REFERRAL_STATS: JsonObject = {
    "invited": 3,
    "enrolled": 2,
    "qualified": 1,
    "rewarded": 1,
    "refused": {"already_referred": 1},
}

MEMBER_REFERRAL: JsonObject = {
    "member_id": MEMBER_ID,
    "code": REFERRAL_CODE,
    "link": f"https://earthcare.example/join?ref={REFERRAL_CODE}",
    "stats": MEMBER_REFERRAL_STATS,
    "referred_by": None,
    "referrals": [REFERRAL_ENROLLED, REFERRAL_REFUSED, REFERRAL_QUALIFIED],
}
"""Laure's code, link and referees, newest first."""

PROGRAMME_REFERRAL_STATS: JsonObject = {
    "invited": 1412,
    "enrolled": 1327,
    "qualified": 806,
    "rewarded": 791,
    "refused": {"self_referral": 38, "not_new": 31, "already_referred": 12, "referrer_closed": 4},
}
"""Earth Care as a whole: 85 refused links, 15 qualifications past a referrer's yearly cap."""

PROGRAMME_REFERRALS: JsonObject = {
    "stats": PROGRAMME_REFERRAL_STATS,
    "top_referrers": [
        {"member_id": TOP_REFERRER_ID, "qualified": 14},
        {"member_id": MEMBER_ID, "qualified": 1},
    ],
}

CODE_VALID: JsonObject = {"code": REFERRAL_CODE, "valid": True, "referrer": "L*** M."}
"""For the join page: whose code it is, masked."""

CODE_UNKNOWN: JsonObject = {"code": "XK42PLM9QA", "valid": False, "referrer": None}

# -- leaderboards (the demo programme's boards) -----------------------------------------------
BOARD_MONTHLY_POINTS: JsonObject = {
    "board": "monthly-points",
    "name": "Points earned this month",
    "period": "month",
    "current_period": "2026-11",
    "by": "programme",
    "metric": {"kind": "points", "wallet": "points", "goal": 0},
    "rewards": [
        {"points": 500, "wallet": "points", "ranks": [1, 1]},
        {"points": 200, "wallet": "points", "ranks": [2, 3]},
    ],
}

BOARD_RECYCLERS: JsonObject = {
    "board": "recyclers",
    "name": "Recyclers of the week, by store",
    "period": "week",
    "current_period": "2026-W49",
    "by": "store",
    "metric": {"kind": "events", "wallet": "points", "event_type": "recycling_drop_off", "goal": 0},
    "rewards": [],
}

BOARD_SUMMER_RACE: JsonObject = {
    "board": "summer-race",
    "name": "Summer challenge: the biggest spenders",
    "period": "challenge",
    "current_period": None,
    "by": "programme",
    "metric": {"kind": "challenge", "wallet": "points", "challenge": "summer-2026", "goal": 1},
    "rewards": [],
}
"""The challenge's board: no current period once the challenge is over."""

BOARD_ENTRY: JsonObject = {
    "rank": 1,
    "member_id": None,
    "display_name": "Zéro Déchet Lyon",
    "score": "2140",
    "reached_at": "2026-11-28T17:02:44Z",
}
"""An entry as the public top shows it: the chosen name, no member id."""

BOARD: JsonObject = {
    "board": "monthly-points",
    "name": "Points earned this month",
    "period": "2026-11",
    "scope": "",
    "entries": [
        BOARD_ENTRY,
        {
            "rank": 2,
            "member_id": None,
            "display_name": "T*** B.",
            "score": "1875",
            "reached_at": "2026-11-29T11:40:03Z",
        },
        {
            "rank": 3,
            "member_id": None,
            "display_name": "Camille à vélo",
            "score": "1875",
            "reached_at": "2026-11-30T09:15:27Z",
        },
    ],
}
"""The top 3 of November: a tie goes to whoever reached the score first."""

MEMBER_RANK: JsonObject = {
    "board": "monthly-points",
    "period": "2026-11",
    "scope": "",
    "member_id": MEMBER_ID,
    "opted_in": True,
    "score": "618",
    "rank": 14,
    "above": [
        {
            "rank": 12,
            "member_id": None,
            "display_name": "A*** R.",
            "score": "702",
            "reached_at": "2026-11-27T15:31:09Z",
        },
        {
            "rank": 13,
            "member_id": None,
            "display_name": "Le Jardinier",
            "score": "640",
            "reached_at": "2026-11-28T10:02:51Z",
        },
    ],
    "below": [
        {
            "rank": 15,
            "member_id": None,
            "display_name": "N*** P.",
            "score": "618",
            "reached_at": "2026-11-30T08:47:15Z",
        },
        {
            "rank": 16,
            "member_id": None,
            "display_name": "Member 9C3A",
            "score": "590",
            "reached_at": "2026-11-21T18:26:40Z",
        },
    ],
}
"""Laure's rank with two neighbours each side (a member without a name is masked)."""

PROFILE_IN: JsonObject = {"opted_in": True, "display_name": "Laure de Part-Dieu"}
"""Show on the boards under a chosen name (without one: the masked name, ``L*** M.``)."""

PROFILE_OPT_OUT: JsonObject = {"opted_in": False}

PROFILE: JsonObject = {
    "member_id": MEMBER_ID,
    "opted_in": True,
    "display_name": "Laure de Part-Dieu",
}

PAYOUT: JsonObject = {
    "board": "monthly-points",
    "period": "2026-10",
    "scope": "",
    "paid": True,
    "winners": [
        {
            "rank": 1,
            "member_id": TOP_REFERRER_ID,
            "reward": {"points": {"wallet": "points", "amount": 500}},
        },
        {
            "rank": 2,
            "member_id": OTHER_MEMBER_ID,
            "reward": {"points": {"wallet": "points", "amount": 200}},
        },
        {
            "rank": 3,
            "member_id": MEMBER_ID,
            "reward": {"points": {"wallet": "points", "amount": 200}},
        },
    ],
}
"""October's board paid: 500 points to the first, 200 to the second and third."""

PAYOUT_DONE_BEFORE: JsonObject = {
    "board": "monthly-points",
    "period": "2026-10",
    "scope": "",
    "paid": False,
    "winners": [],
}
"""Closing a period again pays nothing."""

# -- streaks ----------------------------------------------------------------------------------
STREAK: JsonObject = {
    "streak": "weekly-shopper",
    "name": "A purchase every week",
    "period": "week",
    "current": 6,
    "best": 9,
    "this_period_done": False,
    "freezes_left": 1,
    "next_reward_at": 8,
    "left": 2,
}
"""Six weeks in a row (the 4-week reward given); a purchase this week keeps the run."""
