"""Analytics: KPIs, cohorts, liability, CLV and churn, lift, recommendations (issue 15)."""

from fidelia.analytics import clv_service as clv_service  # registers the analytics.clv job
from fidelia.analytics import jobs as jobs  # registers analytics.refresh (KPI aggregates)
from fidelia.analytics import recommend_service as recommend_service  # analytics.recommend
