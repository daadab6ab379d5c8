"""Status tiers: ordered levels, qualification windows, upgrade and requalification policies."""

from fidelia.tiers import jobs as jobs
