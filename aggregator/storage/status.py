"""Storage queries behind ``aggregator status`` and the status page (issue 18).

A page of the status page costs a constant number of queries, whatever the number of sources:
:meth:`StatusQueries.list_source_states` (every source's few state columns, to count and order
them), :meth:`~aggregator.storage.Storage.list_source_rows` for the page's sources (with their
counts, WebSub subscription and full-text counts: :data:`DETAIL_COLUMNS`), :meth:`StatusQueries.daily_activity` (new entries and comments per day and the polls
of the page's sources, one compound query) and :meth:`StatusQueries.totals`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from aggregator.storage.schema import POLL_LOG_DAYS

#: What ``status`` shows of a source beyond its own row, as JSON columns of
#: ``list_source_rows(details=True)`` (correlated subqueries: still one query for any number of
#: sources): its WebSub subscription, never its secret nor its callback (``websub_json``), the
#: counts of its entries' full-text rows by status (``full_text_json``) and the newest error of
#: a page to retry or given up (``full_text_error_json``).
DETAIL_COLUMNS = (
    ", (SELECT json_object('hub', w.hub, 'mode', w.mode, 'requested_at', w.requested_at, "
    "'verified_at', w.verified_at, 'expires_at', w.expires_at, 'pushed_at', w.pushed_at, "
    "'retry_at', w.retry_at, 'error_count', w.error_count, 'last_error', w.last_error) "
    "FROM websub_subscriptions w WHERE w.source_name = s.name) AS websub_json, "
    "(SELECT CASE WHEN count(*) THEN json_object('ok', sum(f.status = 'ok'), "
    "'retry', sum(f.status = 'retry'), 'failed', sum(f.status = 'failed'), "
    "'skipped', sum(f.status = 'skipped')) END "
    "FROM full_texts f JOIN entries e ON e.id = f.entry_id WHERE e.source_id = s.id) "
    "AS full_text_json, "
    "(SELECT json_object('error', f.error, 'at', f.checked_at) "
    "FROM full_texts f JOIN entries e ON e.id = f.entry_id WHERE e.source_id = s.id "
    "AND f.status IN ('retry', 'failed') AND f.error IS NOT NULL "
    "ORDER BY f.checked_at DESC LIMIT 1) AS full_text_error_json"
)
_DETAILS = ("websub_json", "full_text_json", "full_text_error_json")

# The columns that decide a source's state (aggregator.serve.status.source_state).
_STATE_COLUMNS = (
    "id, name, retired_at, error_count, last_error, last_polled_at, last_success_at, "
    "next_poll_reason"
)


def with_details(row: dict[str, Any]) -> dict[str, Any]:
    """A row of ``list_source_rows(details=True)`` with its JSON columns read: ``websub``,
    ``full_text`` and ``full_text_error`` (each ``None`` when there is none)."""
    for column in _DETAILS:
        raw = row.pop(column, None)
        row[column.removesuffix("_json")] = json.loads(raw) if raw else None
    return row


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds")  # as storage.format_time


class StatusQueries:
    """Mixed into :class:`~aggregator.storage.Storage`: the status queries."""

    def _rows(self, sql: str, params: Any = ()) -> list[Any]:
        raise NotImplementedError  # provided by Storage

    def _execute(self, sql: str, params: Any = ()) -> Any:
        raise NotImplementedError  # provided by Storage

    def list_source_states(self) -> list[dict[str, Any]]:
        """Every source's state columns (no counts): cheap for 10,000 sources."""
        return self._rows(f"SELECT {_STATE_COLUMNS} FROM sources ORDER BY name")

    def totals(self) -> dict[str, int]:
        """Entries and comments stored, over every source."""
        row = self._rows(
            "SELECT (SELECT count(*) FROM entries) AS entries, "
            "(SELECT coalesce(sum(comment_count), 0) FROM entries) AS comments"
        )[0]
        return {"entries": int(row["entries"]), "comments": int(row["comments"])}

    def daily_activity(self, source_ids: Sequence[int], since: datetime) -> list[dict[str, Any]]:
        """For the sources ``source_ids``, since ``since``: rows of ``kind`` ``entries`` or
        ``comments`` (``day``, ``value`` = how many were first seen that UTC day) and ``poll``
        (``day`` = the poll's time, ``value`` = its duration in milliseconds, ``status``,
        ``error``). One query."""
        if not source_ids:
            return []
        ids = ",".join(str(int(source_id)) for source_id in source_ids)
        stamp = _stamp(since)
        return self._rows(
            "SELECT 'entries' AS kind, source_id, substr(first_seen_at, 1, 10) AS day, "
            "count(*) AS value, NULL AS status, NULL AS error FROM entries "
            f"WHERE source_id IN ({ids}) AND first_seen_at >= :since GROUP BY source_id, day "
            "UNION ALL "
            "SELECT 'comments', e.source_id, substr(c.first_seen_at, 1, 10) AS day, count(*), "
            "NULL, NULL FROM comments c JOIN entries e ON e.id = c.entry_id "
            f"WHERE c.first_seen_at >= :since AND e.source_id IN ({ids}) "
            "GROUP BY e.source_id, day "
            "UNION ALL "
            "SELECT 'poll', source_id, polled_at, duration_ms, status, error FROM poll_log "
            f"WHERE source_id IN ({ids}) AND polled_at >= :since "
            "ORDER BY 1, 2, 3",
            {"since": stamp},
        )

    def log_poll(
        self,
        source_id: int,
        polled_at: datetime,
        duration_ms: int,
        *,
        status: int | None,
        new_entries: int = 0,
        error: str | None = None,
    ) -> None:
        """Record one poll (call inside the poll's transaction) and forget this source's polls
        older than ``POLL_LOG_DAYS`` days."""
        stamp = _stamp(polled_at)
        cutoff = _stamp(polled_at - timedelta(days=POLL_LOG_DAYS))
        self._execute(
            "DELETE FROM poll_log WHERE source_id = ? AND polled_at < ?", (source_id, cutoff)
        )
        self._execute(
            "INSERT INTO poll_log (source_id, polled_at, duration_ms, status, new_entries, error)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (source_id, stamp, max(0, int(duration_ms)), status, new_entries, error),
        )
