"""The publisher's timing hints, read as floors: Retry-After, cache headers, feed hints, skips.

Pure: headers, a parsed feed and ``now`` in; a moment (or ``None``) out. ``Retry-After``
(RFC 9110 10.2.3) is parsed here and only here; ``Cache-Control``/``Expires`` (RFC 9111 4.2)
and the feed's ``<ttl>``/``sy:updatePeriod`` give the earliest next poll, each capped by the
:class:`~aggregator.schedule.base.SchedulePolicy`; ``skipHours``/``skipDays`` move a poll out
of the skipped hours and days. It does not choose the next poll (that is
:func:`aggregator.schedule.decide.decide_next_poll`, which weighs these hints against the
interval, backoff and jitter), and reads no clock.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from aggregator.models import FeedData
from aggregator.schedule.base import DEFAULT_POLICY, SchedulePolicy, utc

DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def parse_retry_after(
    value: str | None, now: datetime, policy: SchedulePolicy = DEFAULT_POLICY
) -> datetime | None:
    """When a ``Retry-After`` value allows the next request: delay-seconds or an HTTP-date.

    Capped at ``policy.retry_after_max`` from ``now``; a date in the past means ``now``.
    Anything else (negative or fractional seconds, garbage) is ``None``.
    """
    if value is None:
        return None
    now = utc(now)
    text = value.strip()
    cap = now + policy.retry_after_max
    if text.isascii() and text.isdigit():  # RFC 9110: delay-seconds = 1*DIGIT
        seconds = int(text)
        return cap if seconds >= policy.retry_after_max.total_seconds() else now + _secs(seconds)
    at = _parse_http_date(text)
    if at is None:
        return None
    return min(max(at, now), cap)


def cache_floor(
    headers: Mapping[str, str], now: datetime, policy: SchedulePolicy = DEFAULT_POLICY
) -> datetime | None:
    """Until when a response stays fresh by ``Cache-Control`` or ``Expires`` (RFC 9111 4.2).

    ``max-age`` wins over ``s-maxage`` (we are a private cache, but a CDN hint is still the
    publisher's wish), both over ``Expires``; ``Age`` is subtracted. ``no-store``/``no-cache``
    are ignored: they forbid reusing a body, not waiting. Capped at ``policy.hint_max``.
    ``None`` when nothing keeps the response fresh.
    """
    now = utc(now)
    lower = {k.lower(): v for k, v in headers.items()}
    directives = _cache_directives(lower.get("cache-control", ""))
    lifetime = _delta_seconds(directives.get("max-age"))
    if lifetime is None:
        lifetime = _delta_seconds(directives.get("s-maxage"))
    if lifetime is None and "expires" in lower:
        expires = _parse_http_date(lower["expires"])
        if expires is None:  # RFC 9111 5.3: an invalid Expires ("0", "-1") is already stale
            return None
        date = _parse_http_date(lower.get("date", "")) or now
        lifetime = int((expires - date).total_seconds())  # Date, not our clock: skew-proof
    if lifetime is None:
        return None
    fresh = lifetime - (_delta_seconds(lower.get("age")) or 0)
    if fresh <= 0:
        return None
    return now + _secs(min(fresh, policy.hint_max.total_seconds()))


def hints_floor(
    feed: FeedData | None, now: datetime, policy: SchedulePolicy = DEFAULT_POLICY
) -> tuple[datetime, str] | None:
    """The latest of the feed's ``<ttl>`` and ``sy:updatePeriod`` floors, with its reason code
    (``ttl`` or ``update-period``), each capped at ``policy.hint_max``. Skip hints are applied by
    :func:`skip_to_allowed`, not here."""
    if feed is None:
        return None
    now = utc(now)
    best: tuple[datetime, str] | None = None
    for seconds, reason in (
        ((feed.ttl_minutes or 0) * 60, "ttl"),
        (feed.update_period_seconds or 0, "update-period"),
    ):
        if seconds > 0:
            at = now + _secs(min(seconds, policy.hint_max.total_seconds()))
            if best is None or at > best[0]:
                best = (at, reason)
    return best


def skip_to_allowed(
    at: datetime, skip_hours: Collection[int], skip_days: Collection[str], limit: datetime
) -> datetime:
    """The first moment from ``at`` that is in neither a skipped hour nor a skipped day (GMT).

    Hours are 0-23 (24 is read as 0, as some feeds write it); days are English names in any
    case; other values are ignored. Never returns later than ``limit``, so a feed that skips
    every hour is still polled.
    """
    hours = {h % 24 for h in skip_hours if isinstance(h, int) and 0 <= h <= 24}
    days = {DAY_NAMES.index(d.strip().lower()) for d in skip_days if d.strip().lower() in DAY_NAMES}
    t, limit = utc(at), utc(limit)
    for _ in range(8 * 24 + 1):  # enough steps to cross a whole week hour by hour
        if t >= limit:
            return limit
        if t.weekday() in days:
            t = (t + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        elif t.hour in hours:
            t = t.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        else:
            return t
    return limit


def _cache_directives(value: str) -> dict[str, str]:
    directives: dict[str, str] = {}
    for part in value.split(","):
        name, _, arg = part.partition("=")
        directives.setdefault(name.strip().lower(), arg.strip().strip('"'))
    return directives


def _delta_seconds(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() else None


def _parse_http_date(value: str) -> datetime | None:
    """IMF-fixdate, RFC 850 or asctime (RFC 9110 5.6.7); a date without a zone is GMT."""
    if not value or not value.strip():
        return None
    try:
        return utc(parsedate_to_datetime(value.strip()))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _secs(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)
