"""Notices: the transactional outbox of what happened, for webhooks and the replay feed.

Domains call :func:`record_many` inside their own transaction; see docs/webhooks.md for the
notice types and their payloads.
"""

from fidelia.notices.service import (
    TYPES,
    Notice,
    after_position,
    decode_cursor,
    encode_cursor,
    jsonable,
    record_many,
    sequence,
)

__all__ = [
    "TYPES",
    "Notice",
    "after_position",
    "decode_cursor",
    "encode_cursor",
    "jsonable",
    "record_many",
    "sequence",
]
