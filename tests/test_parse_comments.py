"""Tests for reading comment feeds and comment hints (aggregator.parse.comment_feed; the comment
links of a main feed's entries, aggregator.parse.feed).

Each ``tests/data/comment-feeds/NAME.xml`` is a comment feed in the shape a real blog engine
publishes, describing itself in a header comment; ``NAME.json`` beside it gives the URL it is read
from and the comments expected (only the fields it lists are checked). ``tests/data/comment-hints``
does the same for main feeds: the comment feed, comments page and count of each entry. Both sets
are discovered automatically.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.comments.matching import match_comments_to_threads
from aggregator.comments.pages import extract_comments
from aggregator.comments.selectors import PRESETS
from aggregator.errors import ParseError
from aggregator.models import CommentData, ThreadState
from aggregator.parse.comment_feed import comment_anchor, parse_comment_feed, parse_comments
from aggregator.parse.feed import parse_feed

DATA = Path(__file__).parent / "data"
COMMENT_FEEDS = sorted((DATA / "comment-feeds").glob("*.xml"))
HINTS = sorted((DATA / "comment-hints").glob("*.xml"))
REFERENCE = Path("/work/shared/reference")


def _expected(path: Path) -> dict[str, Any]:
    return json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))


def _value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


@pytest.mark.parametrize("path", COMMENT_FEEDS, ids=lambda p: p.stem)
def test_comment_feed_fixture(path: Path) -> None:
    expected = _expected(path)
    document = parse_comment_feed(path.read_bytes(), {}, expected["url"])
    assert document.next_url == expected["next_url"]
    assert document.newest_first is expected["newest_first"]
    assert len(document.comments) == len(expected["comments"])
    for comment, wanted in zip(document.comments, expected["comments"], strict=True):
        got = {name: _value(getattr(comment, name)) for name in wanted}
        assert got == wanted
        assert comment.published_at is None or comment.published_at.utcoffset().total_seconds() == 0
        assert "<script" not in comment.content
    assert len({c.key for c in document.comments}) == len(document.comments)


def test_comment_feed_fixtures_are_discovered() -> None:
    assert len(COMMENT_FEEDS) >= 7
    assert all(path.with_suffix(".json").exists() for path in COMMENT_FEEDS)


@pytest.mark.parametrize("path", HINTS, ids=lambda p: p.stem)
def test_comment_hints_fixture(path: Path) -> None:
    expected = _expected(path)
    feed = parse_feed(path.read_bytes(), {}, expected["url"])
    assert len(feed.entries) == len(expected["entries"])
    for entry, wanted in zip(feed.entries, expected["entries"], strict=True):
        assert {name: getattr(entry, name) for name in wanted} == wanted


def test_comment_hints_fixtures_are_discovered() -> None:
    assert len(HINTS) >= 4
    assert all(path.with_suffix(".json").exists() for path in HINTS)


def test_feed_and_page_give_a_comment_the_same_key() -> None:
    """The WordPress reference page and its comment feed fixture hold the same two comments."""
    page = extract_comments(
        (REFERENCE / "wordpress-post-with-comments.html").read_bytes(),
        "https://blog.example.org/2020/05/an-example-post/",
        PRESETS["wordpress"],
    )
    feed = parse_comments(
        (DATA / "comment-feeds" / "wordpress-post-atom.xml").read_bytes(),
        {},
        "https://blog.example.org/2020/05/an-example-post/feed/atom/",
    )
    assert [(c.key, c.parent_key, c.published_at) for c in page] == [
        (c.key, c.parent_key, c.published_at) for c in feed
    ]
    typepad = extract_comments(
        (REFERENCE / "typepad-post-with-comments.html").read_bytes(),
        "https://example.typepad.com/blog/2019/03/notes-on-the-river-crossing.html",
        PRESETS["typepad"],
        timezone="America/New_York",
    )
    typepad_feed = parse_comments((DATA / "comment-feeds" / "typepad-comments.xml").read_bytes())
    assert [(c.key, c.author, c.published_at) for c in typepad] == [
        (c.key, c.author, c.published_at) for c in typepad_feed
    ]


@pytest.mark.parametrize(
    ("url", "anchor"),
    [
        ("https://blog/?p=3#comment-101", "comment-101"),
        ("https://blog/post/#comment-101", "comment-101"),
        (
            "https://x.typepad.com/b/p.html#comment-6a00d8341c5f1f53ef0200aa",
            "comment-6a00d8341c5f1f53ef0200aa",
        ),
        ("https://x.blogspot.com/p.html?showComment=1#c555", "c555"),
        ("https://blog/post/#comments", None),
        ("https://blog/post/#respond", None),
        ("https://blog/post/#", None),
        ("https://blog/post/", None),
        (None, None),
    ],
)
def test_comment_anchor(url: str | None, anchor: str | None) -> None:
    assert comment_anchor(url) == anchor


def thread(entry_id: int, guid: str, link: str) -> ThreadState:
    return ThreadState(
        entry_id=entry_id,
        public_id=f"{entry_id:032x}",
        key=guid,
        guid=guid,
        link=link,
        comments_feed_url=None,
        comments_page_url=None,
        first_seen_at=datetime(2026, 1, 1).astimezone(),
    )


def test_match_site_wide_comments_to_entries() -> None:
    threads = [
        thread(1, "https://blog/?p=1", "https://blog/one/"),
        thread(2, "https://blog/?p=2", "https://blog/two/"),
        thread(3, "tag:blog,2020:post-3", "https://blog/three.html"),
    ]
    comments = [
        CommentData("a", "", link="https://blog/one/#comment-1"),  # by link
        CommentData("b", "", guid="https://blog/?p=2#comment-2"),  # by guid: the post's guid + #
        CommentData("c", "", in_reply_to="tag:blog,2020:post-3"),  # by thr:in-reply-to ref
        CommentData("d", "", in_reply_to="urn:x", in_reply_to_href="https://blog/two"),  # by href
        CommentData(
            "e", "", in_reply_to="https://blog/?p=1#comment-1"
        ),  # a reply: its parent's post
        CommentData("f", "", link="https://elsewhere/#comment-9"),  # no such entry
    ]
    grouped = {
        t.entry_id: [c.key for c in items]
        for t, items in match_comments_to_threads(comments, threads)
    }
    assert grouped == {1: ["a", "e"], 2: ["b", "d"], 3: ["c"]}


def test_comment_keys_are_stable_across_reads() -> None:
    content = (DATA / "comment-feeds" / "shared-fragment.xml").read_bytes()
    assert parse_comments(content) == parse_comments(content)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=400))
def test_parse_comment_feed_on_arbitrary_bytes_returns_or_raises_parse_error(data: bytes) -> None:
    try:
        document = parse_comment_feed(data, {}, "https://blog.example.org/feed/")
    except ParseError:
        return
    assert all(isinstance(c, CommentData) and c.key for c in document.comments)
