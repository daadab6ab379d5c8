"""The background worker: runs due jobs, in its own process or inside `fidelia serve`."""
