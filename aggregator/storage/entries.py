"""Entries' reads and writes; mixed into :class:`~aggregator.storage.Storage`.

Owns the entries table's SQL: executing the plan :func:`aggregator.storage.plan.plan_entries`
decides for a poll (what is new, changed or unchanged is decided there, not here), and reading
entries back. Comments are :mod:`aggregator.storage.comments`'.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aggregator.errors import NotFoundError
from aggregator.models import EntryData, SourceState, StoredEntry, StoreResult
from aggregator.storage.plan import EntryInsert, plan_entries
from aggregator.storage.retention import skip_pruned
from aggregator.storage.rows import _entry_values, _stored_entry, format_time

if TYPE_CHECKING:
    import sqlite3

    from sqlite_utils import Database


class EntryQueries:
    """Storing and reading entries; mixed into :class:`~aggregator.storage.Storage`."""

    db: Database

    def _rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError  # provided by Storage

    def _execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        raise NotImplementedError  # provided by Storage

    def _execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError  # provided by Storage

    def store_entries(
        self, source: SourceState, entries: Sequence[EntryData], now: datetime
    ) -> StoreResult:
        """Insert new entries and update changed ones in place (matched by key within source).

        Call inside :meth:`transaction` together with the source's state update, so that one
        poll is one atomic write. Entries that left the feed are kept.
        """
        existing = self._rows(
            "SELECT id, key, title, content_hash, comment_count_hint, comments_hint_polled "
            "FROM entries WHERE source_id = ?",
            (source.id,),
        )
        # Keys `aggregator prune` removed stay removed while the feed carries them.
        pruned = skip_pruned(self.db, source.id, [e.key for e in entries], format_time(now))
        plan = plan_entries(source.name, existing, entries, pruned, now)
        stamp = plan.stamp
        for row_id, key in plan.renames:
            self._execute("UPDATE entries SET key = ? WHERE id = ?", (key, row_id))
        # Consecutive inserts of the same columns go in one executemany, in the plan's order
        # (new rows are inserted last item first, see plan.plan_entries).
        batch_sql = ""
        batch: list[tuple[Any, ...]] = []
        for write in plan.writes:
            entry = write.entry
            values = _entry_values(entry)
            if isinstance(write, EntryInsert):
                sql = (
                    "INSERT INTO entries (source_id, key, public_id, first_seen_at, sort_at, changed_at, "
                    + ", ".join(values)
                    + ") VALUES (?, ?, ?, ?, ?, ?, "
                    + ", ".join("?" for _ in values)
                    + ")"
                )
                if sql != batch_sql:
                    self._execute_many(batch_sql, batch)
                    batch_sql, batch = sql, []
                batch.append(
                    (
                        source.id,
                        entry.key,
                        write.public_id,
                        stamp,
                        write.sort_at,
                        stamp,
                        *values.values(),
                    )
                )
                continue
            self._execute_many(batch_sql, batch)
            batch_sql, batch = "", []
            if write.changed:
                assignments = ", ".join(f"{key} = ?" for key in values)
                self._execute(
                    f"UPDATE entries SET {assignments}, changed_at = ? WHERE id = ?",
                    (*values.values(), stamp, write.row_id),
                )
            else:
                # Only the comment hints may move without the content hash changing.
                self._execute(
                    "UPDATE entries SET comment_count_hint = ?, comments_feed_url = ?, "
                    "comments_page_url = ? WHERE id = ?",
                    (
                        entry.comment_count,
                        entry.comments_feed_url,
                        entry.comments_page_url,
                        write.row_id,
                    ),
                )
            if write.count_moved:
                # Due at once, and followed again if it had stopped (plan.count_moved).
                self._execute(
                    "UPDATE entries SET comments_stopped = 0, comments_next_poll_at = NULL "
                    "WHERE id = ?",
                    (write.row_id,),
                )
        self._execute_many(batch_sql, batch)
        return StoreResult(
            new=plan.new, updated=plan.updated, unchanged=plan.unchanged, moved_threads=plan.moved
        )

    def list_entries(self, source_names: Sequence[str] | None, limit: int) -> list[StoredEntry]:
        """The newest ``limit`` entries of the named sources (all sources when ``None``)."""
        where = ""
        params: list[Any] = []
        if source_names is not None:
            if not source_names:
                return []
            where = "WHERE s.name IN (" + ", ".join("?" for _ in source_names) + ")"
            params.extend(source_names)
        rows = self._rows(
            "SELECT e.*, s.name AS source_name, s.title AS source_title, s.url AS source_url, "
            "s.link AS source_link FROM entries e JOIN sources s ON s.id = e.source_id "
            f"{where} ORDER BY e.sort_at DESC, e.id DESC LIMIT ?",
            (*params, limit),
        )
        return [_stored_entry(row) for row in rows]

    def entry_content(self, entry_id: int) -> str | None:
        """An entry's stored content (else its summary), for a provider that reads it."""
        rows = self._rows("SELECT content, summary FROM entries WHERE id = ?", (entry_id,))
        return (rows[0]["content"] or rows[0]["summary"]) if rows else None

    def get_entry(self, public_id: str) -> StoredEntry:
        """One entry by its public id, with its full text; raises :class:`NotFoundError`."""
        rows = self._rows(
            "SELECT e.*, s.name AS source_name, s.title AS source_title, s.url AS source_url, "
            "s.link AS source_link, (SELECT f.content FROM full_texts f "
            "WHERE f.entry_id = e.id AND f.status = 'ok') AS full_text "
            "FROM entries e JOIN sources s ON s.id = e.source_id WHERE e.public_id = ?",
            (public_id,),
        )
        if not rows:
            raise NotFoundError(f"no entry {public_id!r}")
        return _stored_entry(rows[0])

    def find_entry(self, reference: str) -> StoredEntry:
        """An entry by public id, id prefix (8+ characters), link or guid; raises NotFoundError."""
        reference = reference.strip()
        rows = self._rows(
            "SELECT public_id FROM entries WHERE public_id = ? OR link = ? OR guid = ? "
            "OR (length(?) >= 8 AND public_id LIKE ? || '%') LIMIT 2",
            (reference, reference, reference, reference, reference.lower()),
        )
        if not rows:
            raise NotFoundError(f"no entry matches {reference!r}")
        if len(rows) > 1 and rows[0]["public_id"] != reference:
            raise NotFoundError(f"{reference!r} matches more than one entry; give more of its id")
        return self.get_entry(rows[0]["public_id"])

    def count(self, table: str) -> int:
        """Rows in one of aggregator's tables."""
        if table not in ("sources", "entries", "comments"):
            raise ValueError(table)
        return int(self._rows(f"SELECT count(*) AS n FROM {table}")[0]["n"])
