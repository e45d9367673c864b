"""Sources' reads and writes; mixed into :class:`~aggregator.storage.Storage`.

Owns the sources table's SQL: syncing the configured sources, a source's stored state and its
updates after a poll, and the per-source rows ``status`` shows. What a poll decides is
:mod:`aggregator.poll`'s; entries are :mod:`aggregator.storage.entries`'.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aggregator.errors import NotFoundError
from aggregator.models import SourceState, SourceUpdate
from aggregator.storage.rows import _column_value, format_time, parse_time
from aggregator.storage.status import DETAIL_COLUMNS, with_details

if TYPE_CHECKING:
    import sqlite3


class SourceQueries:
    """Storing and reading sources; mixed into :class:`~aggregator.storage.Storage`."""

    def _rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError  # provided by Storage

    def _execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        raise NotImplementedError  # provided by Storage

    def transaction(self) -> AbstractContextManager[None]:
        raise NotImplementedError  # provided by Storage

    def sync_sources(self, sources: Iterable[tuple[str, str]], now: datetime) -> list[str]:
        """Make sure a row exists for each configured (name, url); return the names whose
        configured URL changed.

        ``url`` is what is polled; it moves on its own when a permanent redirect is adopted,
        and only a change of the *configured* URL (``config_url``) overrides it. Such a change
        starts the source afresh: validators, redirect tracking, error streak and retirement
        are cleared and it is due at once. Sources removed from the config keep their rows and
        entries (nothing seen is lost).
        """
        changed: list[str] = []
        with self.transaction():
            for name, url in sources:
                rows = self._rows("SELECT config_url FROM sources WHERE name = ?", (name,))
                if not rows:
                    self._execute(
                        "INSERT INTO sources (name, url, config_url, created_at) "
                        "VALUES (?, ?, ?, ?)",
                        (name, url, url, format_time(now)),
                    )
                elif rows[0]["config_url"] != url:
                    self._execute(
                        "UPDATE sources SET url = :url, config_url = :url, etag = NULL, "
                        "last_modified = NULL, body_hash = NULL, redirect_url = NULL, "
                        "redirect_count = 0, error_count = 0, retired_at = NULL, "
                        "next_poll_at = NULL, next_poll_reason = NULL, next_poll_detail = NULL "
                        "WHERE name = :name",
                        {"url": url, "name": name},
                    )
                    changed.append(name)
        return changed

    def get_source(self, name: str) -> SourceState:
        """The stored state of a source; raises :class:`NotFoundError` when unknown."""
        rows = self._rows("SELECT * FROM sources WHERE name = ?", (name,))
        if not rows:
            raise NotFoundError(f"no source named {name!r} in the database")
        row = rows[0]
        return SourceState(
            id=row["id"],
            name=row["name"],
            url=row["url"],
            title=row["title"],
            link=row["link"],
            etag=row["etag"],
            last_modified=row["last_modified"],
            body_hash=row["body_hash"],
            last_polled_at=parse_time(row["last_polled_at"]),
            last_status=row["last_status"],
            last_error=row["last_error"],
            error_count=row["error_count"],
            next_poll_at=parse_time(row["next_poll_at"]),
            next_poll_reason=row["next_poll_reason"],
            redirect_url=row["redirect_url"],
            redirect_count=row["redirect_count"],
            retired_at=parse_time(row["retired_at"]),
            comments_etag=row["comments_etag"],
            comments_last_modified=row["comments_last_modified"],
            config_url=row["config_url"],
            last_success_at=parse_time(row["last_success_at"]),
            next_poll_detail=row["next_poll_detail"],
            hint_ttl_minutes=row["hint_ttl_minutes"],
            hint_update_period=row["hint_update_period"],
            hint_skip_hours=frozenset(json.loads(row["hint_skip_hours"] or "[]")),
            hint_skip_days=frozenset(json.loads(row["hint_skip_days"] or "[]")),
            comments_polled_at=parse_time(row["comments_polled_at"]),
        )

    def update_source(self, source_id: int, update: SourceUpdate) -> None:
        """Record poll results on a source row (validators, status, error, times): the
        columns of ``update`` that are not ``KEEP``.

        Datetimes are stored as UTC text and sets (the skip hints) as sorted JSON lists.
        """
        values = {key: _column_value(v, key) for key, v in update.columns().items()}
        assignments = ", ".join(f"{key} = :{key}" for key in values)
        self._execute(
            f"UPDATE sources SET {assignments} WHERE id = :_id", {**values, "_id": source_id}
        )

    def recent_entry_times(self, source_id: int, limit: int = 10) -> list[datetime]:
        """When the newest ``limit`` entries of a source were published (else first seen):
        the posting rhythm the adaptive interval is read from."""
        rows = self._rows(
            "SELECT coalesce(published_at, updated_at, first_seen_at) AS at FROM entries "
            "WHERE source_id = ? ORDER BY sort_at DESC, id DESC LIMIT ?",
            (source_id, limit),
        )
        return [t for t in (parse_time(row["at"]) for row in rows) if t is not None]

    def list_source_rows(
        self, ids: Sequence[int] | None = None, *, details: bool = False
    ) -> list[dict[str, Any]]:
        """Every source (or those with ``ids``) with counts of its entries and comments, for
        ``status`` and the status page. With ``details``, also its WebSub subscription and its
        full-text counts and last error (``websub``, ``full_text``, ``full_text_error``, read by
        :func:`~aggregator.storage.status.with_details`); still one query."""
        where = f"WHERE s.id IN ({','.join(str(int(i)) for i in ids)}) " if ids is not None else ""
        rows = self._rows(
            "SELECT s.*, "
            "(SELECT count(*) FROM entries e WHERE e.source_id = s.id) AS entry_count, "
            "(SELECT coalesce(sum(e.comment_count), 0) FROM entries e WHERE e.source_id = s.id) "
            "AS comment_total, "
            # The latest thread problem or note ("comments load by script (Disqus); none in
            # the page"), and on how many threads one is recorded.
            "(SELECT e.comments_error FROM entries e WHERE e.source_id = s.id "
            "AND e.comments_error IS NOT NULL ORDER BY e.comments_polled_at DESC LIMIT 1) "
            "AS comments_note, "
            "(SELECT count(*) FROM entries e WHERE e.source_id = s.id "
            "AND e.comments_error IS NOT NULL) AS comments_note_count"
            f"{DETAIL_COLUMNS if details else ''} "
            f"FROM sources s {where}ORDER BY s.name"
        )
        return [with_details(row) for row in rows] if details else rows
