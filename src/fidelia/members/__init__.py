"""Members: profile, identities, consents, status."""
