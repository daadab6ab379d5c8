"""Engagement: badges and challenges (missions)."""

from fidelia.engagement import leaderboards as leaderboards  # registers the closing job
