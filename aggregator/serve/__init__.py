"""Serving: the HTTP server, its web pages, health and metrics."""
