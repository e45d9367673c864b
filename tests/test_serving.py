"""The HTTP app on a real server on 127.0.0.1: feeds with caching headers, pages, OPML, 404s."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import feedparser
import httpx
import pytest
from support import SAMPLE_CONFIG, poll_and_publish, sample_config_path, serve, serve_folder

from aggregator.config.opml import read_opml
from aggregator.config.schema import AppConfig
from aggregator.serve.server import create_app
from aggregator.storage import Storage


@dataclass(frozen=True)
class Site:
    config: AppConfig
    base: str
    client: httpx.Client


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with serve_folder(SAMPLE_CONFIG) as origin:
        config = poll_and_publish(sample_config_path(tmp_path_factory.mktemp("site"), origin))
    with serve(create_app(config)) as base, httpx.Client(base_url=base, timeout=10) as client:
        yield Site(config, base, client)


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/feeds/everything.atom", "application/atom+xml"),
        ("/feeds/everything.rss", "application/rss+xml"),
        ("/feeds/everything.json", "application/feed+json"),
        ("/feeds/everything/page/2.atom", "application/atom+xml"),
        ("/feeds/everything/comments.rss", "application/rss+xml"),
        ("/opml", "text/x-opml"),
        ("/", "text/html"),
    ],
)
def test_content_types(site: Site, path: str, media_type: str) -> None:
    response = site.client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type


def test_a_repeated_conditional_request_is_answered_304(site: Site) -> None:
    first = site.client.get("/feeds/everything.atom")
    assert first.status_code == 200
    assert first.headers["cache-control"] == "public, max-age=300"
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    for headers in ({"If-None-Match": etag}, {"If-Modified-Since": modified}):
        again = site.client.get("/feeds/everything.atom", headers=headers)
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etag
    changed = site.client.get("/feeds/everything.atom", headers={"If-None-Match": '"other"'})
    assert changed.status_code == 200


def test_gzip_and_head(site: Site) -> None:
    raw = httpx.get(
        f"{site.base}/feeds/everything.rss", headers={"Accept-Encoding": "gzip"}, timeout=10
    )
    assert raw.headers["content-encoding"] == "gzip"
    assert raw.headers["vary"] == "Accept-Encoding"
    plain = site.client.get("/feeds/everything.rss", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert raw.content == plain.content  # httpx decoded the gzip body
    assert int(raw.headers["content-length"]) < len(plain.content)
    head = site.client.head("/feeds/everything.rss", headers={"Accept-Encoding": "identity"})
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(plain.content))
    assert head.headers["etag"] == plain.headers["etag"]


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("/feeds/nope.atom", "No such feed: nope.atom"),
        ("/feeds/everything/page/9.atom", "No such feed"),
        ("/feeds/everything.xml", "No such feed"),
        ("/outputs/nope", "No such output: nope"),
        ("/outputs/nope/0123456789abcdef0123456789abcdef", "No such output: nope"),
        ("/outputs/everything/not-an-id", "No such entry"),
        ("/outputs/everything?page=99", "No such page of everything"),
    ],
)
def test_unknown_things_are_404_with_a_short_text(site: Site, path: str, text: str) -> None:
    response = site.client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/plain")
    assert text in response.text
    assert len(response.text) < 120


def test_an_entry_of_another_output_is_not_shown_under_this_one(site: Site) -> None:
    with Storage(site.config.database) as storage:
        blog = next(e for e in storage.list_entries(["blog"], 10) if e.comment_count)
    assert site.client.get(f"/outputs/everything/{blog.public_id}").status_code == 200
    response = site.client.get(f"/outputs/podcasts/{blog.public_id}")
    assert response.status_code == 404
    assert "No such entry in podcasts" in response.text


def test_opml_lists_every_output(site: Site) -> None:
    feeds = read_opml(site.client.get("/opml").content)
    base = site.config.server.public_url
    assert [(f.title, f.xml_url, f.html_url) for f in feeds] == [
        (
            "Everything & more <sample>",
            f"{base}/feeds/everything.atom",
            f"{base}/outputs/everything",
        ),
        ("Podcasts", f"{base}/feeds/podcasts.rss", f"{base}/outputs/podcasts"),
    ]


def test_pages_escape_what_is_not_sanitized_html(site: Site) -> None:
    index = site.client.get("/").text
    assert "Everything &amp; more &lt;sample&gt;" in index
    assert "<sample>" not in index
    assert (
        f'<link rel="alternate" type="application/atom+xml" title="Everything &amp; more '
        f'&lt;sample&gt; (ATOM)" href="{site.config.server.public_url}/feeds/everything.atom">'
    ) in index
    page = site.client.get("/outputs/everything").text
    assert "<script" not in page
    assert "Episode 1 (undated)" in page and 'rel="next"' in page
    older = site.client.get("/outputs/everything?page=3").text
    assert 'rel="prev"' in older and 'rel="next"' not in older


def test_the_index_page_lets_a_reader_discover_the_feeds(site: Site) -> None:
    parsed = feedparser.parse(site.client.get("/").content)
    assert parsed.bozo  # an HTML page, not a feed; readers then use its alternate links
    assert site.client.get("/").text.count('rel="alternate"') == 5
