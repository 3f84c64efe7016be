"""Runs one RunSpec in a spawned child process and streams its events back to the parent."""
