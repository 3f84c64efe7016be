"""Finding models on local disk: the embedded default, local folders, the local HF cache. Never a hub."""
