"""The web pages against the feeds they mirror, served by a real uvicorn on 127.0.0.1:

* an entry page exists only for an entry the output's feeds show (rules, sources, pages);
* every answer carries the security headers, pages a CSP without inline script or style;
* ``images: strip`` removes remote images from the feeds and the pages;
* output and entry pages are cached, answer ETag / 304, and change after a publish;
* ``/healthz`` and ``/metrics`` give details only to loopback clients.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import feedparser
import httpx
import pytest
from starlette.testclient import TestClient
from support import serve

from aggregator.config.loading import load_config
from aggregator.config.schema import AppConfig
from aggregator.poll.poller import Poller
from aggregator.publish.publisher import Publisher
from aggregator.serve.httpserver import make_server
from aggregator.serve.server import create_app
from aggregator.storage import Storage

IMAGE = "https://tracker.example.net/pixel.gif"


def rss(title: str, items: list[tuple[str, str]]) -> str:
    body = "".join(
        f"<item><title>{name}</title><link>https://blog.example.org/{guid}</link>"
        f"<guid>https://blog.example.org/{guid}</guid>"
        f"<pubDate>Mon, 0{1 + n % 8} Jan 2024 10:00:00 GMT</pubDate>"
        f'<description>&lt;p&gt;Text of {name}&lt;img src="{IMAGE}" alt="x"&gt;&lt;/p&gt;'
        f"</description></item>"
        for n, (guid, name) in enumerate(items)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>https://blog.example.org/</link><description>d</description>{body}"
        "</channel></rss>"
    )


@dataclass
class Site:
    config: AppConfig
    base: str

    def publish(self) -> None:
        with Storage(self.config.database) as storage:
            Publisher(self.config, storage).publish()

    def poll(self) -> None:
        with Poller(self.config) as poller:
            assert all(result.ok for result in poller.poll_many(self.config.sources))

    def ids(self) -> dict[str, str]:
        """Entry titles to public ids, for every stored entry."""
        with Storage(self.config.database) as storage:
            rows = storage.db.execute("SELECT title, public_id FROM entries").fetchall()
        return dict(rows)


def make_site(folder: Path, extra_output: str = "") -> AppConfig:
    (folder / "blog.rss").write_text(
        rss("Blog", [("keep", "Keep me"), ("drop", "Drop me"), ("old", "Old one")])
    )
    (folder / "other.rss").write_text(rss("Other", [("else", "Elsewhere")]))
    (folder / "aggregator.yaml").write_text(
        f"""
database: var/aggregator.db
public_dir: var/public
sources:
  - {{name: blog, url: blog.rss}}
  - {{name: other, url: other.rss}}
outputs:
  - name: main
    sources: [blog]
    limit: 1
    pages: 2
    exclude:
      - title: "^Drop"
  - {{name: plain, sources: [blog], images: strip}}
{extra_output}"""
    )
    return load_config(folder / "aggregator.yaml")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    config = make_site(tmp_path)
    site = Site(config, "")
    site.poll()
    site.publish()
    with serve(create_app(config)) as base:
        site.base = base
        yield site


def get(site: Site, path: str, **headers: str) -> httpx.Response:
    return httpx.get(site.base + path, headers=headers, timeout=10)


# -- item 7: pages show exactly what the feeds show ------------------------------------------


def test_an_entry_page_exists_only_for_what_the_feeds_show(site: Site) -> None:
    ids = site.ids()
    feed_ids = set()
    for path in ("main.atom", "main/page/2.atom"):
        parsed = feedparser.parse((site.config.public_dir / "feeds" / path).read_bytes())
        feed_ids |= {entry.title for entry in parsed.entries}
    assert feed_ids == {"Keep me", "Old one"}
    assert get(site, f"/outputs/main/{ids['Keep me']}").status_code == 200
    assert get(site, f"/outputs/main/{ids['Old one']}").status_code == 200  # on page 2
    # Excluded by the output's rules, and from a source the output does not include.
    assert get(site, f"/outputs/main/{ids['Drop me']}").status_code == 404
    assert get(site, f"/outputs/main/{ids['Elsewhere']}").status_code == 404
    # The same entries where another output's rules keep them.
    assert get(site, f"/outputs/plain/{ids['Drop me']}").status_code == 200


def test_an_entry_beyond_the_last_feed_page_has_no_page(tmp_path: Path) -> None:
    config = make_site(tmp_path, "  - {name: short, sources: [blog], limit: 1, pages: 1}\n")
    site = Site(config, "")
    site.poll()
    site.publish()
    with serve(create_app(config)) as base:
        site.base = base
        ids = site.ids()
        shown = feedparser.parse((config.public_dir / "feeds" / "short.atom").read_bytes())
        assert [entry.title for entry in shown.entries] == ["Old one"]  # newest first
        assert get(site, f"/outputs/short/{ids['Old one']}").status_code == 200
        assert get(site, f"/outputs/short/{ids['Keep me']}").status_code == 404


# -- item 8: security headers, no inline script or style, images: strip ----------------------


def test_every_answer_carries_the_security_headers(site: Site) -> None:
    ids = site.ids()
    pages = ["/", "/outputs/main", f"/outputs/main/{ids['Keep me']}", "/outputs/plain"]
    for path in pages:
        answer = get(site, path)
        assert answer.status_code == 200, path
        csp = answer.headers["content-security-policy"]
        directives = dict(item.strip().split(" ", 1) for item in csp.split(";"))
        assert directives["default-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert directives["script-src"] == "'none'"
        assert "unsafe-inline" not in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
        # Nothing inline that the policy would block: no script, no style element or attribute.
        assert not re.search(r"<script|<style|\sstyle=|\son[a-z]+=", answer.text, re.I), path
        for sheet in re.findall(r'<link rel="stylesheet" href="([^"]+)"', answer.text):
            css = get(site, sheet)
            assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    for path in ("/feeds/main.atom", "/feeds/main.json", "/healthz", "/opml", "/nothing"):
        answer = get(site, path)
        assert answer.headers["x-content-type-options"] == "nosniff", path


def test_images_strip_removes_remote_images_from_feeds_and_pages(site: Site) -> None:
    ids = site.ids()
    feeds = site.config.public_dir / "feeds"
    for name in ("plain.atom", "plain.rss", "plain.json"):
        text = (feeds / name).read_text()
        assert "Text of Keep me" in text and IMAGE not in text, name
    assert IMAGE in (feeds / "main.atom").read_text()  # images: keep (the default)
    stripped = get(site, f"/outputs/plain/{ids['Keep me']}")
    assert "Text of Keep me" in stripped.text and IMAGE not in stripped.text
    assert "https:" not in stripped.headers["content-security-policy"].split("img-src")[1]
    kept = get(site, f"/outputs/main/{ids['Keep me']}")
    assert IMAGE in kept.text
    assert "img-src 'self' data: https:" in kept.headers["content-security-policy"]


def test_images_is_validated(tmp_path: Path) -> None:
    from aggregator.errors import ConfigError

    path = tmp_path / "aggregator.yaml"
    path.write_text("outputs:\n  - name: all\n    images: hide\n")
    with pytest.raises(ConfigError, match=r"aggregator.yaml:3: outputs\[0\]\.images"):
        load_config(path)


# -- item 10: cached pages, ETag / 304, invalidated by a publish -----------------------------


def test_pages_answer_etag_and_304_and_change_after_a_publish(site: Site) -> None:
    ids = site.ids()
    for path in ("/outputs/main", f"/outputs/main/{ids['Keep me']}"):
        first = get(site, path)
        etag = first.headers["etag"]
        assert get(site, path).headers["etag"] == etag
        again = get(site, path, **{"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
    # Served from the cache: the database may even go away until the next publish.
    site.config.database.rename(site.config.database.with_suffix(".moved"))
    assert get(site, "/outputs/main").status_code == 200
    site.config.database.with_suffix(".moved").rename(site.config.database)
    # A new entry, polled and published: the page changes and the old ETag no longer matches.
    (site.config.public_dir.parent.parent / "blog.rss").write_text(
        rss("Blog", [("keep", "Keep me"), ("drop", "Drop me"), ("old", "Old one"), ("n", "Newer")])
    )
    site.poll()
    before = get(site, "/outputs/main", **{"If-None-Match": etag})
    assert before.status_code == 200 and "Newer" not in before.text  # not published yet
    site.publish()
    after = get(site, "/outputs/main")
    assert "Newer" in after.text and after.headers["etag"] != before.headers["etag"]
    assert get(site, f"/outputs/main/{site.ids()['Newer']}").status_code == 200


# -- item 9: health and metrics details only for loopback clients ----------------------------


def failing_config(tmp_path: Path, public: bool = False) -> AppConfig:
    """A source whose polls fail with an error that names an internal address."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]  # nothing listens there once the probe is closed
    (tmp_path / "aggregator.yaml").write_text(
        f"""
database: var/aggregator.db
public_dir: var/public
allow_private_networks: false
server: {{host: 0.0.0.0, public_health_details: {str(public).lower()}}}
defaults: {{timeout: 2s}}
sources:
  - {{name: intranet, url: "http://127.0.0.1:{closed}/internal-feed"}}
outputs: [{{name: all}}]
"""
    )
    config = load_config(tmp_path / "aggregator.yaml")
    with Poller(config) as poller:
        for _ in range(3):
            poller.poll_many(config.sources)
    return config


def _detail(health: dict) -> str:
    (stale,) = health["stale"]
    assert "Connection refused" in stale["last_error"]
    return f"{stale['name']}: refused"


def test_health_details_only_for_loopback_clients(tmp_path: Path) -> None:
    config = failing_config(tmp_path)
    app = create_app(config)
    local = TestClient(app, client=("127.0.0.1", 5000)).get("/healthz").json()
    assert _detail(local) == "intranet: refused"
    for client in (("203.0.113.7", 5000), ("10.1.2.3", 5000), ("::ffff:10.1.2.3", 5000)):
        stranger = TestClient(app, client=client)
        answer = stranger.get("/healthz").json()
        assert answer == {"status": "degraded", "sources": 1, "stale": 1, "retired": 0}
        metrics = stranger.get("/metrics").text
        assert "intranet" not in metrics and "aggregator_source_entries 0.0" in metrics
    assert 'source="intranet"' in TestClient(app, client=("::1", 1)).get("/metrics").text
    opened = create_app(failing_config(tmp_path / "public", public=True))
    answer = TestClient(opened, client=("203.0.113.7", 5000)).get("/healthz").json()
    assert _detail(answer) == "intranet: refused"


def _local_non_loopback_address() -> str | None:
    """An address of this machine that is not loopback (the one a default route uses)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent for a UDP connect
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_health_over_a_real_socket_from_a_non_loopback_address(tmp_path: Path) -> None:
    address = _local_non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to connect from")
    config = failing_config(tmp_path)
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        port = probe.getsockname()[1]
    config = config.model_copy(update={"server": config.server.model_copy(update={"port": port})})
    import threading
    import time

    server = make_server(create_app(config), config.server, log_level="critical")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.02)
    try:
        remote = httpx.get(f"http://{address}:{port}/healthz", timeout=5).json()
        local = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()
    finally:
        server.should_exit = True
        thread.join(10)
    assert remote == {"status": "degraded", "sources": 1, "stale": 1, "retired": 0}
    assert _detail(local) == "intranet: refused"
