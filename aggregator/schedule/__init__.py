"""Scheduling: when each source and thread is polled next (pure) and the job runner."""
