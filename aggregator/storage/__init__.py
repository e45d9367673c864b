"""The only owner of the SQLite database (through sqlite-utils).

:class:`Storage` opens the file (creating it and its folder), applies migrations, and offers
the reads and writes the rest of aggregator needs. sqlite3 errors are wrapped here, once, into
:class:`~aggregator.errors.StorageError`. One :class:`Storage` belongs to one thread; open
another for another thread (WAL lets readers and one writer work at once).
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, overload

from sqlite_utils import Database

from aggregator.errors import NotFoundError, StorageError
from aggregator.models import (
    CommentData,
    EnclosureData,
    EntryData,
    SourceState,
    SourceUpdate,
    StoredComment,
    StoredEntry,
    StoredThread,
    StoreResult,
    ThreadState,
    ThreadUpdate,
)
from aggregator.storage.alerts import AlertQueries
from aggregator.storage.discussions import DiscussionQueries
from aggregator.storage.history import HistoryQueries, record_revision
from aggregator.storage.outputs import OutputQueries
from aggregator.storage.retention import skip_pruned
from aggregator.storage.schema import index_queued, migrations
from aggregator.storage.status import StatusQueries
from aggregator.terminal import safe_text

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
_ID_NAMESPACE = uuid.UUID("6f1c1f0e-4a57-4d2b-9a51-0a9f8f6c2b10")


@overload
def format_time(value: datetime) -> str: ...
@overload
def format_time(value: None) -> None: ...


def format_time(value: datetime | None) -> str | None:
    """Store times as sortable ISO 8601 text in UTC."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds")


def parse_time(value: str | None) -> datetime | None:
    """Read a stored time back as an aware UTC datetime."""
    if not value:
        return None
    return datetime.fromisoformat(value).astimezone(UTC)


_NAMESPACE_BYTES = _ID_NAMESPACE.bytes


def uuid5_hex(name: str) -> str:
    """``uuid.uuid5(_ID_NAMESPACE, name).hex``, without building a ``UUID`` (a cold poll makes
    one per comment: this is a quarter of the cost)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return digest.hex()


def entry_public_id(source_name: str, key: str) -> str:
    """A stable, globally unique id for an entry: the same across restarts and re-publishing."""
    return uuid5_hex(f"entry\0{source_name}\0{key}")


def comment_public_id(entry_public: str, key: str) -> str:
    """A stable, globally unique id for a comment within its entry."""
    return uuid5_hex(f"comment\0{entry_public}\0{key}")


_TAG = re.compile(r"<[^>]*>")
_HIDDEN = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


def index_text(markup: str | None) -> str:
    """The words of stored HTML, for the full-text index.

    Stored HTML was sanitized when it was stored (no scripts, styles or comments left), so
    replacing tags by spaces and decoding entities gives its visible words; this runs inside
    the write transaction for every entry and comment, where a full HTML parse costs 10 times
    as much for the same words.
    """
    if not markup:
        return ""
    if "<" not in markup and "&" not in markup:
        return markup
    if "<script" in markup or "<style" in markup:  # not from our sanitizer: drop their text
        markup = _HIDDEN.sub(" ", markup)
    return html.unescape(_TAG.sub(" ", markup))


def register_functions(
    connection: sqlite3.Connection, index_later: Callable[[], bool] | None = None
) -> None:
    """Application functions the schema's triggers call. Every connection that writes entries
    or comments needs them.

    ``aggregator_text()`` gives the visible text of stored HTML (the full-text index holds
    text, not markup). ``aggregator_index_later()`` tells the triggers of migration
    ``0004_search_queue`` to queue a written row for indexing at the end of the transaction
    instead of indexing it at once: :class:`Storage` answers yes inside :meth:`Storage.transaction`,
    which indexes the queue before it commits; by default the answer is no.
    """
    connection.create_function("aggregator_text", 1, index_text, deterministic=True)
    later = index_later or (lambda: False)
    connection.create_function("aggregator_index_later", 0, lambda: 1 if later() else 0)


class Storage(OutputQueries, StatusQueries, DiscussionQueries, HistoryQueries, AlertQueries):
    """A connection to the aggregator database, with its migrations applied.

    Output queries (candidates, full-text search) live in :mod:`aggregator.storage.outputs`;
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
            with self.db.atomic():
                if outermost:
                    self._index_later = True
                yield
                if outermost and self.index_search:
                    index_queued(self.db)
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

    # -- sources -------------------------------------------------------------------------------
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

    def list_source_rows(self, ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """Every source (or those with ``ids``) with counts of its entries and comments, for
        ``status`` and the status page."""
        where = f"WHERE s.id IN ({','.join(str(int(i)) for i in ids)}) " if ids is not None else ""
        return self._rows(
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
            "AND e.comments_error IS NOT NULL) AS comments_note_count "
            f"FROM sources s {where}ORDER BY s.name"
        )

    # -- entries -------------------------------------------------------------------------------
    def store_entries(
        self, source: SourceState, entries: Sequence[EntryData], now: datetime
    ) -> StoreResult:
        """Insert new entries and update changed ones in place (matched by key within source).

        Call inside :meth:`transaction` together with the source's state update, so that one
        poll is one atomic write. Entries that left the feed are kept.
        """
        existing = {
            row["key"]: row
            for row in self._rows(
                "SELECT id, key, title, content_hash, comment_count_hint FROM entries "
                "WHERE source_id = ?",
                (source.id,),
            )
        }
        self._adopt_alternate_keys(existing, entries)
        new = updated = unchanged = moved = 0
        stamp = format_time(now)
        # Keys `aggregator prune` removed stay removed while the feed carries them.
        seen: set[str] = skip_pruned(self.db, source.id, [e.key for e in entries], stamp)
        for entry in entries:
            if entry.key in seen:
                continue  # the same item written twice (identity.assign_keys): the first wins
            seen.add(entry.key)
            row = existing.get(entry.key)
            values = _entry_values(entry)
            if row is None:
                published = format_time(entry.published_at)
                self._execute(
                    "INSERT INTO entries (source_id, key, public_id, first_seen_at, sort_at, changed_at, "
                    + ", ".join(values)
                    + ") VALUES (?, ?, ?, ?, ?, ?, "
                    + ", ".join("?" for _ in values)
                    + ")",
                    (
                        source.id,
                        entry.key,
                        entry_public_id(source.name, entry.key),
                        stamp,
                        published if published and published <= stamp else stamp,
                        stamp,
                        *values.values(),
                    ),
                )
                new += 1
            elif row["content_hash"] != entry.content_hash:
                assignments = ", ".join(f"{key} = ?" for key in values)
                self._execute(
                    f"UPDATE entries SET {assignments}, changed_at = ? WHERE id = ?",
                    (*values.values(), stamp, row["id"]),
                )
                moved += self._follow_moved_count(row, entry.comment_count)
                updated += 1
            else:
                # Only the comment hints may move without the content hash changing.
                self._execute(
                    "UPDATE entries SET comment_count_hint = ?, comments_feed_url = ?, "
                    "comments_page_url = ? WHERE id = ?",
                    (
                        entry.comment_count,
                        entry.comments_feed_url,
                        entry.comments_page_url,
                        row["id"],
                    ),
                )
                moved += self._follow_moved_count(row, entry.comment_count)
                unchanged += 1
        return StoreResult(new=new, updated=updated, unchanged=unchanged, moved_threads=moved)

    def _adopt_alternate_keys(
        self, existing: dict[str, dict[str, Any]], entries: Sequence[EntryData]
    ) -> None:
        """Give stored rows the key their entry has now, when the entry is stored under one of
        its ``alternate_keys`` (a key of the previous rule, or of a link that became shared or
        unique again), so that it is updated rather than stored again (issue 13).

        A row is claimed by one entry at most, and never while an entry of this document has
        its key: of several entries naming it, the one with the row's title wins, else the
        first. The row keeps its public id, so published feeds see the same entry.
        """
        keys = {entry.key for entry in entries}
        claims: dict[str, list[EntryData]] = {}
        for entry in entries:
            if entry.key in existing:
                continue
            for alternate in entry.alternate_keys:
                if alternate in existing and alternate not in keys:
                    claims.setdefault(alternate, []).append(entry)
                    break
        adopted: set[str] = set()
        for alternate, claimants in claims.items():
            row = existing[alternate]
            entry = next((e for e in claimants if e.title == row["title"]), claimants[0])
            if entry.key in adopted:
                continue
            adopted.add(entry.key)
            self._execute("UPDATE entries SET key = ? WHERE id = ?", (entry.key, row["id"]))
            existing[entry.key] = existing.pop(alternate)

    def _follow_moved_count(self, row: dict[str, Any], count: int | None) -> int:
        """Make a thread due at once when the entry's comment count moved in its feed, and
        follow it again if it had stopped (it went quiet, or its comment feed answered 404).

        Returns 1 when the thread was made due (the poller then reads it in this poll, issue
        15), else 0."""
        if count is None or count == row["comment_count_hint"]:
            return 0
        cursor = self._execute(
            "UPDATE entries SET comments_stopped = 0, comments_next_poll_at = NULL WHERE id = ? "
            "AND comment_count_hint IS NOT comments_hint_polled",
            (row["id"],),
        )
        return 1 if cursor.rowcount else 0

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

    def get_entry(self, public_id: str) -> StoredEntry:
        """One entry by its public id; raises :class:`NotFoundError`."""
        rows = self._rows(
            "SELECT e.*, s.name AS source_name, s.title AS source_title, s.url AS source_url, "
            "s.link AS source_link FROM entries e JOIN sources s ON s.id = e.source_id "
            "WHERE e.public_id = ?",
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

    # -- comments ------------------------------------------------------------------------------
    def store_comments(
        self, entry_id: int, entry_public: str, comments: Sequence[CommentData], now: datetime
    ) -> StoreResult:
        """Insert new comments of one entry and update changed ones; keep those that vanished.

        Call inside :meth:`transaction`. Updates the entry's comment count and latest time.
        """
        existing = {
            row["key"]: row
            for row in self._rows(
                "SELECT id, key, content_hash, gone_at, number, content, author FROM comments "
                "WHERE entry_id = ?",
                (entry_id,),
            )
        }
        self._adopt_alternate_comment_keys(existing, comments)
        stamp = format_time(now)
        updated = unchanged = 0
        inserts: list[tuple[Any, ...]] = []  # written in one executemany, in the order read
        seen: set[str] = set()
        for comment in comments:
            if comment.key in seen:
                continue
            seen.add(comment.key)
            row = existing.get(comment.key)
            published = format_time(comment.published_at)
            values = (
                comment.author,
                comment.author_url,
                comment.title,
                comment.content,
                comment.link,
                comment.number,
                comment.parent_key,
                published,
                comment.content_hash,
            )
            if row is None:
                inserts.append(
                    (
                        entry_id,
                        comment.key,
                        comment_public_id(entry_public, comment.key),
                        stamp,
                        published or stamp,
                        stamp,
                        *values,
                    )
                )
            elif row["content_hash"] != comment.content_hash or row["gone_at"]:
                # A feed knows no number or parent, a page does: what one read lacks, keep.
                self._execute(_UPDATE_COMMENT, (*values, stamp, row["id"]))
                if row["content"] != comment.content:
                    # Its earlier text is kept, in this same transaction (issue 15).
                    record_revision(self, row, "edit", comment.content, stamp)
                updated += 1
            else:
                if comment.number is not None and comment.number != row["number"]:
                    # The blog renumbered (an earlier comment was deleted): not a change to show.
                    self._execute(
                        "UPDATE comments SET number = ? WHERE id = ?", (comment.number, row["id"])
                    )
                unchanged += 1
        if inserts:
            try:
                self.db.conn.executemany(_INSERT_COMMENT, inserts)
            except sqlite3.Error as error:
                raise StorageError(f"{self.path}: {error}") from error
        self._execute(
            "UPDATE entries SET comment_count = (SELECT count(*) FROM comments WHERE entry_id = :id), "
            "last_comment_at = (SELECT max(sort_at) FROM comments WHERE entry_id = :id) WHERE id = :id",
            {"id": entry_id},
        )
        return StoreResult(new=len(inserts), updated=updated, unchanged=unchanged)

    def _adopt_alternate_comment_keys(
        self, existing: dict[str, dict[str, Any]], comments: Sequence[CommentData]
    ) -> None:
        """Give a stored comment the key it has now when it is stored under one of its
        ``alternate_keys`` (the previous rule's), so it is not stored twice (issue 13)."""
        keys = {comment.key for comment in comments}
        for comment in comments:
            if comment.key in existing:
                continue
            for alternate in comment.alternate_keys:
                if alternate in existing and alternate not in keys:
                    row = existing.pop(alternate)
                    self._execute(
                        "UPDATE comments SET key = ? WHERE id = ?", (comment.key, row["id"])
                    )
                    existing[comment.key] = row
                    break

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


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# Columns whose text may quote the outside world (a reason phrase, an error from a server):
# stored without terminal control sequences, so that `status` and the web pages show them
# harmless (issue 12).
_OUTSIDE_TEXT = frozenset({"last_error", "comments_error", "next_poll_detail"})


def _column_value(value: Any, key: str = "") -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, frozenset | set):
        return json.dumps(sorted(value))
    if isinstance(value, str) and key in _OUTSIDE_TEXT:
        return safe_text(value)
    return value


def _entry_values(entry: EntryData) -> dict[str, Any]:
    return {
        "guid": entry.guid,
        "title": entry.title,
        "link": entry.link,
        "author": entry.author,
        "summary": entry.summary,
        "content": entry.content,
        "published_at": format_time(entry.published_at),
        "updated_at": format_time(entry.updated_at),
        "content_hash": entry.content_hash,
        "categories": json.dumps(list(entry.categories)),
        "enclosures": json.dumps([[e.url, e.type, e.length] for e in entry.enclosures]),
        "podcast": json.dumps([list(pair) for pair in entry.podcast]) if entry.podcast else None,
        "comments_feed_url": entry.comments_feed_url,
        "comments_page_url": entry.comments_page_url,
        "comment_count_hint": entry.comment_count,
    }


def _stored_entry(row: dict[str, Any]) -> StoredEntry:
    return StoredEntry(
        id=row["id"],
        public_id=row["public_id"],
        source_name=row["source_name"],
        source_title=row["source_title"],
        source_url=row["source_url"],
        source_link=row["source_link"],
        key=row["key"],
        guid=row["guid"],
        title=row["title"],
        link=row["link"],
        author=row["author"],
        summary=row["summary"],
        content=row["content"],
        published_at=parse_time(row["published_at"]),
        updated_at=parse_time(row["updated_at"]),
        first_seen_at=parse_time(row["first_seen_at"]) or datetime.now(UTC),
        categories=tuple(json.loads(row["categories"] or "[]")),
        enclosures=tuple(
            EnclosureData(url=url, type=kind, length=length)
            for url, kind, length in json.loads(row["enclosures"] or "[]")
        ),
        podcast=tuple(
            (str(name), str(value)) for name, value in json.loads(row.get("podcast") or "[]")
        ),
        comment_count=row["comment_count"] or 0,
        last_comment_at=parse_time(row["last_comment_at"]),
        extra={
            "changed_at": row["changed_at"],
            "comments_feed_url": row["comments_feed_url"],
            "comments_page_url": row["comments_page_url"],
            "comment_count_hint": row["comment_count_hint"],
            # Per-site counts of the threads about the entry elsewhere (migration 0010).
            "discussions": tuple(
                tuple(site) for site in json.loads(row.get("discussions") or "[]")
            ),
        },
        sort_at=parse_time(row["sort_at"]),
    )


def _stored_comments(rows: list[dict[str, Any]]) -> list[StoredComment]:
    # A parent's public id is derived from its entry and key, as every comment's is, so a
    # parent not among ``rows`` (or not stored yet) still gets the same id.
    return [
        StoredComment(
            id=row["id"],
            public_id=row["public_id"],
            entry_id=row["entry_id"],
            entry_public_id=row["entry_public_id"],
            key=row["key"],
            content=row["content"],
            author=row["author"],
            author_url=row["author_url"],
            published_at=parse_time(row["published_at"]),
            first_seen_at=parse_time(row["first_seen_at"]) or datetime.now(UTC),
            link=row["link"],
            number=row["number"],
            parent_public_id=(
                comment_public_id(row["entry_public_id"], row["parent_key"])
                if row["parent_key"]
                else None
            ),
            gone_at=parse_time(row["gone_at"]),
        )
        for row in rows
    ]
