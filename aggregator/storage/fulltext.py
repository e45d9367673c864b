"""Full text (issue 17, item 2, migration ``0017_full_text``): the article fetched from each
entry's page, kept in ``full_texts`` beside the feed's own content; mixed into
:class:`~aggregator.storage.Storage`.

Owns the table's SQL only: which entries are due is asked here, what to do with each is
decided by :mod:`aggregator.fulltext.decide`. The outputs read the article with the entry
(``StoredEntry.full_text``, :mod:`aggregator.storage.outputs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aggregator.storage.rows import format_time

if TYPE_CHECKING:
    import sqlite3


@dataclass(frozen=True)
class FullTextCandidate:
    """An entry whose page may be fetched for its article, with what was stored about it."""

    entry_id: int
    link: str | None
    content: str | None
    summary: str | None
    status: str | None  # None (never considered), "retry" or "skipped"
    attempts: int = 0


class FullTextQueries:
    """The ``full_texts`` half of :class:`~aggregator.storage.Storage` (a mixin)."""

    def _rows(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> list[dict[str, Any]]:  # pragma: no cover - provided by Storage
        raise NotImplementedError

    def _execute(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> sqlite3.Cursor:  # pragma: no cover - provided by Storage
        raise NotImplementedError

    def full_text_candidates(
        self, source_id: int, *, recent: int, include_skipped: bool
    ) -> list[FullTextCandidate]:
        """Among the ``recent`` newest entries of a source, newest first: those never
        considered, those whose fetch is to be retried and (with ``include_skipped``) those
        an earlier ``full_text: auto`` left to the feed."""
        rows = self._rows(
            "SELECT e.id, e.link, e.content, e.summary, f.status, f.attempts FROM ("
            " SELECT id, link, content, summary, sort_at FROM entries WHERE source_id = :source"
            " ORDER BY sort_at DESC, id DESC LIMIT :recent"
            ") e LEFT JOIN full_texts f ON f.entry_id = e.id"
            " WHERE f.status IS NULL OR f.status = 'retry'"
            " OR (:skipped AND f.status = 'skipped')"
            " ORDER BY e.sort_at DESC, e.id DESC",
            {"source": source_id, "recent": recent, "skipped": int(include_skipped)},
        )
        return [
            FullTextCandidate(
                entry_id=row["id"],
                link=row["link"],
                content=row["content"],
                summary=row["summary"],
                status=row["status"],
                attempts=row["attempts"] or 0,
            )
            for row in rows
        ]

    def store_full_text(
        self,
        entry_id: int,
        status: str,
        now: datetime,
        *,
        url: str | None = None,
        content: str | None = None,
        error: str | None = None,
        attempts: int = 0,
    ) -> None:
        """Record what considering an entry's page gave (one row per entry, replaced)."""
        self._execute(
            "INSERT INTO full_texts (entry_id, status, url, content, error, attempts, checked_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (entry_id) DO UPDATE SET"
            " status = excluded.status, url = excluded.url, content = excluded.content,"
            " error = excluded.error, attempts = excluded.attempts,"
            " checked_at = excluded.checked_at",
            (entry_id, status, url, content, error, attempts, format_time(now)),
        )

    def get_full_text(self, entry_id: int) -> dict[str, Any] | None:
        """The stored row of an entry's page (``status``, ``content``, ``error`` ...), or None."""
        rows = self._rows("SELECT * FROM full_texts WHERE entry_id = ?", (entry_id,))
        return rows[0] if rows else None
