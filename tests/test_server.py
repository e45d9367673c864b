"""Tests for the HTTP app (aggregator.serve.server), served by uvicorn on 127.0.0.1 in a thread.

The published files come from a real poll of local fixture feeds and a real publish. Raw paths
(``..``, ``%2f``) are sent with http.client, which does not normalise them the way httpx does.
"""

from __future__ import annotations

import gzip
import http.client
import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path

import feedparser
import httpx
import pytest
import uvicorn

from aggregator.config.loading import load_config
from aggregator.poll.poller import Poller
from aggregator.publish.publisher import Publisher
from aggregator.serve.server import create_app
from aggregator.storage import Storage

FEEDS = Path(__file__).parent / "data" / "feeds"
SECRET = b"secret-config-text"


class Site:
    def __init__(self, config, port: int):
        self.config = config
        self.port = port
        self.feeds = config.public_dir / "feeds"
        self.base = f"http://127.0.0.1:{port}"
        self.client = httpx.Client(base_url=self.base, timeout=5)

    def raw(self, method: str, path: str, headers: dict[str, str] | None = None):
        """Send ``path`` exactly as written; returns (status, headers, body)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.request(method, path, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("site")
    (folder / "feeds").mkdir()
    for name in ("formats/rss2.rss", "formats/atom10.atom", "formats/rss10.rdf"):
        shutil.copy(FEEDS / name, folder / "feeds" / Path(name).name)
    port = _free_port()
    (folder / "aggregator.yaml").write_text(
        f"""
database: var/aggregator.db
public_dir: var/public
server: {{host: 127.0.0.1, port: {port}}}
sources:
  - {{name: mill, url: feeds/rss2.rss, tags: [town]}}
  - {{name: light, url: feeds/atom10.atom, tags: [coast]}}
  - {{name: orchard, url: feeds/rss10.rdf, tags: [town]}}
outputs:
  - {{name: all, title: Everything & more}}
  - {{name: town, title: Town, tags: [town], formats: [atom, rss]}}
"""
    )
    config = load_config(folder / "aggregator.yaml")
    with Poller(config) as poller:
        assert all(r.ok for r in poller.poll_many(config.sources))
    with Storage(config.database) as storage:
        Publisher(config, storage).publish()
    # Files a request must never reach: the config itself, and one beside the feeds folder.
    (config.public_dir / "secret.atom").write_bytes(SECRET)
    (folder / "var" / "secret.atom").write_bytes(SECRET)

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    site = Site(config, port)
    yield site
    site.client.close()
    server.should_exit = True
    thread.join(5)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- serving feeds -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("all.atom", "application/atom+xml"),
        ("all.rss", "application/rss+xml"),
        ("all.json", "application/feed+json"),
        ("town.atom", "application/atom+xml"),
    ],
)
def test_get_feed(site, name, media_type):
    response = site.client.get(f"/feeds/{name}")

    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type
    assert response.content == (site.feeds / name).read_bytes()
    assert response.headers["etag"].startswith('"') and response.headers["etag"].endswith('"')
    modified = parsedate_to_datetime(response.headers["last-modified"])
    mtime = datetime.fromtimestamp((site.feeds / name).stat().st_mtime, tz=UTC)
    assert abs(modified - mtime) < timedelta(seconds=1)


def test_served_atom_reads_back(site):
    parsed = feedparser.parse(site.client.get("/feeds/all.atom").content)

    assert parsed.bozo == 0
    assert len(parsed.entries) == 7


def test_etag_is_stable(site):
    first = site.client.get("/feeds/all.atom").headers["etag"]
    second = site.client.get("/feeds/all.atom").headers["etag"]

    assert first == second
    assert first != site.client.get("/feeds/all.rss").headers["etag"]


@pytest.mark.parametrize("form", ["{etag}", "W/{etag}", '"other", {etag}', "*"])
def test_if_none_match_gives_304(site, form):
    etag = site.client.get("/feeds/all.atom").headers["etag"]

    response = site.client.get("/feeds/all.atom", headers={"If-None-Match": form.format(etag=etag)})

    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag


def test_if_none_match_mismatch_wins_over_if_modified_since(site):
    last_modified = site.client.get("/feeds/all.atom").headers["last-modified"]

    response = site.client.get(
        "/feeds/all.atom",
        headers={"If-None-Match": '"stale"', "If-Modified-Since": last_modified},
    )

    assert response.status_code == 200
    assert response.content


def test_if_modified_since_gives_304(site):
    last_modified = site.client.get("/feeds/all.atom").headers["last-modified"]
    later = format_datetime(parsedate_to_datetime(last_modified) + timedelta(hours=1), usegmt=True)

    same = site.client.get("/feeds/all.atom", headers={"If-Modified-Since": last_modified})
    after = site.client.get("/feeds/all.atom", headers={"If-Modified-Since": later})

    assert same.status_code == 304
    assert after.status_code == 304


def test_if_modified_since_earlier_gives_200(site):
    last_modified = site.client.get("/feeds/all.atom").headers["last-modified"]
    earlier = format_datetime(parsedate_to_datetime(last_modified) - timedelta(days=1), usegmt=True)

    response = site.client.get("/feeds/all.atom", headers={"If-Modified-Since": earlier})

    assert response.status_code == 200


def test_unreadable_if_modified_since_gives_200(site):
    response = site.client.get("/feeds/all.atom", headers={"If-Modified-Since": "yesterday"})

    assert response.status_code == 200


def test_head_has_headers_and_no_body(site):
    get_status, get_headers, get_body = site.raw("GET", "/feeds/all.atom")
    status, headers, body = site.raw("HEAD", "/feeds/all.atom")

    assert (get_status, status) == (200, 200)
    assert body == b""
    assert headers["content-length"] == str(len(get_body))
    assert headers["etag"] == get_headers["etag"]
    assert headers["last-modified"] == get_headers["last-modified"]
    assert headers["content-type"] == get_headers["content-type"]


def test_gzip_when_asked(site):
    plain = (site.feeds / "all.atom").read_bytes()

    status, headers, body = site.raw("GET", "/feeds/all.atom", {"Accept-Encoding": "gzip"})

    assert status == 200
    assert headers["content-encoding"] == "gzip"
    assert "accept-encoding" in headers["vary"].lower()
    assert gzip.decompress(body) == plain
    assert len(body) < len(plain)


def test_no_gzip_unless_asked(site):
    status, headers, body = site.raw("GET", "/feeds/all.atom")

    assert status == 200
    assert "content-encoding" not in headers
    assert body == (site.feeds / "all.atom").read_bytes()


def test_changed_file_is_served_fresh(site):
    path = site.feeds / "extra.atom"
    path.write_bytes((FEEDS / "formats" / "atom10.atom").read_bytes())
    first = site.client.get("/feeds/extra.atom")
    path.write_bytes((FEEDS / "formats" / "atom10.atom").read_bytes() + b"<!-- v2 -->\n")

    second = site.client.get("/feeds/extra.atom", headers={"If-None-Match": first.headers["etag"]})

    assert second.status_code == 200
    assert second.content.endswith(b"<!-- v2 -->\n")
    assert second.headers["etag"] != first.headers["etag"]
    path.unlink()


# -- what is not served --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["nosuch.atom", "all.xml", "all.ATOM", "all", ".atom"])
def test_unknown_feed_is_404_with_short_text(site, name):
    response = site.client.get(f"/feeds/{name}")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/plain")
    assert len(response.text) < 100
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    "path",
    [
        "/feeds/..%2f..%2fetc%2fpasswd",
        "/feeds/../config.yaml",
        "/feeds/../aggregator.yaml",
        "/feeds/../secret.atom",
        "/feeds/..%2fsecret.atom",
        "/feeds/%2e%2e/secret.atom",
        "/feeds/%2e%2e%2f%2e%2e%2fsecret.atom",
        "/feeds/....//secret.atom",
        "/feeds//etc/passwd",
        "/feeds/%2fetc%2fpasswd",
        "/feeds/all.atom%00.json",
        "/feeds/..\\secret.atom",
    ],
)
def test_path_traversal_is_404(site, path):
    status, _, body = site.raw("GET", path)

    assert status == 404, body
    assert SECRET not in body
    assert b"root:" not in body


def test_symlink_out_of_the_feeds_folder_is_404(site):
    link = site.feeds / "escape.atom"
    link.symlink_to(site.config.public_dir / "secret.atom")
    try:
        status, _, body = site.raw("GET", "/feeds/escape.atom")
    finally:
        link.unlink()

    assert status == 404
    assert SECRET not in body


# -- the index page ------------------------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.alternates: list[dict[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "link" and attributes.get("rel") == "alternate":
            self.alternates.append(attributes)


def test_index_lists_outputs_with_autodiscovery(site):
    response = site.client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    parser = _Links()
    parser.feed(response.text)
    found = {(link["type"], link["href"]) for link in parser.alternates}
    assert found == {
        ("application/atom+xml", f"{site.base}/feeds/all.atom"),
        ("application/rss+xml", f"{site.base}/feeds/all.rss"),
        ("application/feed+json", f"{site.base}/feeds/all.json"),
        ("application/atom+xml", f"{site.base}/feeds/town.atom"),
        ("application/rss+xml", f"{site.base}/feeds/town.rss"),
    }
    assert all(link.get("title") for link in parser.alternates)
    assert "Everything &amp; more" in response.text  # titles are escaped
    for href in {href for _, href in found}:
        assert site.client.get(href).status_code == 200, href


def test_index_head(site):
    status, headers, body = site.raw("HEAD", "/")

    assert status == 200
    assert body == b""
    assert headers["content-type"].startswith("text/html")
