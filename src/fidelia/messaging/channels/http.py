"""A JSON POST over HTTP with the standard library, for the adapters that speak HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from fidelia.messaging.channels.base import Permanent, Transient


def post_json(url: str, body: Any, *, headers: dict[str, str], timeout: float) -> tuple[int, str]:
    """POST ``body`` as JSON; the status and the answer's text. 5xx, 429, 408 and network
    errors raise :class:`Transient`; other 4xx :class:`Permanent`."""
    data = json.dumps(body, separators=(",", ":"), default=str).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read(65536).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        answer = f"HTTP {exc.code}: {exc.read(4000).decode(errors='replace')}"
        if exc.code >= 500 or exc.code in (408, 429):
            raise Transient(answer) from exc
        raise Permanent(answer) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise Transient(f"{type(exc).__name__}: {exc}") from exc
