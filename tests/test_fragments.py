"""Tests for aggregator.publish.fragments: documents spliced from entries rendered before must be the
very bytes a whole rendering gives, whatever the entries hold and however documents follow one
another (pages moving by one entry, threads growing, entries edited)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.config.outputs import OutputConfig
from aggregator.models import EnclosureData, StoredComment, StoredEntry
from aggregator.publish.fragments import FragmentCache, Piece
from aggregator.publish.links import FeedLinks, Page
from aggregator.publish.render import CommentView, render_output
from aggregator.publish.render_comments import render_comments
from aggregator.select.dedupe import Duplicate

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
FORMATS = ("atom", "rss", "json")
# Text that tries to look like the markup around entries, and text that needs escaping.
tricky = st.sampled_from(
    [
        "plain",
        "<p>html &amp; more</p>",
        "  </entry>\n  <entry>\n",
        "    </item>\n",
        "line one\nline two\n",
        "“quotes” ünïcödé 🦆",
        '"},{"id": "x"}',
        "\\u0000 and \\n",
        "</feed>\n",
    ]
)
texts = st.one_of(
    tricky,
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=30),
)


def public_id(number: int) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"test:{number}").hex


@st.composite
def entries(draw: st.DrawFn, number: int) -> StoredEntry:
    content = draw(st.one_of(st.none(), texts))
    return StoredEntry(
        id=number,
        public_id=public_id(number),
        source_name="src",
        source_title=draw(st.one_of(st.none(), texts)),
        source_url="https://src.example/feed",
        source_link=None,
        key=f"k{number}",
        title=draw(texts),
        link=draw(st.one_of(st.none(), st.just(f"https://src.example/{number}"))),
        author=draw(st.one_of(st.none(), texts)),
        summary=draw(st.one_of(st.none(), texts)),
        content=content,
        published_at=T0 - timedelta(hours=number),
        updated_at=None,
        first_seen_at=T0,
        categories=tuple(draw(st.lists(st.sampled_from(["a", "b & c"]), max_size=2))),
        enclosures=tuple(
            draw(
                st.lists(
                    st.builds(
                        EnclosureData,
                        url=st.just("https://src.example/a.mp3"),
                        type=st.sampled_from([None, "audio/mpeg"]),
                        length=st.sampled_from([None, 10]),
                    ),
                    max_size=2,
                )
            )
        ),
    )


@st.composite
def documents(draw: st.DrawFn) -> tuple[list[StoredEntry], list[list[int]]]:
    """A pool of entries, some edited copies, and a run of documents picking from them."""
    pool = [draw(entries(number)) for number in range(1, draw(st.integers(1, 8)) + 1)]
    edited = [
        draw(entries(entry.id)) for entry in draw(st.lists(st.sampled_from(pool), max_size=2))
    ]
    everything = pool + edited
    runs = draw(
        st.lists(
            st.lists(st.integers(0, len(everything) - 1), max_size=6, unique=True),
            min_size=1,
            max_size=5,
        )
    )
    return everything, runs


OUTPUT = OutputConfig(name="all", title="Everything")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(), st.booleans(), st.data())
def test_spliced_outputs_are_the_whole_renderings(
    drawn: tuple[list[StoredEntry], list[list[int]]], hub: bool, data: st.DataObject
) -> None:
    pool, runs = drawn
    cache = FragmentCache()
    links = FeedLinks("https://feeds.example", "all", hub="https://hub.example/" if hub else None)
    for picks in runs:
        chosen = [pool[i] for i in picks]
        chosen = list({entry.id: entry for entry in chosen}.values())  # one copy per entry
        threads = {
            entry.id: CommentView(data.draw(st.integers(0, 3)), T0)
            for entry in chosen
            if data.draw(st.booleans())
        }
        duplicates = {
            entry.id: (Duplicate("other", None, None, public_id(99), "link"),)
            for entry in chosen
            if data.draw(st.booleans())
        }
        page = Page(data.draw(st.integers(1, 3)), 3)
        for fmt in FORMATS:
            whole = render_output(OUTPUT, chosen, links, fmt, threads, page, duplicates)
            spliced = render_output(
                OUTPUT, chosen, links, fmt, threads, page, duplicates, fragments=cache
            )
            assert spliced == whole


@st.composite
def threads(draw: st.DrawFn) -> tuple[StoredEntry, list[list[StoredComment]]]:
    """An entry and its thread as it grows, is edited and loses comments, read after read."""
    entry = draw(entries(1))
    comments: list[StoredComment] = []
    reads = []
    for _ in range(draw(st.integers(1, 4))):
        for _ in range(draw(st.integers(0, 3))):
            number = len(comments) + 1
            parent = draw(st.one_of(st.none(), st.sampled_from(comments))) if comments else None
            comments.append(
                StoredComment(
                    id=number,
                    public_id=public_id(1000 + number),
                    entry_id=entry.id,
                    entry_public_id=entry.public_id,
                    key=f"c{number}",
                    content=draw(texts),
                    author=draw(st.one_of(st.none(), texts)),
                    author_url=draw(st.one_of(st.none(), st.just("https://a.example/"))),
                    published_at=draw(
                        st.one_of(st.none(), st.just(T0 + timedelta(minutes=number)))
                    ),
                    first_seen_at=T0,
                    link=draw(st.one_of(st.none(), st.just(f"https://src.example/1#c{number}"))),
                    number=number,
                    parent_public_id=parent.public_id if parent else None,
                )
            )
        if comments and draw(st.booleans()):  # an edit
            index = draw(st.integers(0, len(comments) - 1))
            old = comments[index]
            comments[index] = StoredComment(**{**vars(old), "content": draw(texts)})
        if comments and draw(st.booleans()):  # a comment left out (killfiled, or the latest)
            reads.append(comments[1:])
        reads.append(list(comments))
    return entry, reads


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(threads(), st.booleans())
def test_spliced_comment_feeds_are_the_whole_renderings(
    drawn: tuple[StoredEntry, list[list[StoredComment]]], hub: bool
) -> None:
    entry, reads = drawn
    cache = FragmentCache()
    for comments in reads:
        for fmt in FORMATS:
            args = (
                "Comments on it",
                "urn:uuid:00000000-0000-0000-0000-000000000001",
                comments,
                {entry.id: entry},
                f"https://feeds.example/all/{entry.public_id}/comments.{fmt}",
                entry.link or "https://feeds.example/",
                fmt,
            )
            whole = render_comments(*args, hub="https://hub.example/" if hub else None)
            spliced = render_comments(
                *args, hub="https://hub.example/" if hub else None, fragments=cache
            )
            assert spliced == whole


def test_a_piece_is_rendered_once_until_what_it_shows_changes() -> None:
    rendered: list[str] = []

    def render(pieces) -> bytes:
        rendered.extend(piece.key for piece in pieces)
        body = b"".join(
            f"  <entry>\n    <id>{p.depends}</id>\n  </entry>\n".encode() for p in pieces
        )
        return b"<?xml?>\n<feed>\n  <id>f</id>\n" + body + b"</feed>\n"

    cache = FragmentCache()
    first = cache.xml("atom", [Piece("a", 1), Piece("b", 1)], render)
    assert first == render([Piece("a", 1), Piece("b", 1)])
    rendered.clear()
    assert cache.xml("atom", [Piece("c", 1), Piece("a", 1)], render) == render(
        [Piece("c", 1), Piece("a", 1)]
    )
    assert rendered[0] == "c"  # then the comparison rendering: "c", "a"
    rendered.clear()
    cache.xml("atom", [Piece("a", 2), Piece("b", 1)], render)
    assert rendered[0] == "a"  # what "a" shows changed


def test_a_document_that_does_not_come_apart_is_rendered_whole() -> None:
    def render(pieces) -> bytes:  # no line breaks: not the pretty-printed layout
        return b"<feed>" + b"".join(b"<entry/>" for _ in pieces) + b"</feed>\n"

    cache = FragmentCache()
    pieces = [Piece("a", 1), Piece("b", 1)]
    assert cache.xml("atom", pieces, render) == render(pieces)
    assert len(cache) == 0


def test_the_cache_keeps_to_its_size() -> None:
    cache = FragmentCache(max_bytes=100)
    document = {"version": "v", "items": []}
    for number in range(50):
        cache.json(document, [Piece(number, number)], lambda piece: {"id": "x" * 20})
    assert 0 < cache.size <= 100 and len(cache) < 50
    # Even a document bigger than the whole cache comes out right.
    pieces = [Piece(n, "big") for n in range(20)]
    text = cache.json(document, pieces, lambda piece: {"id": "y" * 20})
    assert json.loads(text)["items"] == [{"id": "y" * 20}] * 20
