"""Computed member traits: recency, frequency, monetary value, RFM, lifecycle, affinities."""
