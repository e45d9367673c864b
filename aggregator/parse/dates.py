"""The date rules of feeds and comment feeds (README, "Limits and safety").

A date before 1990 or more than a day after ``now`` (the time the document is read) is treated as
missing, so the entry sorts and is republished at the time aggregator first saw it. A date up to
a day ahead is kept (clock and time zone mistakes), but storage never sorts an entry ahead of the
time it was first seen.

Pure: a time tuple (as feedparser gives it, and the fast paths copy it) becomes an aware UTC
datetime or ``None``. Reading the date text is feedparser's (or the fast paths'); the dates
printed on comment pages are :mod:`aggregator.comments.page_dates`'s.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from typing import Any

# Dates outside this window are treated as missing: feeds in the wild carry 1970 and 2999.
_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
_LATEST_AHEAD = timedelta(days=1)


def _date(value: Any, latest: datetime) -> datetime | None:
    """A feedparser time tuple as aware UTC; ``None`` before 1990 or after ``latest``."""
    if not value:
        return None
    try:
        stamp = datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    except (OverflowError, ValueError, TypeError, OSError):
        return None
    if stamp < _EARLIEST or stamp > latest:
        return None
    return stamp
