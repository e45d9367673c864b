"""Issue 13, items 1-6: entry identity (keys as written, shared links told apart, upgrades keep
identity), same-source dedupe, empty URL values, comment keys of both comment-feed paths."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.models import StoredEntry
from aggregator.parse.comment_feed import parse_comment_feed
from aggregator.parse.feed import parse_feed
from aggregator.select.dedupe import dedupe
from aggregator.storage import Storage

NOW = datetime(2024, 1, 2, tzinfo=UTC)
PREVIOUS = Path(__file__).parent / "data" / "previous"


def rss(items: str, link: str = "https://news.example/") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"'
        ' xmlns:wfw="http://wellformedweb.org/CommentAPI/"><channel><title>T</title>'
        f"<link>{link}</link><description>d</description>{items}</channel></rss>"
    ).encode()


HOME_ITEMS = "".join(
    f"<item><title>Story {n}</title><link>https://news.example/</link>"
    f"<description>Body {n}</description><pubDate>Mon, 01 Jan 2024 {n:02d}:00:00 GMT</pubDate>"
    "</item>"
    for n in range(1, 8)
)


def store(path: Path, document: bytes, url: str = "https://feeds.example/news.xml") -> object:
    feed = parse_feed(document, {}, url, now=NOW)
    with Storage(path) as storage:
        storage.sync_sources([("news", url)], NOW)
        source = storage.get_source("news")
        with storage.transaction():
            return storage.store_entries(source, feed.entries, NOW)


def rows(path: Path) -> dict[str, str]:
    with Storage(path) as storage:
        return dict(storage.db.execute("SELECT key, public_id FROM entries").fetchall())


# -- 1. items without a guid that share a link ---------------------------------------------------
def test_items_sharing_a_link_are_distinct_entries(tmp_path: Path) -> None:
    result = store(tmp_path / "a.db", rss(HOME_ITEMS))
    assert result.new == 7  # type: ignore[attr-defined]
    assert len(rows(tmp_path / "a.db")) == 7


def test_podcast_episodes_are_told_apart_by_enclosure_and_keep_it_across_title_edits() -> None:
    def episodes(title: str) -> bytes:
        return rss(
            "".join(
                f"<item><title>{title} {n}</title><link>https://pod.example/</link>"
                f'<enclosure url="https://pod.example/{n}.mp3" length="1" type="audio/mpeg"/>'
                "</item>"
                for n in range(3)
            )
        )

    first = [e.key for e in parse_feed(episodes("Episode"), {}, "", now=NOW).entries]
    edited = [e.key for e in parse_feed(episodes("Ep."), {}, "", now=NOW).entries]
    assert len(set(first)) == 3
    assert first == edited


def test_an_entry_with_a_unique_link_keeps_its_identity_when_edited(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    store(db, rss("<item><title>Old</title><link>https://news.example/1</link></item>"))
    result = store(db, rss("<item><title>New</title><link>https://news.example/1</link></item>"))
    assert (result.new, result.updated) == (0, 1)  # type: ignore[attr-defined]


def test_an_entry_keeps_its_row_when_its_link_becomes_shared(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    alone = "<item><title>First</title><link>https://news.example/</link></item>"
    store(db, rss(alone))
    before = rows(db)
    later = "<item><title>Second</title><link>https://news.example/</link></item>" + alone
    result = store(db, rss(later))
    assert (result.new, result.unchanged) == (1, 1)  # type: ignore[attr-defined]
    assert set(before.values()) <= set(rows(db).values())


def test_the_same_item_twice_is_one_entry() -> None:
    item = "<item><title>Same</title><link>https://news.example/</link></item>"
    feed = parse_feed(rss(item * 2), {}, "", now=NOW)
    assert len({e.key for e in feed.entries}) == 1


# -- 2. keys do not depend on the URL the document came from -------------------------------------
def test_relative_guids_and_ids_give_the_same_keys_at_every_url() -> None:
    document = rss(
        "<item><title>a</title><guid>12345</guid></item>"
        "<item><title>b</title><guid>t3_42tizy</guid><link>/r/x/b</link></item>"
        "<item><title>c</title><link>/only/a/link</link></item>"
    )
    atom = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>feed</id>'
        b"<updated>2024-01-01T00:00:00Z</updated><entry><id>t3_glvkc5</id><title>x</title>"
        b"<updated>2024-01-01T00:00:00Z</updated></entry></feed>"
    )
    for doc in (document, atom):
        one = parse_feed(doc, {}, "https://www.reddit.example/r/x/.rss", now=NOW)
        two = parse_feed(doc, {}, "http://old.reddit.example/feed", now=NOW)
        assert [e.key for e in one.entries] == [e.key for e in two.entries]
    keys = [e.key for e in parse_feed(document, {}, "https://a.example/f", now=NOW).entries]
    assert keys == ["12345", "t3_42tizy", "/only/a/link"]
    # A guid standing for the link still gives an absolute link.
    assert parse_feed(document, {}, "https://a.example/f", now=NOW).entries[0].link == (
        "https://a.example/12345"
    )


@pytest.mark.parametrize("fast", [True, False])
def test_both_main_feed_paths_give_the_same_keys(fast: bool) -> None:
    document = rss("<item><title>a</title><guid>12345</guid></item>")
    assert [
        e.key for e in parse_feed(document, {}, "https://a.example/f", now=NOW, fast=fast).entries
    ] == ["12345"]


# -- 3. upgrades keep identity --------------------------------------------------------------------
def test_a_database_of_the_previous_version_keeps_its_entries(tmp_path: Path) -> None:
    """before-issue-13.sqlite was written by the code of commit 2a4e3fd from shared-links.xml
    fetched at https://feeds.example/news.xml: numeric guids resolved against that URL, the two
    items linking to the home page merged into one row."""
    db = tmp_path / "old.sqlite"
    shutil.copy(PREVIOUS / "before-issue-13.sqlite", db)
    before = rows(db)
    assert "https://feeds.example/101" in before  # the old rule, as stored
    result = store(db, (PREVIOUS / "shared-links.xml").read_bytes())
    after = rows(db)
    # The stored four keep their rows and public ids; only the item the old rule had merged
    # into another is new.
    assert result.new == 1  # type: ignore[attr-defined]
    assert set(before.values()) <= set(after.values())
    assert {"101", "102", "https://news.example/unique"} <= set(after)
    assert after["101"] == before["https://feeds.example/101"]
    # The merged row was the first item's (the previous version kept the first copy).
    with Storage(db) as storage:
        kept = storage.db.execute(
            "SELECT title FROM entries WHERE public_id = ?", (before["https://news.example/"],)
        ).fetchone()[0]
    assert kept == "Home one"
    # And a second poll changes nothing.
    again = store(db, (PREVIOUS / "shared-links.xml").read_bytes())
    assert (again.new, again.updated) == (0, 0)  # type: ignore[attr-defined]


# -- 4. dedupe folds copies across sources only ---------------------------------------------------
def stored(source: str, number: int, link: str, guid: str | None = None) -> StoredEntry:
    return StoredEntry(
        id=number, public_id=f"{source}{number}", source_name=source, source_title=None,
        source_url=f"https://{source}.example/feed", source_link=None, key=f"k{number}",
        title=f"Episode {number}", link=link, author=None, summary=None, content=None,
        published_at=datetime(2024, 1, 1, 0, number, tzinfo=UTC), updated_at=None,
        first_seen_at=NOW, categories=(), enclosures=(), guid=guid,
        sort_at=datetime(2024, 1, 1, 0, number, tzinfo=UTC),
    )  # fmt: skip


def test_entries_of_one_source_are_never_copies() -> None:
    podcast = [stored("pod", n, "https://pod.example/") for n in range(10)]
    fragments = [stored("blog", 10 + n, f"https://blog.example/page#post-{n}") for n in range(5)]
    shared_guid = [
        stored("g", 20 + n, f"https://g.example/{n}", "https://g.example/") for n in range(3)
    ]
    kept = dedupe(podcast + fragments + shared_guid)
    assert len(kept) == 18
    # Across sources a copy is still folded, into one group per source's entry at most.
    copy = stored("other", 30, "https://pod.example/")
    result = dedupe([*podcast[:2], copy])
    assert len(result) == 2
    assert [d.source_name for d in result[0].duplicates] == ["other"]


# -- 5. empty URL values are absent ---------------------------------------------------------------
EMPTY_LINKS = rss(
    "".join(
        f"<item><title>p{n}</title><link>https://news.example/{n}</link><guid>g{n}</guid>"
        "<wfw:commentRss></wfw:commentRss><comments/></item>"
        for n in range(3)
    )
    + "<item><title>q</title><link>  </link><guid>q</guid><wfw:commentRss> </wfw:commentRss></item>"
)


@pytest.mark.parametrize("fast", [True, False])
def test_empty_comment_links_are_no_links(fast: bool) -> None:
    feed = parse_feed(EMPTY_LINKS, {}, "https://feeds.example/news.xml", now=NOW, fast=fast)
    assert [(e.comments_feed_url, e.comments_page_url) for e in feed.entries] == [(None, None)] * 4
    assert feed.entries[3].link is None


def test_a_comment_feed_that_is_the_feed_itself_is_dropped() -> None:
    document = rss(
        "<item><title>p</title><link>https://news.example/1</link>"
        "<wfw:commentRss>https://feeds.example/news.xml</wfw:commentRss></item>"
    )
    feed = parse_feed(document, {}, "https://feeds.example/news.xml", now=NOW)
    assert feed.entries[0].comments_feed_url is None


# -- 6. both comment-feed paths give the same keys ------------------------------------------------
def test_both_comment_feed_paths_give_the_same_keys() -> None:
    document = (
        b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        b'<title>c</title><link href="https://www.reddit.example/r/x/comments/1/"/>'
        + b"".join(
            f"<entry><id>t3_glvkc{n}</id><title>By: u{n}</title>"
            f'<content type="html">hi {n}</content>'
            f"<updated>2024-01-01T0{n}:00:00+00:00</updated></entry>".encode()
            for n in range(3)
        )
        + b"</feed>"
    )
    url = "https://www.reddit.example/r/x/comments/1/.rss"
    fast = [c.key for c in parse_comment_feed(document, {}, url, now=NOW, fast=True).comments]
    slow = [c.key for c in parse_comment_feed(document, {}, url, now=NOW, fast=False).comments]
    assert fast == slow == ["t3_glvkc0", "t3_glvkc1", "t3_glvkc2"]
