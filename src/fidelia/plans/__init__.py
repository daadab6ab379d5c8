"""Paid membership: plans, subscriptions and their lifecycle, the payment webhook, the till."""
