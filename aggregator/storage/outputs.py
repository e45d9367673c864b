"""Storage queries behind outputs: candidate entries, full-text search, and store-time rules.

The SQL here does the cheap, indexable part of choosing an output's entries (which sources,
which dates, how many comments, a full-text search, the order) and returns candidates a page
at a time; :mod:`aggregator.select.selection` applies the regular-expression rules to them in Python.
See ``docs/ARCHITECTURE.md`` ("Outputs") for how the two halves share the work.

Full-text search uses SQLite FTS5 (migration ``0002_search``): ``entries_fts`` and
``comments_fts`` hold the visible text of every entry and comment, kept in step by triggers
(inside :meth:`Storage.transaction`, by one statement per table before each commit:
migration ``0004_search_queue``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator, Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aggregator.errors import StorageError
from aggregator.models import CandidateQuery, SearchHit, StoredEntry
from aggregator.storage.rows import _stored_entry, format_time

if TYPE_CHECKING:
    from pathlib import Path

    from sqlite_utils import Database

# The expression is the one indexed by ``entries_activity`` (schema 0002): keep them identical,
# or SQLite cannot use the index. An entry's activity is its latest comment, or its own date.
ACTIVITY = "max(coalesce(e.last_comment_at, e.sort_at), e.sort_at)"
# ORDER BY terms name result columns, so that they also order a compound (UNION ALL) query.
_ORDER = {
    "newest": "sort_at DESC, id DESC",
    "most_comments": "comment_count DESC, sort_at DESC, id DESC",
    "recent_activity": "activity DESC, id DESC",
}
# What a StoredEntry is made of (``_stored_entry``), not every column: the polling state of a
# thread is no business of an output, and fewer columns are read faster.
_ENTRY_COLUMNS = (
    "id, public_id, key, guid, title, link, author, summary, content, published_at, "
    "updated_at, first_seen_at, sort_at, changed_at, categories, enclosures, podcast, "
    "comments_feed_url, comments_page_url, comment_count_hint, comment_count, last_comment_at, "
    "discussions"
)
_COLUMNS = (
    # Named as result columns, which ORDER BY then means (the sources have an id too).
    ", ".join(f"e.{name} AS {name}" for name in _ENTRY_COLUMNS.replace(" ", "").split(","))
    + f", {ACTIVITY} AS activity, s.name AS source_name, s.title AS source_title, "
    "s.url AS source_url, s.link AS source_link, "
    # The article fetched from the entry's page (`full_text`, migration 0017), when there is one.
    "(SELECT f.content FROM full_texts f WHERE f.entry_id = e.id AND f.status = 'ok') "
    "AS full_text"
)
# Candidates read again and again (every publish reads the same first thousands) are built once
# into StoredEntry values: a row equal to the one read before gives the same (immutable) value.
_MEMO_MAX = 20_000
# Up to this many selected sources, each gets its own arm of a UNION ALL: SQLite merges arms
# that each read one source's index in order, so the first page costs milliseconds however big
# the sources are. (One ``source_id IN (...)`` makes it sort every entry of those sources.)
_MAX_ARMS = 100
# A search's matches (entry ids) are first written to a temporary table; when there are fewer
# than this, SQLite reads them and sorts their entries; with more, it reads the sort index in
# order and looks each entry up among them (the "+" in "+e.id" forbids driving from the hits).
_SELECTIVE_SEARCH = 20_000
_FILL_HITS = (
    "INSERT OR IGNORE INTO temp.aggregator_hits (id) "
    "SELECT rowid FROM entries_fts WHERE entries_fts MATCH :search "
    "UNION ALL SELECT c.entry_id FROM comments_fts JOIN comments c ON c.id = comments_fts.rowid "
    "WHERE comments_fts MATCH :search"
)
# Excerpts for explanations: FTS5 snippet() marks the matched tokens; 12 tokens around them.
_MARK_OPEN, _MARK_CLOSE = "\x02", "\x03"
_SNIPPET_TOKENS = 12


def check_search_query(query: str) -> None:
    """Raise ``ValueError`` with SQLite's message when ``query`` is not a valid FTS5 query.

    Runs the query against an empty in-memory table with the same columns as the real index,
    so syntax errors and unknown column filters (``titel: x``) are caught while the
    configuration is checked, not when the daemon publishes.
    """
    from aggregator.storage.schema import SEARCH_COLUMNS

    if not query.strip():
        raise ValueError("empty search query")
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute(f"CREATE VIRTUAL TABLE t USING fts5({', '.join(SEARCH_COLUMNS)})")
        connection.execute("SELECT rowid FROM t WHERE t MATCH ?", (query,)).fetchall()
    except sqlite3.OperationalError as error:
        raise ValueError(
            f'bad search query: {error} (see README.md, "Search query syntax")'
        ) from None
    finally:
        connection.close()


class OutputQueries:
    """Queries for publishing and previewing outputs; mixed into :class:`Storage`."""

    db: Database
    path: Path
    # Entry id -> (row, StoredEntry) of candidates read before (see _MEMO_MAX).
    _candidate_memo: dict[int, tuple[tuple[Any, ...], StoredEntry]]

    def _rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError  # provided by Storage

    def count(self, table: str) -> int:
        raise NotImplementedError  # provided by Storage

    def ensure_search_index(self) -> None:
        raise NotImplementedError  # provided by Storage

    def iter_candidates(
        self, query: CandidateQuery, page_size: int = 200
    ) -> Generator[list[StoredEntry], None, None]:
        """Yield the candidate entries of ``query`` in its order, ``page_size`` at a time.

        One SQL statement bounded by ``query.window``, read lazily: stop iterating and the rest
        is never read. The statement is finished when the generator is closed or exhausted.
        A search fills this connection's temporary table ``aggregator_hits``: read one search's
        candidates to the end (or close them) before starting another on the same connection.
        """
        if query.sort not in _ORDER:
            raise ValueError(f"unknown sort {query.sort!r}")
        source_ids: list[int] | None = None
        if query.source_names is not None:
            source_ids = self._source_ids(query.source_names)
            if not source_ids:
                return
            if len(source_ids) == self.count("sources"):
                source_ids = None  # every source: no condition, the plain sort index
        sql, params = self._candidate_sql(query, source_ids)
        try:
            cursor = self.db.execute(sql, params)
        except sqlite3.Error as error:
            raise StorageError(f"{self.path}: {error}") from error
        columns = [item[0] for item in cursor.description or ()]
        memo = self._candidate_memo
        if len(memo) > _MEMO_MAX:
            memo.clear()
        try:
            while True:
                try:
                    rows = cursor.fetchmany(page_size)
                except sqlite3.Error as error:
                    raise StorageError(f"{self.path}: {error}") from error
                if not rows:
                    return
                page = []
                for row in rows:
                    held = memo.get(row[0])
                    if held is None or held[0] != row:
                        held = memo[row[0]] = (
                            row,
                            _stored_entry(dict(zip(columns, row, strict=True))),
                        )
                    page.append(held[1])
                yield page
        finally:
            cursor.close()

    def _candidate_sql(
        self, query: CandidateQuery, source_ids: list[int] | None
    ) -> tuple[str, dict[str, Any]]:

        where: list[str] = []
        params: dict[str, Any] = {"window": query.window}
        if query.since is not None:
            where.append("e.sort_at >= :since")
            params["since"] = format_time(query.since)
        if query.until is not None:
            where.append("e.sort_at < :until")
            # Stored times have whole seconds: round up, so that SQL is never the stricter.
            until = query.until + timedelta(microseconds=-query.until.microsecond % 1_000_000)
            params["until"] = format_time(until)
        if query.min_comments:
            where.append("e.comment_count >= :min_comments")
            params["min_comments"] = query.min_comments
        if query.search:
            hits = self._fill_hits(query.search)
            where.append(
                "e.id IN temp.aggregator_hits"
                if hits < _SELECTIVE_SEARCH
                else "+e.id IN temp.aggregator_hits"
            )
        if source_ids is None:
            arms = [where]
        elif len(source_ids) <= _MAX_ARMS:
            arms = [[f"e.source_id = {int(i)}", *where] for i in source_ids]
        else:
            arms = [[f"e.source_id IN ({', '.join(str(int(i)) for i in source_ids)})", *where]]
        selects = [
            f"SELECT {_COLUMNS} FROM entries e JOIN sources s ON s.id = e.source_id"
            + (f" WHERE {' AND '.join(arm)}" if arm else "")
            for arm in arms
        ]
        sql = " UNION ALL ".join(selects) + f" ORDER BY {_ORDER[query.sort]} LIMIT :window"
        return sql, params

    def _fill_hits(self, search: str) -> int:
        """Write the ids of the entries ``search`` matches (itself or by a comment) to the
        connection's temporary table ``aggregator_hits``; return how many there are."""
        self.ensure_search_index()
        try:
            self.db.execute(
                "CREATE TEMP TABLE IF NOT EXISTS aggregator_hits (id INTEGER PRIMARY KEY)"
            )
            self.db.execute("DELETE FROM temp.aggregator_hits")
            self.db.execute(_FILL_HITS, {"search": search})
            row = self.db.execute("SELECT count(*) FROM temp.aggregator_hits").fetchone()
        except sqlite3.Error as error:
            raise StorageError(f"{self.path}: search {search!r}: {error}") from error
        return int(row[0])

    def search_hits(self, query: str, entry_ids: Iterable[int]) -> dict[int, SearchHit]:
        """Where ``query`` matches each of ``entry_ids``: the entry itself, else a comment.

        Entries that do not match are left out. Used to explain search verdicts.
        """
        ids = sorted(set(entry_ids))
        if not ids:
            return {}
        self.ensure_search_index()
        listed = ", ".join(str(int(i)) for i in ids)
        snippet = f"snippet({{table}}, -1, '{_MARK_OPEN}', '{_MARK_CLOSE}', '…', {_SNIPPET_TOKENS})"
        hits: dict[int, SearchHit] = {}
        for row in self._rows(
            f"SELECT rowid AS id, {snippet.format(table='entries_fts')} AS text "
            f"FROM entries_fts WHERE entries_fts MATCH ? AND rowid IN ({listed})",
            (query,),
        ):
            hits[row["id"]] = SearchHit("entry", _mark(row["text"]))
        rest = [i for i in ids if i not in hits]
        if rest:
            for row in self._rows(
                f"SELECT c.entry_id, c.public_id, c.author, c.number, "
                f"{snippet.format(table='comments_fts')} AS text FROM comments_fts "
                "JOIN comments c ON c.id = comments_fts.rowid "
                f"WHERE comments_fts MATCH ? AND c.entry_id IN ({', '.join(map(str, rest))}) "
                "ORDER BY c.sort_at, c.id",
                (query,),
            ):
                hits.setdefault(
                    row["entry_id"],
                    SearchHit("comment", _mark(row["text"]), row["public_id"], row["author"]),
                )
        return hits

    def known_entry_keys(self, source_id: int, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` are already stored for the source (store-time rules skip only new
        entries, so a stored entry keeps being updated)."""
        wanted = list(dict.fromkeys(keys))
        known: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self._rows(
                f"SELECT key FROM entries WHERE source_id = ? AND key IN "
                f"({', '.join('?' for _ in chunk)})",
                (source_id, *chunk),
            )
            known.update(row["key"] for row in rows)
        return known

    def _source_ids(self, names: Sequence[str]) -> list[int]:
        if not names:
            return []
        rows = self._rows(
            f"SELECT id FROM sources WHERE name IN ({', '.join('?' for _ in names)}) ORDER BY id",
            tuple(names),
        )
        return [int(row["id"]) for row in rows]


def _mark(text: str | None) -> str:
    """FTS5 snippet text with the match markers turned into «guillemets»."""
    return " ".join((text or "").replace(_MARK_OPEN, "«").replace(_MARK_CLOSE, "»").split())
