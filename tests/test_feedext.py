"""Tests for aggregator.publish.feedext: feeds built with feedgen, read back with feedparser and XML parsers."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone

import feedparser
import pytest
from feedgen.feed import FeedGenerator

from aggregator.publish.feedext import (
    SLASH_NS,
    THREAD_NS,
    WFW_NS,
    InReplyTo,
    RepliesLink,
    register_comment_extensions,
)

ATOM_NS = "http://www.w3.org/2005/Atom"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
REPLIES_AT = datetime(2024, 5, 1, 11, 30, tzinfo=timezone(timedelta(hours=2)))
POST_ID = "urn:uuid:00000000-0000-0000-0000-000000000001"
COMMENT_ID = "urn:uuid:00000000-0000-0000-0000-000000000002"
REPLY_ID = "urn:uuid:00000000-0000-0000-0000-000000000003"
POST_URL = "https://example.org/p/1"
COMMENT_URL = "https://example.org/p/1#c1"
ATOM_COMMENTS = "https://example.org/p/1/comments.atom"
RSS_COMMENTS = "https://example.org/p/1/comments.rss"


def make_feed() -> FeedGenerator:
    """A feed with a post carrying its thread data, a top-level comment and a threaded reply."""
    fg = FeedGenerator()
    fg.id("urn:uuid:00000000-0000-0000-0000-0000000000ff")
    fg.title("Example")
    fg.link(href="https://example.org/", rel="alternate")
    fg.description("Example feed")
    fg.updated(NOW)
    register_comment_extensions(fg)

    # feedgen's add_entry prepends, so add the last entry first to keep post, comment, reply.
    reply = fg.add_entry()
    reply.id(REPLY_ID)
    reply.title("Re: Re: Post")
    reply.link(href="https://example.org/p/1#c2")
    reply.content("No.")
    reply.updated(NOW)
    reply.thread.in_reply_to(COMMENT_ID, href=COMMENT_URL, type="text/html")

    comment = fg.add_entry()
    comment.id(COMMENT_ID)
    comment.title("Re: Post")
    comment.link(href=COMMENT_URL)
    comment.content("Yes.")
    comment.updated(NOW)
    comment.thread.in_reply_to(POST_ID, href=POST_URL)

    post = fg.add_entry()
    post.id(POST_ID)
    post.title("Post")
    post.link(href=POST_URL)
    post.content("Hello.")
    post.updated(NOW)
    post.comments(f"{POST_URL}#comments")
    post.thread.replies(ATOM_COMMENTS, count=12, updated=REPLIES_AT)
    post.thread.replies(RSS_COMMENTS, type="application/rss+xml", count=12)
    post.thread.total(12)
    post.slash.comments(12)
    post.wfw.comment_rss(RSS_COMMENTS)
    return fg


@pytest.fixture
def atom() -> bytes:
    return make_feed().atom_str(pretty=True)


@pytest.fixture
def rss() -> bytes:
    return make_feed().rss_str(pretty=True)


def parse(xml: bytes) -> feedparser.FeedParserDict:
    parsed = feedparser.parse(xml)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


def namespace_declarations(xml: bytes) -> list[tuple[int, str, str]]:
    """Each namespace declaration as (elements started before it, prefix, uri)."""
    declarations = []
    started = 0
    for event, item in ET.iterparse(io.BytesIO(xml), events=("start", "start-ns")):
        if event == "start-ns":
            declarations.append((started, *item))
        else:
            started += 1
    return declarations


def replies_links(entry: feedparser.FeedParserDict) -> list[feedparser.FeedParserDict]:
    return [link for link in entry.get("links", []) if link.get("rel") == "replies"]


# Atom


def test_atom_is_atom_10(atom: bytes) -> None:
    parsed = parse(atom)
    assert parsed.version == "atom10"
    assert [e.id for e in parsed.entries] == [POST_ID, COMMENT_ID, REPLY_ID]


def test_atom_replies_links_read_back(atom: bytes) -> None:
    post = parse(atom).entries[0]
    links = {link["type"]: link for link in replies_links(post)}
    assert set(links) == {"application/atom+xml", "application/rss+xml"}
    atom_link = links["application/atom+xml"]
    assert atom_link["href"] == ATOM_COMMENTS
    # feedparser does not know RFC 4685's namespace: it keys the attributes by the document's
    # qualified name, "thr:count", and also (less usefully) by the bare local name.
    assert atom_link["thr:count"] == "12"
    assert atom_link["thr:updated"] == "2024-05-01T11:30:00+02:00"
    rss_link = links["application/rss+xml"]
    assert rss_link["href"] == RSS_COMMENTS
    assert rss_link["thr:count"] == "12"
    assert "thr:updated" not in rss_link


def test_atom_total_read_back(atom: bytes) -> None:
    post, comment, _ = parse(atom).entries
    assert post["thr_total"] == "12"
    assert "thr_total" not in comment


def test_atom_in_reply_to_read_back(atom: bytes) -> None:
    post, comment, reply = parse(atom).entries
    assert "thr_in-reply-to" not in post
    assert comment["thr_in-reply-to"] == {"ref": POST_ID, "href": POST_URL}
    assert reply["thr_in-reply-to"] == {
        "ref": COMMENT_ID,
        "href": COMMENT_URL,
        "type": "text/html",
    }


def test_atom_leaves_out_rss_only_elements(atom: bytes) -> None:
    post = parse(atom).entries[0]
    assert "slash_comments" not in post
    assert "wfw_commentrss" not in post
    assert SLASH_NS.encode() not in atom
    assert WFW_NS.encode() not in atom


def test_atom_replies_attributes_are_namespaced(atom: bytes) -> None:
    root = ET.fromstring(atom)
    links = root.findall(f"{{{ATOM_NS}}}entry/{{{ATOM_NS}}}link[@rel='replies']")
    assert len(links) == 2
    for link in links:
        assert link.get(f"{{{THREAD_NS}}}count") == "12"
        assert link.get("count") is None
    total = root.find(f"{{{ATOM_NS}}}entry/{{{THREAD_NS}}}total")
    assert total is not None and total.text == "12"


def test_atom_declares_namespaces_once_on_root(atom: bytes) -> None:
    declarations = namespace_declarations(atom)
    assert sorted(declarations) == [(0, "", ATOM_NS), (0, "thr", THREAD_NS)]


# RSS


def test_rss_is_rss_20(rss: bytes) -> None:
    parsed = parse(rss)
    assert parsed.version == "rss20"
    assert [e.id for e in parsed.entries] == [POST_ID, COMMENT_ID, REPLY_ID]


def test_rss_comment_count_and_feed_read_back(rss: bytes) -> None:
    post, comment, _ = parse(rss).entries
    assert post["slash_comments"] == "12"
    assert post["wfw_commentrss"] == RSS_COMMENTS
    # Plain RSS 2.0 <comments> comes from feedgen's own FeedEntry.comments.
    assert post["comments"] == f"{POST_URL}#comments"
    assert "slash_comments" not in comment
    assert "wfw_commentrss" not in comment


def test_rss_in_reply_to_read_back(rss: bytes) -> None:
    post, comment, reply = parse(rss).entries
    assert "thr_in-reply-to" not in post
    assert comment["thr_in-reply-to"] == {"ref": POST_ID, "href": POST_URL}
    assert reply["thr_in-reply-to"]["ref"] == COMMENT_ID


def test_rss_leaves_out_atom_only_elements(rss: bytes) -> None:
    post = parse(rss).entries[0]
    assert replies_links(post) == []
    assert "thr_total" not in post


def test_rss_declares_namespaces_once_on_root(rss: bytes) -> None:
    declarations = namespace_declarations(rss)
    assert all(started == 0 for started, _, _ in declarations), declarations
    prefixes = [prefix for _, prefix, _ in declarations]
    assert len(prefixes) == len(set(prefixes))
    assert {(prefix, uri) for _, prefix, uri in declarations} >= {
        ("thr", THREAD_NS),
        ("slash", SLASH_NS),
        ("wfw", WFW_NS),
    }


def test_rss_elements_are_in_their_namespaces(rss: bytes) -> None:
    item = ET.fromstring(rss).find("channel/item")
    assert item is not None
    assert item.findtext(f"{{{SLASH_NS}}}comments") == "12"
    assert item.findtext(f"{{{WFW_NS}}}commentRss") == RSS_COMMENTS


# Registration and the entry API


def test_entry_added_before_registration_gets_extensions() -> None:
    fg = FeedGenerator()
    fe = fg.add_entry()
    register_comment_extensions(fg)
    assert fe.thread.total(3) == 3
    assert fe.slash.comments(3) == 3
    assert fe.wfw.comment_rss(RSS_COMMENTS) == RSS_COMMENTS


def test_feedgen_comments_method_is_not_shadowed() -> None:
    fg = FeedGenerator()
    register_comment_extensions(fg)
    fe = fg.add_entry()
    assert fe.comments(COMMENT_URL) == COMMENT_URL


def test_registering_twice_is_refused() -> None:
    fg = FeedGenerator()
    register_comment_extensions(fg)
    with pytest.raises(ImportError):
        register_comment_extensions(fg)


def test_entry_without_thread_data_writes_nothing() -> None:
    fg = make_feed()
    bare = fg.add_entry()
    bare.id("urn:uuid:00000000-0000-0000-0000-000000000009")
    bare.title("Bare")
    bare.link(href="https://example.org/bare")
    bare.content("x")
    bare.updated(NOW)
    for xml in (fg.atom_str(), fg.rss_str()):
        entry = parse(xml).entries[0]
        assert entry.id == bare.id()
        assert not [key for key in entry if key.startswith(("thr", "slash", "wfw"))]
        assert replies_links(entry) == []


def test_getters_return_what_was_set() -> None:
    fg = FeedGenerator()
    register_comment_extensions(fg)
    fe = fg.add_entry()
    assert fe.thread.replies() == []
    assert fe.thread.total() is None
    assert fe.thread.in_reply_to() is None
    assert fe.slash.comments() is None
    assert fe.wfw.comment_rss() is None
    fe.thread.replies(ATOM_COMMENTS, count=1)
    fe.thread.replies(RSS_COMMENTS, type="application/rss+xml")
    # Same media type again: replaces, one replies link per format.
    fe.thread.replies(ATOM_COMMENTS + "?v=2", count=2)
    assert fe.thread.replies() == [
        RepliesLink(ATOM_COMMENTS + "?v=2", count=2),
        RepliesLink(RSS_COMMENTS, type="application/rss+xml"),
    ]
    fe.thread.in_reply_to(POST_ID)
    assert fe.thread.in_reply_to(COMMENT_ID, href=COMMENT_URL) == InReplyTo(COMMENT_ID, COMMENT_URL)


@pytest.mark.parametrize("count", [-1, True, 1.0, "3"])
def test_counts_must_be_non_negative_ints(count: object) -> None:
    fg = FeedGenerator()
    register_comment_extensions(fg)
    fe = fg.add_entry()
    with pytest.raises(ValueError):
        fe.thread.total(count)
    with pytest.raises(ValueError):
        fe.slash.comments(count)
    with pytest.raises(ValueError):
        fe.thread.replies(ATOM_COMMENTS, count=count)


def test_invalid_values_are_refused() -> None:
    fg = FeedGenerator()
    register_comment_extensions(fg)
    fe = fg.add_entry()
    with pytest.raises(ValueError):
        fe.thread.replies(ATOM_COMMENTS, updated=datetime(2024, 5, 1))  # naive
    with pytest.raises(ValueError):
        fe.thread.replies("")
    with pytest.raises(ValueError):
        fe.thread.in_reply_to("")
    with pytest.raises(ValueError):
        fe.wfw.comment_rss("")
