"""Bulk exports of a programme's tables (members, events, ledger, redemptions) as CSV or JSON
lines, streamed in constant memory."""
