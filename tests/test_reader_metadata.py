"""What readers show of our comment metadata (project issue 20).

Readers disagree on where a post's comments are announced. Read in their source code:

========================  ===============  ================  ===========================  ======================
reader                    RSS <comments>   wfw:commentRss    slash:comments / thr:total   Atom rel="replies"
========================  ===============  ================  ===========================  ======================
Liferea                   link             thread            slash:comments               no type, or atom+xml
RSS Guard                 no               thread            no                           atom+xml
Tiny Tiny RSS             link             no                both                         text/html only
Miniflux, QuiteRSS        link             no                no                           text/html only
========================  ===============  ================  ===========================  ======================

Each ``read_as_*`` function below reads a published document the way one reader does (the
element and attribute it takes, nothing else), so each reader's behaviour is checked without
the reader itself. A followed blog (comments on by default) and a blog with ``comments: false``
are polled from a real HTTP server into a real SQLite file, published, and served by the real
app on the port ``server.base_url`` names: every link a reader takes is then opened over HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import feedparser
import httpx
import pytest
from blogsim import START, Blog, Post
from factories import Clock
from lxml import etree
from support import free_port, serve

from aggregator.config.loading import load_config
from aggregator.config.schema import AppConfig
from aggregator.poll.poller import Poller
from aggregator.publish.publisher import Publisher
from aggregator.serve.server import create_app
from aggregator.storage import Storage

ATOM = "http://www.w3.org/2005/Atom"
THR = "http://purl.org/syndication/thread/1.0"
SLASH = "http://purl.org/rss/1.0/modules/slash/"
WFW = "http://wellformedweb.org/CommentAPI/"
D = timedelta(days=1)
H = timedelta(hours=1)


@dataclass(frozen=True)
class Site:
    config: AppConfig
    base: str
    followed: Blog
    busy: Post
    quiet_blog: Blog
    quiet: Post

    def path(self, name: str) -> Path:
        return self.config.public_dir / "feeds" / name

    def entry_id(self, link: str) -> str:
        with Storage(self.config.database) as storage:
            return storage.find_entry(link).public_id


CONFIG = """\
database: {tmp}/aggregator.db
public_dir: {tmp}/public
server:
  port: {port}
  base_url: http://127.0.0.1:{port}
sources:
  - name: wp                      # comments followed: the default
    url: {followed}
    title: Followed Blog
  - name: elsewhere
    url: {unfollowed}
    title: Unfollowed Blog
    comments: false               # opted out: the source's own page and count pass through
outputs:
  - name: all
    title: Everything
    formats: [atom, rss, json]
"""


@pytest.fixture
def site(tmp_path: Path, blogs: Callable[..., Blog], clock: Clock) -> Iterator[Site]:
    followed = blogs("/wp", "wordpress")
    busy = followed.add_post("busy-post", "A Busy Post", START - 2 * D)
    first = followed.comment(busy, "Alice", "First!", START - 2 * D + H)
    followed.comment(busy, "Bob", "Second.", START - 2 * D + 2 * H)
    followed.comment(busy, "Carol", "Replying to Alice.", START - 2 * D + 3 * H, parent=first)
    quiet_blog = blogs("/el", "wordpress")
    quiet = quiet_blog.add_post("elsewhere-post", "A Post Elsewhere", START - D)
    for n in range(7):
        quiet_blog.comment(quiet, f"Reader {n}", "Hello.", START - D + n * H)
    port = free_port()
    path = tmp_path / "aggregator.yaml"
    path.write_text(
        CONFIG.format(
            tmp=tmp_path,
            port=port,
            followed=followed.origin + "/wp/feed/",
            unfollowed=quiet_blog.origin + "/el/feed/atom/",
        ),
        encoding="utf-8",
    )
    config = load_config(path)
    with Poller(config, clock=clock, manual=True) as poller:
        assert all(result.ok for result in poller.poll_many(list(config.sources)))
    with Storage(config.database) as storage:
        Publisher(config, storage).publish()
    with serve(create_app(config), port) as base:
        yield Site(config, base, followed, busy, quiet_blog, quiet)


def _item(site: Site, fmt: str, link: str) -> etree._Element:
    root = etree.fromstring(site.path(f"all.{fmt}").read_bytes())
    if fmt == "atom":
        return next(
            e
            for e in root.iter(f"{{{ATOM}}}entry")
            if any(a.get("href") == link for a in e.iter(f"{{{ATOM}}}link"))
        )
    return next(i for i in root.iter("item") if i.findtext("link") == link)


# -- the readers, each reading only what its source code reads -----------------------------------


@dataclass(frozen=True)
class ReaderView:
    """What a reader takes from one entry: a comments link, a count, a comment feed."""

    link: str | None = None
    count: int | None = None
    thread: str | None = None


def _replies(item: etree._Element, wanted: Callable[[str | None], bool]) -> etree._Element | None:
    return next(
        (
            link
            for link in item.findall(f"{{{ATOM}}}link")
            if link.get("rel") == "replies" and wanted(link.get("type"))
        ),
        None,
    )


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.strip().isdigit() else None


def read_as_liferea(item: etree._Element, fmt: str) -> ReaderView:
    """Liferea: RSS ``<comments>`` (link), ``slash:comments`` (count), ``wfw:commentRss`` (its
    thread, shown under the post); in Atom a replies link with no type or ``atom+xml``."""
    if fmt == "rss":
        return ReaderView(
            item.findtext("comments"),
            _int(item.findtext(f"{{{SLASH}}}comments")),
            item.findtext(f"{{{WFW}}}commentRss"),
        )
    link = _replies(item, lambda kind: kind in (None, "application/atom+xml"))
    return ReaderView(thread=link.get("href") if link is not None else None)


def read_as_rss_guard(item: etree._Element, fmt: str) -> ReaderView:
    """RSS Guard: the thread from ``wfw:commentRss``, or an Atom ``atom+xml`` replies link."""
    if fmt == "rss":
        return ReaderView(thread=item.findtext(f"{{{WFW}}}commentRss"))
    link = _replies(item, lambda kind: kind == "application/atom+xml")
    return ReaderView(thread=link.get("href") if link is not None else None)


def read_as_tiny_tiny_rss(item: etree._Element, fmt: str) -> ReaderView:
    """Tiny Tiny RSS: "(N comments)" from ``<comments>`` or a ``text/html`` replies link, the
    count from ``slash:comments``, else ``thr:total``."""
    count = _int(item.findtext(f"{{{SLASH}}}comments"))
    if count is None:
        count = _int(item.findtext(f"{{{THR}}}total"))
    if fmt == "rss":
        return ReaderView(item.findtext("comments"), count)
    link = _replies(item, lambda kind: kind == "text/html")
    return ReaderView(link.get("href") if link is not None else None, count)


def read_as_miniflux(item: etree._Element, fmt: str) -> ReaderView:
    """Miniflux and QuiteRSS: a "Comments" link from ``<comments>`` or a ``text/html`` replies
    link; no count."""
    if fmt == "rss":
        return ReaderView(item.findtext("comments"))
    link = _replies(item, lambda kind: kind == "text/html")
    return ReaderView(link.get("href") if link is not None else None)


read_as_quiterss = read_as_miniflux


# -- published documents read back with feedparser -----------------------------------------------


def test_atom_entries_carry_an_html_replies_link_beside_the_comment_feed(site: Site) -> None:
    public_id = site.entry_id(site.followed.post_url(site.busy))
    page = f"{site.base}/outputs/all/{public_id}"
    parsed = feedparser.parse(site.path("all.atom").read_bytes())
    assert not parsed.bozo, parsed.get("bozo_exception")
    busy = next(e for e in parsed.entries if e.link == site.followed.post_url(site.busy))
    replies = [(r.type, r.href, r.get("thr:count")) for r in busy.links if r.rel == "replies"]
    assert replies == [
        ("application/atom+xml", f"{site.base}/feeds/all/{public_id}/comments.atom", "3"),
        ("text/html", page, "3"),
    ]
    assert busy.thr_total == "3"
    # The source's own comments page is kept, as rel="via".
    via = [link.href for link in busy.links if link.rel == "via"]
    assert via == [site.followed.post_url(site.busy) + "#respond"]


def test_rss_comments_and_json_point_at_the_thread_page(site: Site) -> None:
    public_id = site.entry_id(site.followed.post_url(site.busy))
    page = f"{site.base}/outputs/all/{public_id}"
    parsed = feedparser.parse(site.path("all.rss").read_bytes())
    assert not parsed.bozo, parsed.get("bozo_exception")
    busy = next(i for i in parsed.entries if i.link == site.followed.post_url(site.busy))
    assert busy.comments == page
    assert busy.slash_comments == "3"
    assert busy.wfw_commentrss == f"{site.base}/feeds/all/{public_id}/comments.rss"
    document = json.loads(site.path("all.json").read_bytes())
    item = next(i for i in document["items"] if i["url"] == site.followed.post_url(site.busy))
    assert item["_aggregator"]["comment_count"] == 3
    assert item["_aggregator"]["comments_url"] == page
    assert item["_aggregator"]["comments_feed_url"] == (
        f"{site.base}/feeds/all/{public_id}/comments.json"
    )
    assert item["_aggregator"]["source_comments_url"] == (
        site.followed.post_url(site.busy) + "#respond"
    )


def test_the_thread_page_every_link_names_shows_the_thread(site: Site) -> None:
    public_id = site.entry_id(site.followed.post_url(site.busy))
    response = httpx.get(f"{site.base}/outputs/all/{public_id}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    for author in ("Alice", "Bob", "Carol"):
        assert author in response.text


def test_a_source_not_followed_still_shows_its_own_page_and_count(site: Site) -> None:
    """``comments: false``: no thread of ours, but the source's page and count pass through."""
    link = site.quiet_blog.post_url(site.quiet)
    own_page = link + "#comments"  # the source's text/html replies link
    own_feed = site.quiet_blog.origin + site.quiet_blog.comments_feed_path(site.quiet, "atom")
    atom = feedparser.parse(site.path("all.atom").read_bytes())
    entry = next(e for e in atom.entries if e.link == link)
    replies = [(r.type, r.href, r.get("thr:count")) for r in entry.links if r.rel == "replies"]
    assert replies == [("text/html", own_page, "7")]
    assert entry.thr_total == "7"
    rss = feedparser.parse(site.path("all.rss").read_bytes())
    item = next(i for i in rss.entries if i.link == link)
    assert (item.comments, item.slash_comments, item.wfw_commentrss) == (own_page, "7", own_feed)
    document = json.loads(site.path("all.json").read_bytes())
    data = next(i for i in document["items"] if i["url"] == link)["_aggregator"]
    assert data["comment_count"] == 7
    assert data["comments_url"] == data["source_comments_url"] == own_page
    assert "comments_feed_url" not in data
    # Nothing of ours was read or published for it.
    assert not (site.path("all") / site.entry_id(link)).exists()
    with Storage(site.config.database) as storage:
        assert storage.list_comments(storage.find_entry(link).id) == []


# -- each reader's reading of our RSS and Atom ---------------------------------------------------


def _thread_authors(url: str) -> list[str]:
    """A comment feed fetched over HTTP, as the reader does, and its comments' authors."""
    response = httpx.get(url)
    assert response.status_code == 200, url
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return [entry.get("author", "") for entry in parsed.entries]


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_liferea_reading(site: Site, fmt: str) -> None:
    public_id = site.entry_id(site.followed.post_url(site.busy))
    view = read_as_liferea(_item(site, fmt, site.followed.post_url(site.busy)), fmt)
    assert view.thread == f"{site.base}/feeds/all/{public_id}/comments.{fmt}"
    assert _thread_authors(view.thread) == ["Alice", "Bob", "Carol"]
    if fmt == "rss":  # "3 Comments" and the link: RSS only (Liferea reads slash, not thr)
        assert (view.link, view.count) == (f"{site.base}/outputs/all/{public_id}", 3)


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_rss_guard_reading(site: Site, fmt: str) -> None:
    public_id = site.entry_id(site.followed.post_url(site.busy))
    view = read_as_rss_guard(_item(site, fmt, site.followed.post_url(site.busy)), fmt)
    assert view.thread == f"{site.base}/feeds/all/{public_id}/comments.{fmt}"
    assert _thread_authors(view.thread) == ["Alice", "Bob", "Carol"]


@pytest.mark.parametrize("fmt", ["rss", "atom"])
@pytest.mark.parametrize(
    "reader, shows_count",
    [(read_as_tiny_tiny_rss, True), (read_as_miniflux, False), (read_as_quiterss, False)],
)
def test_readers_of_an_html_comments_link(
    site: Site, fmt: str, reader: Callable[[etree._Element, str], ReaderView], shows_count: bool
) -> None:
    """Tiny Tiny RSS, Miniflux and QuiteRSS find the thread page in both formats."""
    public_id = site.entry_id(site.followed.post_url(site.busy))
    view = reader(_item(site, fmt, site.followed.post_url(site.busy)), fmt)
    assert view.link == f"{site.base}/outputs/all/{public_id}"
    assert view.count == (3 if shows_count else None)
    response = httpx.get(view.link)
    assert response.status_code == 200 and "Carol" in response.text


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_readers_see_the_source_page_of_a_thread_not_followed(site: Site, fmt: str) -> None:
    link = site.quiet_blog.post_url(site.quiet)
    item = _item(site, fmt, link)
    assert read_as_miniflux(item, fmt).link == link + "#comments"
    assert read_as_tiny_tiny_rss(item, fmt) == ReaderView(link + "#comments", 7)
    if fmt == "rss":
        assert read_as_liferea(item, fmt).count == 7
