"""Selecting: which stored entries an output shows (rules, search, dedupe) and how."""
