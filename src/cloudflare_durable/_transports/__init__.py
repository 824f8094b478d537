"""Transports: each moves one call or one stream, and knows nothing of policy."""
