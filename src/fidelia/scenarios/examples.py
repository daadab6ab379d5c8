"""Examples of the scenarios API (see ``fidelia.examples``)."""

from __future__ import annotations

from fidelia.examples import MEMBER_ID, JsonObject

JOURNEY_ID = "019cf0a1-2b3c-7d4e-8f50-6a7b8c9d0e1f"

SCENARIO: JsonObject = {
    "code": "welcome-pack",
    "name": "Welcome pack",
    "active": True,
    "entry": {"kind": "event", "event": "enrolment", "condition": None},
    "audience": None,
    "re_entry": "once",
    "period_days": None,
    "holdout_percent": 10.0,
    "goal": {
        "event": "purchase", "condition": None, "within": {"days": 30, "hours": 0, "minutes": 0},
    },
    "exit_on": ["consent_withdrawn", "closed", "merged", "goal"],
    "steps": [
        {"id": "welcome", "kind": "action", "next": None,
         "do": {"type": "message", "template": "welcome", "channels": ["email", "sms"],
                "content_key": "welcome-offer", "expires_hours": None}},
        {"id": "three-days", "kind": "wait", "duration": {"days": 3, "hours": 0, "minutes": 0},
         "until_time": None, "days": None, "until_trait": None, "days_before": 0,
         "until_event": None, "next": None},
        {"id": "done", "kind": "exit"},
    ],
}  # fmt: skip

SUMMARY: JsonObject = {
    "code": "welcome-pack", "name": "Welcome pack", "active": True, "entry": "event",
    "holdout_percent": 10.0, "entered": 1480, "in_progress": 212, "converted": 391, "version": 7,
}  # fmt: skip

ARM: JsonObject = {
    "entered": 1332, "active": 190, "completed": 700, "converted": 362, "exited": 80,
    "conversion_rate": 0.2718,
}  # fmt: skip

STATS: JsonObject = {
    "scenario": "welcome-pack",
    "entered": 1480,
    "in_progress": 212,
    "converted": 391,
    "treated": ARM,
    "holdout": {"entered": 148, "active": 22, "completed": 95, "converted": 29, "exited": 2,
                "conversion_rate": 0.1959},
    "lift": {"difference": 0.0759, "ci_low": 0.0085, "ci_high": 0.1433, "relative_lift": 0.387,
             "p_value": 0.045, "significant": True, "confidence": 0.95},
    "revenue": {"window_days": 30.0, "treated_per_member": 18.4, "holdout_per_member": 12.9,
                "difference": {"difference": 5.5, "ci_low": 0.4, "ci_high": 10.6,
                               "p_value": 0.035, "significant": True}},
    "steps": {"welcome": {"queued": 1310, "not_sent": 22, "holdout": 148},
              "three-days": {"waiting": 1480, "due_here": 212}},
    "messages": {"email": {"messages": 1180, "delivered": 1150, "opened": 610, "clicked": 140,
                           "statuses": {"sent": 540, "opened": 470, "clicked": 140, "failed": 30}},
                 "sms": {"messages": 130, "delivered": 128, "opened": 0, "clicked": 0,
                         "statuses": {"delivered": 128, "bounced": 2}}},
}  # fmt: skip

PREVIEW_IN: JsonObject = {"member_id": MEMBER_ID, "event": {}, "assume_outcome": False}

PREVIEW: JsonObject = {
    "member_id": MEMBER_ID,
    "holdout": False,
    "path": [
        {"step": "welcome", "kind": "action", "do": "message", "template": "welcome",
         "channel": "email", "message_kind": "marketing",
         "rendered": {"subject": "Bienvenue Laure !", "text": "Bonjour Laure..."}},
        {"step": "three-days", "kind": "wait", "detail": "3d 0h 0m"},
        {"step": "done", "kind": "exit"},
    ],
}  # fmt: skip

BACKTEST_IN: JsonObject = {"since": "2026-10-01T00:00:00Z", "until": "2026-11-01T00:00:00Z"}

BACKTEST: JsonObject = {
    "entries": 412, "members": 398, "holdout": 41,
    "per_day": {"2026-10-01": 14, "2026-10-02": 11},
    "messages_on_entry_per_day": {"2026-10-01": 14, "2026-10-02": 11},
    "messages_on_entry": 371,
}  # fmt: skip

JOURNEY: JsonObject = {
    "id": JOURNEY_ID, "scenario": "welcome-pack", "member_id": MEMBER_ID, "holdout": False,
    "status": "active", "step": "opened", "due_at": "2026-11-17T09:12:00Z",
    "entered_at": "2026-11-14T09:11:58Z", "converted_at": None, "ended_at": None,
    "end_reason": None, "version": 7,
    "event": {"id": "019cf0a0-0000-7000-8000-000000000001", "type": "enrolment",
              "occurred_at": "2026-11-14T09:11:58+00:00", "channel": "web", "store": None,
              "reference": None, "properties": {}, "categories": [], "skus": []},
}  # fmt: skip

TICK: JsonObject = {"entered": 12, "advanced": 340, "messages": 118, "ended": 3, "more": False}
