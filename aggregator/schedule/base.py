"""What every scheduling decision shares: the policy's numbers and UTC normalisation.

:class:`SchedulePolicy` holds the numbers behind each decision (floor, backoff, caps on the
publisher's hints), with polite defaults; :func:`utc` makes any datetime aware UTC. A leaf:
:mod:`aggregator.schedule.decide` (a source's next poll), :mod:`.hints` (Retry-After, cache
headers, feed hints) and :mod:`.threads` (a comment thread's next poll) all import it, and it
imports none of them. It decides nothing; mapping the configuration onto a policy is
:mod:`aggregator.schedule.policy`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


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


def utc(value: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
