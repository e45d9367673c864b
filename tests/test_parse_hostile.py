"""The parse path on broken and hostile documents: a FeedData or one ParseError, never more."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from hostile_server import item, rss
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.errors import ParseError
from aggregator.models import FeedData
from aggregator.parse.comment_feed import parse_comments
from aggregator.parse.feed import parse_feed

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)

# Fragments that reach feedparser's odd corners: DOCTYPEs, entities, CDATA, encodings, bozo.
FRAGMENTS = [
    '<?xml version="1.0"?>',
    '<?xml version="1.0" encoding="utf-16"?>',
    '<?xml version="1.0" encoding="bogus"?>',
    "<!DOCTYPE rss [",
    '<!ENTITY a "&a;&a;">',
    '<!ENTITY x SYSTEM "file:///etc/passwd">',
    "]>",
    '<rss version="2.0">',
    "<channel>",
    "<item>",
    "<title>",
    "</title>",
    "<description>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "<![CDATA[<img src=x onerror=alert(1)>]]>",
    "&a;",
    "&#xD800;",
    "&#0;",
    "&nbsp;",
    "<guid>",
    "</guid>",
    "<pubDate>Mon, 01 Jan 2999 00:00:00 GMT</pubDate>",
    "</item>",
    '<feed xmlns="http://www.w3.org/2005/Atom">',
    "<entry>",
    '<link rel="replies" href="javascript:alert(1)"/>',
    "</entry>",
    "\x00",
    "\ufeff",
    "\udcff",
    "é",
    "<html><head><link rel=alternate type=application/rss+xml href=/f></head>",
]


def check(result: object) -> None:
    assert isinstance(result, FeedData)
    for entry in result.entries:
        assert isinstance(entry.key, str) and entry.key
        for text in (entry.title, entry.content or "", entry.summary or "", entry.link or ""):
            assert "\x00" not in text and "<script" not in text.lower()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_random_bytes_give_a_feed_or_a_parse_error(content: bytes) -> None:
    with contextlib.suppress(ParseError):
        check(parse_feed(content, {}, "http://example.org/feed", now=NOW))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=20), max_size=40),
    st.sampled_from(["utf-8", "utf-16", "latin-1"]),
)
def test_random_feed_like_documents_give_a_feed_or_a_parse_error(
    parts: list[str], encoding: str
) -> None:
    errors = "surrogatepass" if encoding == "utf-8" else "replace"  # lone surrogates: bad UTF-8
    content = "".join(parts).encode(encoding, errors=errors)
    with contextlib.suppress(ParseError):
        check(parse_feed(content, {}, "http://example.org/feed", now=NOW))
    with contextlib.suppress(ParseError):
        parse_comments(content, {}, "http://example.org/feed", now=NOW)


def test_invalid_utf8_keeps_the_entries() -> None:
    content = rss(item(1) + item(2)).replace(b"Post 1", b"Post \xff\xfe 1")
    feed = parse_feed(content, now=NOW)
    assert [e.key for e in feed.entries] == ["post-1", "post-2"]
    assert feed.entries[0].title.startswith("Post")


@pytest.mark.parametrize(
    ("declared", "actual"),
    [
        ("utf-8", "windows-1252"),
        ("iso-8859-1", "utf-8"),
        ("windows-1252", "utf-8"),
        ("koi8-r", "utf-8"),
    ],
)
def test_wrongly_declared_encodings_still_read(declared: str, actual: str) -> None:
    content = (
        f'<?xml version="1.0" encoding="{declared}"?><rss version="2.0"><channel><title>t</title>'
        "<item><title>Café crème</title><guid>c1</guid></item></channel></rss>"
    ).encode(actual)
    feed = parse_feed(
        content, {"content-type": f"application/rss+xml; charset={declared}"}, now=NOW
    )
    assert [e.key for e in feed.entries] == ["c1"]
    assert feed.entries[0].title.startswith("Caf")


def test_truncated_xml_keeps_what_was_read_with_a_warning() -> None:
    content = rss("".join(item(n) for n in range(5)))
    feed = parse_feed(content[: len(content) - 250], now=NOW)
    assert len(feed.entries) >= 3
    assert feed.warning and "ill-formed feed" in feed.warning


def test_duplicate_and_missing_guids() -> None:
    items = (
        item(1)
        + item(1).replace("Post 1", "Post 1 again")
        + "<item><title>No guid</title><link>http://example.org/a</link></item>"
        + "<item><title>No guid, no link</title><description>x</description></item>"
        + "<item><title>No guid, no link 2</title><description>y</description></item>"
    )
    feed = parse_feed(rss(items), now=NOW)
    keys = [e.key for e in feed.entries]
    # One guid on two different items: told apart (issue 13), both under that guid.
    assert keys[0] != keys[1]
    assert keys[0].startswith("post-1\n") and keys[1].startswith("post-1\n")
    again = [e.key for e in parse_feed(rss(item(1) + item(1)), now=NOW).entries]
    assert again[0] == again[1], "the same item twice is one entry"
    assert keys[2] == "http://example.org/a"
    assert len(set(keys[3:])) == 2, "entries without guid or link get distinct content keys"


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("Mon, 02 Nov 2026 10:00:00 +0000", datetime(2026, 11, 2, 10, tzinfo=UTC)),
        ("Thu, 01 Jan 1970 00:00:00 GMT", None),  # before 1990: missing
        ("Sat, 01 Jan 2999 00:00:00 GMT", None),  # far future: missing
        ("Wed, 04 Nov 2026 12:00:00 +0000", None),  # two days ahead: missing
        ("Tue, 03 Nov 2026 06:00:00 +0000", datetime(2026, 11, 3, 6, tzinfo=UTC)),  # < 1 day
        ("yesterday-ish", None),
        ("Mon, 99 Zzz 2026 99:99:99 +9999", None),
    ],
)
def test_date_rules(date: str, expected: datetime | None) -> None:
    feed = parse_feed(rss(item(1, date=date)), now=NOW)
    assert feed.entries[0].published_at == expected


def test_an_html_page_names_the_feed_it_links_to() -> None:
    page = (
        b"<!DOCTYPE html><html><head><title>Blog</title>"
        b'<link rel="alternate" type="application/rss+xml" href="/feed/">'
        b'<link rel="alternate" type="application/atom+xml" href="/atom/"></head>'
        b"<body><p>Hello</p></body></html>"
    )
    with pytest.raises(ParseError) as caught:
        parse_feed(page, {"content-type": "text/html"}, "https://blog.example.org/post/1")
    assert str(caught.value) == (
        "this is an HTML page, not a feed; it links to a feed at "
        "https://blog.example.org/feed/ (and 1 more)"
    )


def test_an_html_page_without_a_feed_says_so() -> None:
    with pytest.raises(ParseError, match="HTML page, not a feed, and it links to no feed"):
        parse_feed(b"<html><body>hi</body></html>", {}, "https://example.org/")


def test_control_characters_and_active_links_are_removed() -> None:
    extra = (
        "<comments>javascript:alert(1)</comments>"
        '<enclosure url="data:text/html,x" type="audio/mpeg" length="1"/>'
    )
    content = rss(item(1, extra=extra)).replace(b"Post 1", b"Post\x01 &#1;1")
    content = content.replace(b"http://example.org/1", b"javascript:alert(1)")
    entry = parse_feed(content, now=NOW).entries[0]
    assert entry.title == "Post 1"
    assert entry.link is None
    assert entry.comments_page_url is None
    assert entry.enclosures == ()


def test_overlong_fields_are_cut() -> None:
    huge = "word " * 200_000
    content = rss(item(1).replace("Post 1", huge).replace("Body 1", f"<p>{huge}</p>"))
    entry = parse_feed(content, now=NOW).entries[0]
    assert len(entry.title) <= 2000
    assert len(entry.summary or entry.content or "") <= 256 * 1024 + 100


def test_comment_dates_follow_the_same_rules() -> None:
    content = rss(item(1, date="Sat, 01 Jan 2999 00:00:00 GMT"))
    assert parse_comments(content, now=NOW)[0].published_at is None


def test_now_defaults_to_the_clock() -> None:
    tomorrow = datetime.now(UTC) + timedelta(hours=12)
    date = tomorrow.strftime("%a, %d %b %Y %H:%M:%S +0000")
    assert parse_feed(rss(item(1, date=date))).entries[0].published_at is not None
