"""Pure: is the aggregator healthy? Stored source states + now -> a :class:`HealthReport`.

Does no IO: the server reads the states and serves the report as ``GET /healthz``. A source
is *stale* when it has failed ``failing_after`` polls in a row, when its last successful poll
is older than ``stale_after``, or (while a daemon is polling) when its next poll is overdue by
more than ``overdue_after``, which means the scheduler is stuck. Retired sources (410 Gone) are
listed apart: they are a decision already made, not a fault in progress.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aggregator.models import SourceState


@dataclass(frozen=True)
class StaleSource:
    """One source that needs the operator's attention, and why."""

    name: str
    reason: str
    last_success_at: datetime | None = None
    error_count: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class HealthReport:
    """``ok`` when no source is stale, else ``degraded``."""

    status: str
    sources: int
    stale: tuple[StaleSource, ...] = ()
    retired: tuple[str, ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, Any]:
        """The report as ``/healthz`` serves it."""
        return {
            "status": self.status,
            "sources": self.sources,
            "stale": [
                {
                    "name": item.name,
                    "reason": item.reason,
                    "last_success_at": _iso(item.last_success_at),
                    "error_count": item.error_count,
                    "last_error": item.last_error,
                }
                for item in self.stale
            ],
            "retired": list(self.retired),
        }

    def as_counts(self) -> dict[str, Any]:
        """The report for a client that may not see source names or error texts (which can
        name internal hosts): the overall status and counts only."""
        return {
            "status": self.status,
            "sources": self.sources,
            "stale": len(self.stale),
            "retired": len(self.retired),
        }


def assess_health(
    states: Iterable[SourceState],
    now: datetime,
    *,
    stale_after: timedelta = timedelta(days=2),
    failing_after: int = 3,
    overdue_after: timedelta | None = None,
) -> HealthReport:
    """Judge the configured sources' stored states. ``overdue_after=None`` skips the overdue
    check (``aggregator serve`` polls nothing, so nothing can be overdue there)."""
    stale: list[StaleSource] = []
    retired: list[str] = []
    count = 0
    for state in states:
        count += 1
        if state.retired_at is not None:
            retired.append(state.name)
            continue
        reason = _stale_reason(state, now, stale_after, failing_after, overdue_after)
        if reason is not None:
            stale.append(
                StaleSource(
                    name=state.name,
                    reason=reason,
                    last_success_at=state.last_success_at,
                    error_count=state.error_count,
                    last_error=state.last_error,
                )
            )
    return HealthReport(
        status="degraded" if stale else "ok",
        sources=count,
        stale=tuple(stale),
        retired=tuple(retired),
    )


def _stale_reason(
    state: SourceState,
    now: datetime,
    stale_after: timedelta,
    failing_after: int,
    overdue_after: timedelta | None,
) -> str | None:
    if state.error_count >= failing_after:
        return f"failing: {state.error_count} errors in a row"
    if state.last_success_at is not None and now - state.last_success_at > stale_after:
        return f"no successful poll since {_iso(state.last_success_at)}"
    if (
        overdue_after is not None
        and state.next_poll_at is not None
        and now - state.next_poll_at > overdue_after
    ):
        return f"overdue: was due at {_iso(state.next_poll_at)}"
    return None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None
