"""The HTTP delivery layer: the FastAPI application under /api/v1."""
