"""Event intake: validation, idempotency, member resolution, the append-only event log."""
