"""Protections of every HTTP answer: security headers and CORS for the programmes' portal
hosts. (Rate limits per API key are in :mod:`fidelia.auth.limits`: they need the key, and the
auth layer sits below this package.)"""
