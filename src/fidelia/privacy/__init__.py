"""GDPR rights of a member: access (everything held, as JSON), erasure (personal data erased or
pseudonymised everywhere, the ledger and counts kept), closing an account and retention."""

from fidelia.privacy.access import export_member

__all__ = ["export_member"]
