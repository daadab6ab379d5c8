"""Outbound webhooks: subscriptions, signed deliveries sent by the worker, the replay feed."""
