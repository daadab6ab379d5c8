"""Email over SMTP: a text part and an HTML alternative, ``List-Unsubscribe`` headers.

Connections are kept per thread and per server, so a worker sending many messages does not
pay a TCP and SMTP handshake each; a connection the server closed is reopened once.
"""

from __future__ import annotations

import email.policy
import smtplib
import ssl
import threading
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any

from fidelia.messaging.channels.base import Adapter, Outgoing, Permanent, Sent, Transient, register
from fidelia.messaging.channels.base import secret as secret_of
from fidelia.messaging.schemas import SmtpChannel

_LOCAL = threading.local()
# Long headers (an unsubscribe URL) stay as they are instead of being RFC 2047-encoded.
POLICY = email.policy.SMTP.clone(max_line_length=998)


def build(config: SmtpChannel, out: Outgoing) -> EmailMessage:
    """The MIME message for ``out``."""
    msg = EmailMessage(policy=POLICY)
    msg["From"] = formataddr((config.from_name or "", config.from_address))
    msg["To"] = out.to
    msg["Subject"] = out.subject or ""
    msg["Message-ID"] = make_msgid(
        idstring=out.message_id.hex, domain=config.from_address.split("@")[1]
    )
    msg["X-Fidelia-Message"] = str(out.message_id)
    if config.reply_to:
        msg["Reply-To"] = config.reply_to
    if out.unsubscribe_url:
        msg["List-Unsubscribe"] = f"<{out.unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(out.text or "")
    if out.html:
        msg.add_alternative(out.html, subtype="html")
    return msg


def _connect(config: SmtpChannel) -> smtplib.SMTP:
    password = secret_of(config.password_env)
    if config.security == "tls":
        conn: smtplib.SMTP = smtplib.SMTP_SSL(
            config.host,
            config.port,
            timeout=config.timeout_seconds,
            context=ssl.create_default_context(),
        )
    else:
        conn = smtplib.SMTP(config.host, config.port, timeout=config.timeout_seconds)
        if config.security == "starttls":
            conn.starttls(context=ssl.create_default_context())
    if config.username:
        conn.login(config.username, password or "")
    return conn


def _connection(config: SmtpChannel, fresh: bool) -> smtplib.SMTP:
    pool: dict[tuple[str, int, str | None], smtplib.SMTP] = _LOCAL.__dict__.setdefault("pool", {})
    key = (config.host, config.port, config.username)
    conn = pool.get(key)
    if conn is None or fresh:
        if conn is not None:
            _close(conn)
        conn = pool[key] = _connect(config)
    return conn


def _close(conn: smtplib.SMTP) -> None:
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()


def close_all() -> None:
    """Close this thread's connections (tests and shutdown)."""
    pool: dict[object, smtplib.SMTP] = _LOCAL.__dict__.get("pool", {})
    for conn in pool.values():
        _close(conn)
    pool.clear()


@register
class Smtp(Adapter):
    name = "email"
    address_kind = "email"
    consent = "email"

    def send(self, config: Any, out: Outgoing) -> Sent:
        msg = build(config, out)
        for attempt in (0, 1):
            try:
                conn = _connection(config, fresh=attempt == 1)
                refused = conn.send_message(msg, from_addr=out.return_path)
            except smtplib.SMTPServerDisconnected as exc:
                if attempt == 0:
                    continue
                raise Transient(f"disconnected: {exc}") from exc
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = next(iter(exc.recipients.values()))
                failure = Transient if 400 <= code < 500 else Permanent
                said = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
                raise failure(f"{code} {said}") from exc
            except smtplib.SMTPResponseException as exc:
                failure = Transient if 400 <= exc.smtp_code < 500 else Permanent
                error = exc.smtp_error
                said = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
                raise failure(f"{exc.smtp_code} {said}") from exc
            except (OSError, smtplib.SMTPException) as exc:
                _drop(config)
                raise Transient(f"{type(exc).__name__}: {exc}") from exc
            if refused:
                raise Permanent(f"refused: {refused}")
            return Sent(answer="250 accepted", provider_id=msg["Message-ID"])
        raise AssertionError("unreachable")


def _drop(config: SmtpChannel) -> None:
    pool: dict[tuple[str, int, str | None], smtplib.SMTP] = _LOCAL.__dict__.get("pool", {})
    conn = pool.pop((config.host, config.port, config.username), None)
    if conn is not None:
        conn.close()
