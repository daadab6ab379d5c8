"""Programmes: brands or white-label tenants, each with currency, time zone and policies."""
