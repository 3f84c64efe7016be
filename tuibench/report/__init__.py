"""Text output of the headless CLI: tables and live progress (rich)."""
