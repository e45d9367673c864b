"""When to read an entry's comment thread next, and whether a comment feed skipped some.

Pure: stored times and numbers, fetched comments and ``now`` in; a moment, ``None`` (stop
following) or a yes/no out. It does not schedule a source's own polls (that is
:mod:`aggregator.schedule.decide`), read the clock or touch storage: the comment followers
(:mod:`aggregator.comments.follower`, :mod:`aggregator.discussions.follower`) act on its answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from aggregator.models import CommentData
from aggregator.schedule.base import utc


def decide_next_comments_poll(
    first_seen_at: datetime,
    last_comment_at: datetime | None,
    last_new_comment_at: datetime | None,
    now: datetime,
    *,
    quiet_after: timedelta = timedelta(days=14),
    min_interval: timedelta = timedelta(minutes=15),
    max_interval: timedelta = timedelta(days=1),
    taper: float = 0.125,
) -> datetime | None:
    """When to poll an entry's comment thread next, or ``None`` to stop following it.

    ``last_comment_at`` is the newest comment's own date; ``last_new_comment_at`` is when a new
    comment was last seen. Both count as "its latest comment"; a date ahead of ``now`` is not
    trusted (it would keep a thread alive until then), ``last_new_comment_at`` covers it. The interval is ``taper`` times the time since the latest comment (since
    ``first_seen_at`` before any), clamped to ``[min_interval, max_interval]``: a comment an hour
    ago means every 15 minutes, one two days ago every 6 hours. The thread is dropped once quiet
    for ``quiet_after`` from its latest comment or from ``first_seen_at``, whichever is later;
    one last poll is placed at that moment.
    """
    now = utc(now)
    seen = [utc(t) for t in (last_comment_at, last_new_comment_at) if t is not None]
    latest_comment = max((t for t in seen if t <= now), default=None)
    first_seen = utc(first_seen_at)
    stop_at = max(first_seen, latest_comment or first_seen) + quiet_after
    if now >= stop_at:
        return None
    cooling = (now - (latest_comment or first_seen)) * taper
    interval = min(max(cooling, min_interval), max_interval)
    return min(now + interval, max(stop_at, now + min_interval))


def detect_comment_gap(
    stored_numbers: Iterable[int | None],
    stored_newest_at: datetime | None,
    fetched: Iterable[CommentData],
) -> bool:
    """Whether a comment feed skipped comments we never stored, so the thread needs a fuller read.

    A gap is either the first new comment number jumping past our highest stored number plus
    one, or the oldest fetched comment being newer than our newest stored one (the feed's window
    slid past us). Holes inside the fetched window are the blog's own deletions, not a gap.
    Without stored comments there is nothing to have a gap after.
    """
    stored = {n for n in stored_numbers if n is not None}
    comments = list(fetched)
    if stored:
        highest = max(stored)
        newer = [c.number for c in comments if c.number is not None and c.number > highest]
        if newer and min(newer) > highest + 1:
            return True
    times = [utc(c.published_at) for c in comments if c.published_at is not None]
    return stored_newest_at is not None and bool(times) and min(times) > utc(stored_newest_at)
