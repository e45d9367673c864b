"""Issue 13, items 7-9: fallback content kept, one plain_text with words apart, and what the
project reads better than feedparser, pinned."""

from __future__ import annotations

from datetime import UTC, datetime

import feedparser
import pytest

from aggregator.parse.feed import parse_feed
from aggregator.parse.sanitize import clean_html, plain_text

NOW = datetime(2024, 1, 2, tzinfo=UTC)
BASE = "https://blog.example/post/"


# -- 7. fallback content ------------------------------------------------------------------------
def test_noscript_fallback_is_kept() -> None:
    html = '<script src="https://gist.example/1.js"></script><noscript><pre>print(1)</pre><a href="https://gist.example/1">Code example</a></noscript>'
    out = clean_html(html, BASE)
    assert "<pre>print(1)</pre>" in out
    assert 'href="https://gist.example/1"' in out and "Code example" in out
    assert "script" not in out


def test_object_fallback_is_kept_and_its_source_linked() -> None:
    out = clean_html(
        '<object data="/flash.swf"><p>Get <a href="/f">the file</a></p></object>', BASE
    )
    assert "<object" not in out
    assert 'href="https://blog.example/flash.swf"' in out
    assert '<p>Get <a href="https://blog.example/f"' in out


def test_video_and_audio_fallback_is_kept() -> None:
    out = clean_html('<video src="v.mp4">Watch <a href="v.mp4">the video</a></video>', BASE)
    assert "the video" in out and 'href="https://blog.example/post/v.mp4"' in out
    out = clean_html(
        '<audio controls><source src="a.mp3">Listen <a href="a.mp3">here</a></audio>', BASE
    )
    assert "Listen" in out and "here" in out


@pytest.mark.parametrize(
    "html",
    [
        '<iframe src="https://video.example/embed/1">no frames</iframe>',
        "<embed src='https://video.example/embed/1'>",
    ],
)
def test_a_removed_embed_becomes_a_link_to_its_source(html: str) -> None:
    out = clean_html(f"<p>Before {html} after</p>", BASE)
    assert "<iframe" not in out and "<embed" not in out
    assert '<a href="https://video.example/embed/1"' in out
    assert "no frames" not in out


def test_an_embed_without_a_source_leaves_nothing() -> None:
    assert clean_html("<iframe></iframe>text", BASE) == "text"


# -- 8. plain text keeps words apart --------------------------------------------------------------
@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("Jane<br>Doe", "Jane Doe"),
        ("<p>one</p><p>two</p>", "one two"),
        ("<ul><li>a</li><li>b</li></ul>", "a b"),
        ("<div>Title</div>Body", "Title Body"),
        ("<b>bo</b>ld", "bold"),
        ("xx</li>word", "xxword"),  # a stray end tag is no boundary, as in a browser
    ],
)
def test_plain_text_separates_blocks(html: str, text: str) -> None:
    assert plain_text(html) == text


@pytest.mark.parametrize("fast", [True, False])
def test_titles_keep_words_apart(fast: bool) -> None:
    doc = (
        b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        b"<title>t</title><id>urn:f</id><updated>2024-01-01T00:00:00Z</updated>"
        b'<entry><id>urn:1</id><title type="html">Jane&lt;br&gt;Doe</title>'
        b"<updated>2024-01-01T00:00:00Z</updated></entry></feed>"
    )
    assert parse_feed(doc, {}, "", now=NOW, fast=fast).entries[0].title == "Jane Doe"


def test_there_is_one_plain_text() -> None:
    import aggregator.select.shaping

    assert not hasattr(aggregator.select.shaping, "plain_text")


# -- 9. better than feedparser, pinned ------------------------------------------------------------
def rss_item(inner: str, namespaces: str = "") -> bytes:
    return (
        f'<?xml version="1.0"?><rss version="2.0" {namespaces}><channel><title>t</title>'
        f"<link>https://b.example/</link><item><link>https://b.example/1</link>{inner}</item>"
        "</channel></rss>"
    ).encode()


def test_text_after_an_unescaped_less_than_is_kept() -> None:
    doc = rss_item(
        "<title>I &lt;3 feeds &lt;- and more</title><description>x &lt;- y, z</description>"
    )
    entry = parse_feed(doc, {}, "", now=NOW).entries[0]
    assert entry.title == "I <3 feeds <- and more"
    assert entry.content == "x &lt;- y, z"


def test_ms_word_style_blocks_are_dropped() -> None:
    word = (
        "&lt;style&gt;p.MsoNormal {margin:0}&lt;/style&gt;&lt;!--[if gte mso 9]&gt;&lt;xml&gt;"
        "&lt;w:WordDocument&gt;x&lt;/w:WordDocument&gt;&lt;/xml&gt;&lt;![endif]--&gt;"
        '&lt;p class="MsoNormal"&gt;Word text&lt;/p&gt;'
    )
    doc = rss_item(f"<title>w</title><description>{word}</description>")
    assert parse_feed(doc, {}, "", now=NOW).entries[0].content == "<p>Word text</p>"
    # feedparser keeps the conditional comment and its Word XML.
    assert "WordDocument" in feedparser.parse(doc).entries[0].summary


def test_thr_total_of_minus_one_is_unknown() -> None:
    doc = rss_item(
        "<title>c</title><thr:total>-1</thr:total>",
        'xmlns:thr="http://purl.org/syndication/thread/1.0"',
    )
    assert parse_feed(doc, {}, "", now=NOW).entries[0].comment_count is None
    assert feedparser.parse(doc).entries[0].thr_total == "-1"


def test_an_untyped_replies_link_is_a_comment_feed() -> None:
    doc = (
        b'<feed xmlns="http://www.w3.org/2005/Atom" xmlns:thr="http://purl.org/syndication/thread/1.0">'
        b"<title>t</title><id>urn:x</id><updated>2024-01-01T00:00:00Z</updated><entry><id>urn:1</id>"
        b'<title>a</title><updated>2024-01-01T00:00:00Z</updated><link href="https://b.example/1"/>'
        b'<link rel="replies" href="https://b.example/1/feed/atom" thr:count="4"/></entry></feed>'
    )
    entry = parse_feed(doc, {}, "", now=NOW).entries[0]
    assert (entry.comments_feed_url, entry.comment_count) == ("https://b.example/1/feed/atom", 4)
    # feedparser types it text/html, as if it were a page.
    replies = [x for x in feedparser.parse(doc).entries[0].links if x["rel"] == "replies"]
    assert replies[0]["type"] == "text/html"
