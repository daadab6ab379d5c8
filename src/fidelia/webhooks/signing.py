"""Signatures of outbound deliveries: HMAC-SHA256 over ``<timestamp>.<exact body>``.

Header: ``Fidelia-Signature: t=<unix seconds>,v1=<hex digest>``. The receiver recomputes the
digest with the subscription's secret over the timestamp, a dot and the raw body bytes, and
compares in constant time; it refuses timestamps too far from its clock (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

HEADER = "Fidelia-Signature"
TOLERANCE_SECONDS = 300


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The header's value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, now: int) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within the tolerance of ``now``."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
