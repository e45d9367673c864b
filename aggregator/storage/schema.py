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


# 0002 is reserved for another branch; migrations apply in the order they are defined, and each
# is recorded by name, so the gap is harmless.
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
