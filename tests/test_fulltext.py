"""Full text (issue 17, item 2): ``full_text: true | auto | false`` on sources and
``content_from`` on outputs.

A page server on 127.0.0.1 serves a feed of teasers and, as the entries' pages, real blog posts
from the shared corpus (``../shared/corpora/realworld``); the sources are polled into a real
SQLite file and the outputs read back with feedparser. Articles are extracted in the sandbox's
extraction worker, as the daemon does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
from click.testing import CliRunner
from conftest import FeedServer, make_config_file
from corpora import REALWORLD, corpus
from lxml import html
from support import serve

from aggregator.cli import main
from aggregator.config.loading import load_config
from aggregator.errors import BlockedAddressError, ConfigError, FetchError, ParseError
from aggregator.fulltext.decide import (
    is_html,
    is_teaser,
    is_transient,
    page_url,
    status_after_error,
    wants_page,
)
from aggregator.fulltext.reader import PAGE_MAX_BYTES
from aggregator.models import PollResult
from aggregator.parse.sandbox import SandboxParser
from aggregator.parse.sanitize import plain_text
from aggregator.poll.poller import Poller
from aggregator.publish.publisher import Publisher
from aggregator.serve.server import create_app
from aggregator.storage import Storage

# Three real posts (as their sites served them) and a phrase of each article's body.
WORDPRESS = "mozilla__readability/test__test-pages__wordpress__source.html"
LEMIRE = "adbar__trafilatura/tests__cache__lemire.me.json.html"
BLOGGER = "mozilla__readability/test__test-pages__blogger__source.html"
PHRASES = {
    WORDPRESS: "ranks ReactJS, Docker, and Ansible",
    LEMIRE: "JSON is the ubiquitous data format on the Internet",
    BLOGGER: "Silego Technology is a fabless semiconductor company",
}
TEASER = "<p>The first lines of the post\u2026 <a href='{link}'>Continue reading \u2192</a></p>"
LONG = (
    "<p>" + "A complete paragraph of the feed's own article, long enough to stand. " * 40 + "</p>"
)


def _page(name: str) -> bytes:
    return (corpus(REALWORLD) / "files" / name).read_bytes()


def _rss(items: Sequence[dict[str, str]]) -> bytes:
    """An RSS 2.0 feed of ``items`` (title, link, description and maybe content)."""
    body = []
    for number, item in enumerate(items):
        content = item.get("content")
        body.append(
            f"<item><title>{item['title']}</title><link>{item['link']}</link>"
            f"<guid>{item['title']}</guid>"
            f"<pubDate>Mon, 0{number + 1} Dec 2025 10:00:00 GMT</pubDate>"
            f"<description><![CDATA[{item.get('description', '')}]]></description>"
            + (f"<content:encoded><![CDATA[{content}]]></content:encoded>" if content else "")
            + "</item>"
        )
    return (
        '<?xml version="1.0"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        "<title>Blog</title><link>http://127.0.0.1/</link><description>d</description>"
        + "".join(body)
        + "</channel></rss>"
    ).encode()


@pytest.fixture(scope="module")
def server() -> Iterator[FeedServer]:
    feeds = FeedServer().start()
    try:
        yield feeds
    finally:
        feeds.stop()


#: What an extraction may add to its worker's memory in these tests: half the default 128 MB,
#: so that a hostile page reaches it at once (see the hostile test) and every real page here is
#: shown to extract with room to spare.
TEST_EXTRACT_MEMORY = 64 * 1024 * 1024


@pytest.fixture(scope="module")
def parser() -> Iterator[SandboxParser]:
    """The sandbox, shared: its workers start once for the module."""
    with SandboxParser(small_workers=1, extract_memory_limit=TEST_EXTRACT_MEMORY) as sandbox:
        yield sandbox


def _serve_blog(server: FeedServer, prefix: str, items: list[dict[str, str]]) -> str:
    """Serve ``items`` as the feed ``/{prefix}/feed.rss``; returns its URL."""
    for item in items:
        item["link"] = server.url(item["link"]) if item["link"].startswith("/") else item["link"]
        item["description"] = item.get("description", "").format(link=item["link"])
    return server.serve_feed(f"/{prefix}/feed.rss", _rss(items))


def _config(tmp_path: Path, feed_url: str, outputs: Sequence[dict[str, Any]] = (), **source: Any):
    path = make_config_file(
        tmp_path,
        sources=[{"name": "blog", "url": feed_url, **source}],
        outputs=list(outputs) or [{"name": "all", "formats": ["rss"]}],
        defaults={"timeout": "5s", "comments": False},
    )
    return load_config(path)


def _poll(config: Any, parser: SandboxParser, times: int = 1) -> list[PollResult]:
    results = []
    with Poller(config, manual=True, parser=parser) as poller:
        for _ in range(times):
            results.extend(poller.poll_many(list(config.sources)))
    assert all(result.ok for result in results), [r.describe() for r in results]
    return results


def _rows(config: Any) -> dict[str, dict[str, Any]]:
    """The ``full_texts`` rows by entry title."""
    with Storage(config.database) as storage:
        return {
            row["title"]: row
            for row in storage.db.execute_returning_dicts(
                "SELECT e.title, f.* FROM full_texts f JOIN entries e ON e.id = f.entry_id"
            )
        }


def _published(config: Any, output: str) -> dict[str, Any]:
    with Storage(config.database) as storage:
        Publisher(config, storage).publish()
    parsed = feedparser.parse((config.public_dir / "feeds" / f"{output}.rss").read_bytes())
    assert not parsed.bozo, parsed.bozo_exception
    return {entry.title: entry for entry in parsed.entries}


def _content(entry: Any) -> str:
    return plain_text(entry.content[0].value if "content" in entry else "", limit=None)


# -- the pure decisions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "summary", "teaser"),
    [
        (None, None, True),
        (None, "<p>Short.</p>", True),
        (None, "<p>" + "word " * 200 + "[\u2026]</p>", True),
        (None, "<p>" + "word " * 200 + "<a href='/x'>Read more \u00bb</a></p>", True),
        ("<p>" + "word " * 200 + "Continue reading <span>The Post</span> \u2192</p>", None, True),
        # WordPress's excerpt with its footer line after the ellipsis.
        (
            None,
            "<p>" + "word " * 200 + "[&hellip;]</p><p>The post <a>X</a> appeared first on "
            "<a>Y</a>.</p>",
            True,
        ),
        # A summary alone, of a middling length: the start of something longer.
        (None, "<p>" + "word " * 200 + "end.</p>", True),
        (None, "<p>" + "word " * 400 + "end.</p>", False),  # a whole post in the description
        (LONG, "<p>The first lines.</p>", False),  # full content beside a short summary
        (LONG, None, False),
    ],
)
def test_is_teaser(content: str | None, summary: str | None, teaser: bool) -> None:
    assert is_teaser(content, summary) is teaser


def test_wants_page_and_page_url() -> None:
    assert wants_page(True, LONG, None) and not wants_page(False, None, None)
    assert wants_page("auto", None, "<p>Short.</p>") and not wants_page("auto", LONG, None)
    assert page_url(" https://blog.example/post ") == "https://blog.example/post"
    assert page_url("javascript:alert(1)") is None and page_url("/relative") is None
    assert page_url(None) is None and page_url("http://[::1") is None


def test_only_network_errors_rate_limits_and_server_errors_are_transient() -> None:
    assert is_transient(FetchError("timed out"))
    assert is_transient(FetchError("unavailable", status=503))
    assert not is_transient(FetchError("gone", status=404))
    assert not is_transient(FetchError("too large", status=200))
    assert not is_transient(BlockedAddressError("private address"))
    assert not is_transient(ParseError("no article"))
    # Three tries in all for a transient failure; a final one is final at once.
    busy = FetchError("unavailable", status=503)
    assert [status_after_error(busy, n) for n in (1, 2, 3)] == ["retry", "retry", "failed"]
    assert status_after_error(FetchError("gone", status=404), 1) == "failed"
    assert (
        is_html("text/html; charset=utf-8") and is_html(None) and is_html("application/xhtml+xml")
    )
    assert not is_html("image/png") and not is_html("application/pdf")


def test_bad_values_are_one_line_at_their_file_and_line(write_yaml_config: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        write_yaml_config(
            """
            defaults:
              full_text: auto
            sources:
              - name: a
                url: https://a.example/feed
                full_text: sometimes
            outputs:
              - name: o
                content_from: article
            """
        )
    message = str(caught.value)
    assert (
        "aggregator.yaml:11: sources[0].full_text: 'sometimes' is not allowed: true, false or auto"
        in message
    )
    assert "aggregator.yaml:14: outputs[0].content_from:" in message
    assert "'full_text', 'feed' or 'both'" in message


# -- full_text: true / auto / false ---------------------------------------------------------------


def test_true_fetches_each_page_once_and_publishes_the_article(
    tmp_path: Path, server: FeedServer, parser: SandboxParser
) -> None:
    for name in (WORDPRESS, LEMIRE):
        server.route(f"/t/{name}", body=_page(name), content_type="text/html; charset=utf-8")
    url = _serve_blog(
        server,
        "t",
        [
            {"title": "Hiring", "link": f"/t/{WORDPRESS}", "description": TEASER},
            {"title": "JSON", "link": f"/t/{LEMIRE}", "content": LONG},
        ],
    )
    config = _config(tmp_path, url, full_text=True)
    results = _poll(config, parser, times=2)
    assert results[0].full_texts == 2 and "2 full texts" in results[0].describe()
    assert results[1].full_texts == 0
    # Once per entry, however many polls: the second poll fetched no page again.
    assert [len(server.requests_for(f"/t/{name}")) for name in (WORDPRESS, LEMIRE)] == [1, 1]
    rows = _rows(config)
    assert {title: row["status"] for title, row in rows.items()} == {"Hiring": "ok", "JSON": "ok"}
    assert "<script" not in rows["Hiring"]["content"]
    entries = _published(config, "all")
    assert PHRASES[WORDPRESS] in _content(entries["Hiring"])
    assert PHRASES[LEMIRE] in _content(entries["JSON"])  # `true` fetches even a full entry


def test_auto_fetches_only_teasers_and_false_nothing(
    tmp_path: Path, server: FeedServer, parser: SandboxParser
) -> None:
    for name in (WORDPRESS, LEMIRE, BLOGGER):
        server.route(f"/a/{name}", body=_page(name), content_type="text/html")
    url = _serve_blog(
        server,
        "a",
        [
            {"title": "Teaser", "link": f"/a/{WORDPRESS}", "description": TEASER},
            {"title": "Whole", "link": f"/a/{LEMIRE}", "content": LONG},
        ],
    )
    auto = _config(tmp_path / "auto", url, full_text="auto")
    _poll(auto, parser)
    assert len(server.requests_for(f"/a/{WORDPRESS}")) == 1
    assert server.requests_for(f"/a/{LEMIRE}") == []
    assert {t: r["status"] for t, r in _rows(auto).items()} == {"Teaser": "ok", "Whole": "skipped"}
    entries = _published(auto, "all")
    assert PHRASES[WORDPRESS] in _content(entries["Teaser"])
    assert PHRASES[LEMIRE] not in _content(entries["Whole"])

    # Switched to `true`, the source fetches the page `auto` left to the feed, once.
    always = _config(tmp_path / "auto", url, full_text=True)
    _poll(always, parser, times=2)
    assert len(server.requests_for(f"/a/{LEMIRE}")) == 1
    assert len(server.requests_for(f"/a/{WORDPRESS}")) == 1
    assert _rows(always)["Whole"]["status"] == "ok"

    # The default is false: no page is fetched at all.
    other = _serve_blog(
        server, "f", [{"title": "Teaser", "link": f"/a/{BLOGGER}", "description": TEASER}]
    )
    never = _config(tmp_path / "never", other)
    assert never.full_text_for(never.sources[0]) is False
    _poll(never, parser)
    assert server.requests_for(f"/a/{BLOGGER}") == []
    assert _rows(never) == {}


def test_content_from_chooses_what_each_output_publishes(
    tmp_path: Path, server: FeedServer, parser: SandboxParser
) -> None:
    server.route(f"/c/{BLOGGER}", body=_page(BLOGGER), content_type="text/html")
    url = _serve_blog(
        server,
        "c",
        [
            {"title": "Teaser", "link": f"/c/{BLOGGER}", "description": TEASER},
            {"title": "No page", "link": "/c/missing.html", "content": "<p>Own text only.</p>"},
        ],
    )
    outputs = [
        {"name": name, "formats": ["rss"], **({"content_from": name} if name != "dflt" else {})}
        for name in ("dflt", "full_text", "feed", "both")
    ]
    config = _config(tmp_path, url, outputs, full_text="auto")
    _poll(config, parser)
    phrase = PHRASES[BLOGGER]
    for name in ("dflt", "full_text"):  # the default is full_text
        entries = _published(config, name)
        assert phrase in _content(entries["Teaser"]), name
        assert "first lines of the post" not in _content(entries["Teaser"])
        # The feed's teaser stays as the summary (RSS description).
        assert "first lines of the post" in plain_text(entries["Teaser"].summary)
        # An entry without a full text (its page is missing) keeps the feed's text.
        assert "Own text only." in _content(entries["No page"])
    feed = _published(config, "feed")["Teaser"]
    assert "first lines of the post" in plain_text(feed.summary)
    assert phrase not in plain_text(feed.summary) and phrase not in _content(feed)
    both = _content(_published(config, "both")["Teaser"])
    assert both.index("first lines of the post") < both.index(phrase)

    # The entry's web page shows what the output's feeds publish.
    with Storage(config.database) as storage:
        (public_id,) = storage.db.execute(
            "SELECT public_id FROM entries WHERE title = 'Teaser'"
        ).fetchone()
    with serve(create_app(config)) as base, httpx.Client(base_url=base, timeout=10) as client:
        pages = {name: client.get(f"/outputs/{name}/{public_id}") for name in ("dflt", "feed")}
    assert [page.status_code for page in pages.values()] == [200, 200]
    assert phrase in pages["dflt"].text and phrase not in pages["feed"].text


# -- failures and limits --------------------------------------------------------------------------


def test_failed_pages_warn_and_only_transient_ones_are_retried(
    tmp_path: Path,
    server: FeedServer,
    parser: SandboxParser,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.route("/x/busy.html", status=503, body=b"busy", content_type="text/html")
    server.route("/x/gone.html", status=404, body=b"gone", content_type="text/html")
    huge = b"<html><body><p>" + b"x" * PAGE_MAX_BYTES + b"</p></body></html>"
    server.route("/x/huge.html", body=huge, content_type="text/html")
    server.route("/x/image.png", body=b"\x89PNG\r\n", content_type="image/png")
    private = f"http://localhost:{server.port}/x/private.html"  # another origin: a found URL
    server.route("/x/private.html", body=_page(LEMIRE), content_type="text/html")
    url = _serve_blog(
        server,
        "x",
        [
            {"title": "Busy", "link": "/x/busy.html", "description": TEASER},
            {"title": "Gone", "link": "/x/gone.html", "description": TEASER},
            {"title": "Huge", "link": "/x/huge.html", "description": TEASER},
            {"title": "Image", "link": "/x/image.png", "description": TEASER},
            {"title": "Private", "link": private, "description": TEASER},
        ],
    )
    config = _config(tmp_path, url, full_text=True)
    with caplog.at_level(logging.WARNING, logger="aggregator.fulltext"):
        _poll(config, parser)
    rows = _rows(config)
    assert {t: r["status"] for t, r in rows.items()} == {
        "Busy": "retry",
        "Gone": "failed",
        "Huge": "failed",
        "Image": "failed",
        "Private": "failed",
    }
    assert "limit" in rows["Huge"]["error"]
    # The private address was refused before any request reached it.
    assert server.requests_for("/x/private.html") == []
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("aggregator.fulltext")]
    assert len(lines) == 5 and all("\n" not in line for line in lines)
    assert all(line.startswith("blog: full text of http") for line in lines)
    assert any("/x/busy.html" in line and "tried again" in line for line in lines)
    assert any("localhost" in line and "/x/private.html" in line for line in lines)
    _shown_to_the_operator(config, rows)

    # The next poll tries again only the page that failed transiently; now it answers.
    server.route("/x/busy.html", body=_page(LEMIRE), content_type="text/html")
    results = _poll(config, parser)
    assert results[0].full_texts == 1
    counts = {
        p: len(server.requests_for(f"/x/{p}")) for p in ("busy.html", "gone.html", "huge.html")
    }
    assert counts == {"busy.html": 2, "gone.html": 1, "huge.html": 1}
    assert _rows(config)["Busy"]["status"] == "ok"


def _shown_to_the_operator(config: Any, rows: dict[str, dict[str, Any]]) -> None:
    """``aggregator status --json`` (through the CLI) and the status page (a real server) show
    the source's full text: pages by outcome and the newest error."""
    result = CliRunner().invoke(main, ["--config", str(config.config_path), "status", "--json"])
    assert result.exit_code == 0, result.output
    (blog,) = json.loads(result.output)
    full = blog["full_text"]
    assert {key: full[key] for key in ("ok", "retry", "failed", "skipped")} == {
        "ok": 0,
        "retry": 1,
        "failed": 4,
        "skipped": 0,
    }
    # The newest error of a page to retry or given up (one poll: any of them).
    assert full["last_error"] in {row["error"] for row in rows.values()}
    assert full["last_error_at"] == max(row["checked_at"] for row in rows.values())
    note = f"full text: 1 retry, 4 failed; last error: {full['last_error']}"
    assert note in blog["notes"]
    with serve(create_app(config)) as base:
        page = html.fromstring(httpx.get(f"{base}/status", timeout=10).text)
    assert note in [div.text_content() for div in page.cssselect("tr.notes .note")]


def test_a_hostile_page_is_cut_short_by_the_extraction_limits(
    tmp_path: Path,
    server: FeedServer,
    parser: SandboxParser,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """170,000 paragraphs in 1.9 MB (under the 2 MB page cap): trafilatura needs far more than
    the worker's memory.

    An extraction may add 64 MB to its worker in these tests, so the page reaches it at once:
    the entry's full text fails with the limit named, the poll and the other entry do not (the
    worker is replaced for the next page).
    """
    hostile = b"<html><body><article>" + b"<p>w w w</p>" * 170_000
    server.route(
        "/h/hostile.html", body=hostile + b"</article></body></html>", content_type="text/html"
    )
    server.route(f"/h/{LEMIRE}", body=_page(LEMIRE), content_type="text/html")
    url = _serve_blog(
        server,
        "h",
        [
            # Newest first: the hostile page is extracted first, the fine one after it.
            {"title": "Fine", "link": f"/h/{LEMIRE}", "description": TEASER},
            {"title": "Hostile", "link": "/h/hostile.html", "description": TEASER},
        ],
    )
    config = _config(tmp_path, url, full_text=True)
    with caplog.at_level(logging.WARNING, logger="aggregator.fulltext"):
        results = _poll(config, parser)
    assert results[0].full_texts == 1
    rows = _rows(config)
    assert rows["Hostile"]["status"] == "failed" and "64 MB" in rows["Hostile"]["error"]
    assert rows["Fine"]["status"] == "ok"
    pages = [r.path for r in server.requests if r.path.startswith("/h/") and "feed" not in r.path]
    assert pages == ["/h/hostile.html", f"/h/{LEMIRE}"]  # the fine page came after the hostile
    assert any("hostile.html" in r.getMessage() for r in caplog.records)


# -- the corpus -----------------------------------------------------------------------------------


def test_most_real_blog_pages_give_an_article(parser: SandboxParser) -> None:
    """Every blog page of the real-world corpus through the extraction worker (at a cap below
    the default): the share that gives at least 200 characters of text (24 of 24 when
    written)."""
    root = corpus(REALWORLD)
    pages = [
        item for item in json.loads((root / "sources.json").read_text()) if item["kind"] == "page"
    ]
    lengths = {}
    for item in pages:
        article = parser.extract_article(
            (root / "files" / item["file"]).read_bytes(), "https://blog.example/post"
        )
        lengths[item["file"]] = len(plain_text(article, limit=None))
    good = sum(length >= 200 for length in lengths.values())
    print(f"full text: {good} of {len(pages)} real blog pages give >= 200 characters")
    assert len(pages) == 24
    assert good / len(pages) >= 0.9, lengths
