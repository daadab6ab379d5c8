"""All ORM tables. Import from here so that every table is registered on ``Base.metadata``."""

from fidelia.models import audit, users  # noqa: F401  (registers the back-office tables)
from fidelia.models.apikey import ApiKey
from fidelia.models.base import Base
from fidelia.models.engagement import ChallengeCompletion, EngagementState, MemberBadge
from fidelia.models.event import Event, EventType, ImportRun
from fidelia.models.job import Job
from fidelia.models.ledger import Account, Entry, LedgerTransaction, Lot, LotReversal, Wallet
from fidelia.models.member import (
    Consent,
    ConsentChange,
    Member,
    MemberIdentity,
    MemberStatusChange,
)
from fidelia.models.merges import MemberMerge, MemberMergeItem
from fidelia.models.messaging import Message, MessageLog, MessagingKey  # noqa: F401
from fidelia.models.programme import Programme
from fidelia.models.rewards import Redemption, Reward, Voucher, VoucherPool, VoucherUse
from fidelia.models.rules import MemberState, ProgrammeVersion, RuleCounter
from fidelia.models.segments import SegmentChange, SegmentMember
from fidelia.models.tiers import MemberTier, TierChange
from fidelia.models.traits import MemberTraits

__all__ = [
    "Account",
    "ApiKey",
    "Base",
    "ChallengeCompletion",
    "Consent",
    "ConsentChange",
    "EngagementState",
    "Entry",
    "Event",
    "EventType",
    "ImportRun",
    "Job",
    "LedgerTransaction",
    "Lot",
    "LotReversal",
    "Member",
    "MemberBadge",
    "MemberIdentity",
    "MemberMerge",
    "MemberMergeItem",
    "MemberState",
    "MemberStatusChange",
    "MemberTier",
    "MemberTraits",
    "Programme",
    "ProgrammeVersion",
    "Redemption",
    "Reward",
    "RuleCounter",
    "SegmentChange",
    "SegmentMember",
    "TierChange",
    "Voucher",
    "VoucherPool",
    "VoucherUse",
    "Wallet",
]
