"""The web pages rendered by headless Chromium: what a person sees, on desktop and phone widths.

Runs Debian's ``chromium`` (``/usr/bin/chromium``) against the real server on 127.0.0.1, reads
the rendered DOM (``--dump-dom``) and takes a screenshot of each page at two widths. Set
``AGGREGATOR_SCREENSHOTS=DIR`` to keep the screenshots. Skipped, with a message saying so, where
Chromium is not installed (.ci/run installs it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import html
from support import (
    SAMPLE_CONFIG,
    demo_config_path,
    poll_and_publish,
    sample_config_path,
    serve,
    serve_folder,
)

from aggregator.config.schema import AppConfig
from aggregator.serve.server import create_app
from aggregator.serve.web import build_thread
from aggregator.storage import Storage

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Headless Chromium in a subprocess: `make test-fast` leaves these out.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Chromium is not installed (apt-get install chromium); the web page tests need it",
    ),
]
WIDTHS = {"desktop": (1280, 900), "mobile": (390, 1600)}


@dataclass(frozen=True)
class Browser:
    profile: Path
    shots: Path

    def run(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        assert CHROMIUM is not None
        return subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={self.profile}",
                *arguments,
            ],
            capture_output=True,
            text=True,
            timeout=90,
            stdin=subprocess.DEVNULL,
        )

    def dom(self, url: str) -> html.HtmlElement:
        result = self.run("--dump-dom", url)
        assert result.returncode == 0, result.stderr[-2000:]
        return html.fromstring(result.stdout)

    def screenshots(self, url: str, name: str) -> list[Path]:
        paths = []
        for label, (width, height) in WIDTHS.items():
            path = self.shots / f"{name}-{label}.png"
            result = self.run(f"--window-size={width},{height}", f"--screenshot={path}", url)
            assert result.returncode == 0, result.stderr[-2000:]
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert path.stat().st_size > 5000  # a rendered page, not a blank one
            paths.append(path)
        return paths


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Browser:
    keep = os.environ.get("AGGREGATOR_SCREENSHOTS")
    shots = Path(keep) if keep else tmp_path_factory.mktemp("screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    return Browser(tmp_path_factory.mktemp("chromium-profile"), shots)


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AppConfig, str]]:
    config = poll_and_publish(demo_config_path(tmp_path_factory.mktemp("demo-web")))
    with serve(create_app(config)) as base:
        yield config, base


@pytest.fixture(scope="module")
def sample_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AppConfig, str]]:
    with serve_folder(SAMPLE_CONFIG) as origin:
        config = poll_and_publish(sample_config_path(tmp_path_factory.mktemp("web"), origin))
    with serve(create_app(config)) as base:
        yield config, base


def _text(element: html.HtmlElement) -> str:
    return " ".join(element.text_content().split())


def test_the_index_lists_the_outputs(browser: Browser, demo_site: tuple[AppConfig, str]) -> None:
    config, base = demo_site
    page = browser.dom(f"{base}/")
    titles = [_text(h) for h in page.cssselect("li.output h2")]
    assert titles == [output.display_title for output in config.outputs]
    links = {a.get("href") for a in page.cssselect("li.output .subscribe a")}
    assert f"{config.server.public_url}/feeds/all.json" in links
    assert page.cssselect('link[rel="alternate"][type="application/atom+xml"]')
    browser.screenshots(f"{base}/", "index")


def test_an_output_page_shows_its_entries(
    browser: Browser, demo_site: tuple[AppConfig, str]
) -> None:
    config, base = demo_site
    page = browser.dom(f"{base}/outputs/all")
    with Storage(config.database) as storage:
        stored = storage.list_entries(None, 50)
    cards = page.cssselect("li.entry")
    assert [_text(card.cssselect("h2")[0]) for card in cards] == [e.title for e in stored]
    ferry = next(card for card in cards if "Ferry Schedule" in _text(card))
    assert "Riverbank Notes" in _text(ferry) and "by Marta Lind" in _text(ferry)
    assert "3 comments" in _text(ferry.cssselect(".comments-link")[0])
    assert ferry.cssselect("time")[0].get("datetime").startswith("2026-11-25T08:30:00")
    thread_link = ferry.cssselect(".comments-link")[0].get("href")
    assert thread_link.startswith("/outputs/all/") and thread_link.endswith("#comments")
    browser.screenshots(f"{base}/outputs/all", "output")


def test_an_entry_page_shows_the_post_and_its_comments(
    browser: Browser, demo_site: tuple[AppConfig, str]
) -> None:
    config, base = demo_site
    with Storage(config.database) as storage:
        entry = next(e for e in storage.list_entries(None, 50) if "Ferry" in e.title)
    url = f"{base}/outputs/all/{entry.public_id}"
    page = browser.dom(url)
    assert _text(page.cssselect("article.post h1")[0]) == "The Ferry Schedule Nobody Reads"
    assert "nobody noticed" in _text(page.cssselect("article.post .content")[0])
    authors = [_text(w) for w in page.cssselect("li.comment .who")]
    assert authors == ["Eugene", "Paula", "Ole"]
    assert "3 comments" in _text(page.cssselect("#comments h2")[0])
    browser.screenshots(url, "entry")


def test_threaded_replies_are_nested(browser: Browser, sample_site: tuple[AppConfig, str]) -> None:
    config, base = sample_site
    with Storage(config.database) as storage:
        entry = next(e for e in storage.list_entries(["blog"], 10) if e.comment_count)
        comments = storage.list_comments(entry.id)
    url = f"{base}/outputs/everything/{entry.public_id}"
    page = browser.dom(url)
    assert _text(page.cssselect("article.post h1")[0]) == "A bold claim & a thread"
    by_author = {c.author: c.public_id for c in comments}

    def parents(author: str) -> list[str]:
        item = page.cssselect(f"#c-{by_author[author]}")[0]
        return [
            _text(li.cssselect(".who")[0])
            for li in item.iterancestors("li")
            if "comment" in li.get("class", "")
        ]

    assert parents("Gamma") == []
    assert parents("Delta") == ["Gamma"]
    assert parents("Epsilon") == ["Delta", "Gamma"]
    assert parents("Zeta") == ["Gamma"]
    assert parents("Eta") == ["anonymous"]
    assert len(build_thread(comments)) == 3  # Gamma, the anonymous comment, Theta
    # Nothing the source wrote runs as a script, and the page needs none.
    assert not page.cssselect("script")
    browser.screenshots(url, "thread")
    # The output page of the sample, with an escaped title and a podcast entry.
    listing = browser.dom(f"{base}/outputs/everything")
    assert _text(listing.cssselect("h1")[0]) == "Everything & more <sample>"
    browser.screenshots(f"{base}/outputs/everything", "sample-output")
