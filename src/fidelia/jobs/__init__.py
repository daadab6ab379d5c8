"""Durable background jobs: the transactional outbox of every domain."""
