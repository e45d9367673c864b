"""Issue 13, item 10: JSON Feed 1.0 and 1.1 sources are polled like the others."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.config.loading import load_config
from aggregator.errors import ParseError
from aggregator.parse.feed import MAX_ENTRIES, parse_feed
from aggregator.parse.jsonfeed import MAX_DEPTH
from aggregator.poll.poller import Poller
from aggregator.storage import Storage

NOW = datetime(2024, 6, 1, tzinfo=UTC)

FEED_11 = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "Jay & Co",
    "home_page_url": "https://jay.example/",
    "feed_url": "https://jay.example/feed.json",
    "authors": [{"name": "Jay"}],
    "_custom": {"ignored": True},
    "items": [
        {
            "id": "2",
            "url": "/posts/2",
            "title": "Second <post>",
            "content_html": "<p>Two<script>x()</script></p>",
            "summary": "The second",
            "date_published": "2024-05-02T10:00:00+02:00",
            "date_modified": "2024-05-03T00:00:00Z",
            "authors": [{"name": "Kay"}, {"name": "Lee"}],
            "tags": ["a", "b", 3],
            "attachments": [
                {"url": "https://jay.example/2.mp3", "mime_type": "audio/mpeg", "size_in_bytes": 99}
            ],
            "_ext": {"anything": [1, 2]},
        },
        {"id": "1", "url": "https://jay.example/posts/1", "content_text": "One\nline & more"},
        {"id": 7, "title": 5, "url": ["not", "a", "string"]},
        "not an item",
    ],
}
FEED_10 = {
    "version": "https://jsonfeed.org/version/1",
    "title": "Old",
    "home_page_url": "https://old.example/",
    "author": {"name": "Olde"},
    "items": [{"id": "a", "url": "https://old.example/a", "content_text": "A"}],
}


def test_json_feed_1_1_is_read() -> None:
    feed = parse_feed(json.dumps(FEED_11).encode(), {}, "https://jay.example/feed.json", now=NOW)
    assert (feed.title, feed.link, feed.version) == ("Jay & Co", "https://jay.example/", "json11")
    second, first, odd = feed.entries
    assert (second.key, second.link, second.title) == (
        "2",
        "https://jay.example/posts/2",
        "Second <post>",
    )
    assert second.content == "<p>Two</p>" and second.summary == "The second"
    assert second.author == "Kay, Lee" and second.categories == ("a", "b")
    assert second.published_at == datetime(2024, 5, 2, 8, tzinfo=UTC)
    assert second.updated_at == datetime(2024, 5, 3, tzinfo=UTC)
    assert [(e.url, e.type, e.length) for e in second.enclosures] == [
        ("https://jay.example/2.mp3", "audio/mpeg", 99)
    ]
    assert first.content == "One<br>\nline &amp; more" and first.author == "Jay"
    assert (odd.key, odd.link, odd.title) == ("7", None, "")


def test_json_feed_1_0_is_read() -> None:
    feed = parse_feed(json.dumps(FEED_10).encode(), {}, "", now=NOW)
    assert feed.version == "json10"
    assert [(e.key, e.author, e.content) for e in feed.entries] == [("a", "Olde", "A")]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b'{"version": "https://example.com/other", "items": []}', "JSON Feed version"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": [', "invalid JSON"),
        (b"{" + b'"a":[' * (MAX_DEPTH + 5), "nested"),
        (b'{"title": "\xff"}', "UTF-8"),
        (b"[1, 2]", "not a feed"),
    ],
)
def test_hostile_or_wrong_json_is_a_parse_error(document: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_feed(document, {}, "", now=NOW)


def test_json_feed_entries_are_capped() -> None:
    items = [{"id": str(n), "content_text": "x"} for n in range(MAX_ENTRIES + 3)]
    document = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": items})
    feed = parse_feed(document.encode(), {}, "", now=NOW)
    assert len(feed.entries) == MAX_ENTRIES
    assert feed.warning and "only the first" in feed.warning


def test_a_json_feed_source_is_polled_in_the_sandbox(
    feed_server, write_config, tmp_path: Path
) -> None:
    url = feed_server.serve_feed(
        "/feed.json", json.dumps(FEED_11).encode(), content_type="application/feed+json"
    )
    path = write_config(sources=[{"name": "jay", "url": url}])
    config = load_config(path)
    with Poller(config, manual=True) as poller:
        results = {r.source: r for r in poller.poll_many(config.sources, force=True)}
    assert results["jay"].status == "new" and results["jay"].new == 3
    with Storage(config.database) as storage:
        titles = {e.title for e in storage.list_entries(None, 10)}
    assert "Second <post>" in titles
    accept = feed_server.requests_for("/feed.json")[0].headers["accept"]
    assert "application/feed+json" in accept
