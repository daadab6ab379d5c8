"""Analytics: KPIs, cohorts, liability, CLV and churn, lift, recommendations (issue 15)."""

from fidelia.analytics import clv_service as clv_service  # registers the analytics.clv job
