"""API keys and the scopes that guard every API route."""
