"""Retention (issue 17, item 4): `aggregator prune [--dry-run]` removes old entries, never what
an output still shows within its pages, pruned entries do not come back while the feed carries
them, and the database file shrinks. A real feed server on 127.0.0.1, a real SQLite file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import feedparser

from aggregator.config.loading import load_config
from aggregator.poll.poller import Poller
from aggregator.publish.publisher import Publisher
from aggregator.run.prune import prune
from aggregator.storage import Storage

NOW = datetime.now(UTC)


def rss(count: int, *, start: datetime, size: int = 20_000) -> bytes:
    items = []
    for number in range(count):
        when = format_datetime(start + timedelta(days=number))
        body = f"<p>entry {number} " + "lorem ipsum dolor " * (size // 18) + "</p>"
        items.append(
            f"<item><guid>urn:post:{number}</guid><title>Post {number}</title>"
            f"<link>https://blog.example/{number}</link><pubDate>{when}</pubDate>"
            f"<description><![CDATA[{body}]]></description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Blog</title>'
        "<link>https://blog.example/</link>" + "".join(items) + "</channel></rss>"
    ).encode()


def run_cli(config_path: Path, *args: str):
    return subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def titles(storage: Storage, source: str) -> set[str]:
    return {entry.title for entry in storage.list_entries([source], 1000)}


def test_prune_keeps_what_outputs_show_and_shrinks_the_database(feed_server, write_config):
    old = NOW - timedelta(days=400)
    url = feed_server.serve_feed("/blog.rss", rss(30, start=old))
    fresh = feed_server.serve_feed("/fresh.rss", rss(3, start=NOW - timedelta(days=5), size=100))
    path = write_config(
        sources=[
            {"name": "blog", "url": url, "retention": {"entries": {"max_age": "90d"}}},
            {"name": "fresh", "url": fresh},
        ],
        outputs=[{"name": "some", "sources": ["blog"], "limit": 3, "pages": 2}],
        defaults={"timeout": "5s", "retention": {"entries": {"max_age": "1d"}}},
    )
    config = load_config(path)
    with Poller(config, manual=True) as poller:
        assert all(r.error is None for r in poller.poll_many(config.sources, force=True))

    dry = run_cli(path, "prune", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "blog: would remove 24 entries, 0 comments (kept 6 still shown)" in dry.stdout
    # The defaults' rule (1 day) applies to the source without its own: all three are older.
    assert "fresh: would remove 3 entries" in dry.stdout
    with Storage(config.database) as storage:
        assert len(titles(storage, "blog")) == 30  # a dry run changes nothing

    before = config.database.stat().st_size
    done = run_cli(path, "prune")
    assert done.returncode == 0, done.stderr
    assert "total: removed 27 entries, 0 comments" in done.stdout
    with Storage(config.database) as storage:
        kept = titles(storage, "blog")
        assert kept == {f"Post {n}" for n in range(24, 30)}
        assert titles(storage, "fresh") == set()
        Publisher(config, storage, fragment_bytes=0).publish()
    assert config.database.stat().st_size < before / 2
    shown = feedparser.parse((config.public_dir / "feeds" / "some.atom").read_bytes())
    assert [e.title for e in shown.entries] == ["Post 29", "Post 28", "Post 27"]

    # The feed still carries the removed entries: they are not stored again as new.
    with Poller(config, manual=True) as poller:
        [result, _] = poller.poll_many(config.sources, force=True)
    feed_server.serve_feed("/blog.rss", rss(31, start=old))  # one more post: only it is new
    with Poller(config, manual=True) as poller:
        [result, _] = poller.poll_many(config.sources, force=True)
    assert result.new == 1, result
    with Storage(config.database) as storage:
        assert len(titles(storage, "blog")) == 7


def test_count_retention_and_the_first_vacuum_of_an_old_database(feed_server, write_config):
    url = feed_server.serve_feed("/blog.rss", rss(12, start=NOW - timedelta(days=20)))
    path = write_config(
        sources=[{"name": "blog", "url": url, "retention": {"entries": {"max_count": 4}}}],
        outputs=[{"name": "tiny", "limit": 2, "pages": 1}],
    )
    config = load_config(path)
    with Poller(config, manual=True) as poller:
        poller.poll_many(config.sources, force=True)
    # A database made before auto_vacuum was set: prune switches it with one VACUUM.
    connection = sqlite3.connect(config.database)
    connection.execute("PRAGMA auto_vacuum = NONE")
    connection.execute("VACUUM")
    assert connection.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    connection.close()
    with Storage(config.database) as storage:
        report = prune(config, storage, NOW)
        assert report.vacuumed and report.entries == 8
        assert titles(storage, "blog") == {f"Post {n}" for n in range(8, 12)}
        assert storage.db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
        again = prune(config, storage, NOW)
        assert not again.vacuumed and again.entries == 0
    assert report.bytes_after < report.bytes_before


def test_without_retention_nothing_is_removed(feed_server, write_config):
    url = feed_server.serve_feed("/blog.rss", rss(5, start=NOW - timedelta(days=900), size=10))
    path = write_config(sources=[{"name": "blog", "url": url}])
    config = load_config(path)
    with Poller(config, manual=True) as poller:
        poller.poll_many(config.sources, force=True)
    done = run_cli(path, "prune")
    assert done.returncode == 0 and "total: removed 0 entries" in done.stdout
    with Storage(config.database) as storage:
        assert len(titles(storage, "blog")) == 5


def test_retention_keys_are_validated_with_their_line(write_yaml_config):
    import pytest

    from aggregator.errors import ConfigError

    with pytest.raises(ConfigError) as raised:
        write_yaml_config(
            """
            defaults:
              retention:
                entries: {}
            sources:
              - {name: a, url: https://example.org/feed, retention: {comments: {max_age: 0}}}
            """
        )
    problems = raised.value.problems
    assert problems[0].endswith(":8: defaults.retention.entries: set max_age, max_count or both")
    assert problems[1].endswith(
        ":10: sources[0].retention.comments.max_age: must be longer than zero"
    )
