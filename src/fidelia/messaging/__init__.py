"""Messaging: templates, channels (SMTP email, SMS gateway, in-app inbox, webhook), consent
and contact pressure, the delivery log, tracking and surveys."""

from fidelia.messaging import jobs as jobs  # registers the delivery job's handler
