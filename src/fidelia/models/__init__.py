"""All ORM tables. Import from here so that every table is registered on ``Base.metadata``."""

from fidelia.models import (  # noqa: F401  (register their tables on Base.metadata)
    audit,
    engagement_plus,
    exports,
    portal,
    scenarios,
    segment_summaries,
    transfers,
    users,
)
from fidelia.models.analytics import AnalyticsState, AnonymousPurchase, DailySales, MemberMonth
from fidelia.models.analytics_ledger import LedgerDay
from fidelia.models.analytics_models import ClvFit, MemberRecommendation, RecommendationModel
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
from fidelia.models.offers import OfferCounter, OfferTarget, OfferUse
from fidelia.models.plans import (
    PaymentEndpoint,
    PaymentEvent,
    Subscription,
    SubscriptionChange,
    TillPayment,
)
from fidelia.models.privacy import MemberErasure, RateBucket
from fidelia.models.programme import Programme
from fidelia.models.rewards import Redemption, Reward, Voucher, VoucherPool, VoucherUse
from fidelia.models.rules import MemberState, ProgrammeVersion, RuleCounter
from fidelia.models.segments import SegmentChange, SegmentMember
from fidelia.models.tiers import MemberTier, TierChange
from fidelia.models.traits import MemberTraits
from fidelia.models.webhooks import (
    Connector,
    Notification,
    NotificationSequence,
    WebhookDelivery,
    WebhookSubscription,
)

__all__ = [
    "Account",
    "AnalyticsState",
    "AnonymousPurchase",
    "ApiKey",
    "Base",
    "ChallengeCompletion",
    "ClvFit",
    "Connector",
    "Consent",
    "ConsentChange",
    "DailySales",
    "EngagementState",
    "Entry",
    "Event",
    "EventType",
    "ImportRun",
    "Job",
    "LedgerDay",
    "LedgerTransaction",
    "Lot",
    "LotReversal",
    "Member",
    "MemberBadge",
    "MemberErasure",
    "MemberIdentity",
    "MemberMerge",
    "MemberMergeItem",
    "MemberMonth",
    "MemberRecommendation",
    "MemberState",
    "MemberStatusChange",
    "MemberTier",
    "MemberTraits",
    "Notification",
    "NotificationSequence",
    "OfferCounter",
    "OfferTarget",
    "OfferUse",
    "PaymentEndpoint",
    "PaymentEvent",
    "Programme",
    "ProgrammeVersion",
    "RateBucket",
    "RecommendationModel",
    "Redemption",
    "Reward",
    "RuleCounter",
    "SegmentChange",
    "SegmentMember",
    "Subscription",
    "SubscriptionChange",
    "TierChange",
    "TillPayment",
    "Voucher",
    "VoucherPool",
    "VoucherUse",
    "Wallet",
    "WebhookDelivery",
    "WebhookSubscription",
]
