"""Tests for aggregator.parse.xmlguard and what feedparser/expat do with entities without it.

The first tests record the finding that motivated the module (feedparser 6.0 on expat 2.5):
feedparser strips most DOCTYPE entity declarations by itself, but a comment before the DOCTYPE
defeats it and a "plain text" entity is expanded without limit. The rest show that, through
aggregator's parse path, nothing is expanded or fetched and time and memory stay small.
"""

from __future__ import annotations

import time
import tracemalloc

import feedparser
import pytest
from hostile_server import (
    BILLION_LAUGHS,
    BILLION_LAUGHS_BEHIND_COMMENT,
    QUADRATIC_BLOWUP,
    XXE,
    HostileServer,
    good_feed,
    static,
)

from aggregator.parse.feed import parse_feed
from aggregator.parse.xmlguard import MAX_EXPANSION, defuse


def measure(function):  # type: ignore[no-untyped-def]
    """(result, seconds, peak traced bytes) of calling ``function``."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = function()
    finally:
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return result, seconds, peak


# -- the finding: feedparser alone ------------------------------------------------------------


def test_feedparser_alone_strips_a_plain_billion_laughs() -> None:
    parsed = feedparser.parse(BILLION_LAUGHS)
    assert "undefined entity" in str(parsed.bozo_exception)
    assert len(parsed.entries[0].summary) < 100


def test_feedparser_alone_lets_expat_expand_a_bomb_behind_a_comment() -> None:
    parsed = feedparser.parse(BILLION_LAUGHS_BEHIND_COMMENT)
    # expat expanded until its amplification limit stopped it: the guard is not feedparser's.
    assert "amplification" in str(parsed.bozo_exception)


# -- through aggregator ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [BILLION_LAUGHS, BILLION_LAUGHS_BEHIND_COMMENT, QUADRATIC_BLOWUP],
    ids=["billion-laughs", "behind-comment", "quadratic-blowup"],
)
def test_entity_bombs_are_not_expanded(document: bytes) -> None:
    feed, seconds, peak = measure(lambda: parse_feed(document, {}, "http://example.org/feed"))
    assert seconds < 3.0
    assert peak < 40 * 1024 * 1024
    assert feed.entries, "the entries are still read"
    text = (feed.entries[0].summary or "") + (feed.entries[0].content or "")
    assert "lollollol" not in text and "AAAAAAAAAA" not in text
    assert feed.warning and "DOCTYPE declarations removed" in feed.warning


def test_external_entities_are_never_fetched_nor_read() -> None:
    with HostileServer({"/feed": static(good_feed())}) as server:
        document = XXE.replace(b"{port}", str(server.port).encode())
        feed = parse_feed(document, {}, server.url("/feed"))
    assert server.seen == []  # neither the general nor the parameter entity was requested
    assert "root:" not in repr(feed)  # /etc/passwd was not read
    assert feed.entries[0].title == "t &file;"


def test_bombs_in_utf16_are_defused_too() -> None:
    defused = defuse(BILLION_LAUGHS.decode().encode("utf-16"))
    text = defused.content.decode("utf-16")
    assert "lol9" not in text.split("]>")[0]
    assert defused.warning


def test_a_simple_text_entity_is_kept() -> None:
    document = (
        b'<!DOCTYPE rss [\n  <!ENTITY id "tag:example.com,">\n]>\n<rss version="2.0"><channel>'
        b"<item><guid>&id;2006-05-04:/blog/</guid></item></channel></rss>"
    )
    feed = parse_feed(document)
    assert feed.entries[0].guid == "tag:example.com,2006-05-04:/blog/"
    assert feed.warning is None


def test_simple_entities_that_would_expand_too_far_are_dropped() -> None:
    value = "x" * 1000
    refs = "&big;" * (MAX_EXPANSION // 1000 + 10)
    document = (
        f'<!DOCTYPE rss [<!ENTITY big "{value}">]><rss version="2.0"><channel><item>'
        f"<title>t</title><description>{refs}</description></item></channel></rss>"
    ).encode()
    assert b"<!ENTITY" not in defuse(document).content


def test_documents_without_a_doctype_are_untouched() -> None:
    document = good_feed()
    assert defuse(document).content is document


def test_a_doctype_without_internal_subset_is_untouched() -> None:
    document = (
        b'<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
        b'"http://my.netscape.com/publish/formats/rss-0.91.dtd">\n<rss version="0.91"></rss>'
    )
    assert defuse(document).content is document


def test_a_declaration_on_the_doctype_line_is_removed() -> None:
    document = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "x"><!ENTITY b "&a;&a;">]>'
        b'<rss version="2.0"><channel><title>&b;</title></channel></rss>'
    )
    defused = defuse(document).content
    assert b"&a;&a;" not in defused.split(b"<rss")[0]


def test_surrogate_character_references_do_not_lose_the_feed() -> None:
    document = (
        b'<rss version="2.0"><channel><title>a &#xD800; b &#55296;</title>'
        b"<item><title>x &#xDFFF;</title><guid>g</guid></item></channel></rss>"
    )
    feed = parse_feed(document)
    assert feed.entries[0].key == "g"
