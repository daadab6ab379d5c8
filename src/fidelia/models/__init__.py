"""All ORM tables. Import from here so that every table is registered on ``Base.metadata``."""

from fidelia.models.apikey import ApiKey
from fidelia.models.base import Base
from fidelia.models.event import Event, EventType, ImportRun
from fidelia.models.job import Job
from fidelia.models.ledger import Account, Entry, LedgerTransaction, Lot, LotReversal, Wallet
from fidelia.models.member import Consent, ConsentChange, Member, MemberIdentity
from fidelia.models.programme import Programme
from fidelia.models.rewards import Redemption, Reward, Voucher, VoucherPool, VoucherUse
from fidelia.models.rules import MemberState, ProgrammeVersion, RuleCounter

__all__ = [
    "Account",
    "ApiKey",
    "Base",
    "Consent",
    "ConsentChange",
    "Entry",
    "Event",
    "EventType",
    "ImportRun",
    "Job",
    "LedgerTransaction",
    "Lot",
    "LotReversal",
    "Member",
    "MemberIdentity",
    "MemberState",
    "Programme",
    "ProgrammeVersion",
    "Redemption",
    "Reward",
    "RuleCounter",
    "Voucher",
    "VoucherPool",
    "VoucherUse",
    "Wallet",
]
