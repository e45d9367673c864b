"""aggregator: an RSS/Atom aggregator and publisher that keeps every post's comment thread."""

__version__ = "0.1.0"
