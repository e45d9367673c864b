"""Test data builders and the one injected clock, shared by every test module."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from aggregator.models import StoredEntry

#: The moment the pure tests (selection, dedupe, filters) pretend it is.
NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)
_numbers = itertools.count(1)


def make_entry(title: str | None = None, *, source: str = "a", **fields: Any) -> StoredEntry:
    """A stored entry of ``source`` with a fresh id, key and link; ``fields`` override any
    column (``published_at`` defaults to :data:`NOW`, ``categories`` may be a list)."""
    number = next(_numbers)
    values: dict[str, Any] = {
        "id": number,
        "public_id": f"e{number}",
        "source_name": source,
        "source_title": source.upper(),
        "source_url": f"https://{source}.example/feed",
        "source_link": f"https://{source}.example/",
        "key": f"k{number}",
        "title": title if title is not None else f"Unique title {number}",
        "link": f"https://{source}.example/post/{number}",
        "author": None,
        "summary": None,
        "content": None,
        "published_at": NOW,
        "updated_at": None,
        "first_seen_at": NOW,
    }
    values.update(fields)
    if isinstance(values.get("categories"), list):
        values["categories"] = tuple(values["categories"])
    return StoredEntry(**values)


class Clock:
    """An injected clock that only moves when the test says so (safe across threads)."""

    def __init__(self, start: datetime | None = None):
        self.now = start or datetime(2024, 3, 6, 12, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def set(self, when: datetime) -> None:
        """Jump to ``when``."""
        with self._lock:
            self.now = when

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta``; the new time."""
        with self._lock:
            self.now += delta
            return self.now
