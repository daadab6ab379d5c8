"""Channel adapters: one file per provider, registered by importing it here."""

from fidelia.messaging.channels import inbox, sms_http, smtp, webhook  # noqa: F401
from fidelia.messaging.channels.base import ADAPTERS, Adapter, Outgoing, Permanent, Sent, Transient

__all__ = ["ADAPTERS", "Adapter", "Outgoing", "Permanent", "Sent", "Transient"]
