"""Sending a sign-in code: by email through the programme's messaging SMTP channel when its
document configures one, else through the configured SMTP server (``FIDELIA_SMTP_*``); by SMS
through the programme's SMS gateway channel. Transactional: no consent is needed to receive
the code one asked for."""

from __future__ import annotations

import logging
import smtplib
import uuid
from email.message import EmailMessage
from email.utils import formataddr

from fidelia.config import get_settings
from fidelia.messaging.channels import ADAPTERS, Outgoing
from fidelia.messaging.channels.base import ChannelFailure
from fidelia.messaging.schemas import MessagingSection

log = logging.getLogger(__name__)


def sms_available(section: MessagingSection | None) -> bool:
    return section is not None and section.channels.sms is not None


def send_code(
    *,
    section: MessagingSection | None,
    kind: str,
    to: str,
    member_id: uuid.UUID,
    sender: str,
    subject: str,
    text: str,
) -> bool:
    """Send ``text`` to ``to``; False (logged) when it could not go: the page still answers
    as for any request, the member may ask again."""
    out = Outgoing(
        message_id=uuid.uuid4(),
        member_id=member_id,
        to=to,
        subject=subject,
        text=text,
        html=None,
        sms=text,
        kind="transactional",
    )
    try:
        if kind == "phone":
            if section is None or section.channels.sms is None:
                return False
            ADAPTERS["sms"].send(section.channels.sms, out)
        elif section is not None and section.channels.email is not None:
            ADAPTERS["email"].send(section.channels.email, out)
        else:
            _send_configured(to=to, sender=sender, subject=subject, text=text)
    except (ChannelFailure, OSError, smtplib.SMTPException):
        log.exception("a portal sign-in code could not be sent")
        return False
    return True


def _send_configured(*, to: str, sender: str, subject: str, text: str) -> None:
    settings = get_settings()
    message = EmailMessage()
    message["From"] = formataddr((sender, settings.smtp_from))
    message["To"] = to
    message["Subject"] = subject
    message.set_content(text)
    with smtplib.SMTP(
        settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds
    ) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password)
        smtp.send_message(message)
