"""Measured per-module timing (hooks, perf counters / CUDA events) and the CPU roofline. Imports torch inside."""
