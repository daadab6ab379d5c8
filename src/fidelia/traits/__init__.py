"""Computed member traits: recency, frequency, monetary value, RFM, lifecycle, affinities."""

from fidelia.traits import jobs as jobs
