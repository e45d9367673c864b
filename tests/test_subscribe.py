"""Subscribing: ``aggregator add`` (feed discovery) and ``aggregator opml export/import``.

Sites are served by a real HTTP server on 127.0.0.1; the config file edited is a real copy of
config/aggregator.yaml, whose comments must survive every edit.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from blogsim import START, Blog
from click.testing import CliRunner, Result
from factories import Clock
from pytest_httpserver import HTTPServer
from support import DEMO_CONFIG, demo_config_path

from aggregator.cli import main
from aggregator.config.edit import derive_name
from aggregator.config.loading import load_config
from aggregator.config.opml import OpmlFeed, make_opml, read_opml
from aggregator.errors import FeedNotFoundError
from aggregator.fetch.discover import autodiscover, find_feed
from aggregator.fetch.fetcher import Fetcher
from aggregator.models import FetchResult
from aggregator.poll.poller import Poller

NOW = datetime(2024, 6, 1, tzinfo=UTC)
RIVERBANK = (DEMO_CONFIG / "demo" / "riverbank.rss").read_bytes()
HARBOUR = (DEMO_CONFIG / "demo" / "harbour-log.atom").read_bytes()
WEATHER = (DEMO_CONFIG / "demo" / "valley-weather.rdf").read_bytes()
HOME = b"""<!DOCTYPE html><html><head><title>Riverbank</title>
<link rel="stylesheet" href="/style.css">
<link rel="alternate" type="application/rss+xml" title="Riverbank Notes" href="/feed/">
<link rel="alternate" type="application/rss+xml" title="Comments" href="/comments/feed/">
<link rel="alternate" type="application/feed+json" href="/feed.json">
</head><body><h1>Riverbank</h1></body></html>"""
D, H = timedelta(days=1), timedelta(hours=1)
PLAIN_PAGE = b"<!DOCTYPE html><html><head><title>No links</title></head><body>hi</body></html>"


def _cli(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args])


@pytest.fixture
def site(httpserver: HTTPServer) -> HTTPServer:
    httpserver.expect_request("/").respond_with_data(HOME, content_type="text/html")
    httpserver.expect_request("/feed/").respond_with_data(
        RIVERBANK, content_type="application/rss+xml"
    )
    httpserver.expect_request("/blog/").respond_with_data(PLAIN_PAGE, content_type="text/html")
    httpserver.expect_request("/blog/atom.xml").respond_with_data(
        HARBOUR, content_type="application/atom+xml"
    )
    httpserver.expect_request("/weather/").respond_with_data(PLAIN_PAGE, content_type="text/html")
    httpserver.expect_request("/weather/index.rdf").respond_with_data(
        WEATHER, content_type="application/rdf+xml"
    )
    httpserver.expect_request("/nothing/").respond_with_data(PLAIN_PAGE, content_type="text/html")
    httpserver.expect_request("/picture.png").respond_with_data(
        b"\x89PNG", content_type="image/png"
    )
    return httpserver


def test_autodiscovery_reads_link_rel_alternate_in_page_order_json_last() -> None:
    page = FetchResult("https://x.example/a/", "https://x.example/a/", 200, {}, HOME)
    assert autodiscover(page) == [
        "https://x.example/feed/",
        "https://x.example/comments/feed/",
        "https://x.example/feed.json",
    ]


@pytest.mark.parametrize(
    ("path", "feed_path", "how", "title", "format"),
    [
        ("/", "/feed/", '<link rel="alternate">', "Riverbank Notes", "RSS 2.0"),
        ("/feed/", "/feed/", "the URL is a feed", "Riverbank Notes", "RSS 2.0"),
        ("/blog/", "/blog/atom.xml", "the usual place", "Harbour Log", "Atom 1.0"),
        ("/weather/", "/weather/index.rdf", "the usual place", "Valley Weather Diary", "RSS 1.0"),
    ],
)
def test_find_feed(
    site: HTTPServer, path: str, feed_path: str, how: str, title: str, format: str
) -> None:
    with Fetcher(timeout=5) as fetcher:
        found = find_feed(site.url_for(path), fetcher)
    assert found.url == site.url_for(feed_path)
    assert how in found.how
    assert found.title == title
    assert found.format.startswith(format)
    assert found.entries >= 2


def test_find_feed_says_when_there_is_none(site: HTTPServer) -> None:
    bare = HTTPServer(host="127.0.0.1")  # a site with no feed anywhere
    bare.expect_request("/nothing/").respond_with_data(PLAIN_PAGE, content_type="text/html")
    bare.start()
    try:
        with Fetcher(timeout=5) as fetcher, pytest.raises(FeedNotFoundError, match="no feed"):
            find_feed(bare.url_for("/nothing/"), fetcher)
    finally:
        bare.stop()
    with Fetcher(timeout=5) as fetcher, pytest.raises(FeedNotFoundError, match="neither a feed"):
        find_feed(site.url_for("/picture.png"), fetcher)


def test_add_shows_what_it_found_and_appends_the_source_keeping_comments(
    site: HTTPServer, tmp_path: Path
) -> None:
    config = demo_config_path(tmp_path)
    before = config.read_text()
    result = _cli(config, "add", site.url_for("/"), "--tag", "analysis")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert (
        lines[0]
        == f'found: {site.url_for("/feed/")} (<link rel="alternate"> on {site.url_for("/")})'
    )
    assert "  title:    Riverbank Notes" in lines
    assert "  format:   RSS 2.0" in lines
    assert "  entries:  3" in lines
    assert "  comments: 2 of 3 posts carry a comment feed" in lines
    assert lines[-1] == f"added source 'riverbank-notes' to {config}"
    after = config.read_text()
    # Every line of the original is still there, in order; the new source came after them.
    kept = iter(after.splitlines())
    assert all(line in kept for line in before.splitlines())
    assert "# Real-world sources look like this (uncomment to use):" in after
    added = load_config(config).source("riverbank-notes")
    assert added.url == site.url_for("/feed/") and added.tags == ("analysis",)
    # The same feed again is refused, in one line.
    again = _cli(config, "add", site.url_for("/feed/"))
    assert again.exit_code == 2
    assert again.output.splitlines()[-1] == (
        f"{site.url_for('/feed/')} is already configured as source 'riverbank-notes'"
    )


def test_add_never_fetches_or_appends_a_found_link_to_a_private_address(
    tmp_path: Path,
) -> None:
    """Issue 12, item 4: a page's <link rel="alternate"> is a found URL. One that points at
    a loopback service on another origin than the URL typed is not fetched, so never added."""
    internal = HTTPServer(host="127.0.0.1")
    internal.expect_request("/feed").respond_with_data(
        RIVERBANK, content_type="application/rss+xml"
    )
    internal.start()
    page = HTTPServer(host="127.0.0.1")
    link = internal.url_for("/feed")
    page.expect_request("/").respond_with_data(
        f'<!DOCTYPE html><html><head><link rel="alternate" type="application/rss+xml" '
        f'href="{link}"></head><body>hi</body></html>'.encode(),
        content_type="text/html",
    )
    page.start()
    try:
        config = demo_config_path(tmp_path)
        before = config.read_text()
        result = _cli(config, "add", page.url_for("/"))
        assert result.exit_code == 1, result.output
        assert "no feed found" in result.output
        assert internal.log == [], "the internal service was asked"
        assert config.read_text() == before
        # The same link is followed once the config allows private networks.
        config.write_text(before + "\nallow_private_networks: true\n")
        result = _cli(config, "add", page.url_for("/"), "--dry-run")
        assert result.exit_code == 0, result.output
        assert f"found: {link}" in result.output
    finally:
        page.stop()
        internal.stop()


def test_autodiscovery_runs_in_the_sandbox() -> None:
    """What add fetches is read by the daemon's sandbox (issue 12, item 4)."""
    from aggregator.parse.sandbox import SandboxParser

    page = FetchResult("https://x.example/a/", "https://x.example/a/", 200, {}, HOME)
    with SandboxParser(small_workers=1) as parser:
        assert autodiscover(page, parser) == autodiscover(page)
        assert parser.parse_feed(RIVERBANK, {}, "https://x.example/feed/", now=NOW).title


def test_add_dry_run_and_failures_leave_the_config_alone(site: HTTPServer, tmp_path: Path) -> None:
    config = demo_config_path(tmp_path)
    before = config.read_text()
    result = _cli(config, "add", site.url_for("/blog/"), "--dry-run")
    assert result.exit_code == 0
    assert "would add source 'harbour-log'" in result.output
    nothing = _cli(config, "add", site.url_for("/picture.png"))
    assert nothing.exit_code == 1
    assert nothing.output.strip().startswith("aggregator: ") and "neither a feed" in nothing.output
    assert len(nothing.output.strip().splitlines()) == 1
    unreachable = _cli(config, "add", "http://127.0.0.1:9/")
    assert unreachable.exit_code == 1
    assert unreachable.output.strip().startswith("aggregator: cannot connect")
    taken = _cli(config, "add", site.url_for("/blog/"), "--name", "riverbank")
    assert taken.exit_code == 2
    assert "duplicate source name 'riverbank'" in taken.output
    bad = _cli(config, "add", site.url_for("/blog/"), "--name", "bad name!")
    assert bad.exit_code == 2 and "is not a valid name" in bad.output
    assert config.read_text() == before


def test_derive_name() -> None:
    assert derive_name("Moon of Alabama", "https://x", set()) == "moon-of-alabama"
    assert derive_name("Ünïcödé — Blog!", "https://x", {"unicode-blog"}) == "unicode-blog-2"
    assert derive_name(None, "https://www.example.org/feed/", set()) == "example-org"
    assert derive_name("日本語", "https://blog.example.com/", set()) == "blog-example-com"
    assert len(derive_name("x" * 100, "https://x", {"x" * 40})) <= 40


def _hundred_feeds() -> list[OpmlFeed]:
    feeds = []
    for number in range(100):
        folder = ["Politics", "Science & Tech", "Local/Harbour"][number % 3]
        title = [f"Blog número {number}", f"Weekly &lt;{number}&gt;", "Same Title"][number % 3]
        feeds.append(
            OpmlFeed(
                xml_url=f"https://site{number}.example.org/feed/",
                title=title.replace("&lt;", "<").replace("&gt;", ">"),
                html_url=f"https://site{number}.example.org/",
                categories=(folder,) if number % 5 else (folder, "favourites"),
            )
        )
    return feeds


def _nested_opml(feeds: list[OpmlFeed]) -> bytes:
    """OPML as readers export it: folders of outlines, one extra category attribute."""
    from lxml import etree

    root = etree.Element("opml", version="2.0")
    etree.SubElement(etree.SubElement(root, "head"), "title").text = "My subscriptions"
    body = etree.SubElement(root, "body")
    folders: dict[str, etree._Element] = {}
    for feed in feeds:
        name = feed.categories[0]
        if name not in folders:
            folders[name] = etree.SubElement(body, "outline", text=name, title=name)
        outline = etree.SubElement(
            folders[name], "outline", type="rss", text=feed.title or "", xmlUrl=feed.xml_url
        )
        outline.set("htmlUrl", feed.html_url or "")
        if len(feed.categories) > 1:
            outline.set("category", "/" + feed.categories[1])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def test_an_opml_file_of_100_sources_round_trips(tmp_path: Path) -> None:
    config = demo_config_path(tmp_path)
    feeds = _hundred_feeds()
    source = tmp_path / "subscriptions.opml"
    source.write_bytes(_nested_opml(feeds))
    imported = _cli(config, "opml", "import", str(source))
    assert imported.exit_code == 0, imported.output
    assert imported.output.splitlines()[-1] == f"added 100 source(s) to {config}, skipped 0"
    assert _cli(config, "check").exit_code == 0
    loaded = load_config(config)
    assert len(loaded.sources) == 103
    assert len({s.name for s in loaded.sources}) == 103
    assert loaded.source("same-title-2").title == "Same Title"
    exported = _cli(config, "opml", "export")
    assert exported.exit_code == 0
    back = [f for f in read_opml(exported.stdout_bytes) if f.xml_url.startswith("https://")]
    assert sorted((f.xml_url, f.title, f.categories) for f in back) == sorted(
        (f.xml_url, f.title, f.categories) for f in feeds
    )
    # Exported, then imported again: everything is a duplicate.
    (tmp_path / "again.opml").write_bytes(exported.stdout_bytes)
    again = _cli(config, "opml", "import", str(tmp_path / "again.opml"))
    assert again.output.splitlines()[-1] == f"added 0 source(s) to {config}, skipped 103"


def test_import_skips_duplicates_and_what_is_not_a_feed_url(tmp_path: Path) -> None:
    config = demo_config_path(tmp_path)
    feeds = [
        OpmlFeed("https://a.example.org/feed/", "A"),
        OpmlFeed("https://A.example.org/feed", "A again"),  # the same feed
        OpmlFeed("feed://b.example.org/rss", "B"),
        OpmlFeed("javascript:alert(1)", "Evil"),
        OpmlFeed("https://c.example.org/atom.xml", "<b>C</b> &amp; co"),
    ]
    (tmp_path / "in.opml").write_bytes(make_opml("in", feeds))
    result = _cli(config, "opml", "import", str(tmp_path / "in.opml"), "--tag", "imported")
    assert result.exit_code == 0, result.output
    assert "skipped https://A.example.org/feed: already configured as 'a'" in result.output
    assert "skipped javascript:alert(1): not an http(s) URL" in result.output
    loaded = load_config(config)
    assert loaded.source("b").url == "http://b.example.org/rss"
    assert loaded.source("c-co").title == "C & co"
    assert loaded.source("c-co").tags == ("imported",)


def test_a_bad_opml_file_is_one_clear_line(tmp_path: Path) -> None:
    config = demo_config_path(tmp_path)
    before = config.read_text()
    bomb = tmp_path / "bomb.opml"
    bomb.write_text(
        '<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        '<opml version="2.0"><body><outline text="&b;" xmlUrl="https://x.example/&b;"/></body></opml>'
    )
    result = _cli(config, "opml", "import", str(bomb), "--dry-run")
    assert result.exit_code == 0
    assert "aaaaaaaaaaaaaaaaaaaa" not in result.output
    (tmp_path / "not.opml").write_text("<html><body>no</body></html>")
    result = _cli(config, "opml", "import", str(tmp_path / "not.opml"))
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"{tmp_path / 'not.opml'}: not an OPML file: the root element is <html>, not <opml>"
    )
    assert config.read_text() == before


def test_add_finds_comments_in_the_pages_and_writes_comments_page_auto(
    blogs: Callable[..., Blog], tmp_path: Path
) -> None:
    """Issue 14, items 5-6: a blog without comment feeds whose pages hold the thread."""
    blog = blogs("/wp", "wordpress", comment_feeds=False)
    older = blog.add_post("older", "Older", START - 3 * D)
    newest = blog.add_post("newest", "Newest", START - D)
    blog.comment(older, "Ann", "On the older post.", START - 2 * D)
    blog.comment(newest, "Bob", "First!", START - 20 * H)
    blog.comment(newest, "Cy", "Second.", START - 19 * H)
    config = demo_config_path(tmp_path)
    result = _cli(config, "add", blog.origin + "/wp/feed/", "--name", "pages")
    assert result.exit_code == 0, result.output
    assert (
        "  comments: no comment feeds; in the pages: wordpress markup, 2 comment(s) in the "
        f"post page {blog.post_url(newest)}"
    ) in result.output.splitlines()
    assert "  writing comments_page: auto" in result.output
    source = load_config(config).source("pages")
    assert source.comments_page == "auto"

    # What add wrote is what a poll then reads.
    loaded = load_config(config)
    with Poller(loaded, clock=Clock(START), manual=True) as poller:
        (polled,) = poller.poll_many([loaded.source("pages")])
    assert polled.new_comments == 3


def test_add_names_a_comment_system_loaded_by_script_and_writes_no_comments_page(
    blogs: Callable[..., Blog], tmp_path: Path
) -> None:
    blog = blogs("/wp", "wordpress", comment_feeds=False)
    post = blog.add_post("post", "Post", START - D)
    blog.page_extra = (
        '<div id="disqus_thread"></div><script src="https://x.disqus.com/embed.js"></script>'
    )
    config = demo_config_path(tmp_path)
    result = _cli(config, "add", blog.origin + "/wp/feed/", "--name", "scripted", "--dry-run")
    assert result.exit_code == 0, result.output
    assert (
        f"  comments: no comment feeds; the post page {blog.post_url(post)} loads its "
        "comments by script (Disqus): not in the page, not followed"
    ) in result.output.splitlines()
    assert "comments_page" not in result.output


def test_add_reports_a_page_without_comments_or_one_that_fails(
    blogs: Callable[..., Blog], tmp_path: Path
) -> None:
    blog = blogs("/wp", "wordpress", comment_feeds=False)
    old = blog.add_post("old", "Old", START - 5 * D)
    for n in range(3):
        blog.add_post(f"post-{n}", f"Post {n}", START - (3 - n) * D)
    post = blog.posts[-1]
    blog.comment(old, "Ann", "On the oldest post.", START - 4 * D)
    config = demo_config_path(tmp_path)
    # The three newest posts have no comment yet, and an empty ol.comment-list names no
    # platform: the comment on the fourth is not looked for.
    plain = _cli(config, "add", blog.origin + "/wp/feed/", "--dry-run")
    assert plain.exit_code == 0, plain.output
    assert "comments_page" not in plain.output
    assert f"none found in the post page {blog.post_url(post)}" in plain.output
    # The second newest has one: found, though the newest has none.
    blog.comment(blog.posts[2], "Bo", "Here.", START - D)
    second = _cli(config, "add", blog.origin + "/wp/feed/", "--dry-run")
    assert f"1 comment(s) in the post page {blog.post_url(blog.posts[2])}" in second.output
    assert "  writing comments_page: auto" in second.output
    blog.status[blog.post_path(post)] = 500
    blog.posts[2].comments.clear()
    failed = _cli(config, "add", blog.origin + "/wp/feed/", "--dry-run")
    assert failed.exit_code == 0, failed.output
    assert "comments_page" not in failed.output
    assert f"the post page {blog.post_url(post)} could not be read" in failed.output
