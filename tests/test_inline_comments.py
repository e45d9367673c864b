"""Issue 15, item 1: an output's entries carry their comment thread (``inline_comments``), and
``comment_updates: bump`` moves an entry's ``updated`` to its newest comment.

A simulated WordPress blog (:mod:`blogsim`) on 127.0.0.1, a real Poller and SQLite file, one
long-lived Publisher (so the fragment cache is in play), and the published Atom, RSS and JSON
Feed read back with feedparser and checked with the validity rules of ``feedcheck``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import httpx
import pytest
from blogsim import START, Blog
from factories import Clock
from feedcheck import check_atom, check_json_feed, check_rss
from support import serve

from aggregator.config.schema import AppConfig
from aggregator.poll.poller import Poller
from aggregator.publish.publisher import Publisher
from aggregator.serve.server import create_app
from aggregator.storage import Storage

H = timedelta(hours=1)

CONFIG = """
defaults:
  comments: true
sources:
  - name: wp
    url: {url}
outputs:
  - name: whole
    inline_comments: all
    comment_updates: bump
  - name: newest
    inline_comments: 2
    killfile: ["Spammer"]
  - name: plain
"""


def blog_with_thread(blogs: Callable[..., Blog]) -> tuple[Blog, object]:
    blog = blogs("/wp", "wordpress")
    post = blog.add_post("talk", "A Talk", START - 3 * H * 24)
    first = blog.comment(post, "Alice", "First <b>point</b>.", START - 60 * H)
    blog.comment(post, "Bob", "Answering Alice.", START - 50 * H, parent=first)
    blog.comment(post, "Spammer", "Buy things.", START - 45 * H)
    blog.comment(post, "Carol", "Late thoughts.", START - 40 * H)
    blog.add_post("silent", "Silent", START - 24 * H)
    return blog, post


def poll(config: AppConfig, clock: Clock) -> None:
    with Poller(config, clock=clock, manual=True) as poller:
        poller.poll_many(list(config.sources))


def feeds(config: AppConfig, name: str) -> dict[str, bytes]:
    folder = config.public_dir / "feeds"
    return {fmt: (folder / f"{name}.{fmt}").read_bytes() for fmt in ("atom", "rss", "json")}


def valid(config: AppConfig, name: str) -> dict[str, bytes]:
    documents = feeds(config, name)
    base = f"https://feeds.example.org/feeds/{name}"
    assert check_atom(documents["atom"], base + ".atom") == []
    assert check_rss(documents["rss"], base + ".rss") == []
    assert check_json_feed(documents["json"], base + ".json") == []
    return documents


def by_title(document: bytes, title: str):  # noqa: ANN201
    parsed = feedparser.parse(document)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return next(entry for entry in parsed.entries if entry.title == title)


def test_threads_inline_in_every_format_and_a_new_comment_renders_the_entry_again(
    blogs: Callable[..., Blog], write_yaml_config: Callable[[str], AppConfig], clock: Clock
) -> None:
    blog, post = blog_with_thread(blogs)
    config = write_yaml_config(CONFIG.format(url=blog.origin + "/wp/feed/atom/"))
    poll(config, clock)
    with Storage(config.database) as storage:
        publisher = Publisher(config, storage)
        publisher.publish()
        whole = valid(config, "whole")
        newest = valid(config, "newest")
        plain = valid(config, "plain")

        atom = by_title(whole["atom"], "A Talk")
        html = atom.content[0].value
        assert "4 comments" in html
        for name in ("Alice", "Bob", "Spammer", "Carol"):
            assert name in html
        assert "First <b>point</b>." in html  # stored sanitized HTML, kept
        # Replies under their parent: Bob's comment sits in a list inside Alice's item.
        alice, bob = html.index("Alice"), html.index("Answering Alice.")
        assert html.index("<ul>", alice) < bob
        assert blog.comment_url(post, post.comments[1]) in html  # a permalink per comment
        entry_page = f"https://feeds.example.org/outputs/whole/{atom.id.split(':')[-1]}"
        assert entry_page.replace("-", "") in html.replace("-", "")
        assert "/comments.atom" in html and "/comments.rss" in html and "/comments.json" in html
        silent = by_title(whole["atom"], "Silent").content[0].value
        assert "No comments yet" in silent

        rss = by_title(whole["rss"], "A Talk")
        assert "Answering Alice." in rss.content[0].value
        items = json.loads(whole["json"])["items"]
        talk = next(item for item in items if item["title"] == "A Talk")
        assert "Late thoughts." in talk["content_html"] and "4 comments" in talk["content_html"]

        # Two newest, killfile applied: Spammer gone, Alice (oldest) left out, count of three.
        shown = by_title(newest["atom"], "A Talk").content[0].value
        assert "3 comments" in shown and "the 2 newest" in shown
        assert "Carol" in shown and "Answering Alice." in shown
        assert "Spammer" not in shown and "First <b>point</b>." not in shown
        # The output without the key is as before.
        assert "aggregator-thread" not in by_title(plain["atom"], "A Talk").content[0].value

        # bump: updated is the newest comment's time; keep: the entry's own.
        assert atom.updated_parsed[:5] == (START - 40 * H).timetuple()[:5]
        talk_id = atom.id
        assert (
            by_title(newest["atom"], "A Talk").updated_parsed[:3]
            == (START - 72 * H).timetuple()[:3]
        )

        # A new comment: one poll, one publish with the same Publisher (fragments reused).
        clock.advance(H)
        new_at = clock.now - timedelta(minutes=10)
        blog.comment(post, "Dave", "Fresh news.", new_at)
        poll(config, clock)
        publisher.publish()
        grown = by_title(feeds(config, "whole")["atom"], "A Talk")
        assert "Fresh news." in grown.content[0].value and "5 comments" in grown.content[0].value
        assert grown.id == talk_id
        assert datetime(*grown.updated_parsed[:6], tzinfo=UTC) == new_at
        assert "Fresh news." in by_title(feeds(config, "whole")["rss"], "A Talk").content[0].value
        assert "Fresh news." in by_title(feeds(config, "newest")["atom"], "A Talk").content[0].value
        assert "Dave" not in by_title(feeds(config, "plain")["atom"], "A Talk").get("content", "")


def test_readers_of_the_summary_see_the_count_line(
    blogs: Callable[..., Blog], write_yaml_config: Callable[[str], AppConfig], clock: Clock
) -> None:
    blog, _ = blog_with_thread(blogs)
    config = write_yaml_config(
        CONFIG.format(url=blog.origin + "/wp/feed/atom/").replace(
            "inline_comments: 2", "inline_comments: 2\n    content: summary"
        )
    )
    poll(config, clock)
    with Storage(config.database) as storage:
        Publisher(config, storage).publish()
    documents = valid(config, "newest")
    atom = by_title(documents["atom"], "A Talk")
    assert "3 comments" in atom.summary
    rss = feedparser.parse(documents["rss"])
    talk = next(e for e in rss.entries if e.title == "A Talk")
    assert "3 comments" in talk.description


NEWSBOAT = shutil.which("newsboat")


def newsboat_items(home: Path, urls: list[str]) -> list[tuple[str, str, str]]:
    """Subscribe newsboat to ``urls``, reload, and return (feed, title, content) per item."""
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
        ],
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
        return db.execute("SELECT feedurl, title, content FROM rss_item").fetchall()


def test_a_terminal_reader_and_the_entry_page_show_the_thread(
    blogs: Callable[..., Blog],
    write_yaml_config: Callable[[str], AppConfig],
    clock: Clock,
    tmp_path: Path,
) -> None:
    blog, post = blog_with_thread(blogs)
    config = write_yaml_config(CONFIG.format(url=blog.origin + "/wp/feed/atom/"))
    poll(config, clock)
    with Storage(config.database) as storage:
        Publisher(config, storage).publish()
        talk = next(e for e in storage.list_entries(None, 10) if e.title == "A Talk")
    with serve(create_app(config)) as base:
        page = httpx.get(f"{base}/outputs/whole/{talk.public_id}", timeout=10)
        assert page.status_code == 200
        assert "Answering Alice." in page.text and "Late thoughts." in page.text
        assert blog.comment_url(post, post.comments[1]) in page.text
        if NEWSBOAT is None:
            pytest.skip("newsboat is not installed (apt-get install newsboat)")
        # One reader per feed: newsboat keeps one item per id, and both outputs share ids.
        items = [
            item
            for number, url in enumerate([f"{base}/feeds/whole.atom", f"{base}/feeds/newest.rss"])
            for item in newsboat_items(tmp_path / f"newsboat{number}", [url])
        ]
    shown = {(feed.rsplit("/", 1)[-1], title): content for feed, title, content in items}
    assert len(shown) == 4, items
    assert "Answering Alice." in shown[("whole.atom", "A Talk")]
    assert "4 comments" in shown[("whole.atom", "A Talk")]
    assert "Late thoughts." in shown[("newest.rss", "A Talk")]
    assert "Spammer" not in shown[("newest.rss", "A Talk")]
