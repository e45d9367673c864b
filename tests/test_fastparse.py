"""The comment-feed fast path (aggregator.parse.fastparse) must read exactly what feedparser reads.

Every feed file of the project's fixtures and of feedparser's own corpus (``tests/corpora.py``:
skipped without it, failed under ``CI=true``) goes through
``parse_comment_feed`` both ways; wherever the fast path accepts a document, the comments,
their order and the next-page link must be equal. Plain comment feeds of the common shapes
must be accepted (or the fast path would never be used), and unusual ones declined.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from corpora import FEEDPARSER_TESTS, corpus

from aggregator.parse import comment_feed
from aggregator.parse.fastparse import read_comment_feed

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 27, tzinfo=UTC)
URL = "https://blog.example.org/2026/11/post/feed/"

WORDPRESS_RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
  xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">
<channel>
  <title>Comments on: A post</title>
  <atom:link href="https://blog.example.org/2026/11/post/feed/" rel="self" type="application/rss+xml"/>
  <link>https://blog.example.org/2026/11/post/</link>
  <description>Talk</description>
  <item>
    <title>By: Eugene</title>
    <link>https://blog.example.org/2026/11/post/#comment-101</link>
    <dc:creator><![CDATA[Eugene]]></dc:creator>
    <pubDate>Fri, 22 Jun 2018 11:15:57 +0000</pubDate>
    <guid isPermaLink="false">https://blog.example.org/?p=3#comment-101</guid>
    <description><![CDATA[Short &amp; sweet]]></description>
    <content:encoded><![CDATA[<p>Short &amp; <b>sweet</b> <a href="/x">link</a></p>]]></content:encoded>
  </item>
  <item>
    <title>By: Ann &amp; Bob</title>
    <link>https://blog.example.org/2026/11/post/#comment-102</link>
    <dc:creator>Ann &amp; Bob</dc:creator>
    <pubDate>Fri, 22 Jun 2018 07:15:57 EST</pubDate>
    <guid isPermaLink="false">https://blog.example.org/?p=3#comment-102</guid>
    <description>&lt;p&gt;Escaped &lt;i&gt;markup&lt;/i&gt;&lt;script&gt;x()&lt;/script&gt;&lt;/p&gt;</description>
  </item>
</channel>
</rss>
"""

WORDPRESS_ATOM = b"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:thr="http://purl.org/syndication/thread/1.0">
  <title>Comments on: A post</title>
  <link rel="alternate" type="text/html" href="https://blog.example.org/2026/11/post/"/>
  <link rel="next" href="https://blog.example.org/2026/11/post/feed/atom/?paged=2"/>
  <id>https://blog.example.org/2026/11/post/feed/atom/</id>
  <updated>2026-11-20T10:00:00Z</updated>
  <entry>
    <title>By: Gamma</title>
    <link rel="alternate" href="https://blog.example.org/2026/11/post/#comment-501" type="text/html"/>
    <author><name>Gamma</name><uri>https://gamma.example.com</uri></author>
    <id>https://blog.example.org/?p=9#comment-501</id>
    <updated>2026-11-20T09:15:00Z</updated>
    <published>2026-11-20T09:15:00+02:00</published>
    <thr:in-reply-to ref="https://blog.example.org/?p=9" href="https://blog.example.org/2026/11/post/" type="text/html"/>
    <content type="html">&lt;p&gt;Top level&lt;/p&gt;</content>
  </entry>
  <entry>
    <title>By: Delta</title>
    <link rel="alternate" href="https://blog.example.org/2026/11/post/#comment-502" type="text/html"/>
    <author><name>Delta</name></author>
    <id>https://blog.example.org/?p=9#comment-502</id>
    <updated>2026-11-20T10:02:31Z</updated>
    <published>2026-11-20T10:02:31Z</published>
    <thr:in-reply-to ref="https://blog.example.org/?p=9#comment-501" href="https://blog.example.org/2026/11/post/#comment-501" type="text/html"/>
    <content type="html">&lt;p&gt;A reply&lt;/p&gt;</content>
  </entry>
</feed>
"""

MOVABLE_TYPE = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Comments</title><link>https://mt.example.net/archives/1.html</link>
<description>d</description>
<item><title>Comment from Posted by: Reader</title>
<link>https://mt.example.net/archives/1.html#c1</link><guid isPermaLink="false">c1</guid>
<pubDate>Sun, 03 Mar 2019 11:42:10 -0500</pubDate><description>First!</description></item>
</channel></rss>
"""


def both(content: bytes) -> tuple[object, object]:
    """The comment feed as feedparser reads it, and as the fast path does (None: declined)."""
    if read_comment_feed(content, {}) is None:
        return _read(content, fast=False), None
    return _read(content, fast=False), _read(content, fast=True)


def _read(content: bytes, *, fast: bool) -> object:
    try:
        return comment_feed.parse_comment_feed(content, {}, URL, now=NOW, fast=fast)
    except Exception as error:  # the same failure both ways counts as the same result
        return type(error).__name__


@pytest.mark.parametrize("content", [WORDPRESS_RSS, WORDPRESS_ATOM, MOVABLE_TYPE])
def test_common_comment_feeds_take_the_fast_path_and_read_the_same(content: bytes) -> None:
    reference, fast = both(content)
    assert fast is not None, "the fast path declined a plain comment feed"
    assert fast == reference
    assert len(reference.comments) >= 1  # type: ignore[attr-defined]


def test_the_atom_reply_keeps_its_parent_and_the_next_page() -> None:
    _, fast = both(WORDPRESS_ATOM)
    assert fast is not None
    reply = next(c for c in fast.comments if c.author == "Delta")  # type: ignore[attr-defined]
    assert reply.parent_key == "comment-501"
    assert fast.next_url.endswith("?paged=2")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "content",
    [
        WORDPRESS_RSS.replace(b'encoding="UTF-8"', b'encoding="windows-1252"'),
        WORDPRESS_RSS.replace(b"<rss ", b'<!DOCTYPE rss [<!ENTITY x "y">]>\n<rss ', 1),
        WORDPRESS_ATOM.replace(b"<feed ", b'<feed xml:base="https://elsewhere.example/" ', 1),
        WORDPRESS_RSS.replace(b"Short &amp; sweet", "don\u0092t".encode()),
        WORDPRESS_RSS.replace(b"#comment-101</link>", b"#comment-101</link><author>a@b.c</author>"),
        WORDPRESS_ATOM.replace(b'type="html">&lt;p&gt;Top', b'type="xhtml">&lt;p&gt;Top'),
        WORDPRESS_RSS.replace(b"Fri, 22 Jun 2018 11:15:57 +0000", b"22/06/2018"),
        WORDPRESS_RSS.replace(b"https://blog.example.org/2026/11/post/#comment-101", b"#c101"),
        b"<html><body>not a feed</body></html>",
        b"",
    ],
    ids=[
        "cp1252",
        "doctype",
        "xml-base",
        "c1-controls",
        "rss-author",
        "xhtml",
        "odd-date",
        "relative-link",
        "html",
        "empty",
    ],
)
def test_unusual_documents_are_left_to_feedparser(content: bytes) -> None:
    assert read_comment_feed(content, {}) is None


def _feed_files() -> list[Path]:
    files = [
        path
        for path in (ROOT / "tests" / "data").rglob("*")
        if path.suffix in (".xml", ".rss", ".atom", ".rdf")
    ]
    return sorted(files)


def _assert_same_where_accepted(files: list[Path]) -> int:
    """Both paths agree on each of ``files`` the fast path accepts; how many it accepted."""
    accepted = 0
    for path in files:
        reference, fast = both(path.read_bytes())
        if fast is None:
            continue
        accepted += 1
        assert fast == reference, path
    return accepted


def test_every_fixture_reads_the_same_wherever_the_fast_path_accepts() -> None:
    files = _feed_files()
    accepted = _assert_same_where_accepted(files)
    assert accepted >= 10, f"only {accepted} of {len(files)} fixtures took the fast path"


@pytest.mark.slow  # all of feedparser's corpus, both ways
def test_feedparsers_corpus_reads_the_same_wherever_the_fast_path_accepts() -> None:
    files = sorted(corpus(FEEDPARSER_TESTS).rglob("*.xml"))
    accepted = _assert_same_where_accepted(files)
    print(f"comment fast path: {accepted} of {len(files)} corpus files accepted")
    assert accepted >= 5, f"only {accepted} of {len(files)} corpus files took the fast path"
