"""Where deliveries may go: HTTPS targets that resolve and accept a connection.

Plain HTTP is accepted only for loopback hosts (``127.0.0.1``, ``::1``, ``localhost``) and
only when ``FIDELIA_WEBHOOKS_ALLOW_LOOPBACK`` is set (development); loopback targets are
refused otherwise, over HTTPS too, so that a key cannot make the server call itself.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from fidelia.config import get_settings
from fidelia.errors import ValidationFailed

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_target(url: str, *, field: str = "url", reach: bool = True) -> str:
    """``url`` if deliveries may go there, or a 422 naming ``field`` and why. ``reach``: also
    resolve the host and open a TCP connection to it (an unreachable target is refused)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise ValidationFailed.on(field, "must be an absolute https:// URL")
    if parts.username or parts.password:
        raise ValidationFailed.on(field, "must not carry a user name or password")
    loopback = _is_loopback(host)
    allowed = get_settings().webhooks_allow_loopback
    if loopback and not allowed:
        raise ValidationFailed.on(
            field,
            "loopback targets are refused (set FIDELIA_WEBHOOKS_ALLOW_LOOPBACK=1 in development)",
        )
    if parts.scheme == "http" and not loopback:
        raise ValidationFailed.on(
            field, "must use https:// (plain http is allowed only for loopback in development)"
        )
    if reach:
        _reach(host, parts.port or (443 if parts.scheme == "https" else 80), field)
    return url


def _reach(host: str, port: int, field: str) -> None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise ValidationFailed.on(field, f"host {host!r} does not resolve") from None
    for family, kind, proto, _, address in infos:
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(3.0)
                sock.connect(address)
                return
        except OSError:
            continue
    raise ValidationFailed.on(field, f"{host}:{port} does not accept connections (unreachable)")
