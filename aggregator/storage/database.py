"""The only owner of the SQLite connection (through sqlite-utils).

:class:`Storage` opens the file (creating it and its folder), applies migrations, and runs
transactions; the reads and writes of each table are its mixins' (:mod:`.sources`,
:mod:`.entries`, :mod:`.comments`, :mod:`.outputs`, ...). sqlite3 errors are wrapped here,
once, into :class:`~aggregator.errors.StorageError`. One :class:`Storage` belongs to one
thread; open another for another thread (WAL lets readers and one writer work at once).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from aggregator.errors import StorageError
from aggregator.storage.alerts import AlertQueries
from aggregator.storage.api_cache import ApiCacheQueries
from aggregator.storage.comments import CommentQueries
from aggregator.storage.discussions import DiscussionQueries
from aggregator.storage.entries import EntryQueries
from aggregator.storage.fulltext import FullTextQueries
from aggregator.storage.functions import register_functions
from aggregator.storage.history import HistoryQueries
from aggregator.storage.outputs import OutputQueries
from aggregator.storage.schema import index_queued, migrations
from aggregator.storage.sources import SourceQueries
from aggregator.storage.status import StatusQueries
from aggregator.storage.websub import WebSubQueries


class Storage(
    SourceQueries,
    EntryQueries,
    CommentQueries,
    OutputQueries,
    StatusQueries,
    DiscussionQueries,
    HistoryQueries,
    AlertQueries,
    FullTextQueries,
    ApiCacheQueries,
    WebSubQueries,
):
    """A connection to the aggregator database, with its migrations applied.

    Sources', entries' and comments' reads and writes live in :mod:`aggregator.storage.sources`,
    :mod:`.entries` and :mod:`.comments`. Output queries (candidates, full-text search) live in :mod:`aggregator.storage.outputs`;
    the status page's in :mod:`aggregator.storage.status`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        read_only: bool = False,
        cache_kib: int | None = None,
        index_search: bool = True,
    ):
        """Open (creating when missing) and migrate the database at ``path``.

        ``read_only`` opens an existing database without writing to it: no migration, no
        journal mode change, and SQLite refuses every write. It must already have every
        migration (a :class:`StorageError` says which are missing). Publishing and
        benchmarks over a database that is not theirs use it.

        ``cache_kib`` sets this connection's page cache (SQLite's default is 2 MB): a process
        with a connection per thread gives each a small one.

        ``index_search`` false leaves the rows this connection writes in the search queue
        instead of indexing them as each transaction commits: for a configuration without any
        ``search`` rule, where the index would cost a poll two fifths of its storage time for
        nothing. Every search indexes what is queued first (:meth:`ensure_search_index`), so
        results are the same either way.
        """
        self.path = Path(path)
        self._candidate_memo = {}
        # True inside the outermost transaction(): written rows are indexed at its end.
        self._index_later = False
        self.index_search = index_search
        self.read_only = read_only
        try:
            if read_only:
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                connection = sqlite3.connect(
                    uri, uri=True, timeout=30.0, isolation_level=None, check_same_thread=False
                )
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(
                    str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False
                )
            register_functions(connection, lambda: self._index_later)
            self.db = Database(connection)
            self.db.execute("PRAGMA busy_timeout = 30000")
            # Statement journals (every INSERT into a table with triggers needs one) in memory,
            # not in temporary files: a quarter of the cost of storing a comment (issue 8).
            self.db.execute("PRAGMA temp_store = MEMORY")
            if cache_kib is not None:
                self.db.execute(f"PRAGMA cache_size = {-max(64, int(cache_kib))}")
            if read_only:
                pending = [migration.name for migration in migrations.pending(self.db)]
                if pending:
                    connection.close()
                    raise StorageError(
                        f"{self.path}: opened read-only but migrations are missing: "
                        + ", ".join(pending)
                    )
                return
            self.db.execute("PRAGMA foreign_keys = ON")
            # A new database frees pages as rows go (aggregator prune runs incremental_vacuum);
            # an existing one is switched by prune's one VACUUM (storage/retention.py). Only
            # on an empty file: on another the pragma takes a lock other connections may hold.
            if self.db.execute("PRAGMA page_count").fetchone()[0] == 0:
                self.db.execute("PRAGMA auto_vacuum = INCREMENTAL")
            if self.db.journal_mode != "wal":
                self.db.enable_wal()
            self.db.execute("PRAGMA synchronous = NORMAL")
            migrations.apply(self.db)
        except (sqlite3.Error, OSError) as error:
            raise StorageError(f"{self.path}: cannot open database: {error}") from error

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit of work: everything inside commits together or not at all.

        Nested, it is a savepoint: an error inside it undoes only what it wrote, and the
        enclosing transaction goes on. The outermost one indexes the rows written inside it
        for full-text search just before it commits (``0004_search_queue``), so what is
        committed is always searchable.
        """
        outermost = not self.db.conn.in_transaction
        try:
            if not outermost:
                with self.db.atomic():  # a savepoint
                    yield
                return
            # The write lock is taken at the start (BEGIN IMMEDIATE), where the busy timeout
            # waits for it. A deferred transaction that reads, then writes after another
            # connection (the alerts' marks, another poll thread) committed meanwhile fails at
            # once with "database is locked": WAL cannot move its snapshot, and no busy
            # timeout waits that out.
            self.db.conn.execute("BEGIN IMMEDIATE")
            self._index_later = True
            try:
                yield
                if self.index_search:
                    index_queued(self.db)
            except BaseException:
                if self.db.conn.in_transaction:
                    self.db.conn.execute("ROLLBACK")
                raise
            try:
                self.db.conn.execute("COMMIT")
            except BaseException:
                if self.db.conn.in_transaction:
                    self.db.conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as error:
            raise StorageError(f"{self.path}: {error}") from error
        finally:
            if outermost:
                self._index_later = False

    def ensure_search_index(self) -> None:
        """Index the rows still queued for full-text search (written by connections with
        ``index_search`` off), so that a search sees every stored entry and comment.

        A read-only connection cannot index; it searches what is indexed.
        """
        if self.read_only:
            return
        try:
            queued = self.db.execute("SELECT EXISTS (SELECT 1 FROM search_queue)").fetchone()[0]
        except sqlite3.Error as error:
            raise StorageError(f"{self.path}: {error}") from error
        if not queued:
            return
        if self.db.conn.in_transaction:  # part of the caller's transaction
            index_queued(self.db)
            return
        try:
            # IMMEDIATE: take the write lock first (waiting out the pollers' transactions), so a
            # poll that commits meanwhile cannot make this read-then-write transaction fail.
            self.db.execute("BEGIN IMMEDIATE")
            try:
                index_queued(self.db)
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.Error as error:
            raise StorageError(f"{self.path}: indexing for search: {error}") from error

    def _rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        try:
            cursor = self.db.execute(sql, params)
            columns = [item[0] for item in cursor.description or ()]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        except sqlite3.Error as error:
            raise StorageError(f"{self.path}: {error}") from error

    def _execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        try:
            return self.db.execute(sql, params)
        except sqlite3.Error as error:
            raise StorageError(f"{self.path}: {error}") from error

    def _execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """``sql`` once per row of ``rows``, in order (nothing when there are none)."""
        if not rows:
            return
        try:
            self.db.conn.executemany(sql, rows)
        except sqlite3.Error as error:
            raise StorageError(f"{self.path}: {error}") from error
