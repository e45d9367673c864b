"""aggregator.serve.health: the pure judgement behind GET /healthz."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aggregator.models import SourceState
from aggregator.serve.health import assess_health

NOW = datetime(2024, 3, 6, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


def source(name: str, **fields: object) -> SourceState:
    defaults: dict[str, object] = {
        "last_success_at": NOW - H,
        "last_polled_at": NOW - H,
        "next_poll_at": NOW + H,
    }
    return SourceState(id=1, name=name, url=f"https://example.org/{name}", **{**defaults, **fields})  # type: ignore[arg-type]


def test_all_fresh_is_ok() -> None:
    report = assess_health([source("a"), source("b")], NOW)
    assert report.as_json() == {"status": "ok", "sources": 2, "stale": [], "retired": []}


def test_a_failing_source_makes_it_degraded_and_is_named() -> None:
    report = assess_health(
        [source("a"), source("b", error_count=3, last_error="HTTP 500")], NOW, failing_after=3
    )
    assert report.status == "degraded"
    [stale] = report.as_json()["stale"]
    assert stale["name"] == "b" and stale["reason"].startswith("failing: 3 errors")
    assert stale["last_error"] == "HTTP 500"


def test_no_success_for_too_long_is_stale() -> None:
    old = source("a", last_success_at=NOW - 3 * 24 * H)
    assert (
        assess_health([old], NOW, stale_after=2 * 24 * H)
        .stale[0]
        .reason.startswith("no successful poll since")
    )
    assert assess_health([old], NOW, stale_after=4 * 24 * H).status == "ok"


def test_overdue_counts_only_while_a_daemon_polls() -> None:
    late = source("a", next_poll_at=NOW - 2 * H)
    assert assess_health([late], NOW).status == "ok"
    report = assess_health([late], NOW, overdue_after=H)
    assert report.status == "degraded" and report.stale[0].reason.startswith("overdue")


def test_retired_sources_are_listed_apart() -> None:
    report = assess_health([source("gone", retired_at=NOW, error_count=1)], NOW)
    assert report.status == "ok" and report.retired == ("gone",)
