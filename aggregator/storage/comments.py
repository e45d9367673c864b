"""Comments' reads and writes; mixed into :class:`~aggregator.storage.Storage`.

Owns the comments table's SQL and the thread columns of entries: executing the plan
:func:`aggregator.storage.plan.plan_comments` decides for one thread (what is new, changed,
renumbered is decided there, not here), marking vanished comments gone, the threads a comment
poll follows, and reading comments back for publishing. Earlier versions of comments are
:mod:`aggregator.storage.history`'s.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aggregator.errors import StorageError
from aggregator.models import (
    CommentData,
    StoredComment,
    StoredThread,
    StoreResult,
    ThreadState,
    ThreadUpdate,
)
from aggregator.storage.history import record_revision
from aggregator.storage.plan import CommentRenumber, plan_comments
from aggregator.storage.rows import (
    _chunks,
    _column_value,
    _stored_comments,
    format_time,
    parse_time,
)

if TYPE_CHECKING:
    from sqlite_utils import Database

# A thread's order: the source's numbering where it has one, then time.
_THREAD_ORDER = "coalesce(c.number, 1e18), c.sort_at, c.id"
# What a comment feed shows of a comment (with the entry's own fields): list_thread_summaries.
_FINGERPRINT_COLUMNS = (
    "c.key",
    "c.public_id",
    "c.content",
    "c.author",
    "c.author_url",
    "c.link",
    "c.number",
    "c.parent_key",
    "c.published_at",
    "c.first_seen_at",
    "c.gone_at",
)
_PUBLISHED = 1 + _FINGERPRINT_COLUMNS.index("c.published_at")  # after entry_id
_FIRST_SEEN = 1 + _FINGERPRINT_COLUMNS.index("c.first_seen_at")
# Comment fields an update never clears: a comment feed does not number or thread its comments.
_KEPT_WHEN_MISSING = frozenset({"number", "parent_key", "author_url"})
# The columns a comment read gives, in the order store_comments passes them.
_COMMENT_COLUMNS = (
    "author",
    "author_url",
    "title",
    "content",
    "link",
    "number",
    "parent_key",
    "published_at",
    "content_hash",
)
_INSERT_COMMENT = (
    "INSERT INTO comments (entry_id, key, public_id, first_seen_at, sort_at, changed_at, "
    f"{', '.join(_COMMENT_COLUMNS)}) VALUES ({', '.join('?' * (6 + len(_COMMENT_COLUMNS)))})"
)
_UPDATE_COMMENT = (
    "UPDATE comments SET "
    + ", ".join(
        f"{key} = coalesce(?, {key})" if key in _KEPT_WHEN_MISSING else f"{key} = ?"
        for key in _COMMENT_COLUMNS
    )
    + ", changed_at = ?, gone_at = NULL WHERE id = ?"
)


class CommentQueries:
    """Storing and reading comments and threads; mixed into :class:`~aggregator.storage.Storage`."""

    db: Database
    path: Path

    def _rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError  # provided by Storage

    def _execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        raise NotImplementedError  # provided by Storage

    def store_comments(
        self, entry_id: int, entry_public: str, comments: Sequence[CommentData], now: datetime
    ) -> StoreResult:
        """Insert new comments of one entry and update changed ones; keep those that vanished.

        Call inside :meth:`transaction`. Updates the entry's comment count and latest time.
        """
        existing = self._rows(
            "SELECT id, key, content_hash, gone_at, number, content, author FROM comments "
            "WHERE entry_id = ?",
            (entry_id,),
        )
        plan = plan_comments(entry_id, entry_public, existing, comments, now)
        stamp = plan.stamp
        for row_id, key in plan.renames:
            self._execute("UPDATE comments SET key = ? WHERE id = ?", (key, row_id))
        for write in plan.writes:
            if isinstance(write, CommentRenumber):
                self._execute(
                    "UPDATE comments SET number = ? WHERE id = ?", (write.number, write.row_id)
                )
                continue
            # A feed knows no number or parent, a page does: what one read lacks, keep.
            self._execute(_UPDATE_COMMENT, (*write.values, stamp, write.row["id"]))
            if write.revise:
                # Its earlier text is kept, in this same transaction (issue 15).
                record_revision(self, dict(write.row), "edit", write.comment.content, stamp)
        if plan.inserts:  # written in one executemany, in the order read
            try:
                self.db.conn.executemany(_INSERT_COMMENT, plan.inserts)
            except sqlite3.Error as error:
                raise StorageError(f"{self.path}: {error}") from error
        self._execute(
            "UPDATE entries SET comment_count = (SELECT count(*) FROM comments WHERE entry_id = :id), "
            "last_comment_at = (SELECT max(sort_at) FROM comments WHERE entry_id = :id) WHERE id = :id",
            {"id": entry_id},
        )
        return StoreResult(new=len(plan.inserts), updated=plan.updated, unchanged=plan.unchanged)

    def mark_comments_gone(self, entry_id: int, present_keys: Iterable[str], now: datetime) -> int:
        """Mark stored comments missing from a complete listing as gone (they are kept, and
        their last text is recorded as a ``gone`` revision)."""
        keys = set(present_keys)
        gone = 0
        # Keys starting with "@" are comments read from an API (aggregator.discussions), which
        # no feed or page lists: they are never judged by a feed's or page's listing.
        for row in self._rows(
            "SELECT id, key, content, author FROM comments WHERE entry_id = ? AND gone_at IS NULL "
            "AND substr(key, 1, 1) != '@'",
            (entry_id,),
        ):
            if row["key"] not in keys:
                self._execute(
                    "UPDATE comments SET gone_at = ? WHERE id = ?", (format_time(now), row["id"])
                )
                record_revision(self, row, "gone", None, format_time(now))
                gone += 1
        return gone

    def list_threads(
        self, source_id: int, due_before: datetime | None, *, include_stopped: bool = False
    ) -> list[ThreadState]:
        """Threads of a source still followed; only those due by ``due_before`` when given.

        ``include_stopped`` lists every entry of the source, followed or not (a site-wide comment
        feed's comments are matched to any entry, since reading them costs no request).
        """
        sql = "SELECT * FROM entries WHERE source_id = ?"
        if not include_stopped:
            sql += " AND comments_stopped = 0"
        params: list[Any] = [source_id]
        if due_before is not None:
            sql += " AND (comments_next_poll_at IS NULL OR comments_next_poll_at <= ?)"
            params.append(format_time(due_before))
        rows = self._rows(sql + " ORDER BY sort_at DESC", params)
        return [
            ThreadState(
                entry_id=row["id"],
                public_id=row["public_id"],
                key=row["key"],
                guid=row["guid"],
                link=row["link"],
                comments_feed_url=row["comments_feed_url"],
                comments_page_url=row["comments_page_url"],
                first_seen_at=parse_time(row["first_seen_at"]) or datetime.now(UTC),
                last_comment_at=parse_time(row["last_comment_at"]),
                last_new_comment_at=parse_time(row["comments_last_new_at"]),
                etag=row["comments_etag"],
                last_modified=row["comments_last_modified"],
                comment_count_hint=row["comment_count_hint"],
                hint_at_last_poll=row["comments_hint_polled"],
                polled_at=parse_time(row["comments_polled_at"]),
                comment_count=row["comment_count"] or 0,
                error=row["comments_error"],
            )
            for row in rows
        ]

    def update_thread(self, entry_id: int, update: ThreadUpdate) -> None:
        """Record a comment poll on an entry (validators, times, next poll, stopped): the
        columns of ``update`` that are not ``KEEP``."""
        values = {key: _column_value(v, key) for key, v in update.columns().items()}
        assignments = ", ".join(f"{key} = :{key}" for key in values)
        self._execute(
            f"UPDATE entries SET {assignments} WHERE id = :_id", {**values, "_id": entry_id}
        )

    def newest_comment_at(self, source_id: int) -> datetime | None:
        """The date of the newest stored comment on any entry of a source."""
        rows = self._rows(
            "SELECT max(c.published_at) AS newest FROM comments c "
            "JOIN entries e ON e.id = c.entry_id WHERE e.source_id = ? "
            "AND substr(c.key, 1, 1) != '@'",
            (source_id,),
        )
        return parse_time(rows[0]["newest"]) if rows else None

    def known_comments(
        self, entry_ids: Iterable[int]
    ) -> dict[int, tuple[tuple[int | None, ...], datetime | None, frozenset[str]]]:
        """For each of ``entry_ids`` with stored comments: their numbers and the newest one's
        date (gap detection), and their keys (to tell when a paged feed has no more news), in
        one query per 500 entries."""
        grouped: dict[int, list[tuple[str, int | None, str | None]]] = {}
        for chunk in _chunks(sorted(set(entry_ids)), 500):
            cursor = self._execute(
                "SELECT entry_id, key, number, published_at FROM comments "
                f"WHERE entry_id IN ({', '.join(str(int(i)) for i in chunk)}) "
                # Comments read from APIs (keys "@...") are no part of a feed's numbering.
                "AND substr(key, 1, 1) != '@'"
            )
            try:
                rows = cursor.fetchall()
            except sqlite3.Error as error:
                raise StorageError(f"{self.path}: {error}") from error
            for entry_id, key, number, published in rows:
                grouped.setdefault(entry_id, []).append((key, number, published))
        return {
            entry_id: (
                tuple(number for _, number, _ in rows),
                parse_time(max((p for _, _, p in rows if p), default=None)),
                frozenset(key for key, _, _ in rows),
            )
            for entry_id, rows in grouped.items()
        }

    def list_comments(self, entry_id: int) -> list[StoredComment]:
        """Every stored comment of one entry, in thread order (number, then time)."""
        rows = self._rows(
            "SELECT c.*, e.public_id AS entry_public_id FROM comments c "
            f"JOIN entries e ON e.id = c.entry_id WHERE c.entry_id = ? ORDER BY {_THREAD_ORDER}",
            (entry_id,),
        )
        return _stored_comments(rows)

    def list_comments_of(self, entry_ids: Iterable[int]) -> dict[int, list[StoredComment]]:
        """Every stored comment of each of ``entry_ids``, in thread order (one query per 500
        entries, where :meth:`list_comments` is one per entry). Entries without comments are
        left out."""
        threads: dict[int, list[StoredComment]] = {}
        for chunk in _chunks(sorted(set(entry_ids)), 500):
            rows = self._rows(
                "SELECT c.*, e.public_id AS entry_public_id FROM comments c "
                "JOIN entries e ON e.id = c.entry_id "
                f"WHERE c.entry_id IN ({', '.join(str(int(i)) for i in chunk)}) "
                f"ORDER BY c.entry_id, {_THREAD_ORDER}"
            )
            for comment in _stored_comments(rows):
                threads.setdefault(comment.entry_id, []).append(comment)
        return threads

    def list_thread_summaries(self, entry_ids: Iterable[int]) -> dict[int, StoredThread]:
        """Count, newest time and fingerprint of the comments of each of ``entry_ids``.

        Reads the columns a comment feed shows but builds no :class:`StoredComment`, so that
        a publish can tell which threads changed at a small cost per comment. Entries
        without comments are left out.
        """
        summaries: dict[int, StoredThread] = {}
        for chunk in _chunks(sorted(set(entry_ids)), 500):
            cursor = self._execute(
                f"SELECT c.entry_id, {', '.join(_FINGERPRINT_COLUMNS)} FROM comments c "
                f"WHERE c.entry_id IN ({', '.join(str(int(i)) for i in chunk)}) "
                f"ORDER BY c.entry_id, {_THREAD_ORDER}"
            )
            try:
                rows = cursor.fetchall()
            except sqlite3.Error as error:
                raise StorageError(f"{self.path}: {error}") from error
            start = 0
            while start < len(rows):
                entry_id = rows[start][0]
                end = start
                while end < len(rows) and rows[end][0] == entry_id:
                    end += 1
                thread = rows[start:end]
                # Stored times are ISO 8601 UTC text, so the greatest text is the newest time.
                newest = max(row[_PUBLISHED] or row[_FIRST_SEEN] for row in thread)
                summaries[entry_id] = StoredThread(
                    entry_id, len(thread), parse_time(newest), tuple(thread)
                )
                start = end
        return summaries

    def list_recent_comments(
        self, source_names: Sequence[str] | None, limit: int
    ) -> list[StoredComment]:
        """The newest comments across the entries of the named sources."""
        where = ""
        params: list[Any] = []
        if source_names is not None:
            if not source_names:
                return []
            where = "WHERE s.name IN (" + ", ".join("?" for _ in source_names) + ")"
            params.extend(source_names)
        rows = self._rows(
            "SELECT c.*, e.public_id AS entry_public_id FROM comments c "
            "JOIN entries e ON e.id = c.entry_id JOIN sources s ON s.id = e.source_id "
            f"{where} ORDER BY c.sort_at DESC, c.id DESC LIMIT ?",
            (*params, limit),
        )
        return _stored_comments(rows)

    def iter_comment_items(
        self,
        source_names: Sequence[str] | None,
        *,
        authors: Sequence[str] = (),
        replies_to: Sequence[str] = (),
        page_size: int = 200,
        window: int = 5000,
    ) -> Iterator[tuple[StoredComment, dict[str, Any]]]:
        """The comments of the named sources' entries, newest first, for an output whose items
        are comments (issue 15): each with its parent's ``author``, ``content`` and ``link``
        (``None`` for a comment that answers the post). ``authors`` keeps comments by those
        names, ``replies_to`` replies to comments by them (both ignoring case). Read lazily,
        ``page_size`` rows at a time, at most ``window`` rows in all."""
        where: list[str] = []
        params: list[Any] = []
        if source_names is not None:
            if not source_names:
                return
            where.append("s.name IN (" + ", ".join("?" for _ in source_names) + ")")
            params.extend(source_names)
        if authors:
            where.append(
                "c.author COLLATE NOCASE IN (" + ", ".join("?" for _ in authors) + ")"
            )
            params.extend(authors)
        if replies_to:
            where.append(
                "p.author COLLATE NOCASE IN (" + ", ".join("?" for _ in replies_to) + ")"
            )
            params.extend(replies_to)
        join = "JOIN" if replies_to else "LEFT JOIN"
        sql = (
            "SELECT c.*, e.public_id AS entry_public_id, p.author AS parent_author, "
            "p.content AS parent_content, p.link AS parent_link FROM comments c "
            "JOIN entries e ON e.id = c.entry_id JOIN sources s ON s.id = e.source_id "
            f"{join} comments p ON p.entry_id = c.entry_id AND p.key = c.parent_key "
            + ("WHERE " + " AND ".join(where) + " " if where else "")
            + "ORDER BY c.sort_at DESC, c.id DESC LIMIT ?"
        )
        try:
            cursor = self.db.execute(sql, (*params, window))
            columns = [item[0] for item in cursor.description or ()]
            while True:
                rows = cursor.fetchmany(page_size)
                if not rows:
                    return
                dicts = [dict(zip(columns, row, strict=True)) for row in rows]
                for comment, row in zip(_stored_comments(dicts), dicts, strict=True):
                    yield comment, {
                        "author": row["parent_author"],
                        "content": row["parent_content"],
                        "link": row["parent_link"],
                    }
        except sqlite3.Error as error:
            raise StorageError(f"{self.path}: {error}") from error
