"""End-to-end tests of the comments feature (project issue 3).

Each test serves simulated blogs (:mod:`blogsim`) from a real HTTP server on 127.0.0.1, loads a
config written the way the README's configuration reference describes, polls with a real
:class:`~aggregator.poll.poller.Poller` into a real SQLite file, publishes with the real
:class:`~aggregator.publish.publisher.Publisher`, and reads the published files back with feedparser.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest
from blogsim import START, Blog, Post, requests_to
from click.testing import CliRunner
from factories import Clock
from pytest_httpserver import HTTPServer

from aggregator.cli import main
from aggregator.config.schema import AppConfig
from aggregator.models import PollResult, StoredComment, StoredEntry
from aggregator.poll.poller import Poller
from aggregator.publish.publisher import Publisher
from aggregator.storage import Storage

H = timedelta(hours=1)
D = timedelta(days=1)
FEED_VARIANTS = {"rss": "/wp/feed/", "atom": "/wp/feed/atom/"}


# -- helpers ------------------------------------------------------------------------------------


def poll(config: AppConfig, clock: Clock, *, manual: bool = True) -> list[PollResult]:
    """One poll of every source, as `aggregator poll` (manual) or the daemon does it."""
    with Poller(config, clock=clock, manual=manual) as poller:
        return poller.poll_many(list(config.sources))


def publish(config: AppConfig) -> None:
    with Storage(config.database) as storage:
        Publisher(config, storage).publish()


def read(config: AppConfig, path: str) -> Any:
    """A published file under /feeds/, parsed by feedparser (JSON files as JSON)."""
    content = (config.public_dir / "feeds" / path).read_bytes()
    if path.endswith(".json"):
        return json.loads(content)
    parsed = feedparser.parse(content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


def entry_for(config: AppConfig, link: str) -> StoredEntry:
    with Storage(config.database) as storage:
        return storage.find_entry(link)


def thread_of(config: AppConfig, link: str) -> list[StoredComment]:
    with Storage(config.database) as storage:
        return storage.list_comments(storage.find_entry(link).id)


def comment_feed(config: AppConfig, output: str, entry: StoredEntry, fmt: str) -> Any:
    return read(config, f"{output}/{entry.public_id}/comments.{fmt}")


def wordpress_blog(blogs: Callable[..., Blog], **options: Any) -> tuple[Blog, Post, Post, Post]:
    """Three posts: a threaded discussion, one without comments, one with two comments."""
    blog = blogs("/wp", "wordpress", **options)
    busy = blog.add_post("busy-post", "A Busy Post", START - 3 * D)
    quiet = blog.add_post("quiet-post", "A Quiet Post", START - 2 * D)
    short = blog.add_post("short-post", "A Short Post", START - D)
    first = blog.comment(
        busy, "Alice", "First!", START - 3 * D + H, author_url="https://a.example/"
    )
    blog.comment(busy, "Bob", "Second, and a <b>bold</b> one.", START - 3 * D + 2 * H)
    blog.comment(busy, "Carol", "Replying to Alice.", START - 3 * D + 3 * H, parent=first)
    blog.comment(busy, "Dave", "Late to this.", START - 2 * D)
    blog.comment(short, "Erin", "Short and sweet.", START - D + H)
    blog.comment(short, "Frank", "Indeed.", START - D + 2 * H)
    assert not quiet.comments
    return blog, busy, quiet, short


WORDPRESS_CONFIG = """
defaults:
  comments: true
  comments_quiet_after: 14d
sources:
  - name: wp
    url: {url}
    title: Example WordPress Blog
outputs:
  - name: all
    title: Everything
    formats: [atom, rss, json]
"""


# -- per-entry comment feeds --------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(FEED_VARIANTS))
def test_every_comment_is_stored_once_in_order(
    variant: str,
    blogs: Callable[..., Blog],
    write_yaml_config: Callable[[str], AppConfig],
    clock: Clock,
    httpserver: HTTPServer,
) -> None:
    blog, busy, quiet, short = wordpress_blog(blogs)
    config = write_yaml_config(WORDPRESS_CONFIG.format(url=blog.origin + FEED_VARIANTS[variant]))

    (result,) = poll(config, clock)
    assert result.ok and result.new == 3 and result.new_comments == 6, result

    for post in (busy, short):
        stored = thread_of(config, blog.post_url(post))
        expected = sorted(post.comments, key=lambda c: c.at)
        assert [c.author for c in stored] == [c.author for c in expected]
        assert [c.published_at for c in stored] == [c.at for c in expected]
        assert all(c.published_at and c.published_at.tzinfo == UTC for c in stored)
        assert [c.link for c in stored] == [blog.comment_url(post, c) for c in expected]
        assert len({c.key for c in stored}) == len(stored)
    alice = thread_of(config, blog.post_url(busy))[0]
    assert alice.content == "<p>First!</p>"
    assert "<b>bold</b>" in thread_of(config, blog.post_url(busy))[1].content
    if variant == "atom":
        assert alice.author_url == "https://a.example/"
    # slash:comments / thr:total of 0 and nothing stored: the empty thread is not fetched.
    assert not requests_to(httpserver.log, blog.comments_feed_path(quiet, variant))

    # A second poll stores nothing twice.
    (again,) = poll(config, clock)
    assert again.new_comments == 0
    with Storage(config.database) as storage:
        assert storage.count("comments") == 6


# -- republishing -------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(FEED_VARIANTS))
def test_republished_threads_and_a_new_comment(
    variant: str,
    blogs: Callable[..., Blog],
    write_yaml_config: Callable[[str], AppConfig],
    clock: Clock,
) -> None:
    blog, busy, quiet, short = wordpress_blog(blogs)
    config = write_yaml_config(WORDPRESS_CONFIG.format(url=blog.origin + FEED_VARIANTS[variant]))
    poll(config, clock)
    publish(config)
    entry = entry_for(config, blog.post_url(busy))
    base = "https://feeds.example.org/feeds/all"

    atom = read(config, "all.atom")
    rss = read(config, "all.rss")
    document = read(config, "all.json")
    by_link = {e.link: e for e in atom.entries}
    busy_atom = by_link[blog.post_url(busy)]
    replies = [link for link in busy_atom.links if link.rel == "replies"]
    # The comment feed (Liferea, RSS Guard) and the thread's web page (Miniflux, Tiny Tiny RSS).
    assert [(r.type, r.href, r.get("thr:count")) for r in replies] == [
        ("application/atom+xml", f"{base}/{entry.public_id}/comments.atom", "4"),
        ("text/html", f"https://feeds.example.org/outputs/all/{entry.public_id}", "4"),
    ]
    assert busy_atom.thr_total == "4"
    assert by_link[blog.post_url(quiet)].thr_total == "0"
    busy_rss = next(item for item in rss.entries if item.link == blog.post_url(busy))
    assert busy_rss.slash_comments == "4"
    assert busy_rss.wfw_commentrss == f"{base}/{entry.public_id}/comments.rss"
    assert busy_rss.comments == f"https://feeds.example.org/outputs/all/{entry.public_id}"
    busy_json = next(item for item in document["items"] if item["url"] == blog.post_url(busy))
    assert busy_json["_aggregator"]["comment_count"] == 4
    assert (
        busy_json["_aggregator"]["comments_feed_url"] == f"{base}/{entry.public_id}/comments.json"
    )

    # The entry's comment feed in each format: thread order, authors, times, in-reply-to.
    thread = comment_feed(config, "all", entry, "atom")
    assert [c.author for c in thread.entries] == ["Alice", "Bob", "Carol", "Dave"]
    assert [c.published_parsed[:6] for c in thread.entries] == [
        c.at.timetuple()[:6] for c in busy.comments
    ]
    post_id = busy_atom.id
    for item in thread.entries:
        assert item["thr_in-reply-to"]["ref"]
    parents = [item["thr_in-reply-to"]["ref"] for item in thread.entries]
    if variant == "atom":  # WordPress's Atom comment feed threads replies; its RSS does not
        assert parents == [post_id, post_id, thread.entries[0].id, post_id]
        assert thread.entries[2]["thr_in-reply-to"]["href"] == blog.comment_url(
            busy, busy.comments[0]
        )
    else:
        assert parents == [post_id] * 4
    rss_thread = comment_feed(config, "all", entry, "rss")
    assert [c.author for c in rss_thread.entries] == ["Alice", "Bob", "Carol", "Dave"]
    json_thread = comment_feed(config, "all", entry, "json")
    assert [c["authors"][0]["name"] for c in json_thread["items"]] == [
        "Alice",
        "Bob",
        "Carol",
        "Dave",
    ]
    latest = read(config, "all/comments.atom")
    assert [c.author for c in latest.entries] == ["Frank", "Erin", "Dave", "Carol", "Bob", "Alice"]
    assert all(item["thr_in-reply-to"]["ref"] for item in latest.entries)

    # A comment arrives at the source; the next poll stores it and the republished thread has it.
    before = {
        "atom": (busy_atom.id, busy_atom.updated),
        "rss": (busy_rss.id, busy_rss.published),
        "json": (busy_json["id"], busy_json["date_modified"]),
    }
    clock.advance(H)
    blog.comment(busy, "Grace", "A new voice.", clock.now - timedelta(minutes=5))
    (result,) = poll(config, clock)
    assert result.new_comments == 1
    publish(config)
    thread = comment_feed(config, "all", entry, "atom")
    assert [c.author for c in thread.entries][-1] == "Grace"
    assert "Grace" in [c.author for c in read(config, "all/comments.rss").entries]
    atom = read(config, "all.atom")
    busy_atom = next(e for e in atom.entries if e.link == blog.post_url(busy))
    busy_rss = next(i for i in read(config, "all.rss").entries if i.link == blog.post_url(busy))
    busy_json = next(
        i for i in read(config, "all.json")["items"] if i["url"] == blog.post_url(busy)
    )
    assert busy_atom.thr_total == "5" and busy_rss.slash_comments == "5"
    assert before == {
        "atom": (busy_atom.id, busy_atom.updated),
        "rss": (busy_rss.id, busy_rss.published),
        "json": (busy_json["id"], busy_json["date_modified"]),
    }
    assert entry_for(config, blog.post_url(busy)).public_id == entry.public_id


# -- Typepad: comments read from the post's page -------------------------------------------------

TYPEPAD_CONFIG = """
defaults:
  comments: true
  comments_quiet_after: 14d
  killfile: ["Spam Bot"]
sources:
  - name: moa
    url: {url}
    title: Example Typepad Blog
    comments_page: typepad
    timezone: America/New_York
    killfile: ["Some Troll", "/^anon/i"]
outputs:
  - name: politics
    title: Politics threads
    formats: [atom, rss, json]
    killfile: ["Another Troll"]
    comments_exclude: ["buy cheap"]
"""
KILLED = {"Spam Bot", "Some Troll", "anonymous coward", "Another Troll"}
AUTHORS = ["Alpha", "Beta", "Gamma", "Spam Bot", "Delta", "Some Troll", "anonymous coward"]


def typepad_blog(blogs: Callable[..., Blog], comments: int = 120) -> tuple[Blog, Post, Post]:
    """A long thread across the 2026 switch to daylight time (8 March, New York), and a short one."""
    blog = blogs("/tp", "typepad")
    long = blog.add_post("a-long-thread", "A Long Thread", START - 4 * D)
    short = blog.add_post("a-short-thread", "A Short Thread", START - 2 * D)
    for n in range(comments):
        author = AUTHORS[n % len(AUTHORS)] if n % 10 != 9 else "Another Troll"
        text = "buy cheap watches here" if n == 50 else f"Comment number {n + 1} &amp; more."
        blog.comment(long, author, text, START - 3 * D + n * timedelta(minutes=35, seconds=7))
    blog.comment(short, "Alpha", "Short one.", START - D, author_url="https://alpha.example/")
    blog.comment(short, "Spam Bot", "Spam.", START - D + H)
    return blog, long, short


def visible_authors(config: AppConfig, entry: StoredEntry) -> dict[str, list[str]]:
    """Authors of every comment in every republished feed that can show ``entry``'s comments."""
    found: dict[str, list[str]] = {}
    for fmt in ("atom", "rss"):
        for path in (f"politics/{entry.public_id}/comments.{fmt}", f"politics/comments.{fmt}"):
            parsed = read(config, path)
            found[path] = [item.get("author", "") for item in parsed.entries]
            texts = " ".join(item.content[0].value for item in parsed.entries)
            assert "buy cheap" not in texts
    for path in (f"politics/{entry.public_id}/comments.json", "politics/comments.json"):
        items = read(config, path)["items"]
        found[path] = [item["authors"][0]["name"] for item in items]
        assert "buy cheap" not in " ".join(item["content_html"] for item in items)
    return found


def test_typepad_pages_long_thread_killfiles_and_changes(
    blogs: Callable[..., Blog], write_yaml_config: Callable[[str], AppConfig], clock: Clock
) -> None:
    blog, long, short = typepad_blog(blogs)
    config = write_yaml_config(TYPEPAD_CONFIG.format(url=blog.origin + "/tp/index.rdf"))

    (result,) = poll(config, clock)
    assert result.ok and result.new == 2 and result.new_comments == 122, result
    stored = thread_of(config, blog.post_url(long))
    assert len(stored) == 120 and len({c.key for c in stored}) == 120
    assert [c.number for c in stored] == list(range(1, 121))
    assert [c.author for c in stored] == [c.author for c in long.comments]
    # "Posted by: NAME | Mar 8, 2026 3:35:07 AM | N" is New York time, before and after 8 March.
    assert [c.published_at for c in stored] == [c.at for c in long.comments]
    assert all(c.published_at and c.published_at.tzinfo == UTC for c in stored)
    assert [c.link for c in stored] == [blog.comment_url(long, c) for c in long.comments]
    assert stored[1].content == "<p>Comment number 2 &amp; more.</p>"
    assert thread_of(config, blog.post_url(short))[0].author_url == "https://alpha.example/"

    publish(config)
    entry = entry_for(config, blog.post_url(long))
    shown = visible_authors(config, entry)
    for path, authors in shown.items():
        assert authors and not KILLED & set(authors), path
    expected = [c.author for i, c in enumerate(long.comments) if c.author not in KILLED and i != 50]
    assert shown[f"politics/{entry.public_id}/comments.atom"] == expected
    assert shown[f"politics/{entry.public_id}/comments.json"] == expected
    long_atom = next(e for e in read(config, "politics.atom").entries if e.link == entry.link)
    assert long_atom.thr_total == str(len(expected))
    long_json = next(i for i in read(config, "politics.json")["items"] if i["url"] == entry.link)
    assert long_json["_aggregator"]["comment_count"] == len(expected)
    assert {
        item["thr_in-reply-to"]["ref"]
        for item in comment_feed(config, "politics", entry, "atom").entries
    } == {long_atom.id}
    entry_ids = {e.id for e in read(config, "politics.atom").entries}
    latest = read(config, "politics/comments.atom").entries
    assert len(latest) == 50 and all(item["thr_in-reply-to"]["ref"] in entry_ids for item in latest)

    # At the source: a comment is added, one is edited, one is deleted.
    clock.advance(H)
    blog.comment(long, "Epsilon", "Arrived later.", clock.now - timedelta(minutes=1))
    long.comments[0].text = "First comment, edited."
    deleted = long.comments.pop(4)
    (result,) = poll(config, clock)
    assert (result.new_comments, result.changed_comments) == (1, 2)
    assert result.describe() == "moa: unchanged (304), 1 new comment, 2 comments changed"
    stored = thread_of(config, blog.post_url(long))
    assert len(stored) == 121
    # Typepad renumbers the comments after a deleted one; the stored numbers follow.
    assert [c.number for c in stored if not c.gone_at] == list(range(1, 121))
    by_author_text = {c.key: c for c in stored}
    gone = by_author_text[f"comment-{blog.comment_anchor(deleted)}"]
    assert gone.gone_at == clock.now and gone.author == deleted.author
    assert [c for c in stored if c.gone_at] == [gone]
    assert stored[0].content == "<p>First comment, edited.</p>"
    publish(config)
    thread = comment_feed(config, "politics", entry, "atom")
    assert thread.entries[-1].author == "Epsilon"
    assert "edited" in thread.entries[0].content[0].value
    # The gone comment is still republished (aggregator keeps what the blog lost).
    assert deleted.text in " ".join(item.content[0].value for item in thread.entries)
    again = next(e for e in read(config, "politics.atom").entries if e.link == entry.link)
    assert (again.id, again.updated, again.published) == (
        long_atom.id,
        long_atom.updated,
        long_atom.published,
    )
    assert again.thr_total == str(len(expected) + 1)


# -- WordPress pages, site-wide feeds, gaps -----------------------------------------------------

PAGE_CONFIG = """
sources:
  - name: wp
    url: {url}
    comments_page: wordpress
    timezone: Europe/Berlin
outputs:
  - name: all
"""


def test_wordpress_threaded_page_gives_parent_links(
    blogs: Callable[..., Blog], write_yaml_config: Callable[[str], AppConfig], clock: Clock
) -> None:
    blog = blogs("/wp", "wordpress", comment_feeds=False, timezone="Europe/Berlin")
    post = blog.add_post("threaded", "Threaded", START - 2 * D)
    alice = blog.comment(post, "Alice", "Top.", START - D)
    bob = blog.comment(post, "Bob", "Another top.", START - D + H)
    carol = blog.comment(post, "Carol", "Reply to Alice.", START - D + 2 * H, parent=alice)
    blog.comment(post, "Dave", "Reply to Carol.", START - D + 3 * H, parent=carol)
    blog.comment(post, "Erin", "Reply to Bob.", START - D + 4 * H, parent=bob)
    config = write_yaml_config(PAGE_CONFIG.format(url=blog.origin + "/wp/feed/"))

    (result,) = poll(config, clock)
    assert result.new_comments == 5
    stored = thread_of(config, blog.post_url(post))
    # Page order is thread order: each reply under its parent.
    assert [c.author for c in stored] == ["Alice", "Carol", "Dave", "Bob", "Erin"]
    at = {c.author: c.at for c in post.comments}
    assert [c.published_at for c in stored] == [at[c.author or ""] for c in stored]
    publish(config)
    entry = entry_for(config, blog.post_url(post))
    thread = comment_feed(config, "all", entry, "atom")
    ids = {item.author: item.id for item in thread.entries}
    parents = {item.author: item["thr_in-reply-to"]["ref"] for item in thread.entries}
    post_id = next(e.id for e in read(config, "all.atom").entries if e.link == entry.link)
    assert parents == {
        "Alice": post_id,
        "Bob": post_id,
        "Carol": ids["Alice"],
        "Dave": ids["Carol"],
        "Erin": ids["Bob"],
    }
    hrefs = {item.author: item["thr_in-reply-to"]["href"] for item in thread.entries}
    assert hrefs["Dave"] == blog.comment_url(post, carol)
    assert [
        item["_aggregator"]["in_reply_to"]
        for item in comment_feed(config, "all", entry, "json")["items"]
    ] == [parents[a] for a in ("Alice", "Carol", "Dave", "Bob", "Erin")]


SITE_FEED_CONFIG = """
sources:
  - name: wp
    url: {url}
    comments_url: {comments_url}
outputs:
  - name: all
"""


@pytest.mark.parametrize("comments_path", ["/wp/comments/feed/", "/wp/comments/feed/atom/"])
def test_site_wide_comment_feed_matches_comments_to_entries(
    comments_path: str,
    blogs: Callable[..., Blog],
    write_yaml_config: Callable[[str], AppConfig],
    clock: Clock,
    httpserver: HTTPServer,
) -> None:
    blog, busy, quiet, short = wordpress_blog(blogs, comment_feeds=False)
    config = write_yaml_config(
        SITE_FEED_CONFIG.format(
            url=blog.origin + "/wp/feed/", comments_url=blog.origin + comments_path
        )
    )
    (result,) = poll(config, clock)
    assert result.new_comments == 6
    assert [c.author for c in thread_of(config, blog.post_url(busy))] == [
        "Alice",
        "Bob",
        "Carol",
        "Dave",
    ]
    assert [c.author for c in thread_of(config, blog.post_url(short))] == ["Erin", "Frank"]
    assert thread_of(config, blog.post_url(quiet)) == []
    if comments_path.endswith("atom/"):  # the Atom feed threads replies (thr:in-reply-to)
        alice, _, carol, _ = thread_of(config, blog.post_url(busy))
        assert carol.parent_public_id == alice.public_id
    # Per-post pages and feeds are not read: the one site-wide feed carries every thread.
    assert {r.path for r, _ in httpserver.log} == {"/wp/feed/", comments_path}

    # A new comment on an old post arrives through the same feed.
    clock.advance(H)
    blog.comment(short, "Grace", "Later.", clock.now - timedelta(minutes=2))
    (result,) = poll(config, clock)
    assert result.new_comments == 1
    assert [c.author for c in thread_of(config, blog.post_url(short))][-1] == "Grace"
    publish(config)
    entry = entry_for(config, blog.post_url(short))
    assert [c.author for c in comment_feed(config, "all", entry, "atom").entries] == [
        "Erin",
        "Frank",
        "Grace",
    ]


def test_gap_in_a_comment_feed_reads_the_page(
    blogs: Callable[..., Blog],
    write_yaml_config: Callable[[str], AppConfig],
    clock: Clock,
    httpserver: HTTPServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # WordPress comment feeds hold the newest 10 comments; the page holds them all.
    blog = blogs("/wp", "wordpress", feed_window=10)
    post = blog.add_post("popular", "Popular", START - 2 * D)
    for n in range(3):
        blog.comment(post, f"Early {n}", f"Early comment {n}.", START - 2 * D + n * H)
    config = write_yaml_config(
        PAGE_CONFIG.format(url=blog.origin + "/wp/feed/").replace("timezone: Europe/Berlin", "")
    )
    poll(config, clock)
    assert len(thread_of(config, blog.post_url(post))) == 3
    assert not requests_to(httpserver.log, blog.post_path(post))  # the feed was enough

    clock.advance(6 * H)
    for n in range(12):  # more than the feed's window since the last read
        blog.comment(
            post, f"Later {n}", f"Later comment {n}.", START + n * 10 * timedelta(minutes=1)
        )
    with caplog.at_level(logging.WARNING, logger="aggregator.comments"):
        (result,) = poll(config, clock)
    assert "skipped comments since the last poll; reading the page" in caplog.text
    assert len(requests_to(httpserver.log, blog.post_path(post))) == 1
    assert result.new_comments == 12
    stored = thread_of(config, blog.post_url(post))
    assert [c.author for c in stored] == [c.author for c in post.comments]
    assert len({c.key for c in stored}) == 15
    # The page numbered the comments it showed; the feed's copies kept those numbers.
    assert [c.number for c in stored if c.author.startswith("Later")] == list(range(4, 16))


def test_gap_without_a_page_is_logged(
    blogs: Callable[..., Blog],
    write_yaml_config: Callable[[str], AppConfig],
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    blog = blogs("/wp", "wordpress", feed_window=10)
    post = blog.add_post("popular", "Popular", START - 2 * D)
    blog.comment(post, "Early", "Early comment.", START - 2 * D)
    config = write_yaml_config(WORDPRESS_CONFIG.format(url=blog.origin + "/wp/feed/"))
    poll(config, clock)
    clock.advance(6 * H)
    for n in range(12):
        blog.comment(post, f"Later {n}", "Later.", START + n * timedelta(minutes=10))
    with caplog.at_level(logging.WARNING, logger="aggregator.comments"):
        (result,) = poll(config, clock)
    assert "skipped comments since the last poll" in caplog.text
    assert "reading the page" not in caplog.text
    assert result.new_comments == 10  # what the feed still held


# -- the thread schedule ------------------------------------------------------------------------


def thread_row(config: AppConfig, link: str) -> dict[str, Any]:
    """The entry's stored thread state, straight from the SQLite file."""
    connection = sqlite3.connect(config.database)
    connection.row_factory = sqlite3.Row
    try:
        row = connection.execute("SELECT * FROM entries WHERE link = ?", (link,)).fetchone()
        return dict(row)
    finally:
        connection.close()


def test_thread_schedule_tapers_and_stops_after_the_quiet_period(
    blogs: Callable[..., Blog],
    write_yaml_config: Callable[[str], AppConfig],
    clock: Clock,
    httpserver: HTTPServer,
) -> None:
    blog = blogs("/tp", "typepad")
    post = blog.add_post("slow", "Slow", START - D)
    blog.comment(post, "Alpha", "One.", START - H)
    config = write_yaml_config(TYPEPAD_CONFIG.format(url=blog.origin + "/tp/index.rdf"))
    page = blog.post_path(post)

    def reads_after(delta: timedelta, *, manual: bool = False) -> int:
        """Move the clock, run one daemon poll, and return how many times the page was read."""
        clock.advance(delta)
        before = len(requests_to(httpserver.log, page))
        poll(config, clock, manual=manual)
        return len(requests_to(httpserver.log, page)) - before

    def next_read() -> timedelta:
        row = thread_row(config, blog.post_url(post))
        return datetime.fromisoformat(row["comments_next_poll_at"]) - clock.now

    assert reads_after(timedelta(0)) == 1
    assert next_read() == timedelta(minutes=15)  # a comment an hour ago: the shortest interval
    assert reads_after(timedelta(minutes=10)) == 0  # not due yet
    assert reads_after(timedelta(0), manual=True) == 1  # `aggregator poll` reads it anyway
    assert reads_after(timedelta(minutes=15)) == 1
    assert reads_after(2 * D) == 1
    # An eighth of the time since its latest comment (first seen at START, the first read).
    assert abs(next_read() - (2 * D + timedelta(minutes=25)) / 8) < timedelta(seconds=1)
    assert reads_after(3 * H) == 0
    assert reads_after(4 * H) == 1
    # New comments keep a thread followed: quiet is counted from the latest one.
    clock.advance(2 * D)
    blog.comment(post, "Beta", "Two.", clock.now - H)
    assert reads_after(timedelta(0), manual=True) == 1
    seen_at = clock.now
    assert next_read() == timedelta(minutes=15)
    intervals = []
    while not thread_row(config, blog.post_url(post))["comments_stopped"]:
        clock.advance(next_read())
        assert reads_after(timedelta(0)) == 1
        if not thread_row(config, blog.post_url(post))["comments_stopped"]:
            intervals.append(next_read())
    # Tapering, at most a day apart; the last read is placed at the end of the quiet period.
    assert intervals[:-1] == sorted(intervals[:-1]) and max(intervals) <= D
    assert intervals[0] == timedelta(minutes=15) and intervals[-2] == D
    assert clock.now == seen_at + 14 * D  # comments_quiet_after from the latest comment
    assert thread_row(config, blog.post_url(post))["comments_next_poll_at"] is None
    assert reads_after(30 * D) == 0
    assert reads_after(timedelta(0), manual=True) == 0  # a stopped thread is not followed


# -- politeness with comment feeds --------------------------------------------------------------


def test_comment_feed_404_is_not_an_error_and_stops_being_fetched(
    blogs: Callable[..., Blog],
    write_yaml_config: Callable[[str], AppConfig],
    clock: Clock,
    httpserver: HTTPServer,
) -> None:
    blog, busy, quiet, short = wordpress_blog(blogs)
    closed = blog.comments_feed_path(short)
    blog.status[closed] = 404  # comments closed: WordPress answers the post's feed with 404
    config = write_yaml_config(WORDPRESS_CONFIG.format(url=blog.origin + "/wp/feed/"))

    def polled(delta: timedelta) -> tuple[PollResult, int]:
        clock.advance(delta)
        before = len(requests_to(httpserver.log, closed))
        (result,) = poll(config, clock, manual=False)
        return result, len(requests_to(httpserver.log, closed)) - before

    result, fetched = polled(timedelta(0))
    assert fetched == 1 and result.ok and result.warning is None and result.new_comments == 4
    result, fetched = polled(H)
    assert fetched == 0 and result.warning is None
    result, fetched = polled(D)  # tried once more a day later, then left alone
    assert fetched == 1 and result.warning is None
    assert thread_row(config, blog.post_url(short))["comments_stopped"] == 1
    assert "HTTP 404" in thread_row(config, blog.post_url(short))["comments_error"]
    for _ in range(3):
        assert polled(D)[1] == 0
    # The post's count moves in the main feed: one more try, then quiet again.
    blog.hints[short.id] = 3
    assert polled(H)[1] == 1
    assert polled(D)[1] == 0


def test_thread_with_zero_comments_is_fetched_only_once_its_count_moves(
    blogs: Callable[..., Blog],
    write_yaml_config: Callable[[str], AppConfig],
    clock: Clock,
    httpserver: HTTPServer,
) -> None:
    blog, busy, quiet, short = wordpress_blog(blogs)
    config = write_yaml_config(WORDPRESS_CONFIG.format(url=blog.origin + "/wp/feed/atom/"))
    empty = blog.comments_feed_path(quiet, "atom")
    poll(config, clock)  # by hand
    clock.advance(H)
    poll(config, clock, manual=False)
    assert not requests_to(httpserver.log, empty)
    assert thread_row(config, blog.post_url(quiet))["comments_next_poll_at"] is not None

    blog.comment(quiet, "Heidi", "Breaking the silence.", clock.now - timedelta(minutes=5))
    clock.advance(H)
    (result,) = poll(config, clock, manual=False)
    assert len(requests_to(httpserver.log, empty)) == 1 and result.new_comments == 1


def test_comment_feed_split_into_pages_is_read_to_the_end_once(
    blogs: Callable[..., Blog],
    write_yaml_config: Callable[[str], AppConfig],
    clock: Clock,
    httpserver: HTTPServer,
) -> None:
    blog = blogs("/wp", "wordpress", page_size=5)  # Atom comment feed pages linked by rel=next
    post = blog.add_post("paged", "Paged", START - 3 * D)
    for n in range(12):
        blog.comment(post, f"Reader {n}", f"Comment {n}.", START - 2 * D + n * H)
    config = write_yaml_config(WORDPRESS_CONFIG.format(url=blog.origin + "/wp/feed/atom/"))
    feed = blog.comments_feed_path(post, "atom")

    poll(config, clock)
    assert len(requests_to(httpserver.log, feed)) == 3
    assert [c.author for c in thread_of(config, blog.post_url(post))] == [
        f"Reader {n}" for n in range(12)
    ]
    clock.advance(H)
    blog.comment(post, "Reader 12", "Comment 12.", clock.now - timedelta(minutes=1))
    (result,) = poll(config, clock)
    assert result.new_comments == 1
    # Page 1 held the new comment, page 2 only stored ones: no need to read page 3.
    assert len(requests_to(httpserver.log, feed)) == 3 + 2


def test_movable_type_comment_feeds(
    blogs: Callable[..., Blog], write_yaml_config: Callable[[str], AppConfig], clock: Clock
) -> None:
    blog = blogs("/mt", "movabletype")
    post = blog.add_post("an-entry", "An Entry", START - 2 * D)
    blog.comment(post, "Ingrid", "From MT.", START - D)
    blog.comment(post, "Jon", "Me too.", START - D + H)
    config = write_yaml_config(WORDPRESS_CONFIG.format(url=blog.origin + "/mt/index.xml"))
    (result,) = poll(config, clock)
    assert result.new_comments == 2
    stored = thread_of(config, blog.post_url(post))
    assert [(c.author, c.key, c.published_at) for c in stored] == [
        (c.author, f"comment-{c.id}", c.at) for c in post.comments
    ]


def test_site_wide_feed_is_read_politely_and_its_gaps_send_us_to_the_pages(
    blogs: Callable[..., Blog],
    write_yaml_config: Callable[[str], AppConfig],
    clock: Clock,
    httpserver: HTTPServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    blog, busy, quiet, short = wordpress_blog(blogs, comment_feeds=False, feed_window=10)
    site = "/wp/comments/feed/"
    config = write_yaml_config(
        SITE_FEED_CONFIG.format(
            url=blog.origin + "/wp/feed/", comments_url=blog.origin + site
        ).replace("    comments_url:", "    comments_page: wordpress\n    comments_url:")
    )
    poll(config, clock, manual=False)
    assert len(requests_to(httpserver.log, site)) == 1
    assert len(thread_of(config, blog.post_url(busy))) == 4

    clock.advance(timedelta(minutes=5))
    poll(config, clock, manual=False)
    assert len(requests_to(httpserver.log, site)) == 1  # not twice within 15 minutes

    clock.advance(3 * D)
    poll(config, clock, manual=False)
    assert len(requests_to(httpserver.log, site)) == 2
    clock.advance(timedelta(minutes=20))
    next_read = datetime.fromisoformat(
        thread_row(config, blog.post_url(busy))["comments_next_poll_at"]
    )
    assert next_read > clock.now + H  # the thread has cooled: its page is not due by schedule
    for n in range(12):  # more than the site-wide feed's window of 10
        blog.comment(busy, f"Later {n}", "Later.", clock.now - timedelta(minutes=30 - n))
    pages_before = len(requests_to(httpserver.log, blog.post_path(busy)))
    with caplog.at_level(logging.WARNING, logger="aggregator.comments"):
        (result,) = poll(config, clock, manual=False)
    assert "site-wide comment feed skipped comments" in caplog.text
    assert len(requests_to(httpserver.log, site)) == 3
    assert len(requests_to(httpserver.log, blog.post_path(busy))) == pages_before + 1
    assert result.new_comments == 12
    assert len(thread_of(config, blog.post_url(busy))) == 16


def test_count_in_the_main_feed_decides_when_a_comment_feed_is_read(
    blogs: Callable[..., Blog],
    write_yaml_config: Callable[[str], AppConfig],
    clock: Clock,
    httpserver: HTTPServer,
) -> None:
    blog, busy, quiet, short = wordpress_blog(blogs)
    config = write_yaml_config(WORDPRESS_CONFIG.format(url=blog.origin + "/wp/feed/"))
    feed = blog.comments_feed_path(busy)
    poll(config, clock, manual=False)
    assert len(requests_to(httpserver.log, feed)) == 1
    for _ in range(6):  # due now and then, but slash:comments has not moved: no request
        clock.advance(12 * H)
        poll(config, clock, manual=False)
    assert len(requests_to(httpserver.log, feed)) == 1
    next_read = datetime.fromisoformat(
        thread_row(config, blog.post_url(busy))["comments_next_poll_at"]
    )
    assert next_read > clock.now + H  # the thread has cooled

    blog.comment(busy, "Ivan", "News.", clock.now - timedelta(minutes=3))
    clock.advance(timedelta(minutes=20))
    (result,) = poll(config, clock, manual=False)  # the count moved: read now, not when due
    assert len(requests_to(httpserver.log, feed)) == 2 and result.new_comments == 1


def test_every_page_of_a_paginated_thread_is_read_in_order(
    blogs: Callable[..., Blog],
    write_yaml_config: Callable[[str], AppConfig],
    clock: Clock,
    httpserver: HTTPServer,
) -> None:
    blog = blogs("/wp", "wordpress", comment_feeds=False)
    post = blog.add_post("long", "Long", START - 2 * D)
    for n in range(5):
        blog.comment(post, f"Reader {n}", f"Comment {n}.", START - D + n * H)
    config = write_yaml_config(PAGE_CONFIG.format(url=blog.origin + "/wp/feed/"))
    poll(config, clock)
    assert len(thread_of(config, blog.post_url(post))) == 5

    # The blog now splits its comments into pages of 2; its address shows the last page.
    blog.page_shows = 2
    blog.comment(post, "Reader 5", "Comment 5.", START - timedelta(minutes=5))
    clock.advance(H)
    (result,) = poll(config, clock)
    stored = thread_of(config, blog.post_url(post))
    assert result.new_comments == 1 and not [c for c in stored if c.gone_at]
    assert [c.author for c in stored] == [f"Reader {n}" for n in range(6)]
    assert [c.number for c in stored] == [1, 2, 3, 4, 5, 6]  # positions in the whole thread
    for number in (1, 2):
        assert len(requests_to(httpserver.log, f"/wp/long/comment-page-{number}/")) == 1

    # Every page was read: a comment missing from all of them is gone.
    del post.comments[1]
    clock.advance(H)
    poll(config, clock)
    assert [c.author for c in thread_of(config, blog.post_url(post)) if c.gone_at] == ["Reader 1"]


def test_a_page_of_comments_that_cannot_be_read_marks_none_gone(
    blogs: Callable[..., Blog], write_yaml_config: Callable[[str], AppConfig], clock: Clock
) -> None:
    blog = blogs("/wp", "wordpress", comment_feeds=False)
    post = blog.add_post("long", "Long", START - 2 * D)
    for n in range(5):
        blog.comment(post, f"Reader {n}", f"Comment {n}.", START - D + n * H)
    config = write_yaml_config(PAGE_CONFIG.format(url=blog.origin + "/wp/feed/"))
    poll(config, clock)
    assert len(thread_of(config, blog.post_url(post))) == 5

    blog.page_shows = 3  # the blog now splits its comments, and its first page fails
    blog.status["/wp/long/comment-page-1/"] = 500
    blog.comment(post, "Reader 5", "Comment 5.", START - timedelta(minutes=5))
    clock.advance(H)
    (result,) = poll(config, clock)
    stored = thread_of(config, blog.post_url(post))
    assert result.new_comments == 1 and len(stored) == 6
    assert not [c for c in stored if c.gone_at]
    # A position on one page of comments is not a position in the thread: numbers are kept.
    assert [c.number for c in stored] == [1, 2, 3, 4, 5, None]

    # On a page that lists every comment, a missing one is gone.
    blog.page_shows = None
    del post.comments[0]
    clock.advance(H)
    poll(config, clock)
    assert [c.author for c in thread_of(config, blog.post_url(post)) if c.gone_at] == ["Reader 0"]


def test_a_page_loading_its_comments_by_script_says_so_in_the_thread_and_status(
    blogs: Callable[..., Blog],
    write_yaml_config: Callable[[str], AppConfig],
    clock: Clock,
    tmp_path: Path,
) -> None:
    blog = blogs("/wp", "wordpress", comment_feeds=False)
    post = blog.add_post("disqussed", "Disqussed", START - 2 * D)
    blog.page_extra = (
        '<div id="disqus_thread"></div><script>var disqus_shortname = "x";'
        "var s = document.createElement('script'); s.src = 'https://x.disqus.com/embed.js';"
        "</script>"
    )
    config = write_yaml_config(
        PAGE_CONFIG.format(url=blog.origin + "/wp/feed/").replace("wordpress", "auto")
    )
    poll(config, clock)
    # The embed code names the setting that would follow them (issue 16).
    note = (
        "comments load by script (Disqus); none in the page; to follow them, set "
        "comment_system: {type: disqus, forum: x} (also needs api_key)"
    )
    assert thread_row(config, blog.post_url(post))["comments_error"] == note
    assert thread_of(config, blog.post_url(post)) == []

    shown = CliRunner().invoke(main, ["--config", str(tmp_path / "aggregator.yaml"), "status"])
    assert shown.exit_code == 0 and f"comments of 1 post(s): {note}" in shown.output
    data = CliRunner().invoke(
        main, ["--config", str(tmp_path / "aggregator.yaml"), "status", "--json"]
    )
    (row,) = json.loads(data.output)
    assert row["comments_note"] == note and row["comments_note_count"] == 1

    # Once the comments are in the page, the note goes.
    blog.page_extra = ""
    blog.comment(post, "Reader", "Now native.", START - D)
    clock.advance(H)
    poll(config, clock)
    assert thread_row(config, blog.post_url(post))["comments_error"] is None


@pytest.mark.parametrize("variant", sorted(FEED_VARIANTS))
def test_killfiled_authors_are_absent_from_every_republished_feed(
    variant: str,
    blogs: Callable[..., Blog],
    write_yaml_config: Callable[[str], AppConfig],
    clock: Clock,
) -> None:
    blog, busy, quiet, short = wordpress_blog(blogs)
    config = write_yaml_config(
        f"""
defaults:
  comments: true
  killfile: ["alice"]
sources:
  - name: wp
    url: {blog.origin + FEED_VARIANTS[variant]}
    killfile: ["/^Car/"]
outputs:
  - name: all
    killfile: ["Frank"]
    comments_exclude: ["\\\\bbold\\\\b"]
"""
    )
    poll(config, clock)
    publish(config)
    busy_entry = entry_for(config, blog.post_url(busy))
    short_entry = entry_for(config, blog.post_url(short))
    feeds = [f"all/comments.{fmt}" for fmt in ("atom", "rss", "json")] + [
        f"all/{entry.public_id}/comments.{fmt}"
        for entry in (busy_entry, short_entry)
        for fmt in ("atom", "rss", "json")
    ]
    seen: set[str] = set()
    for path in feeds:
        document = read(config, path)
        if path.endswith(".json"):
            authors = [item["authors"][0]["name"] for item in document["items"]]
        else:
            authors = [item.author for item in document.entries]
        seen.update(authors)
    assert seen == {"Dave", "Erin"}  # Alice, Carol, Frank killfiled; Bob's comment excluded
    atom = {e.link: e for e in read(config, "all.atom").entries}
    assert (atom[busy_entry.link].thr_total, atom[short_entry.link].thr_total) == ("1", "1")
    assert len(thread_of(config, blog.post_url(busy))) == 4  # all still stored


def test_min_comments_counts_only_what_a_killfile_of_names_leaves(
    blogs: Callable[..., Blog], write_yaml_config: Callable[[str], AppConfig], clock: Clock
) -> None:
    # A killfile of plain names only (no /patterns/) once left min_comments counting every
    # stored comment: "Short" has two comments, one of them Frank's, so it has one to show.
    blog, busy, _quiet, short = wordpress_blog(blogs)
    config = write_yaml_config(
        f"""
defaults:
  comments: true
sources:
  - name: wp
    url: {blog.origin + FEED_VARIANTS["rss"]}
outputs:
  - name: talked
    min_comments: 2
    killfile: ["Frank"]
"""
    )
    poll(config, clock)
    publish(config)
    links = [item["url"] for item in read(config, "talked.json")["items"]]
    assert links == [blog.post_url(busy)]
    assert blog.post_url(short) not in links


@pytest.mark.parametrize("style", ["wordpress", "typepad"])
def test_auto_page_detection_in_a_poll(
    style: str,
    blogs: Callable[..., Blog],
    write_yaml_config: Callable[[str], AppConfig],
    clock: Clock,
) -> None:
    """comments_page: auto (issue 14) reads a served blog's pages like the matching preset."""
    blog = blogs("/auto", style, comment_feeds=False, timezone="Europe/Berlin")
    feed = "/auto/feed/" if style == "wordpress" else "/auto/index.rdf"
    post = blog.add_post("auto", "Auto", START - 2 * D)
    alice = blog.comment(post, "Alice", "Top.", START - D)
    blog.comment(post, "Bob", "Second.", START - D + H)
    config = write_yaml_config(
        PAGE_CONFIG.format(url=blog.origin + feed).replace(
            "comments_page: wordpress", "comments_page: auto"
        )
    )
    assert alice.at is not None

    (result,) = poll(config, clock)
    assert result.new_comments == 2
    stored = thread_of(config, blog.post_url(post))
    at = {c.author: c.at for c in post.comments}
    assert [(c.author, c.published_at) for c in stored] == [
        ("Alice", at["Alice"]),
        ("Bob", at["Bob"]),
    ]
