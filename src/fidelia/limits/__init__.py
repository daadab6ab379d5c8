"""Rate limits per API key and route class (token buckets), security headers, CORS."""
