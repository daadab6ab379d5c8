"""Analytics: KPIs, cohorts, liability, CLV and churn, lift, recommendations (issue 15)."""
