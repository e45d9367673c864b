"""Every published document is valid by the W3C Feed Validation Service's rules.

The demo configuration (config/aggregator.yaml with its bundled sources) and a sample config
(tests/data/publish: markup in titles, scripts, relative URLs, podcast enclosures, threaded
comments, paging, a WebSub hub) are polled and published for real; every Atom, RSS and JSON
document they produce, comment feeds and pages included, is checked by tests/feedcheck.py and
read back with feedparser.
"""

from __future__ import annotations

import json
from pathlib import Path

import feedparser
import pytest
from feedcheck import check_atom, check_document, check_json_feed, check_rss
from lxml import etree
from support import SAMPLE_CONFIG as SAMPLE_FOLDER
from support import (
    demo_config_path,
    poll_and_publish,
    published_files,
    sample_config_path,
    serve_folder,
)

from aggregator.config.loading import load_config
from aggregator.config.schema import AppConfig
from aggregator.publish.publisher import Publisher
from aggregator.storage import Storage

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> AppConfig:
    return poll_and_publish(demo_config_path(tmp_path_factory.mktemp("demo")))


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> AppConfig:
    with serve_folder(SAMPLE_FOLDER) as origin:
        return poll_and_publish(sample_config_path(tmp_path_factory.mktemp("sample"), origin))


def _feed(config: AppConfig, relative: str) -> bytes:
    return (config.public_dir / "feeds" / relative).read_bytes()


@pytest.mark.parametrize("which", ["demo", "sample"])
def test_every_published_document_passes_the_validator_rules(
    which: str, request: pytest.FixtureRequest
) -> None:
    config: AppConfig = request.getfixturevalue(which)
    files = published_files(config)
    problems = {url: check_document(path, url) for url, path in files.items()}
    assert {url: found for url, found in problems.items() if found} == {}
    # Every output in every format, and comment feeds, were checked.
    for output in config.outputs:
        for fmt in output.formats:
            assert f"{config.server.public_url}/feeds/{output.name}.{fmt}" in files
    assert any("/comments." in url for url in files)
    if which == "sample":
        assert any("/page/3.atom" in url for url in files)


def test_the_checker_catches_what_the_validator_would_flag() -> None:
    """A regression in publishing must fail: the checks are not vacuous."""
    rss = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
      <link>https://example.org/</link><description>D</description>
      <item><title>A &lt;b&gt;bold&lt;/b&gt; title</title><guid>not-a-url</guid>
      <pubDate>2024-05-01T10:00:00Z</pubDate>
      <enclosure url="https://e.org/a.mp3" length="1" type="audio/mpeg"/>
      <enclosure url="https://e.org/b.mp3" length="1" type="audio/mpeg"/>
      <author>Jane</author></item></channel></rss>"""
    found = " | ".join(check_rss(rss, "https://example.org/feed.rss"))
    for expected in (
        "atom:link rel=self",
        "has HTML",
        "not an RFC 822 date",
        "is a permalink but not",
        "2 enclosures",
        "not an e-mail address",
    ):
        assert expected in found
    atom = b"""<feed xmlns="http://www.w3.org/2005/Atom"><id>urn:x:1</id><title>T</title>
      <updated>2024-05-01T10:00:00</updated>
      <entry><id>urn:x:2</id><title>E</title><updated>2024-05-01T10:00:00Z</updated></entry>
      <entry><id>urn:x:2</id><title>F</title><updated>2024-05-01T10:00:00Z</updated>
      <link href="/relative"/></entry></feed>"""
    found = " | ".join(check_atom(atom, "https://example.org/feed.atom"))
    for expected in (
        "not an RFC 3339",
        "rel=self",
        "no atom:author",
        "neither an alternate link nor content",
        "not unique",
        "not an absolute URI",
    ):
        assert expected in found
    assert check_atom(b"<feed xmlns='http://www.w3.org/2005/Atom'/>")[0].startswith("RFC 4287")
    found = " | ".join(check_json_feed(b'{"version": "1", "items": [{"title": "x"}]}'))
    assert "version" in found and "title is required" in found and "id is required" in found


def test_feedparser_reads_every_output_without_complaint(sample: AppConfig) -> None:
    for url, path in published_files(sample).items():
        if path.suffix == ".json":
            continue
        parsed = feedparser.parse(path.read_bytes())
        assert not parsed.bozo, (url, parsed.bozo_exception)
        assert parsed.feed.title
        assert all(entry.id.startswith("urn:uuid:") for entry in parsed.entries)


def test_titles_are_plain_text_and_content_is_sanitized_with_absolute_urls(
    sample: AppConfig,
) -> None:
    everything = [_feed(sample, f"everything.{ext}") for ext in ("atom", "rss")]
    everything += [
        _feed(sample, f"everything/page/{n}.{ext}") for n in (2, 3) for ext in ("atom", "rss")
    ]
    titles = set()
    for document in everything:
        for entry in feedparser.parse(document).entries:
            titles.add(entry.title)
            assert "<script" not in entry.get("summary", "")
            for content in entry.get("content", []):
                assert "<script" not in content.value and "onerror" not in content.value
                assert 'href="/' not in content.value and 'src="cover' not in content.value
    assert "Episode 5: Spring tides & neap tides" in titles
    assert "A bold claim & a thread" in titles
    assert "Episode 4: \"Quotes\" & 'apostrophes' — and ünïcödé" in titles
    # The output's own title, with characters that need escaping, survives escaped.
    assert feedparser.parse(everything[0]).feed.title == "Everything & more <sample>"
    assert b"Everything &amp; more &lt;sample&gt;" in everything[0]
    text = b"".join(everything).decode()
    assert "notes/5" in text and "onclick" not in text


def test_enclosures_and_categories_are_carried_through(sample: AppConfig) -> None:
    atom = etree.fromstring(_feed(sample, "podcasts.atom"))
    episode4 = next(
        e for e in atom.iter(f"{ATOM}entry") if "Episode 4" in e.findtext(f"{ATOM}title")
    )
    enclosures = [
        dict(link.attrib) for link in episode4.iter(f"{ATOM}link") if link.get("rel") == "enclosure"
    ]
    assert enclosures == [
        {"href": "https://cdn.tide.example.com/ep4.mp3", "rel": "enclosure", "type": "audio/mpeg", "length": "1000"},
        {"href": "https://cdn.tide.example.com/ep4.ogg", "rel": "enclosure", "type": "audio/ogg", "length": "900"},
    ]  # fmt: skip
    # The alternate link stays the only alternate: feedgen's rel-less links are not reused.
    alternates = [
        link
        for link in episode4.findall(f"{ATOM}link")
        if link.get("rel", "alternate") == "alternate"
    ]
    assert len(alternates) == 1
    rss = etree.fromstring(_feed(sample, "podcasts.rss"))
    item4 = next(i for i in rss.iter("item") if "Episode 4" in i.findtext("title"))
    assert [dict(e.attrib) for e in item4.findall("enclosure")] == [
        {"url": "https://cdn.tide.example.com/ep4.mp3", "length": "1000", "type": "audio/mpeg"}
    ]
    item5 = next(i for i in rss.iter("item") if "Episode 5" in i.findtext("title"))
    assert [c.text for c in item5.findall("category")] == ["science", "tides"]
    parsed = feedparser.parse(_feed(sample, "podcasts.atom"))
    episode5 = next(e for e in parsed.entries if "Episode 5" in e.title)
    assert [t.term for t in episode5.tags] == ["science", "tides"]
    assert episode5.enclosures[0].length == "31415926"
    items = json.loads(_feed(sample, "everything.json"))["items"]
    pages = [json.loads(_feed(sample, f"everything/page/{n}.json"))["items"] for n in (2, 3)]
    by_title = {item["title"]: item for item in items + pages[0] + pages[1]}
    assert [
        a["mime_type"]
        for a in by_title["Episode 4: \"Quotes\" & 'apostrophes' — and ünïcödé"]["attachments"]
    ] == [
        "audio/mpeg",
        "audio/ogg",
    ]
    assert by_title["Episode 5: Spring tides & neap tides"]["tags"] == ["science", "tides"]


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_paging_reads_every_entry_once_past_the_limit(sample: AppConfig, fmt: str) -> None:
    """RFC 5005 section 3 (JSON Feed: next_url): follow "next" from the feed to the last page."""
    base = f"{sample.server.public_url}/feeds/"
    files = published_files(sample)
    url: str | None = f"{base}everything.{fmt}"
    seen: list[str] = []
    pages = 0
    while url:
        document = files[url].read_bytes()
        pages += 1
        if fmt == "json":
            parsed_json = json.loads(document)
            assert parsed_json["feed_url"] == f"{base}everything.json"
            seen += [item["id"] for item in parsed_json["items"]]
            url = parsed_json.get("next_url")
            continue
        parsed = feedparser.parse(document)
        seen += [entry.id for entry in parsed.entries]
        links = {link.rel: link.href for link in parsed.feed.links}
        assert links["first"] == f"{base}everything.{fmt}"
        assert links["last"] == f"{base}everything/page/3.{fmt}"
        if pages > 1:
            assert links["previous"] == (
                f"{base}everything.{fmt}"
                if pages == 2
                else f"{base}everything/page/{pages - 1}.{fmt}"
            )
        url = links.get("next")
    assert pages == 3
    with Storage(sample.database) as storage:
        stored = storage.list_entries(None, 100)
    assert len(seen) == len(set(seen)) == len(stored) == 7


def test_pages_no_longer_needed_are_removed(tmp_path: Path) -> None:
    with serve_folder(SAMPLE_FOLDER) as origin:
        config_path = sample_config_path(tmp_path, origin)
        config = poll_and_publish(config_path)
    pages = config.public_dir / "feeds" / "everything" / "page"
    assert sorted(p.name for p in pages.iterdir()) == [
        "2.atom", "2.json", "2.rss", "3.atom", "3.json", "3.rss"
    ]  # fmt: skip
    text = (
        config_path.read_text()
        .replace("limit: 3", "limit: 4")
        .replace("formats: [rss, atom]", "formats: [rss]")
    )
    config_path.write_text(text)
    config = load_config(config_path)
    with Storage(config.database) as storage:
        Publisher(config, storage).publish()
    assert sorted(p.name for p in pages.iterdir()) == ["2.atom", "2.json", "2.rss"]
    assert 'rel="last"' not in (config.public_dir / "feeds" / "podcasts.rss").read_text()


def test_websub_hub_is_named_in_every_format(sample: AppConfig) -> None:
    hub = "https://hub.example.org/"
    atom = feedparser.parse(_feed(sample, "everything.atom"))
    assert {"rel": "hub", "href": hub} in [
        {"rel": link.rel, "href": link.href} for link in atom.feed.links
    ]
    rss = etree.fromstring(_feed(sample, "everything.rss"))
    assert [link.get("href") for link in rss.iter(f"{ATOM}link") if link.get("rel") == "hub"] == [
        hub
    ]
    comments = etree.fromstring(_feed(sample, "everything/comments.rss"))
    assert [
        link.get("href") for link in comments.iter(f"{ATOM}link") if link.get("rel") == "hub"
    ] == [hub]
    assert json.loads(_feed(sample, "everything.json"))["hubs"] == [{"type": "WebSub", "url": hub}]


def test_demo_feeds_name_no_hub_and_have_one_page(demo: AppConfig) -> None:
    atom = feedparser.parse(_feed(demo, "all.atom"))
    rels = {link.rel for link in atom.feed.links}
    assert rels == {"self", "alternate"}
    assert atom.feed.link == f"{demo.server.public_url}/outputs/all"
    rss = etree.fromstring(_feed(demo, "all.rss"))
    assert rss.findtext("channel/link") == f"{demo.server.public_url}/outputs/all"


def test_entry_ids_are_stable_across_restarts_republishing_and_reloads(
    sample: AppConfig, tmp_path: Path
) -> None:
    before = {url: path.read_bytes() for url, path in published_files(sample).items()}
    # A restart: the config read again, a new connection, a new Publisher.
    config = load_config(sample.config_path)
    with Storage(config.database) as storage:
        changed = Publisher(config, storage).publish()
    assert changed == []
    assert {url: path.read_bytes() for url, path in published_files(config).items()} == before
    # A fresh database polled from the same sources gives the same ids.
    with serve_folder(SAMPLE_FOLDER) as origin:
        fresh = poll_and_publish(sample_config_path(tmp_path, origin))
    ids = {e.id for e in feedparser.parse(_feed(sample, "everything.atom")).entries}
    assert ids == {e.id for e in feedparser.parse(_feed(fresh, "everything.atom")).entries}
    rss_ids = {e.id for e in feedparser.parse(_feed(fresh, "everything.rss")).entries}
    assert rss_ids == ids
