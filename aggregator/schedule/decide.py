"""Pure decisions about polling: when to poll a source (or a comment thread) next, what to record.

Does not interact with any dependency: no network, no storage, no clock (``now`` is passed in), no
randomness except through an injected :class:`random.Random`. It only processes data, so the
pipeline (:mod:`aggregator.poll.poller`) and the scheduler act on a :class:`PollPlan` without deciding
anything themselves.

Politeness rules, in order of strength:

1. 410 Gone retires a source: no more requests. No other error ever disables a source.
2. After an error, Retry-After (RFC 9110 section 10.2.3) is honoured, else exponential backoff.
3. After a success, the next poll is the adaptive interval (from the posting rhythm) or the
   configured one, and never earlier than the floor. Publisher hints (``<ttl>``, ``sy:updatePeriod``,
   ``Cache-Control: max-age``, ``Expires``) are floors: they can push a poll later, never earlier.
4. ``skipHours``/``skipDays`` move a poll out of the skipped hours and days (GMT).

Every delay is jittered upwards only, so no rule above is ever undercut by jitter.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TypedDict, Unpack

from aggregator.errors import FetchError
from aggregator.models import CommentData, FeedData, FetchResult, SourceState

DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Posts stamped within a minute of each other are one batch, not a one-minute rhythm.
_SAME_MOMENT = timedelta(minutes=1)


@dataclass(frozen=True)
class SchedulePolicy:
    """The numbers behind every scheduling decision; the defaults are the polite ones."""

    interval: timedelta = timedelta(minutes=60)  # when neither config nor posting rhythm says
    floor: timedelta = timedelta(minutes=15)  # no two requests to a feed closer than this, ever
    adaptive_min: timedelta = timedelta(minutes=15)
    adaptive_max: timedelta = timedelta(days=1)  # commafeed #1672: never push a blog out for a week
    adaptive_window: int = 10  # how many recent entries the posting rhythm is read from
    adaptive_decay: float = 0.8  # weight of each older gap relative to the next newer one
    quiet_divisor: float = 4.0  # a quiet stretch of Q since the newest post slows polling to Q/4
    jitter: float = 0.1  # each delay grows by up to this fraction, drawn from the injected rng
    backoff_base: timedelta = timedelta(minutes=15)  # first retry; never below the floor anyway
    backoff_max: timedelta = timedelta(days=1)
    retry_after_max: timedelta = timedelta(days=1)
    hint_max: timedelta = timedelta(days=1)  # cap on <ttl>, sy:updatePeriod, max-age, Expires
    max_delay: timedelta = timedelta(days=7)  # skipHours/skipDays never push a poll further
    redirect_adopt_after: int = 3  # consecutive polls answering 301/308 to the same place


DEFAULT_POLICY = SchedulePolicy()


@dataclass(frozen=True)
class ScheduleState:
    """What the decider needs to remember about a source between polls.

    ``redirect_url`` and ``redirect_count`` track a permanent redirect that has not been adopted
    yet. ``next_poll_reason`` is the :attr:`PollPlan.reason` stored with ``next_poll_at``.
    """

    url: str
    error_count: int = 0
    redirect_url: str | None = None
    redirect_count: int = 0
    next_poll_at: datetime | None = None
    next_poll_reason: str | None = None


class Cadence(TypedDict, total=False):
    """The configured side of a :class:`PollOutcome`: its ``interval`` and ``adaptive``."""

    interval: timedelta | None
    adaptive: bool


@dataclass(frozen=True)
class PollOutcome:
    """What one poll of a source found, as far as scheduling cares.

    ``status`` is the final HTTP status, ``None`` for a network error. ``feed`` carries the
    publisher's hints (pass the stored ones on a 304). ``entry_times`` are publication times of
    recent entries; when empty they are read from ``feed``. ``interval`` is the configured one;
    ``adaptive=False`` pins it. ``redirect_status``/``redirect_url`` describe the redirect chain.
    Retry-After is read from ``headers`` here, and only here (:func:`parse_retry_after`).
    """

    status: int | None
    headers: Mapping[str, str] = field(default_factory=dict)
    body_changed: bool = False
    feed: FeedData | None = None
    entry_times: Sequence[datetime] = ()
    interval: timedelta | None = None
    adaptive: bool = True
    redirect_status: int | None = None
    redirect_url: str | None = None
    error: str | None = None

    @classmethod
    def from_fetch(
        cls,
        result: FetchResult,
        *,
        body_changed: bool = False,
        feed: FeedData | None = None,
        entry_times: Sequence[datetime] = (),
        **cadence: Unpack[Cadence],
    ) -> PollOutcome:
        """Describe a completed request. :class:`FetchResult` tells only whether the redirect
        chain was permanent, so 301 stands for any permanent one and 302 for any other."""
        if result.permanent_redirect:
            redirect: tuple[int | None, str | None] = (301, result.permanent_redirect)
        elif result.final_url != result.url:
            redirect = (302, result.final_url)
        else:
            redirect = (None, None)
        return cls(
            status=result.status,
            headers=result.headers,
            redirect_status=redirect[0],
            redirect_url=redirect[1],
            body_changed=body_changed,
            feed=feed,
            entry_times=entry_times,
            **cadence,
        )

    @classmethod
    def from_error(cls, error: FetchError, **cadence: Unpack[Cadence]) -> PollOutcome:
        """Describe a failed request (HTTP error status or no response at all).

        The response headers travel along, so that an HTTP-date Retry-After is read against
        the caller's ``now`` rather than the fetcher's clock."""
        return cls(
            status=error.status,
            headers=error.headers,
            error=str(error),
            **cadence,
        )


@dataclass(frozen=True)
class PollPlan:
    """What to record after a poll and when to poll next.

    ``reason`` is a short code for ``aggregator status``: ``interval``, ``adaptive``, ``ttl``,
    ``update-period``, ``cache``, ``skip``, ``backoff``, ``retry-after`` or ``gone``; ``detail``
    says it in words. ``next_poll_at`` is ``None`` only when the source is ``retired``. ``url``
    is the URL to poll from now on (``redirect_adopted`` when it just changed).
    """

    next_poll_at: datetime | None
    reason: str
    detail: str
    error_count: int
    url: str
    redirect_url: str | None = None
    redirect_count: int = 0
    redirect_adopted: bool = False
    retired: bool = False


def parse_retry_after(
    value: str | None, now: datetime, policy: SchedulePolicy = DEFAULT_POLICY
) -> datetime | None:
    """When a ``Retry-After`` value allows the next request: delay-seconds or an HTTP-date.

    Capped at ``policy.retry_after_max`` from ``now``; a date in the past means ``now``.
    Anything else (negative or fractional seconds, garbage) is ``None``.
    """
    if value is None:
        return None
    now = _utc(now)
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
    now = _utc(now)
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
    now = _utc(now)
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
    t, limit = _utc(at), _utc(limit)
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


def adaptive_interval(
    entry_times: Iterable[datetime | None], now: datetime, policy: SchedulePolicy = DEFAULT_POLICY
) -> timedelta | None:
    """A polling interval from how often the source posts, or ``None`` without enough signal.

    Half the recency-weighted median gap between the newest ``policy.adaptive_window`` posts,
    but at least ``quiet_divisor``-th of the quiet stretch since the newest post, clamped to
    ``[adaptive_min, adaptive_max]``. A burst raises the pace at once; a long silence slows it,
    but never beyond ``adaptive_max`` (commafeed #1672: a blog posting ten times in one day and
    then nothing for ten days must still be polled daily, not weekly). Needs three distinct post
    times in the past; future-dated posts are ignored. Does not apply the floor.
    """
    now = _utc(now)
    times = sorted({_utc(t) for t in entry_times if t is not None and _utc(t) <= now}, reverse=True)
    times = times[: max(2, policy.adaptive_window)]
    gaps = [a - b for a, b in zip(times, times[1:], strict=False) if a - b >= _SAME_MOMENT]
    if len(gaps) < 2:
        return None
    weights = [policy.adaptive_decay**i for i in range(len(gaps))]
    median = _weighted_median(gaps, weights)
    estimate = max(median / 2, (now - times[0]) / policy.quiet_divisor)
    return min(max(estimate, policy.adaptive_min), policy.adaptive_max)


def backoff_delay(
    error_count: int, policy: SchedulePolicy = DEFAULT_POLICY, rng: random.Random | None = None
) -> timedelta:
    """How long to wait after ``error_count`` errors in a row: ``backoff_base`` doubling each
    time, capped at ``backoff_max`` and never below the floor, then jittered upwards."""
    exponent = min(max(error_count, 1) - 1, 32)  # 2**32 * anything is past every sane cap
    delay = min(policy.backoff_base * (2**exponent), policy.backoff_max)
    return _jittered(max(delay, policy.floor), policy, rng)


def decide_next_poll(
    policy: SchedulePolicy,
    state: ScheduleState,
    outcome: PollOutcome,
    now: datetime,
    rng: random.Random | None = None,
) -> PollPlan:
    """Decide what to record after one poll of a source and when to poll it next.

    ``rng`` draws the jitter; ``None`` means no jitter. Does not fetch, store or read the clock.
    """
    now = _utc(now)
    previous_errors = max(state.error_count, 0)
    if outcome.status == 410:
        return PollPlan(
            next_poll_at=None,
            reason="gone",
            detail="retired: the server answered 410 Gone, so it is not requested again",
            error_count=previous_errors + 1,
            url=state.url,
            retired=True,
        )
    # An error is an error even on a 200 (an empty or oversized body, a broken stream).
    if outcome.error is not None or not _is_success(outcome.status):
        return _plan_error(policy, state, outcome, now, rng, previous_errors + 1)

    url, pending, count, adopted = _follow_redirect(policy, state, outcome)
    base, reason, detail = _base_interval(policy, outcome, now)
    at = now + base
    cached = cache_floor(outcome.headers, now, policy)
    if cached is not None and cached > at:
        at, reason, detail = cached, "cache", "Cache-Control/Expires keep the feed fresh"
    hint = hints_floor(outcome.feed, now, policy)
    if hint is not None and hint[0] > at:
        at, reason = hint
        detail = "the feed's <ttl>" if reason == "ttl" else "the feed's sy:updatePeriod"
    at = now + _jittered(at - now, policy, rng)
    if outcome.feed is not None:
        limit = now + max(policy.max_delay, base)
        allowed = skip_to_allowed(at, outcome.feed.skip_hours, outcome.feed.skip_days, limit)
        if allowed > at:
            at, reason, detail = allowed, "skip", "moved out of the feed's skipHours/skipDays"
    if adopted:
        detail += f"; adopted permanent redirect to {url}"
    return PollPlan(
        next_poll_at=at,
        reason=reason,
        detail=detail,
        error_count=0,
        url=url,
        redirect_url=pending,
        redirect_count=count,
        redirect_adopted=adopted,
    )


def is_in_backoff(state: ScheduleState | SourceState, now: datetime) -> tuple[bool, str | None]:
    """Whether a poll by hand should leave this source alone, and why.

    ``aggregator poll`` polls every source at once, except those waiting out a Retry-After or a
    backoff window; an ordinary schedule window is no reason to wait. Works on a
    :class:`ScheduleState` or on a stored :class:`~aggregator.models.SourceState`.
    """
    at = state.next_poll_at
    now = _utc(now)
    if at is None or _utc(at) <= now:
        return False, None
    at = _utc(at)
    reason = getattr(state, "next_poll_reason", None)
    when = f"until {at:%Y-%m-%d %H:%M} UTC (in {_describe(at - now)})"
    if reason == "retry-after":
        return True, f"retry-after: the server asked to wait {when}"
    if reason == "backoff" or (reason is None and state.error_count > 0):
        return True, f"backoff after {state.error_count} error(s) in a row, {when}"
    return False, None


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
    now = _utc(now)
    seen = [_utc(t) for t in (last_comment_at, last_new_comment_at) if t is not None]
    latest_comment = max((t for t in seen if t <= now), default=None)
    first_seen = _utc(first_seen_at)
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
    times = [_utc(c.published_at) for c in comments if c.published_at is not None]
    return stored_newest_at is not None and bool(times) and min(times) > _utc(stored_newest_at)


# -- helpers ------------------------------------------------------------------------------------


def _plan_error(
    policy: SchedulePolicy,
    state: ScheduleState,
    outcome: PollOutcome,
    now: datetime,
    rng: random.Random | None,
    errors: int,
) -> PollPlan:
    what = f"HTTP {outcome.status}" if outcome.status is not None else (outcome.error or "error")
    retry_at = parse_retry_after(_header(outcome.headers, "retry-after"), now, policy)
    if retry_at is not None:
        # The server's own word replaces our guess, but never undercuts the floor.
        at = now + _jittered(max(retry_at - now, policy.floor), policy, rng)
        reason, detail = "retry-after", f"{what}; the server asked to retry after a delay"
    else:
        at = now + backoff_delay(errors, policy, rng)
        reason, detail = "backoff", f"{what}; error {errors} in a row"
    return PollPlan(
        next_poll_at=at,
        reason=reason,
        detail=detail,
        error_count=errors,
        url=state.url,
        redirect_url=state.redirect_url,  # a failed poll neither confirms nor breaks a redirect
        redirect_count=state.redirect_count,
    )


def _base_interval(
    policy: SchedulePolicy, outcome: PollOutcome, now: datetime
) -> tuple[timedelta, str, str]:
    if outcome.adaptive:
        times: Iterable[datetime | None] = outcome.entry_times
        if not outcome.entry_times and outcome.feed is not None:
            times = [e.published_at or e.updated_at for e in outcome.feed.entries]
        learned = adaptive_interval(times, now, policy)
        if learned is not None:
            return max(learned, policy.floor), "adaptive", "the source's posting rhythm"
    if outcome.interval is not None:
        return max(outcome.interval, policy.floor), "interval", "the configured interval"
    return max(policy.interval, policy.floor), "interval", "the default interval"


def _follow_redirect(
    policy: SchedulePolicy, state: ScheduleState, outcome: PollOutcome
) -> tuple[str, str | None, int, bool]:
    """(url, pending target, consecutive count, adopted now) after a successful poll.

    Only 301/308 count (RFC 9110 15.4.2, 15.4.9); 302/307 are temporary and reset the count, as
    does a poll that was not redirected, since adoption needs consecutive confirmations.
    """
    target = outcome.redirect_url
    if outcome.redirect_status not in (301, 308) or not target or target == state.url:
        return state.url, None, 0, False
    count = state.redirect_count + 1 if target == state.redirect_url else 1
    if count >= policy.redirect_adopt_after:
        return target, None, 0, True
    return state.url, target, count, False


def _is_success(status: int | None) -> bool:
    return status is not None and (200 <= status < 300 or status == 304)


def _jittered(delay: timedelta, policy: SchedulePolicy, rng: random.Random | None) -> timedelta:
    if rng is None or policy.jitter <= 0:
        return delay
    return delay + delay * (policy.jitter * rng.random())


def _weighted_median(values: Sequence[timedelta], weights: Sequence[float]) -> timedelta:
    pairs = sorted(zip(values, weights, strict=True))
    half = sum(weights) / 2
    running = 0.0
    for value, weight in pairs:
        running += weight
        if running >= half:
            return value
    return pairs[-1][0]


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
        return _utc(parsedate_to_datetime(value.strip()))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _secs(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def _utc(value: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _describe(delay: timedelta) -> str:
    minutes = max(int(delay.total_seconds() // 60), 1)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    if hours:
        parts.append(f"{hours}h")
    if minutes and not days:
        parts.append(f"{minutes}m")
    return " ".join(parts)
