"""Launching and supervising inference servers on 127.0.0.1."""
