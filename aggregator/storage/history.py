"""Earlier versions of comments (issue 15, item 3): written with the comment, read for the
``comment-changes`` feeds and ``aggregator comments --history``.

A revision is recorded by :func:`record_revision`, called by ``Storage.store_comments`` and
``Storage.mark_comments_gone`` inside their transaction, so a comment's new text and its
earlier one are committed together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aggregator.models import CommentRevision
from aggregator.storage.rows import parse_time

if TYPE_CHECKING:
    from sqlite_utils import Database

_SELECT = (
    "SELECT r.id, r.kind, r.recorded_at, r.old_content, r.new_content, r.old_author, "
    "c.public_id AS comment_public_id, c.link AS comment_link, c.author, "
    "e.public_id AS entry_public_id, e.title AS entry_title, e.link AS entry_link, "
    "s.name AS source_name FROM comment_revisions r "
    "JOIN comments c ON c.id = r.comment_id JOIN entries e ON e.id = c.entry_id "
    "JOIN sources s ON s.id = e.source_id "
)


def record_revision(
    storage: Any, row: dict[str, Any], kind: str, new_content: str | None, stamp: str | None
) -> None:
    """Record that the stored comment ``row`` (its id, content and author as stored before)
    was edited to ``new_content`` or vanished (``kind`` ``"gone"``). Call inside the
    transaction that changes the comment."""
    storage._execute(
        "INSERT INTO comment_revisions (comment_id, kind, old_content, new_content, old_author, "
        "recorded_at) VALUES (?, ?, ?, ?, ?, ?)",
        (row["id"], kind, row["content"] or "", new_content, row["author"], stamp),
    )


class HistoryQueries:
    """Reads of comment revisions; mixed into :class:`~aggregator.storage.Storage`."""

    db: Database

    def _rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        raise NotImplementedError  # provided by Storage

    def list_comment_changes(
        self, source_names: Sequence[str] | None, limit: int
    ) -> list[CommentRevision]:
        """The newest edits and disappearances of comments on the named sources' entries
        (every source when ``None``), newest first, at most ``limit``."""
        where, params = "", []
        if source_names is not None:
            if not source_names:
                return []
            where = "WHERE s.name IN (" + ", ".join("?" for _ in source_names) + ") "
            params = list(source_names)
        rows = self._rows(
            _SELECT + where + "ORDER BY r.recorded_at DESC, r.id DESC LIMIT ?", (*params, limit)
        )
        return [_revision(row) for row in rows]

    def list_entry_revisions(self, entry_id: int) -> list[CommentRevision]:
        """Every recorded change of the comments of one entry, newest first."""
        rows = self._rows(
            _SELECT + "WHERE c.entry_id = ? ORDER BY r.recorded_at DESC, r.id DESC", (entry_id,)
        )
        return [_revision(row) for row in rows]


def _revision(row: Any) -> CommentRevision:

    recorded = parse_time(row["recorded_at"])
    assert recorded is not None  # NOT NULL column
    return CommentRevision(
        id=row["id"],
        kind=row["kind"],
        recorded_at=recorded,
        old_content=row["old_content"],
        new_content=row["new_content"],
        comment_public_id=row["comment_public_id"],
        comment_link=row["comment_link"],
        author=row["old_author"] if row["kind"] == "gone" else row["author"],
        entry_public_id=row["entry_public_id"],
        entry_title=row["entry_title"],
        entry_link=row["entry_link"],
        source_name=row["source_name"],
    )
