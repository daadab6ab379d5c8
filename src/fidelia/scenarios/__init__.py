"""Scenarios: journeys with waits, branches, actions, goals and holdouts (issue 11)."""

from fidelia.scenarios import jobs as jobs  # registers the tick job's handler
