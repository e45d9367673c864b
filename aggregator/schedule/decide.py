"""Pure decisions about polling a source: when to poll it next, and what to record.

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

Reading the publisher's hints (Retry-After, cache headers, ``<ttl>``, skips) is
:mod:`aggregator.schedule.hints`; a comment thread's next poll and gap detection are
:mod:`aggregator.schedule.threads`; the policy's numbers are :mod:`aggregator.schedule.base`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypedDict, Unpack

from aggregator.errors import FetchError
from aggregator.models import FeedData, FetchResult, SourceState
from aggregator.schedule.base import DEFAULT_POLICY, SchedulePolicy, utc
from aggregator.schedule.hints import cache_floor, hints_floor, parse_retry_after, skip_to_allowed

# Posts stamped within a minute of each other are one batch, not a one-minute rhythm.
_SAME_MOMENT = timedelta(minutes=1)


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
    Retry-After is read from ``headers`` here, and only here (:func:`~aggregator.schedule.hints.parse_retry_after`).
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
    now = utc(now)
    times = sorted({utc(t) for t in entry_times if t is not None and utc(t) <= now}, reverse=True)
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
    now = utc(now)
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
    now = utc(now)
    if at is None or utc(at) <= now:
        return False, None
    at = utc(at)
    reason = getattr(state, "next_poll_reason", None)
    when = f"until {at:%Y-%m-%d %H:%M} UTC (in {_describe(at - now)})"
    if reason == "retry-after":
        return True, f"retry-after: the server asked to wait {when}"
    if reason == "backoff" or (reason is None and state.error_count > 0):
        return True, f"backoff after {state.error_count} error(s) in a row, {when}"
    return False, None


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


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


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
