"""A real terminal feed reader subscribes over HTTP: newsboat lists every entry.

newsboat runs non-interactively (``-x reload print-unread``) with its own urls, config and
cache files in ``tmp_path``; its SQLite cache then tells what it read: title, author and link
of every item. Skipped, with a message saying so, where newsboat is not installed
(.ci/run installs it).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import demo_config_path, poll_and_publish, serve

from aggregator.config.schema import AppConfig
from aggregator.serve.server import create_app
from aggregator.storage import Storage

NEWSBOAT = shutil.which("newsboat")
# newsboat in a subprocess: `make test-fast` leaves these out.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        NEWSBOAT is None,
        reason="newsboat is not installed (apt-get install newsboat); the reader test needs it",
    ),
]


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AppConfig, str]]:
    config = poll_and_publish(demo_config_path(tmp_path_factory.mktemp("demo-reader")))
    with serve(create_app(config)) as base:
        yield config, base


def _newsboat(home: Path, urls: list[str]) -> list[tuple[str, str, str, str]]:
    """Subscribe newsboat to ``urls``, reload, and return (feed, title, author, link) per item."""
    assert NEWSBOAT is not None
    home.mkdir()
    (home / "urls").write_text("".join(f"{url}\n" for url in urls))
    (home / "config").write_text("download-timeout 10\nreload-threads 1\n")
    result = subprocess.run(
        [
            NEWSBOAT,
            "--url-file",
            str(home / "urls"),
            "--cache-file",
            str(home / "cache.db"),
            "--config-file",
            str(home / "config"),
            "--execute",
            "reload",
            "print-unread",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={
            **os.environ,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home),
            "XDG_DATA_HOME": str(home),
        },
    )
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(home / "cache.db") as db:
        return db.execute("SELECT feedurl, title, author, url FROM rss_item").fetchall()


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_newsboat_lists_every_entry_with_title_author_and_link(
    demo_site: tuple[AppConfig, str], tmp_path: Path, fmt: str
) -> None:
    config, base = demo_site
    url = f"{base}/feeds/all.{fmt}"
    items = _newsboat(tmp_path / "newsboat", [url])
    with Storage(config.database) as storage:
        stored = storage.list_entries(None, 50)
    assert sorted((title, author, link) for feed, title, author, link in items) == sorted(
        (e.title, e.author or e.source_title, e.link) for e in stored
    )
    assert {feed for feed, *_ in items} == {url}
    assert all(author for _, _, author, _ in items)


def test_newsboat_reads_a_comment_feed(demo_site: tuple[AppConfig, str], tmp_path: Path) -> None:
    config, base = demo_site
    with Storage(config.database) as storage:
        entry = next(e for e in storage.list_entries(None, 50) if e.comment_count == 3)
    items = _newsboat(tmp_path / "newsboat", [f"{base}/feeds/all/{entry.public_id}/comments.atom"])
    assert sorted(author for _, _, author, _ in items) == ["Eugene", "Ole", "Paula"]
