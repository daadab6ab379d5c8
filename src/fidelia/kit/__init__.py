"""Generic plumbing: ids, clock, pagination. Knows nothing of the domains."""
