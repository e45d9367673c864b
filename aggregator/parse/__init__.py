"""Parsing: bytes to FeedData and CommentData, in sandboxed workers, sanitized."""
