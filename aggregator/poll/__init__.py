"""Polling: one source through fetch, parse, decide and store; then its comments."""
