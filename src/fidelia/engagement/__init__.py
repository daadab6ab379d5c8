"""Engagement: badges and challenges (missions)."""
