"""Rewards: the catalogue, redemptions, voucher pools and codes, validation at the till."""

from fidelia.rewards import jobs as jobs
