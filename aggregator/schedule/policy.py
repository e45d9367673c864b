"""Pure glue between the configuration, stored state and :mod:`aggregator.schedule.decide`.

Maps ``defaults`` and a source's settings onto a :class:`~aggregator.schedule.base.SchedulePolicy`,
a stored :class:`~aggregator.models.SourceState` onto the decider's
:class:`~aggregator.schedule.decide.ScheduleState`, and says whether a poll should be skipped. Does no
IO and reads no clock: the pipeline (:mod:`aggregator.poll.poller`) passes ``now`` in.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aggregator.config.schema import AppConfig
from aggregator.config.sources import SourceConfig
from aggregator.models import FeedData, SourceState
from aggregator.schedule.base import SchedulePolicy
from aggregator.schedule.decide import ScheduleState, is_in_backoff


def is_file_source(source: SourceConfig) -> bool:
    """A source read from the local disk (the demo feeds): it costs nobody anything to poll."""
    return source.url.startswith("file:")


def schedule_policy(config: AppConfig, source: SourceConfig) -> tuple[SchedulePolicy, bool]:
    """The decider's numbers for one source, and whether its interval adapts to its posting.

    Ordinary feeds are never polled more often than ``defaults.interval_floor``; those without
    an ``interval`` of their own learn one from their posting rhythm (when ``adaptive``), between
    ``min_interval`` and ``max_interval``. A source with its own ``interval`` is polled at that
    interval (still floored, still delayed by the publisher's hints). File sources are exempt
    from the floor and from learning: they cost nothing, and an operator editing a local file
    expects it read at the configured interval.
    """
    d = config.defaults
    interval = config.interval_for(source)
    common: dict[str, Any] = {
        "interval": interval,
        "backoff_max": d.max_backoff,
        "retry_after_max": d.max_retry_after,
        "redirect_adopt_after": d.redirect_adopt_after,
    }
    if is_file_source(source):
        policy = SchedulePolicy(
            floor=timedelta(0),
            backoff_base=min(interval, SchedulePolicy.backoff_base),
            hint_max=max(interval, d.max_interval),
            **common,
        )
        return policy, False
    floor = d.interval_floor
    policy = SchedulePolicy(
        floor=floor,
        adaptive_min=max(d.min_interval, floor),
        adaptive_max=max(d.max_interval, floor),
        hint_max=max(d.max_interval, floor),
        **common,
    )
    return policy, d.adaptive and source.interval is None


def schedule_state(state: SourceState) -> ScheduleState:
    """What the decider remembers about a source, from its stored row."""
    return ScheduleState(
        url=state.url,
        error_count=state.error_count,
        redirect_url=state.redirect_url,
        redirect_count=state.redirect_count,
        next_poll_at=state.next_poll_at,
        next_poll_reason=state.next_poll_reason,
    )


def stored_hints(state: SourceState) -> FeedData:
    """The feed's polling hints as last seen, for a poll whose answer carried no body (304)."""
    return FeedData(
        title=None,
        link=None,
        entries=(),
        ttl_minutes=state.hint_ttl_minutes,
        update_period_seconds=state.hint_update_period,
        skip_hours=state.hint_skip_hours,
        skip_days=state.hint_skip_days,
    )


def skip_reason(state: SourceState, now: datetime, *, manual: bool) -> str | None:
    """Why a poll of this source should not be made now, or ``None``.

    A retired source (410 Gone) is never requested. A poll by hand also leaves alone a source
    waiting out a Retry-After or a backoff window; the daemon's own schedule already does.
    """
    if state.retired_at is not None:
        return (
            f"retired since {state.retired_at:%Y-%m-%d %H:%M} UTC (the server answered 410 Gone); "
            "change its url in the config to start it again, or poll it with --force"
        )
    if manual:
        waiting, why = is_in_backoff(state, now)
        if waiting:
            return f"{why}; --force polls it anyway"
    return None
