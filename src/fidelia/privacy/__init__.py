"""GDPR rights of a member: access (everything held, as JSON), erasure (personal data erased or
pseudonymised everywhere, the ledger and counts kept), closing an account and retention."""

from fidelia.privacy.access import export_member
from fidelia.privacy.closing import close_account
from fidelia.privacy.erasure import Erasure, erase_member
from fidelia.privacy.retention import run_retention

__all__ = ["Erasure", "close_account", "erase_member", "export_member", "run_retention"]
