"""The ``messaging`` section of the programme document, and the API's bodies and answers.

Secrets are never in the document: it names the environment variables that hold them
(``password_env``, ``token_env``, ``secret_env``), read when a message is sent.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fidelia.events.schemas import MemberRef
from fidelia.examples import examples
from fidelia.kit.bounds import FreeJson, Instant
from fidelia.messaging import examples as ex
from fidelia.messaging import templates

ChannelName = Literal["email", "sms", "inbox", "webhook"]
Kind = Literal["marketing", "transactional"]
Status = Literal[
    "queued",
    "deferred",
    "sending",
    "sent",
    "delivered",
    "opened",
    "clicked",
    "bounced",
    "failed",
    "not_sent",
    "expired",
]
EnvName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Z_][A-Z0-9_]*$")]
Host = Annotated[str, Field(min_length=1, max_length=253)]
Url = Annotated[str, Field(min_length=8, max_length=2000, pattern=r"^https?://")]
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
Source = Annotated[str, Field(max_length=20_000)]
ShortSource = Annotated[str, Field(max_length=2000)]
Locale = Annotated[str, Field(min_length=2, max_length=16, pattern=r"^[a-z]{2}(-[A-Za-z]{2})?$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SmtpChannel(Strict):
    """Email over SMTP. ``security``: ``starttls`` upgrades a plain connection, ``tls`` is
    implicit TLS (port 465), ``none`` for a local relay."""

    host: Host
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: str | None = Field(default=None, max_length=320)
    password_env: EnvName | None = None
    from_address: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    from_name: str | None = Field(default=None, max_length=200)
    reply_to: str | None = Field(default=None, max_length=320)
    timeout_seconds: float = Field(default=10.0, gt=0, le=120, allow_inf_nan=False)
    # VERP: each message's envelope sender (Return-Path) is ``<local>+<signed message id>@<domain>``
    # of this address, so a bounce names the message it is about and cannot be forged.
    bounce_address: str | None = Field(
        default=None, min_length=3, max_length=200, pattern=r"^[^@\s+]+@[^@\s]+$"
    )


class SmsChannel(Strict):
    """A generic HTTP SMS gateway: a POST of a JSON body built from ``body`` (each string a
    template over ``to``, ``text``, ``sender``, ``message_id``, ``callback_url``)."""

    url: Url
    auth_header: str = Field(default="Authorization", min_length=1, max_length=100)
    auth_scheme: str | None = Field(default="Bearer", max_length=50)
    token_env: EnvName | None = None
    sender: str | None = Field(default=None, max_length=20)
    body: dict[Annotated[str, Field(max_length=100)], ShortSource] = Field(
        default_factory=lambda: {"to": "{{ to }}", "text": "{{ text }}"}, max_length=30
    )
    id_field: str = Field(default="id", min_length=1, max_length=100)
    status_field: str = Field(default="status", min_length=1, max_length=100)
    delivered: list[Annotated[str, Field(max_length=50)]] = Field(
        default_factory=lambda: ["delivered"], max_length=20
    )
    failed: list[Annotated[str, Field(max_length=50)]] = Field(
        default_factory=lambda: ["failed", "undelivered", "rejected"], max_length=20
    )
    timeout_seconds: float = Field(default=10.0, gt=0, le=120, allow_inf_nan=False)

    @model_validator(mode="after")
    def _body_templates(self) -> SmsChannel:
        for key, value in self.body.items():
            try:
                templates.check_gateway(value)
            except templates.TemplateProblem as exc:
                raise ValueError(f"body.{key}: {exc}") from exc
        return self


class WebhookChannel(Strict):
    """A POST of the message as JSON, signed (``X-Fidelia-Signature``: HMAC-SHA256 of the body
    with the secret of ``secret_env``) when a secret is named."""

    url: Url
    secret_env: EnvName | None = None
    consent: Literal["email", "sms", "push", "postal"] | None = None
    timeout_seconds: float = Field(default=10.0, gt=0, le=120, allow_inf_nan=False)


class InboxChannel(Strict):
    """The in-app inbox: always reachable; ``consent`` names a consent it requires, if any."""

    consent: Literal["email", "sms", "push", "postal"] | None = None


class Channels(Strict):
    email: SmtpChannel | None = None
    sms: SmsChannel | None = None
    inbox: InboxChannel | None = None
    webhook: WebhookChannel | None = None

    def configured(self) -> list[str]:
        return [name for name in ("email", "sms", "inbox", "webhook") if getattr(self, name)]


class Cap(Strict):
    """At most ``max`` marketing messages within ``hours``, on ``channels`` (all if empty)."""

    max: int = Field(ge=1, le=1000)
    hours: int = Field(ge=1, le=24 * 366)
    channels: list[ChannelName] = Field(default_factory=list, max_length=4)


class QuietHours(Strict):
    """No marketing message from ``start`` to ``end`` (local time; may span midnight)."""

    start: time
    end: time


class Pressure(Strict):
    caps: list[Cap] = Field(default_factory=list, max_length=20)
    quiet_hours: QuietHours | None = None


class Retry(Strict):
    max_attempts: int = Field(default=5, ge=1, le=20)
    backoff_seconds: float = Field(default=60.0, ge=0, le=86_400, allow_inf_nan=False)


class Content(Strict):
    """One locale's text of a template. Email needs ``subject`` and ``text`` (``html`` adds the
    HTML alternative); SMS needs ``sms``; the inbox and webhooks use ``subject`` and ``text``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ex.CONTENT))

    subject: ShortSource | None = None
    text: Source | None = None
    html: Source | None = None
    sms: ShortSource | None = None

    @model_validator(mode="after")
    def _compiles(self) -> Content:
        for name in ("subject", "text", "html", "sms"):
            source = getattr(self, name)
            if source is None:
                continue
            try:
                templates.check(source, html=name == "html")
            except templates.TemplateProblem as exc:
                raise ValueError(f"{name}: {exc}") from exc
        return self


class Survey(Strict):
    """A one-click rating carried by the message (``survey.choices`` in the template: each a
    score and its signed URL) and, with ``comment``, a comment page after the click."""

    code: Code
    scale: Literal["nps", "five"] = "nps"
    question: dict[Locale, ShortSource] = Field(default_factory=dict, max_length=20)
    comment: bool = True


class TemplateDef(Strict):
    code: Code
    kind: Kind = "marketing"
    locales: dict[Locale, Content] = Field(min_length=1, max_length=20)
    survey: Survey | None = None


class MessagingSection(Strict):
    """Channels, their default order, contact pressure, retries and the templates."""

    channels: Channels = Field(default_factory=Channels)
    fallback: list[ChannelName] = Field(default_factory=list, max_length=4)
    pressure: Pressure = Field(default_factory=Pressure)
    retry: Retry = Field(default_factory=Retry)
    public_url: Url | None = None
    templates: list[TemplateDef] = Field(default_factory=list, max_length=500)

    @model_validator(mode="after")
    def _coherent(self) -> MessagingSection:
        configured = set(self.channels.configured())
        for i, name in enumerate(self.fallback):
            if name not in configured:
                raise ValueError(f"fallback.{i}: channel {name!r} is not configured")
        codes = [t.code for t in self.templates]
        for i, code in enumerate(codes):
            if code in codes[:i]:
                raise ValueError(f"templates.{i}.code: duplicate code {code!r}")
        return self

    def template(self, code: str) -> TemplateDef | None:
        return next((t for t in self.templates if t.code == code), None)


# -- the API ----------------------------------------------------------------------------------


class SendIn(Strict):
    """One message to send now (or at the next slot contact pressure allows)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ex.SEND_IN))

    member: MemberRef
    template: Code | None = Field(default=None, description="A template of the document")
    content: dict[Locale, Content] | None = Field(
        default=None, max_length=20, description="Inline content per locale, instead"
    )
    channels: list[ChannelName] = Field(
        default_factory=list, max_length=4, description="Preference order; default: fallback"
    )
    kind: Kind | None = Field(default=None, description="Default: the template's, else marketing")
    content_key: str | None = Field(default=None, min_length=1, max_length=200)
    event: FreeJson = Field(default_factory=dict, description="The triggering event's data")
    expires_at: Instant | None = None
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _one_content(self) -> SendIn:
        if (self.template is None) == (self.content is None):
            raise ValueError("give either template or content")
        return self


class PreviewIn(Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra=examples(ex.PREVIEW_IN))

    member_id: uuid.UUID
    template: Code | None = None
    content: dict[Locale, Content] | None = Field(default=None, max_length=20)
    channel: ChannelName = "email"
    event: FreeJson = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_content(self) -> PreviewIn:
        if (self.template is None) == (self.content is None):
            raise ValueError("give either template or content")
        return self


class PreviewOut(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.PREVIEW_OUT))

    channel: str
    locale: str
    subject: str | None
    text: str | None
    html: str | None
    sms: str | None


class LogOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=examples(ex.LOG))

    status: str
    at: datetime
    detail: str | None


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=examples(ex.MESSAGE))

    id: uuid.UUID
    member_id: uuid.UUID
    source: str
    template: str | None
    kind: str
    content_key: str | None
    channels: list[str]
    channel: str | None
    locale: str | None
    recipient: str | None
    subject: str | None
    status: str
    reason: str | None
    attempts: int
    due_at: datetime
    expires_at: datetime | None
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    opened_at: datetime | None
    clicked_at: datetime | None
    read_at: datetime | None


class MessageDetail(MessageOut):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=examples(ex.DETAIL))

    body_text: str | None
    body_html: str | None
    log: list[LogOut]


class InboxItem(BaseModel):
    model_config = ConfigDict(json_schema_extra=examples(ex.INBOX_ITEM))

    id: uuid.UUID
    subject: str | None
    text: str | None
    sent_at: datetime | None
    read_at: datetime | None


def err_path(message: str) -> tuple[tuple[str | int, ...], str]:
    """Split ``"a.0.b: msg"`` (our validators' messages) into a path and the message."""
    match = re.match(r"^([A-Za-z0-9_.-]+): (.*)$", message, re.DOTALL)
    if not match:
        return (), message
    path = tuple(int(p) if p.isdigit() else p for p in match.group(1).split("."))
    return path, match.group(2)


def as_json(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_none=True)


class BouncesOut(BaseModel):
    """What a delivery status notification did, per recipient block: ``hard`` bounces (the
    message bounced, the address unreachable), ``soft`` ones (queued again or failed),
    ``logged`` (delayed, delivered) and ``unmatched`` (no message of this programme)."""

    model_config = ConfigDict(json_schema_extra=examples(ex.BOUNCES_OUT))

    hard: int
    soft: int
    logged: int
    unmatched: int


class BouncedAddressOut(BaseModel):
    """An address a hard bounce proved dead: no message is sent to it until it is cleared."""

    model_config = ConfigDict(from_attributes=True, json_schema_extra=examples(ex.BOUNCED_ADDRESS))

    address: str
    reason: str
    message_id: uuid.UUID | None
    bounced_at: datetime
