"""Retention in SQL: which rows are old or over count, removing them, and giving the space back.

Pure choice of *what* to keep (outputs' pages, the configured rules) is made by
:mod:`aggregator.run.prune`; this module only reads candidates and deletes what it is given.

Removed entries leave a tombstone in ``pruned_entries`` (migration ``0015_pruned_entries``):
while a feed still carries the key it is not stored again as new (:func:`skip_pruned`, called
by ``Storage.store_entries``); a tombstone whose key the feed has not carried for
:data:`TOMBSTONE_DAYS` is forgotten. Comments are removed only from threads no longer followed,
since a followed thread would read them again.

The database shrinks: a new database is created with ``auto_vacuum = INCREMENTAL``; an older one
is switched by one ``VACUUM`` (it rewrites the file; SQLite needs it to change the mode) the
first time :func:`reclaim` runs, then ``PRAGMA incremental_vacuum`` gives free pages back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from sqlite_utils import Database

TOMBSTONE_DAYS = 30
_AUTO_VACUUM_INCREMENTAL = 2


def skip_pruned(db: Database, source_id: int, keys: Sequence[str], stamp: str) -> set[str]:
    """The ``keys`` that were pruned (the feed still carries them: their ``seen_at`` moves)."""
    if not keys:
        return set()
    pruned: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = list(keys[start : start + 500])
        marks = ", ".join("?" for _ in chunk)
        rows = db.execute(
            f"SELECT key FROM pruned_entries WHERE source_id = ? AND key IN ({marks})",
            [source_id, *chunk],
        ).fetchall()
        pruned.update(row[0] for row in rows)
    if pruned:
        marks = ", ".join("?" for _ in pruned)
        db.execute(
            f"UPDATE pruned_entries SET seen_at = ? WHERE source_id = ? AND key IN ({marks})",
            [stamp, source_id, *sorted(pruned)],
        )
    return pruned


def old_entries(
    db: Database, source_id: int, *, before: str | None, keep: int | None
) -> list[dict[str, Any]]:
    """Entries of a source first seen or dated before ``before``, or past its newest ``keep``
    (by ``sort_at``): ``id``, ``key``, ``title``, ``sort_at`` and ``comments``."""
    clauses = []
    params: list[Any] = [source_id]
    if before is not None:
        clauses.append("sort_at < ?")
        params.append(before)
    if keep is not None:
        clauses.append(
            "id NOT IN (SELECT id FROM entries WHERE source_id = ? ORDER BY sort_at DESC, id DESC "
            "LIMIT ?)"
        )
        params.extend([source_id, keep])
    if not clauses:
        return []
    sql = (
        "SELECT e.id, e.key, e.title, e.sort_at, "
        "(SELECT count(*) FROM comments c WHERE c.entry_id = e.id) AS comments "
        f"FROM entries e WHERE source_id = ? AND ({' OR '.join(clauses)}) ORDER BY sort_at"
    )
    return [dict(row) for row in _rows(db, sql, params)]


def old_comments(
    db: Database, source_id: int, *, before: str | None, keep: int | None
) -> list[dict[str, Any]]:
    """Comments of a source's threads no longer followed, older than ``before`` or past the
    source's newest ``keep``: ``id`` and ``entry_id``."""
    clauses = []
    params: list[Any] = [source_id]
    if before is not None:
        clauses.append("c.sort_at < ?")
        params.append(before)
    if keep is not None:
        clauses.append(
            "c.id NOT IN (SELECT c2.id FROM comments c2 JOIN entries e2 ON e2.id = c2.entry_id "
            "WHERE e2.source_id = ? ORDER BY c2.sort_at DESC, c2.id DESC LIMIT ?)"
        )
        params.extend([source_id, keep])
    if not clauses:
        return []
    sql = (
        "SELECT c.id, c.entry_id FROM comments c JOIN entries e ON e.id = c.entry_id "
        "WHERE e.source_id = ? AND e.comments_next_poll_at IS NULL "
        f"AND ({' OR '.join(clauses)})"
    )
    return [dict(row) for row in _rows(db, sql, params)]


def delete_entries(
    db: Database, source_id: int, entries: Iterable[dict[str, Any]], stamp: str
) -> int:
    """Remove entries (their comments go with them) and leave their tombstones."""
    rows = list(entries)
    for row in rows:
        db.execute(
            "INSERT OR REPLACE INTO pruned_entries (source_id, key, pruned_at, seen_at) "
            "VALUES (?, ?, ?, ?)",
            (source_id, row["key"], stamp, stamp),
        )
    _delete(db, "entries", [row["id"] for row in rows])
    return len(rows)


def delete_comments(db: Database, comment_ids: Sequence[int], entry_ids: Iterable[int]) -> int:
    """Remove comments, then set their threads' counts to what is left."""
    _delete(db, "comments", comment_ids)
    for entry_id in set(entry_ids):
        db.execute(
            "UPDATE entries SET comment_count = (SELECT count(*) FROM comments "
            "WHERE entry_id = ? AND gone_at IS NULL) WHERE id = ?",
            (entry_id, entry_id),
        )
    return len(comment_ids)


def forget_tombstones(db: Database, cutoff: str) -> int:
    """Forget tombstones whose key no feed carried since ``cutoff`` (a stored time)."""
    return db.execute("DELETE FROM pruned_entries WHERE seen_at < ?", (cutoff,)).rowcount


def reclaim(db: Database) -> bool:
    """Give free pages back to the file system; returns whether a full VACUUM was needed
    (the first time, on a database created before ``auto_vacuum = INCREMENTAL``)."""
    mode = db.execute("PRAGMA auto_vacuum").fetchone()[0]
    vacuumed = False
    if mode != _AUTO_VACUUM_INCREMENTAL:
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")
        db.execute("VACUUM")
        vacuumed = True
    # Each step of the statement frees one page, and sqlite3's execute() steps once:
    # executescript() runs it to its end.
    db.conn.executescript("PRAGMA incremental_vacuum;")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return vacuumed


def _delete(db: Database, table: str, ids: Sequence[int]) -> None:
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        marks = ", ".join("?" for _ in chunk)
        db.execute(f"DELETE FROM {table} WHERE id IN ({marks})", chunk)


def _rows(db: Database, sql: str, params: Sequence[Any]) -> list[sqlite3.Row]:
    cursor = db.execute(sql, params)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]  # type: ignore[misc]
