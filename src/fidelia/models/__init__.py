"""All ORM tables. Import from here so that every table is registered on ``Base.metadata``."""

from fidelia.models.apikey import ApiKey
from fidelia.models.base import Base
from fidelia.models.event import Event, EventType, ImportRun
from fidelia.models.job import Job
from fidelia.models.member import Consent, ConsentChange, Member, MemberIdentity
from fidelia.models.programme import Programme

__all__ = [
    "ApiKey",
    "Base",
    "Consent",
    "ConsentChange",
    "Event",
    "EventType",
    "ImportRun",
    "Job",
    "Member",
    "MemberIdentity",
    "Programme",
]
