"""What alerts read and remember (issue 15, item 5): new comments and entries past each
alert's high-water mark, and the mark itself (table ``alert_marks``, migration 0013).

A mark holds the greatest comment id and entry id an alert has considered. Ids only grow, so
"past the mark" is "new since the last batch"; the mark moves only after its batch was sent
(or found empty), so across a restart nothing is sent twice and nothing is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aggregator.models import AlertItem
from aggregator.storage.rows import format_time, parse_time

if TYPE_CHECKING:
    from sqlite_utils import Database

_COMMENTS = (
    "SELECT c.id, c.public_id, c.author, c.content, c.link, c.published_at, c.entry_id, "
    "e.public_id AS entry_public_id, e.title AS entry_title, e.link AS entry_link, "
    "s.name AS source_name, p.author AS parent_author, p.public_id AS parent_public_id "
    "FROM comments c JOIN entries e ON e.id = c.entry_id JOIN sources s ON s.id = e.source_id "
    "LEFT JOIN comments p ON p.entry_id = c.entry_id AND p.key = c.parent_key "
    "WHERE c.id > ? AND c.id <= ? ORDER BY c.id"
)
# The same columns as _COMMENTS, so that one converter (_alert_item) reads both.
_ENTRIES = (
    "SELECT e.id, e.public_id, e.author, coalesce(e.summary, e.content, '') AS content, e.link, "
    "e.published_at, e.id AS entry_id, e.public_id AS entry_public_id, e.title AS entry_title, "
    "e.link AS entry_link, s.name AS source_name, NULL AS parent_author, "
    "NULL AS parent_public_id, e.title FROM entries e "
    "JOIN sources s ON s.id = e.source_id WHERE e.id > ? AND e.id <= ? ORDER BY e.id"
)


class AlertQueries:
    """Alert marks and the items past them; mixed into :class:`~aggregator.storage.Storage`."""

    db: Database

    def _rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        raise NotImplementedError  # provided by Storage

    def _execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        raise NotImplementedError  # provided by Storage

    def newest_ids(self) -> tuple[int, int]:
        """The greatest comment id and entry id stored (0 when none)."""
        row = self._rows(
            "SELECT (SELECT coalesce(max(id), 0) FROM comments) AS c, "
            "(SELECT coalesce(max(id), 0) FROM entries) AS e"
        )[0]
        return int(row["c"]), int(row["e"])

    def start_alert_marks(self, names: Iterable[str]) -> None:
        """Give each alert without a mark one at what is stored now: a new alert reports what
        arrives from now on, not the whole history."""
        comment_id, entry_id = self.newest_ids()
        for name in names:
            self._execute(
                "INSERT OR IGNORE INTO alert_marks (name, comment_id, entry_id) VALUES (?, ?, ?)",
                (name, comment_id, entry_id),
            )

    def alert_mark(self, name: str) -> tuple[int, int, datetime | None]:
        """An alert's mark: (comment id, entry id, when it last sent); zeros when it has none."""
        rows = self._rows(
            "SELECT comment_id, entry_id, sent_at FROM alert_marks WHERE name = ?", (name,)
        )
        if not rows:
            return 0, 0, None
        return int(rows[0]["comment_id"]), int(rows[0]["entry_id"]), parse_time(rows[0]["sent_at"])

    def move_alert_mark(
        self, name: str, comment_id: int, entry_id: int, sent_at: datetime | None, sent: int
    ) -> None:
        """Move an alert's mark past what it has considered; ``sent_at`` when it sent."""
        self._execute(
            "INSERT INTO alert_marks (name, comment_id, entry_id, sent_at, sent_count) "
            "VALUES (:name, :c, :e, :at, :n) ON CONFLICT (name) DO UPDATE SET "
            "comment_id = max(comment_id, :c), entry_id = max(entry_id, :e), "
            "sent_at = coalesce(:at, sent_at), sent_count = sent_count + :n",
            {"name": name, "c": comment_id, "e": entry_id, "at": format_time(sent_at), "n": sent},
        )

    def comments_between(self, after: int, upto: int) -> list[AlertItem]:
        """Comments with ``after < id <= upto``, oldest first, with their entry and parent."""
        return [_alert_item("comment", row) for row in self._rows(_COMMENTS, (after, upto))]

    def entries_between(self, after: int, upto: int) -> list[AlertItem]:
        """Entries with ``after < id <= upto``, oldest first."""
        return [_alert_item("entry", row) for row in self._rows(_ENTRIES, (after, upto))]


def _alert_item(kind: str, row: dict[str, Any]) -> AlertItem:
    """A row of :data:`_COMMENTS` or :data:`_ENTRIES` as an :class:`AlertItem` (an entry's own
    title only for entries)."""
    return AlertItem(
        kind=kind,
        row_id=row["id"],
        public_id=row["public_id"],
        source_name=row["source_name"],
        entry_id=row["entry_id"],
        entry_public_id=row["entry_public_id"],
        entry_title=row["entry_title"],
        entry_link=row["entry_link"],
        author=row["author"],
        content=row["content"] or "",
        link=row["link"],
        published_at=parse_time(row["published_at"]),
        parent_author=row["parent_author"],
        parent_public_id=row["parent_public_id"],
        title=row.get("title") if kind == "entry" else None,
    )
