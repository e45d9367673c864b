"""Storage of the threads about entries that APIs keep (issue 16, migration ``0010_discussions``).

A thread found on Hacker News, Reddit, Disqus ... is one ``discussions`` row (its provider's
reference, counts, schedule); its comments are ordinary ``comments`` rows of the entry, with
keys that start with ``@``. ``discussion_lookups`` remembers when a provider was last asked
about an entry; ``entries.discussions`` holds the per-site summary the outputs show.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aggregator.storage.rows import format_time, parse_time

if TYPE_CHECKING:
    import sqlite3


@dataclass(frozen=True)
class DiscussionState:
    """What storage remembers about one thread found for an entry."""

    id: int
    entry_id: int
    provider: str
    ref: str
    url: str | None
    title: str | None
    score: int | None
    comment_count: int | None
    found_at: datetime
    polled_at: datetime | None = None
    next_poll_at: datetime | None = None
    last_new_at: datetime | None = None
    last_comment_at: datetime | None = None
    stopped: bool = False
    error: str | None = None
    likes: int | None = None
    reposts: int | None = None


class DiscussionQueries:
    """The ``discussions`` half of :class:`~aggregator.storage.Storage` (a mixin)."""

    def _rows(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> list[dict[str, Any]]:  # pragma: no cover - provided by Storage
        raise NotImplementedError

    def _execute(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> sqlite3.Cursor:  # pragma: no cover - provided by Storage
        raise NotImplementedError

    def list_discussions(self, entry_ids: Iterable[int]) -> dict[int, list[DiscussionState]]:
        """The threads found for each of ``entry_ids`` (entries without any are left out)."""
        ids = sorted({int(i) for i in entry_ids})
        found: dict[int, list[DiscussionState]] = {}
        for start in range(0, len(ids), 500):
            chunk = ", ".join(str(i) for i in ids[start : start + 500])
            for row in self._rows(
                f"SELECT * FROM discussions WHERE entry_id IN ({chunk}) ORDER BY id"
            ):
                found.setdefault(row["entry_id"], []).append(
                    DiscussionState(
                        id=row["id"],
                        entry_id=row["entry_id"],
                        provider=row["provider"],
                        ref=row["ref"],
                        url=row["url"],
                        title=row["title"],
                        score=row["score"],
                        comment_count=row["comment_count"],
                        found_at=parse_time(row["found_at"]),  # type: ignore[arg-type]
                        polled_at=parse_time(row["polled_at"]),
                        next_poll_at=parse_time(row["next_poll_at"]),
                        last_new_at=parse_time(row["last_new_at"]),
                        last_comment_at=parse_time(row["last_comment_at"]),
                        stopped=bool(row["stopped"]),
                        error=row["error"],
                        likes=row.get("likes"),
                        reposts=row.get("reposts"),
                    )
                )
        return found

    def list_lookups(self, entry_ids: Iterable[int]) -> dict[tuple[int, str], datetime]:
        """When each provider was last asked about each of ``entry_ids``."""
        ids = sorted({int(i) for i in entry_ids})
        looked: dict[tuple[int, str], datetime] = {}
        for start in range(0, len(ids), 500):
            chunk = ", ".join(str(i) for i in ids[start : start + 500])
            for row in self._rows(
                "SELECT entry_id, provider, looked_up_at FROM discussion_lookups "
                f"WHERE entry_id IN ({chunk})"
            ):
                at = parse_time(row["looked_up_at"])
                if at is not None:
                    looked[(row["entry_id"], row["provider"])] = at
        return looked

    def record_lookup(self, entry_id: int, provider: str, now: datetime, error: str | None) -> None:
        """Remember that ``provider`` was asked about the entry at ``now``."""
        self._execute(
            "INSERT INTO discussion_lookups (entry_id, provider, looked_up_at, error) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (entry_id, provider) DO UPDATE SET "
            "looked_up_at = excluded.looked_up_at, error = excluded.error",
            (entry_id, provider, format_time(now), error),
        )

    def add_discussion(
        self, entry_id: int, provider: str, ref: str, now: datetime, **fields: Any
    ) -> bool:
        """Record a thread found for an entry (once); whether it is new. Call in a transaction."""
        cursor = self._execute(
            "INSERT OR IGNORE INTO discussions (entry_id, provider, ref, found_at, url, title, "
            "score, comment_count, likes, reposts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry_id,
                provider,
                ref,
                format_time(now),
                fields.get("url"),
                fields.get("title"),
                fields.get("score"),
                fields.get("comment_count"),
                fields.get("likes"),
                fields.get("reposts"),
            ),
        )
        return cursor.rowcount > 0

    def update_discussion(self, discussion_id: int, **fields: Any) -> None:
        """Record a read of a thread (counts, times, schedule, error)."""
        values = {
            key: format_time(v) if isinstance(v, datetime) else v for key, v in fields.items()
        }
        assignments = ", ".join(f"{key} = :{key}" for key in values)
        self._execute(
            f"UPDATE discussions SET {assignments} WHERE id = :_id",
            {**values, "_id": discussion_id},
        )

    def refresh_entry_discussions(self, entry_id: int, now: datetime) -> bool:
        """Write the entry's per-site summary (``[site, url, score, comments]`` per thread,
        then ``likes, reposts`` when counted (migration 0020), from its ``discussions`` rows);
        mark the entry changed when it moved. Whether it did."""
        rows = self._rows(
            "SELECT provider, url, score, comment_count, likes, reposts FROM discussions "
            "WHERE entry_id = ? AND comment_count IS NOT NULL ORDER BY provider, id",
            (entry_id,),
        )
        summary = json.dumps(
            [
                [r["provider"], r["url"], r["score"], r["comment_count"]]
                + (
                    [r["likes"], r["reposts"]]
                    if r["likes"] is not None or r["reposts"] is not None
                    else []
                )
                for r in rows
            ]
        )
        current = self._rows("SELECT discussions FROM entries WHERE id = ?", (entry_id,))
        if current and current[0]["discussions"] == summary:
            return False
        self._execute(
            "UPDATE entries SET discussions = ?, changed_at = ? WHERE id = ?",
            (summary, format_time(now), entry_id),
        )
        return True

    def list_gone_comment_keys(self, entry_id: int, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` are stored for the entry and already marked gone."""
        wanted = sorted(set(keys))
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in self._rows(
                f"SELECT key FROM comments WHERE entry_id = ? AND gone_at IS NOT NULL "
                f"AND key IN ({marks})",
                (entry_id, *chunk),
            ):
                found.add(row["key"])
        return found

    def mark_comment_keys_gone(self, entry_id: int, keys: Iterable[str], now: datetime) -> int:
        """Mark the named comments of an entry gone (an API said they were deleted)."""
        gone = 0
        for key in set(keys):
            cursor = self._execute(
                "UPDATE comments SET gone_at = ? WHERE entry_id = ? AND key = ? AND gone_at IS NULL",
                (format_time(now), entry_id, key),
            )
            gone += cursor.rowcount
        return gone

    def list_comment_keys(self, entry_id: int, prefix: str) -> set[str]:
        """The keys of an entry's stored comments that start with ``prefix`` (``@isso:``) and
        are not gone."""
        rows = self._rows(
            "SELECT key FROM comments WHERE entry_id = ? AND gone_at IS NULL "
            "AND substr(key, 1, length(?)) = ?",
            (entry_id, prefix, prefix),
        )
        return {row["key"] for row in rows}
