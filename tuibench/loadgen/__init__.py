"""The online-serving client: arrivals, OpenAI-compatible streaming, per-request records."""
