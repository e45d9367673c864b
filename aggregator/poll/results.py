"""What one poll leaves behind: the plan written with the source's new state and the poll log,
an error's record, and the :class:`PollResult` (with its log lines) handed back.

It fetches, parses and decides nothing: :mod:`aggregator.poll.poller` runs the pipeline and calls
:func:`record_plan` inside the poll's transaction; :mod:`aggregator.schedule.decide` decides.
"""

from __future__ import annotations

import logging
import random
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from aggregator.config.sources import SourceConfig
from aggregator.errors import AggregatorError, FetchError, ParseError
from aggregator.models import KEEP, Keep, PollResult, SourceState, SourceUpdate
from aggregator.poll.resources import Clock
from aggregator.poll.websub import stretch_plan
from aggregator.schedule.base import SchedulePolicy
from aggregator.schedule.decide import Cadence, PollOutcome, PollPlan, decide_next_poll
from aggregator.schedule.policy import schedule_state
from aggregator.storage import Storage

# The pipeline's logger: these lines are the poller's, under the poller's name.
log = logging.getLogger("aggregator.poll.poller")
T = TypeVar("T")


def record_plan(
    storage: Storage,
    policy: SchedulePolicy,
    state: SourceState,
    outcome: PollOutcome,
    now: datetime,
    update: SourceUpdate,
    *,
    clock: Clock,
    rng: random.Random | None,
    new_entries: int = 0,
    fallback_factor: float = 1.0,
) -> PollPlan:
    """Decide the next poll and write it with ``update`` (call inside the transaction),
    and log the poll (``now`` is when it started). ``fallback_factor`` stretches a successful
    poll's wait (a live WebSub subscription: polls are only the fallback)."""
    plan = decide_next_poll(policy, schedule_state(state), outcome, now, rng)
    plan = stretch_plan(plan, now, fallback_factor)
    # For the status page's chart: how long this poll took until now, by the same clock.
    storage.log_poll(
        state.id,
        now,
        round((clock() - now).total_seconds() * 1000),
        status=_set_or_none(update.last_status),
        new_entries=new_entries,
        error=_set_or_none(update.last_error),
    )
    storage.update_source(
        state.id,
        replace(
            update,
            last_polled_at=now,
            next_poll_at=plan.next_poll_at,
            next_poll_reason=plan.reason,
            next_poll_detail=plan.detail,
            error_count=plan.error_count,
            url=plan.url,
            redirect_url=plan.redirect_url,
            redirect_count=plan.redirect_count,
            retired_at=(state.retired_at or now) if plan.retired else None,
        ),
    )
    return plan


def poll_result(
    source: SourceConfig,
    state: SourceState,
    plan: PollPlan,
    status: str,
    adopt_after: int,
    **kw: Any,
) -> PollResult:
    """The result of a poll that answered, with a note (and a log line) on an adopted redirect
    or a retired source answering again; ``adopt_after`` is ``redirect_adopt_after``."""
    note = None
    if plan.redirect_adopted:
        note = f"now polled at {plan.url} (permanent redirect seen on consecutive polls)"
        log.warning(
            "%s: adopted the permanent redirect %s -> %s; update the config to match",
            source.name,
            state.url,
            plan.url,
        )
    elif plan.redirect_url and plan.redirect_url != state.redirect_url:
        log.info(
            "%s: permanent redirect to %s (adopted after %d polls in a row)",
            source.name,
            plan.redirect_url,
            adopt_after,
        )
    if state.retired_at is not None:
        note = "answered again: no longer retired"
        log.warning("%s: %s", source.name, note)
    return PollResult(source.name, status, next_poll_at=plan.next_poll_at, note=note, **kw)


def describe_error(error: Exception) -> tuple[str, int | None]:
    """The message recorded for a failed poll, and the HTTP status when the server gave one."""
    message = str(error) if isinstance(error, AggregatorError) else f"internal error: {error!r}"
    status = error.status if isinstance(error, FetchError) else None
    if isinstance(error, ParseError):
        message = f"cannot parse feed: {message}"
    return message, status


def error_outcome(error: Exception, message: str, base: Cadence) -> PollOutcome:
    """What a failed poll tells the schedule."""
    if isinstance(error, FetchError):
        return PollOutcome.from_error(error, **base)
    # an unreadable body is an error too: back off, keep the old validators
    return PollOutcome(status=None, error=message, **base)


def error_result(
    source: SourceConfig, message: str, status: int | None, plan: PollPlan | None
) -> PollResult:
    """Log a failed poll (with its next poll, or its retirement) and make its result;
    ``plan`` is ``None`` when the failure could not be recorded."""
    if plan is not None and plan.retired:
        log.error(
            "%s: %s: retired, it will not be requested again; remove it from the config "
            "or change its url",
            source.name,
            message,
        )
    elif plan is not None and plan.next_poll_at is not None:
        log.warning(
            "%s: %s; next poll %s UTC (%s)",
            source.name,
            message,
            f"{plan.next_poll_at:%Y-%m-%d %H:%M}",
            plan.reason,
        )
    else:
        log.warning("%s: %s", source.name, message)
    return PollResult(
        source.name,
        "error",
        http_status=status,
        error=message,
        next_poll_at=plan.next_poll_at if plan else None,
    )


def _set_or_none(value: T | Keep) -> T | None:
    """A :class:`SourceUpdate` field's value, ``None`` where it is left as stored (``KEEP``)."""
    return None if value is KEEP else value
