"""The intake: one write path for every event (API, batch, imports, enrolment), applying the
engine's effects to the ledger, tiers, rewards and engagement in set-based steps."""
