"""The database schema, as named, append-only migrations (sqlite-utils ``Migrations``).

Never edit a migration that has shipped: add a new one. Each runs in its own transaction and is
recorded in ``_sqlite_migrations``, so opening an old database brings it up to date.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("aggregator")


@migrations(name="0001_initial")
def _initial(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE sources (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            url TEXT NOT NULL,
            title TEXT,
            link TEXT,
            etag TEXT,
            last_modified TEXT,
            body_hash TEXT,
            last_polled_at TEXT,
            last_status INTEGER,
            last_error TEXT,
            error_count INTEGER NOT NULL DEFAULT 0,
            next_poll_at TEXT,
            next_poll_reason TEXT,
            redirect_url TEXT,
            redirect_count INTEGER NOT NULL DEFAULT 0,
            retired_at TEXT,
            comments_etag TEXT,
            comments_last_modified TEXT,
            comments_polled_at TEXT,
            created_at TEXT NOT NULL
        );
        CREATE TABLE entries (
            id INTEGER PRIMARY KEY,
            source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
            key TEXT NOT NULL,
            public_id TEXT NOT NULL UNIQUE,
            guid TEXT,
            title TEXT NOT NULL DEFAULT '',
            link TEXT,
            author TEXT,
            summary TEXT,
            content TEXT,
            published_at TEXT,
            updated_at TEXT,
            first_seen_at TEXT NOT NULL,
            sort_at TEXT NOT NULL,
            changed_at TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            categories TEXT NOT NULL DEFAULT '[]',
            enclosures TEXT NOT NULL DEFAULT '[]',
            comments_feed_url TEXT,
            comments_page_url TEXT,
            comment_count_hint INTEGER,
            comment_count INTEGER NOT NULL DEFAULT 0,
            last_comment_at TEXT,
            comments_etag TEXT,
            comments_last_modified TEXT,
            comments_polled_at TEXT,
            comments_next_poll_at TEXT,
            comments_last_new_at TEXT,
            comments_hint_polled INTEGER,
            comments_stopped INTEGER NOT NULL DEFAULT 0,
            comments_error TEXT,
            UNIQUE (source_id, key)
        );
        CREATE INDEX entries_sort ON entries (sort_at DESC);
        CREATE INDEX entries_source_sort ON entries (source_id, sort_at DESC);
        CREATE INDEX entries_comments_due ON entries (comments_next_poll_at)
            WHERE comments_next_poll_at IS NOT NULL;
        CREATE TABLE comments (
            id INTEGER PRIMARY KEY,
            entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
            key TEXT NOT NULL,
            public_id TEXT NOT NULL UNIQUE,
            author TEXT,
            author_url TEXT,
            title TEXT,
            content TEXT NOT NULL DEFAULT '',
            link TEXT,
            number INTEGER,
            parent_key TEXT,
            published_at TEXT,
            first_seen_at TEXT NOT NULL,
            sort_at TEXT NOT NULL,
            changed_at TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            gone_at TEXT,
            UNIQUE (entry_id, key)
        );
        CREATE INDEX comments_entry_sort ON comments (entry_id, sort_at);
        CREATE INDEX comments_sort ON comments (sort_at DESC);
        """
    )


# Full-text search (FTS5) over entries and comments, and indexes for the output queries.
#
# The index holds visible text, not HTML (a search for "href" must not match every link), so
# the triggers call ``aggregator_text()``, an application function that every connection opened
# by :class:`~aggregator.storage.Storage` registers before it touches the schema. The FTS tables
# keep their own copy of that text (not ``content=''``): deleting a row then needs only its
# rowid, never the exact text once indexed, so a change in how HTML becomes text can never
# leave the index out of step with the rows. Both tables have the same columns, so one query
# (``title: syria``) means the same thing against entries and against comments.
SEARCH_COLUMNS = ("title", "content", "author", "category")


@migrations(name="0002_search")
def _search(db: Database) -> None:
    db.executescript(
        """
        CREATE VIRTUAL TABLE entries_fts USING fts5(
            title, content, author, category, tokenize = 'unicode61 remove_diacritics 2'
        );
        CREATE VIRTUAL TABLE comments_fts USING fts5(
            title, content, author, category, tokenize = 'unicode61 remove_diacritics 2'
        );

        CREATE TRIGGER entries_fts_insert AFTER INSERT ON entries BEGIN
            INSERT INTO entries_fts (rowid, title, content, author, category) VALUES (
                new.id, new.title,
                aggregator_text(new.content) || ' ' || aggregator_text(new.summary),
                new.author,
                (SELECT group_concat(value, ' ') FROM json_each(new.categories))
            );
        END;
        CREATE TRIGGER entries_fts_update
            AFTER UPDATE OF title, summary, content, author, categories ON entries BEGIN
            DELETE FROM entries_fts WHERE rowid = old.id;
            INSERT INTO entries_fts (rowid, title, content, author, category) VALUES (
                new.id, new.title,
                aggregator_text(new.content) || ' ' || aggregator_text(new.summary),
                new.author,
                (SELECT group_concat(value, ' ') FROM json_each(new.categories))
            );
        END;
        CREATE TRIGGER entries_fts_delete AFTER DELETE ON entries BEGIN
            DELETE FROM entries_fts WHERE rowid = old.id;
        END;

        CREATE TRIGGER comments_fts_insert AFTER INSERT ON comments BEGIN
            INSERT INTO comments_fts (rowid, title, content, author, category)
            VALUES (new.id, new.title, aggregator_text(new.content), new.author, '');
        END;
        CREATE TRIGGER comments_fts_update
            AFTER UPDATE OF title, content, author ON comments BEGIN
            DELETE FROM comments_fts WHERE rowid = old.id;
            INSERT INTO comments_fts (rowid, title, content, author, category)
            VALUES (new.id, new.title, aggregator_text(new.content), new.author, '');
        END;
        CREATE TRIGGER comments_fts_delete AFTER DELETE ON comments BEGIN
            DELETE FROM comments_fts WHERE rowid = old.id;
        END;

        INSERT INTO entries_fts (rowid, title, content, author, category)
            SELECT id, title, aggregator_text(content) || ' ' || aggregator_text(summary),
                   author, (SELECT group_concat(value, ' ') FROM json_each(categories))
            FROM entries;
        INSERT INTO comments_fts (rowid, title, content, author, category)
            SELECT id, title, aggregator_text(content), author, '' FROM comments;

        -- Output queries (storage/outputs.py): "most_comments" and "recent_activity" orders,
        -- across all sources and within one source.
        CREATE INDEX entries_comment_count ON entries (comment_count DESC, sort_at DESC);
        CREATE INDEX entries_source_comment_count
            ON entries (source_id, comment_count DESC, sort_at DESC);
        CREATE INDEX entries_activity
            ON entries (max(coalesce(last_comment_at, sort_at), sort_at) DESC);
        CREATE INDEX entries_source_activity
            ON entries (source_id, max(coalesce(last_comment_at, sort_at), sort_at) DESC);
        """
    )


@migrations(name="0003_daemon")
def _daemon(db: Database) -> None:
    """What the daemon's scheduler needs across restarts (issue 5).

    ``config_url`` is the URL as configured, so that an adopted permanent redirect (``url``)
    survives a restart and a URL changed in the config is still noticed. ``last_success_at``
    feeds ``/healthz``. The ``hint_*`` columns keep the feed's own polling hints (``<ttl>``,
    ``sy:updatePeriod``, ``skipHours``, ``skipDays``), which a 304 answer does not repeat.
    """
    # One statement at a time: executescript() would COMMIT first and break the migration's
    # own transaction, so a kill during the upgrade could leave half the columns behind.
    for statement in (
        "ALTER TABLE sources ADD COLUMN config_url TEXT",
        "ALTER TABLE sources ADD COLUMN last_success_at TEXT",
        "ALTER TABLE sources ADD COLUMN next_poll_detail TEXT",
        "ALTER TABLE sources ADD COLUMN hint_ttl_minutes INTEGER",
        "ALTER TABLE sources ADD COLUMN hint_update_period INTEGER",
        "ALTER TABLE sources ADD COLUMN hint_skip_hours TEXT NOT NULL DEFAULT '[]'",
        "ALTER TABLE sources ADD COLUMN hint_skip_days TEXT NOT NULL DEFAULT '[]'",
        "UPDATE sources SET config_url = url",
        "UPDATE sources SET last_success_at = last_polled_at "
        "WHERE last_error IS NULL AND last_polled_at IS NOT NULL",
    ):
        db.execute(statement)


# What the full-text index holds of an entry and of a comment: 0002_search's expressions, kept
# the same here (``{row}`` is ``new`` in a trigger, a table alias in a query).
_ENTRY_TEXT = (
    "{row}.title, aggregator_text({row}.content) || ' ' || aggregator_text({row}.summary), "
    "{row}.author, (SELECT group_concat(value, ' ') FROM json_each({row}.categories))"
)
_COMMENT_TEXT = "{row}.title, aggregator_text({row}.content), {row}.author, ''"


@migrations(name="0004_search_queue")
def _search_queue(db: Database) -> None:
    """Index new and changed rows once per transaction, not once per row (issue 8).

    A row written to an FTS5 table from a trigger costs about ten times what the same row
    costs in one ``INSERT ... SELECT``: each statement that fires the trigger flushes the
    index's pending terms. So inside :meth:`Storage.transaction` (where the connection's
    ``aggregator_index_later()`` answers 1) the insert and update triggers only queue the row's
    id in ``search_queue``, and the transaction indexes the queued rows in one statement per
    table before it commits (:func:`index_queued`); the queue is empty again in every committed
    state. Every other connection (``aggregator_index_later()`` answers 0, as
    ``register_functions`` registers it) keeps 0002's per-row indexing. Delete triggers are
    unchanged.
    """
    statements = [
        "CREATE TABLE search_queue ("
        " kind TEXT NOT NULL CHECK (kind IN ('entry', 'comment')),"
        " id INTEGER NOT NULL,"
        " PRIMARY KEY (kind, id)"
        ") WITHOUT ROWID",
    ]
    for table, kind, text, columns in (
        ("entries", "entry", _ENTRY_TEXT, "title, summary, content, author, categories"),
        ("comments", "comment", _COMMENT_TEXT, "title, content, author"),
    ):
        statements += [
            f"DROP TRIGGER {table}_fts_insert",
            f"DROP TRIGGER {table}_fts_update",
            f"CREATE TRIGGER {table}_fts_insert AFTER INSERT ON {table} "
            "WHEN NOT aggregator_index_later() BEGIN "
            f"INSERT INTO {table}_fts (rowid, title, content, author, category) "
            f"VALUES (new.id, {text.format(row='new')}); END",
            f"CREATE TRIGGER {table}_fts_update AFTER UPDATE OF {columns} ON {table} "
            "WHEN NOT aggregator_index_later() BEGIN "
            f"DELETE FROM {table}_fts WHERE rowid = old.id; "
            f"INSERT INTO {table}_fts (rowid, title, content, author, category) "
            f"VALUES (new.id, {text.format(row='new')}); END",
            f"CREATE TRIGGER {table}_fts_queue_insert AFTER INSERT ON {table} "
            "WHEN aggregator_index_later() BEGIN "
            f"INSERT OR IGNORE INTO search_queue (kind, id) VALUES ('{kind}', new.id); END",
            f"CREATE TRIGGER {table}_fts_queue_update AFTER UPDATE OF {columns} ON {table} "
            "WHEN aggregator_index_later() BEGIN "
            f"INSERT OR IGNORE INTO search_queue (kind, id) "
            f"VALUES ('{kind}', old.id), ('{kind}', new.id); END",
        ]
    # One statement at a time (not executescript, which would COMMIT): see 0003_daemon.
    for statement in statements:
        db.execute(statement)


@migrations(name="0009_poll_log")
def _poll_log(db: Database) -> None:
    """What the status page draws (issue 18): one row per poll of a source (when, how long, the
    HTTP status, new entries, the error), kept for :data:`POLL_LOG_DAYS` days; and indexes on
    the times entries and comments were first seen, so that new ones per day over a month are
    read by range for a page of sources rather than by scanning every row of theirs.
    """
    for statement in (
        "CREATE TABLE poll_log ("
        " source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,"
        " polled_at TEXT NOT NULL,"
        " duration_ms INTEGER NOT NULL,"
        " status INTEGER,"
        " new_entries INTEGER NOT NULL DEFAULT 0,"
        " error TEXT"
        ")",
        "CREATE INDEX poll_log_source ON poll_log (source_id, polled_at)",
        "CREATE INDEX entries_source_first_seen ON entries (source_id, first_seen_at)",
        "CREATE INDEX comments_first_seen ON comments (first_seen_at)",
    ):
        db.execute(statement)


#: How long the poll log keeps a source's polls (the status page's charts span 30 days).
POLL_LOG_DAYS = 31


@migrations(name="0010_discussions")
def _discussions(db: Database) -> None:
    """Threads about an entry kept by an API (issue 16): Hacker News, Reddit, Disqus, ...

    ``discussions`` holds one row per thread found (its provider's reference, counts and
    schedule); its comments are ordinary ``comments`` rows of the entry whose keys start with
    ``@`` (``@hn:8863``), which no feed or page key does. ``discussion_lookups`` remembers when
    each provider was last asked about an entry. ``entries.discussions`` is the per-site summary
    the outputs show (JSON), kept with the entry so publishing needs no extra query.
    """
    statements = [
        "CREATE TABLE discussions ("
        " id INTEGER PRIMARY KEY,"
        " entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,"
        " provider TEXT NOT NULL,"
        " ref TEXT NOT NULL,"
        " url TEXT, title TEXT, score INTEGER, comment_count INTEGER,"
        " found_at TEXT NOT NULL, polled_at TEXT, next_poll_at TEXT, last_new_at TEXT,"
        " last_comment_at TEXT, stopped INTEGER NOT NULL DEFAULT 0, error TEXT,"
        " UNIQUE (entry_id, provider, ref))",
        "CREATE TABLE discussion_lookups ("
        " entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,"
        " provider TEXT NOT NULL, looked_up_at TEXT NOT NULL, error TEXT,"
        " PRIMARY KEY (entry_id, provider)) WITHOUT ROWID",
        "ALTER TABLE entries ADD COLUMN discussions TEXT",
    ]
    for statement in statements:
        db.execute(statement)


def index_queued(db: Database) -> int:
    """Index the rows queued in ``search_queue`` (see ``0004_search_queue``) and empty it.

    Call inside the transaction that queued them, before it commits. A queued id is first
    removed from the index (a changed row, or an id that no longer exists), then indexed again
    from its row as it is now, in one statement per table. Returns how many ids were queued.
    """
    queued = db.execute("SELECT count(*) FROM search_queue").fetchone()[0]
    if not queued:
        return 0
    for table, kind, text in (
        ("entries", "entry", _ENTRY_TEXT),
        ("comments", "comment", _COMMENT_TEXT),
    ):
        db.execute(
            f"DELETE FROM {table}_fts WHERE rowid IN "
            f"(SELECT id FROM search_queue WHERE kind = '{kind}')"
        )
        db.execute(
            f"INSERT INTO {table}_fts (rowid, title, content, author, category) "
            f"SELECT t.id, {text.format(row='t')} FROM search_queue q "
            f"JOIN {table} t ON t.id = q.id WHERE q.kind = '{kind}' ORDER BY t.id"
        )
    db.execute("DELETE FROM search_queue")
    return int(queued)


@migrations(name="0012_comment_items")
def _comment_items(db: Database) -> None:
    """Indexes for outputs whose items are comments (issue 15, item 2): a person's comments
    newest first (``comment_authors``), and the replies to a comment (``replies_to``: the
    parent found by author, its replies by entry and parent key)."""
    for statement in (
        "CREATE INDEX IF NOT EXISTS comments_author_sort "
        "ON comments (author COLLATE NOCASE, sort_at DESC)",
        "CREATE INDEX IF NOT EXISTS comments_parent ON comments (entry_id, parent_key)",
    ):
        db.execute(statement)


@migrations(name="0013_comment_history_alerts")
def _comment_history_alerts(db: Database) -> None:
    """Earlier versions of comments, and what each alert has sent (issue 15, items 3 and 5).

    ``comment_revisions`` holds one row per change seen at the source: ``edit`` (the text
    before and after) or ``gone`` (the last text, when the comment vanished from a complete
    listing). Rows are written in the transaction that updates the comment, so a kill never
    leaves a changed comment without its revision.

    ``alert_marks`` is each ``notify:`` item's high-water mark: the greatest comment and entry
    ids it has considered. A batch is sent, then the mark moves past it in one transaction, so
    a restart never sends the same comment twice.
    """
    for statement in (
        "CREATE TABLE comment_revisions ("
        " id INTEGER PRIMARY KEY,"
        " comment_id INTEGER NOT NULL REFERENCES comments(id) ON DELETE CASCADE,"
        " kind TEXT NOT NULL CHECK (kind IN ('edit', 'gone')),"
        " old_content TEXT NOT NULL,"
        " new_content TEXT,"
        " old_author TEXT,"
        " recorded_at TEXT NOT NULL"
        ")",
        "CREATE INDEX comment_revisions_comment ON comment_revisions (comment_id, id)",
        "CREATE INDEX comment_revisions_recorded ON comment_revisions (recorded_at, id)",
        "CREATE TABLE alert_marks ("
        " name TEXT PRIMARY KEY,"
        " comment_id INTEGER NOT NULL DEFAULT 0,"
        " entry_id INTEGER NOT NULL DEFAULT 0,"
        " sent_at TEXT,"
        " sent_count INTEGER NOT NULL DEFAULT 0"
        ")",
    ):
        db.execute(statement)


# Retention (issue 17): the keys of entries `aggregator prune` removed, so a feed that still
# carries one does not store it again as new. ``seen_at`` moves while the feed carries the key;
# a key the feed has not carried for TOMBSTONE_DAYS is forgotten (retention.py).
@migrations(name="0015_pruned_entries")
def _pruned_entries(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE pruned_entries (
            source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
            key TEXT NOT NULL,
            pruned_at TEXT NOT NULL,
            seen_at TEXT NOT NULL,
            PRIMARY KEY (source_id, key)
        ) WITHOUT ROWID;
        """
    )


@migrations(name="0016_podcast")
def _podcast(db: Database) -> None:
    """An entry's podcast tags (iTunes and Podcasting 2.0: image, duration, episode, explicit,
    transcript, chapters) as a JSON list of ``[name, value]`` pairs (issue 17, item 7)."""
    db.execute("ALTER TABLE entries ADD COLUMN podcast TEXT")


@migrations(name="0017_full_text")
def _full_text(db: Database) -> None:
    """The article fetched from each entry's page (issue 17, item 2), beside the feed's content.

    One row per entry whose page was considered: ``ok`` (``content`` holds the sanitized
    article), ``retry`` (the fetch failed transiently: tried again on a later poll, counted in
    ``attempts``), ``failed`` (for good: an HTTP error, a refused address, nothing extracted) or
    ``skipped`` (``full_text: auto`` judged the feed's content complete). Removed with its entry.
    """
    db.execute(
        "CREATE TABLE full_texts ("
        " entry_id INTEGER PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE,"
        " status TEXT NOT NULL CHECK (status IN ('ok', 'retry', 'failed', 'skipped')),"
        " url TEXT,"
        " content TEXT,"
        " error TEXT,"
        " attempts INTEGER NOT NULL DEFAULT 0,"
        " checked_at TEXT NOT NULL"
        ")"
    )


@migrations(name="0018_websub")
def _websub(db: Database) -> None:
    """WebSub subscriptions of sources (issue 17, item 8): one row per source whose feed
    announces a hub, kept by source name so that a removed source can still be unsubscribed."""
    db.executescript(
        """
        CREATE TABLE websub_subscriptions (
            id INTEGER PRIMARY KEY,
            source_name TEXT NOT NULL UNIQUE,
            callback_id TEXT NOT NULL UNIQUE,
            hub TEXT NOT NULL,
            topic TEXT NOT NULL,
            secret TEXT NOT NULL,
            mode TEXT NOT NULL DEFAULT 'subscribe',
            lease_seconds INTEGER,
            requested_at TEXT,
            verified_at TEXT,
            expires_at TEXT,
            pushed_at TEXT,
            retry_at TEXT,
            error_count INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            created_at TEXT NOT NULL
        );
        """
    )


@migrations(name="0019_discussion_cache")
def _discussion_cache(db: Database) -> None:
    """What the comment APIs' client remembers across restarts (issue 16, politeness).

    ``api_responses``: each API response that came with a validator (``ETag``,
    ``Last-Modified``), keyed by a hash of its URL (a query may carry an API key, which is
    never stored), so the next request is conditional and a ``304`` reuses the stored body.
    ``api_blocks``: until when an API host asked not to be asked (``429``/``Retry-After``,
    an exhausted ``X-RateLimit-Remaining``).
    """
    for statement in (
        "CREATE TABLE api_responses ("
        " url_hash TEXT PRIMARY KEY, etag TEXT, last_modified TEXT,"
        " body BLOB NOT NULL, stored_at TEXT NOT NULL) WITHOUT ROWID",
        "CREATE INDEX api_responses_stored ON api_responses (stored_at)",
        "CREATE TABLE api_blocks (host TEXT PRIMARY KEY, blocked_until TEXT NOT NULL) WITHOUT ROWID",
    ):
        db.execute(statement)


@migrations(name="0020_webmention_counts")
def _webmention_counts(db: Database) -> None:
    """Reactions counted, not stored as comments (issue 16): a thread's likes and reposts
    (webmention.io's ``like-of`` and ``repost-of``, Mastodon's favourites and boosts), shown
    with the entry next to its other counts (``entries.discussions``)."""
    for statement in (
        "ALTER TABLE discussions ADD COLUMN likes INTEGER",
        "ALTER TABLE discussions ADD COLUMN reposts INTEGER",
    ):
        db.execute(statement)
