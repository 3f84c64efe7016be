"""Pure domain: workload, metrics, events, results store. Never imports torch, textual or a library."""
