"""The main-feed fast path (aggregator.parse.fastfeed) must read exactly what feedparser reads.

Every feed file of the project's fixtures and of feedparser's own corpus goes through
``parse_feed`` with the fast path on and off; wherever the fast path accepts a document, the
``FeedData`` (every entry's key, links, dates, content, categories, enclosures, comment links and
counts, and the feed's polling hints) must be equal. The shapes the benchmark corpus generator
writes, and real WordPress, Blogger and Typepad shapes, must be accepted; unusual documents
declined.
"""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest
from corpora import FEEDPARSER_TESTS, corpus
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aggregator.parse import feed as parse
from aggregator.parse.fastfeed import read_feed

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
# The benchmark corpus of this checkout, else of the main checkout beside a git worktree.
BENCHMARK_FEEDS = next(
    (
        path
        for root in (ROOT, ROOT.parent / "main")
        if (path := root / "benchmarks" / ".corpus" / "feeds200-seed42-port8089" / "feeds").is_dir()
    ),
    ROOT / "benchmarks" / ".corpus" / "feeds200-seed42-port8089" / "feeds",
)
NOW = datetime(2026, 11, 27, tzinfo=UTC)
# An http(s) address makes feedparser resolve relative links against it; "" and file: do not.
URLS = ("https://blog.example.org/feed/", "")


def read(content: bytes, url: str, *, fast: bool, headers: dict[str, str] | None = None) -> object:
    """``parse_feed``'s result with the fast path on or off (an exception's name on failure)."""
    try:
        return parse.parse_feed(content, headers or {}, url, now=NOW, fast=fast)
    except Exception as error:  # the same failure both ways counts as the same result
        return type(error).__name__


def accepted(content: bytes, url: str = URLS[0], headers: dict[str, str] | None = None) -> bool:
    return read_feed(content, headers or {}, url, parse.MAX_ENTRIES) is not None


def assert_same(content: bytes, url: str, headers: dict[str, str] | None = None) -> bool:
    """Both paths agree on ``content``; returns whether the fast path accepted it."""
    if not accepted(content, url, headers):
        return False
    reference = read(content, url, fast=False, headers=headers)
    fast = read(content, url, fast=True, headers=headers)
    assert fast == reference
    return True


def _feed_files() -> list[Path]:
    files = [path for path in DATA.rglob("*") if path.suffix in (".xml", ".rss", ".atom", ".rdf")]
    return sorted(files)


REAL_SHAPES = sorted((DATA / "feeds" / "fastfeed").iterdir())


@pytest.mark.parametrize("path", REAL_SHAPES, ids=[p.name for p in REAL_SHAPES])
@pytest.mark.parametrize("url", URLS)
def test_real_blog_shapes_take_the_fast_path_and_read_the_same(path: Path, url: str) -> None:
    content = path.read_bytes()
    assert assert_same(content, url), f"the fast path declined {path.name}"
    feed = read(content, url, fast=True)
    assert len(feed.entries) == 2  # type: ignore[attr-defined]


def test_wordpress_values_survive_the_fast_path() -> None:
    feed = read((DATA / "feeds" / "fastfeed" / "wordpress.rss").read_bytes(), URLS[0], fast=True)
    first = feed.entries[0]  # type: ignore[attr-defined]
    assert feed.update_period_seconds == 3600  # type: ignore[attr-defined]
    assert first.comment_count == 3
    assert first.comments_feed_url.endswith("/moths-lights/feed/")
    assert first.categories == ("Insects", "Night")
    assert first.enclosures[0].length == 1048576
    assert "fieldnotes.example.org/wp-content/uploads/2024/11/moth.jpg" in first.content


def test_every_fixture_reads_the_same_wherever_the_fast_path_accepts() -> None:
    files = _feed_files()
    count = 0
    for path in files:
        for url in URLS:
            count += assert_same(path.read_bytes(), url)
    print(f"fast path: {count} of {2 * len(files)} fixture readings accepted")
    assert count >= 20


@pytest.mark.slow  # all of feedparser's corpus, both ways
def test_feedparsers_corpus_reads_the_same_wherever_the_fast_path_accepts() -> None:
    files = sorted(path for path in corpus(FEEDPARSER_TESTS).rglob("*.xml"))
    count = 0
    for path in files:
        for url in URLS:
            try:
                count += assert_same(path.read_bytes(), url)
            except AssertionError:
                raise AssertionError(f"{path} ({url or 'no URL'}) differs") from None
    print(f"fast path: {count} of {2 * len(files)} corpus readings accepted")
    assert count >= 1700  # 1725 of 4212 when this floor was set


def _realworld_feeds() -> list[Path]:
    realworld = corpus("realworld")  # skips when absent, fails under CI=true
    sources = json.loads((realworld / "sources.json").read_text())
    return [realworld / "files" / item["file"] for item in sources if item["kind"] == "feed"]


# How each real-world feed is read: served as the benchmark's server serves it (application/xml,
# so the XML declaration's encoding counts), with no headers and no URL (a file), and from an
# http URL without a Content-Type (RFC 3023: the declaration, else ISO-8859-1).
REALWORLD_READINGS = (
    ("http://127.0.0.1:8089/feeds/feed.xml", {"content-type": "application/xml"}),
    ("", {}),
    ("https://blog.example.org/feed/", {}),
)


#: Real-world feeds the fast path reads differently from feedparser on purpose, and why.
DELIBERATE = {
    # Whitespace before the XML declaration: feedparser's strict parser fails on it, so it reads
    # the whole document with its loose parser, which doubles each upper-case <BR /> of the
    # CDATA description ("59 F<br><br>"). The fast path reads the document strictly, as
    # written, with feedparser's warning; every other value is the same.
    "rome-modules__src__test__resources__xml__yweather.xml": "59 F<br>\n<br><b>Forecast",
}


def _without_content(feed: object) -> object:
    return replace(
        feed,  # type: ignore[type-var]
        entries=tuple(
            replace(entry, content=None, content_hash="")
            for entry in feed.entries  # type: ignore[attr-defined]
        ),
    )


def test_the_realworld_corpus_reads_the_same_wherever_the_fast_path_accepts() -> None:
    """Deliberate differences: :data:`DELIBERATE` only. Where feedparser's reading would differ
    from an lxml reading otherwise (loose parsing of ill-formed XML, elements whose mapping is
    not copied), the fast path declines instead."""
    files = _realworld_feeds()
    count = 0
    for path in files:
        content = path.read_bytes()
        for url, headers in REALWORLD_READINGS:
            if path.name in DELIBERATE:
                assert accepted(content, url, headers), path.name
                fast = read(content, url, fast=True, headers=headers)
                reference = read(content, url, fast=False, headers=headers)
                assert _without_content(fast) == _without_content(reference)
                assert DELIBERATE[path.name] in (fast.entries[0].content or "")  # type: ignore[attr-defined]
                assert DELIBERATE[path.name] not in (reference.entries[0].content or "")  # type: ignore[attr-defined]
                count += 1
                continue
            try:
                count += assert_same(content, url, headers)
            except AssertionError:
                raise AssertionError(
                    f"{path.name} ({url or 'no URL'}, {headers}) differs"
                ) from None
    print(f"fast path: {count} of {len(REALWORLD_READINGS) * len(files)} real-world readings")
    # 500 of 561 when this floor was set (also Atom xhtml, markup written inside RSS text,
    # RSS 0.90, <rss> in a default namespace, structured RSS authors, Media RSS categories).
    assert count >= 500


def test_most_realworld_feeds_take_the_fast_path() -> None:
    """Issue 13 asks for 90% of the real-world feeds, served as a server serves XML. The fast path
    accepts 169 of 187 (90.4%; 143 before Atom xhtml and markup written inside RSS text (both
    serialized as feedparser's strict parser does), RSS 0.90, ``<rss>`` in a default namespace,
    RSS ``<id>``, several guids, empty links, a channel's dc:title and content:encoded,
    atom:link in RSS 1.0 channels and RSS items, dcterms dates, structured RSS authors, Media
    RSS categories and keywords, out-of-line Atom content, xhtml:body, item images and plain
    item attributes; 99 before the podcast tags, text inputs, unreadable dates,
    dc:title, comments in the prolog and beside the channel, media:description in document
    order, whitespace before the XML declaration), with results equal to feedparser's but for
    :data:`DELIBERATE`; this pins that floor. What is still declined is listed by
    ``benchmarks/fastpath_share.py``: ill-formed XML (8, read by feedparser's loose parser, which
    no strict parser can copy), Atom 0.3 (4), then single elements (SVG in xhtml content, a
    DOCTYPE, an item nested in an item, unknown elements holding feed elements...)."""
    files = _realworld_feeds()
    url, headers = REALWORLD_READINGS[0]
    accepted_files = [p for p in files if accepted(p.read_bytes(), url, headers)]
    assert len(accepted_files) >= 169, f"{len(accepted_files)} of {len(files)}"


def _benchmark_corpus() -> object:
    spec = importlib.util.spec_from_file_location("bench_corpus", ROOT / "benchmarks" / "corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_corpus", module)
    spec.loader.exec_module(module)
    return module


def _generated_feeds(tmp_path: Path) -> Iterator[tuple[str, bytes]]:
    corpus = _benchmark_corpus()
    for index, (fmt, blog) in enumerate(
        [("rss2", False), ("rss2", True), ("atom", False), ("atom", True), ("rss1", False),
         ("rss1", True)]
    ):  # fmt: skip
        record = corpus.build_feed(  # type: ignore[attr-defined]
            (index, fmt, blog, 42, "http://127.0.0.1:8089", str(tmp_path))
        )
        yield record["url"], (tmp_path / record["path"]).read_bytes()


def test_every_benchmark_shape_takes_the_fast_path(tmp_path: Path) -> None:
    (tmp_path / "feeds").mkdir()
    for url, content in _generated_feeds(tmp_path):
        assert assert_same(content, url), f"the fast path declined {url}"
        assert assert_same(content, url, {"content-type": "application/rss+xml; charset=UTF-8"})


def test_the_benchmark_corpus_is_accepted_whole() -> None:
    files = sorted(BENCHMARK_FEEDS.glob("*.xml")) if BENCHMARK_FEEDS.is_dir() else []
    if not files:
        pytest.skip(f"no benchmark corpus at {BENCHMARK_FEEDS} (benchmarks/corpus.py makes one)")
    for path in files[:40]:  # feedparser is the slow half; the shapes repeat
        url = f"http://127.0.0.1:8089/feeds/{path.name}"
        assert assert_same(path.read_bytes(), url), path
    declined = [p.name for p in files if not accepted(p.read_bytes(), "http://127.0.0.1:8089/x")]
    assert declined == []


WORDPRESS = (DATA / "feeds" / "fastfeed" / "wordpress.rss").read_bytes()
BLOGGER = (DATA / "feeds" / "fastfeed" / "blogger.atom").read_bytes()
TYPEPAD = (DATA / "feeds" / "fastfeed" / "typepad.rdf").read_bytes()
MASTODON = (
    b"<?xml version='1.0' encoding='UTF-8'?><rss version='2.0' xmlns:media='http://search.yahoo.com/mrss/'>"
    b"<channel><title>Ann</title><link>https://m.example/@ann</link><item>"
    b"<guid isPermaLink='true'>https://m.example/@ann/1</guid><link>https://m.example/@ann/1</link>"
    b"<pubDate>Tue, 12 Nov 2024 09:14:03 +0000</pubDate><description>&lt;p&gt;Toot&lt;/p&gt;</description>"
    b"<media:content url='https://m.example/a.png' type='image/png' fileSize='10' medium='image'>"
    b"<media:rating scheme='urn:simple'>nonadult</media:rating>"
    b"<media:description type='plain'>Alt text</media:description></media:content>"
    b"<media:content url='https://m.example/b.png' type='image/png' medium='image'>"
    b"<media:description type='plain'>Second</media:description></media:content>"
    b"<category>birds</category></item></channel></rss>"
)
_TEXTINPUT = b"<textinput rdf:about='https://k.example/s'><title>Search</title><description>Find</description><name>q</name><link>https://k.example/s</link></textinput>"


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (WORDPRESS, {"content-location": "https://elsewhere.example/"}),
        (WORDPRESS.replace(b"<rss ", b'<!DOCTYPE rss [<!ENTITY x "y">]>\n<rss ', 1), {}),
        (WORDPRESS.replace(b"<language>", b"<media:title xmlns:media='http://search.yahoo.com/mrss/'>x</media:title><language>"), {}),
        (WORDPRESS.replace(b"<item>", b"<item><media:description xmlns:media='http://search.yahoo.com/mrss/' type='image/png'>aGVsbG8=</media:description>", 1), {}),
        (BLOGGER.replace(b"<content type='html'>", b"<content type='xhtml'><div xmlns='http://www.w3.org/1999/xhtml'><svg xmlns='http://www.w3.org/2000/svg'/></div>", 1), {}),
        (WORDPRESS.replace(b"<description><![CDATA[We", b"<description><p>x</p><title>y</title><![CDATA[We", 1), {}),
        (BLOGGER.replace(b"<thr:total>0", b"<summary>a</summary><summary>b</summary><thr:total>0"), {}),
        (WORDPRESS.replace(b"<title>Moths", b"<title><b>x</b>Moths"), {}),
        (WORDPRESS.replace(b"</channel>", b"</channel><channel/>"), {}),
        (WORDPRESS[:-40], {}),
        (TYPEPAD.replace(b"<channel ", _TEXTINPUT + b"<channel ", 1), {}),
        (TYPEPAD.replace(b"</rdf:RDF>", _TEXTINPUT.replace(b"<name>", b"<dc:title>x</dc:title><name>") + b"</rdf:RDF>"), {}),
        (b"<html><body>not a feed</body></html>", {}),
        (b"", {}),
    ],
    ids=[
        "content-location", "doctype",
        "media-title", "media-description-base64-type", "xhtml-svg", "markup-with-a-handler",
        "two-summaries", "markup-in-title",
        "two-channels", "truncated", "textinput-before-channel", "textinput-other-child",
        "html", "empty",
    ],
)  # fmt: skip
def test_unusual_documents_are_left_to_feedparser(content: bytes, headers: dict[str, str]) -> None:
    assert not accepted(content, URLS[0], headers)


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (WORDPRESS.replace(b'encoding="UTF-8"', b'encoding="windows-1252"'), {}),
        (WORDPRESS, {"content-type": "text/xml"}),  # RFC 3023: US-ASCII, then its fallbacks
        (WORDPRESS, {"content-type": "application/rss+xml; charset=iso-8859-1"}),
        (b"\xef\xbb\xbf" + WORDPRESS, {}),
        (WORDPRESS.decode().encode("utf-16"), {"content-type": "application/rss+xml"}),
        (BLOGGER.replace(b"<entry>", b"<entry xml:base='https://elsewhere.example/b/'>", 1), {}),
        (BLOGGER.replace(b"<feed ", b"<feed xml:base='../up/' ", 1), {}),
        (WORDPRESS.replace(b"<language>", b"<itunes:author xmlns:itunes='http://www.itunes.com/dtds/podcast-1.0.dtd'>x</itunes:author><language>"), {}),
        (WORDPRESS.replace(b"</item>", b"<feedburner:origLink xmlns:feedburner='http://rssnamespace.org/feedburner/ext/1.0'>https://o.example/1</feedburner:origLink><itunes:block xmlns:itunes='http://www.itunes.com/dtds/podcast-1.0.dtd'>no</itunes:block></item>"), {}),
        (WORDPRESS.replace(b"</item>", b"<media:content xmlns:media='http://search.yahoo.com/mrss/' url='https://o.example/a.jpg'><media:thumbnail url='https://o.example/t.jpg'/></media:content></item>"), {}),
        (WORDPRESS.replace(b"<description><![CDATA[We left", b"<itunes:summary xmlns:itunes='http://www.itunes.com/dtds/podcast-1.0.dtd'>Short</itunes:summary><description><![CDATA[We left", 1), {}),
        (BLOGGER.replace(b"<content type='html'>&lt;p&gt;Night train, no photos.&lt;/p&gt;</content>", b"<media:group xmlns:media='http://search.yahoo.com/mrss/'><media:title>Night</media:title><media:description>Night train.</media:description></media:group>"), {}),
        (WORDPRESS.replace(b"</item>", b"<itunes:duration xmlns:itunes='http://www.itunes.com/DTDs/Podcast-1.0.dtd'> 12:01 </itunes:duration><itunes:episode xmlns:itunes='http://www.itunes.com/dtds/podcast-1.0.dtd'>7</itunes:episode><itunes:explicit xmlns:itunes='http://www.itunes.com/dtds/podcast-1.0.dtd'>yes</itunes:explicit><itunes:image xmlns:itunes='http://www.itunes.com/dtds/podcast-1.0.dtd' href='/art.jpg'/></item>", 1), {}),
        (WORDPRESS.replace(b"</item>", b"<itunes:explicit xmlns:itunes='http://www.itunes.com/dtds/podcast-1.0.dtd'> clean</itunes:explicit><itunes:image xmlns:itunes='http://www.itunes.com/dtds/podcast-1.0.dtd' url='https://o.example/a.png'/></item>", 1).replace(b"<language>", b"<itunes:duration xmlns:itunes='http://www.itunes.com/dtds/podcast-1.0.dtd'>1</itunes:duration><language>"), {}),
        (WORDPRESS.replace(b"<language>", b"<textInput><title>Search</title><description>Find</description><name>q</name><link>/search</link></textInput><language>"), {}),
        (TYPEPAD.replace(b"</channel>", b"<textinput rdf:resource='https://k.example/s'/></channel>" + _TEXTINPUT), {}),
        (WORDPRESS.replace(b"+0000</pubDate>", b"</pubDate>", 1), {}),  # feedparser: no date
        (WORDPRESS.replace(b"Tue, 12 Nov 2024 09:14:03 +0000", b"Ter, 12 Nov 2024 09:14:03 -0300", 1), {}),
        (WORDPRESS.replace(b"<pubDate>Tue, 12 Nov 2024 09:14:03 +0000</pubDate>", b"<pubDate/>", 1), {}),
        (BLOGGER.replace(b"<feed ", b"<?xml-stylesheet href='a.css' type='text/css'?>\n<!-- uses <updated>, <rdf:RDF xmlns='http://purl.org/rss/1.0/'> -->\n<feed ", 1), {}),
        (WORDPRESS.replace(b"<item>", b"<item><title></title>", 1).replace(b"</item>", b"<dc:title>Later</dc:title></item>", 1), {}),
        (TYPEPAD.replace(b"<title>Bread, again</title>", b"<title> </title><dc:title>Bread</dc:title><title>Again</title>", 1), {}),
        (WORDPRESS.replace(b"<channel>", b"<!-- a comment beside the channel --><channel>", 1), {}),
        (MASTODON, {}),
        (b"\n \n" + WORDPRESS.replace(b'encoding="UTF-8"', b'encoding="iso-8859-1"', 1), {}),
        (BLOGGER.replace(b"<content type='html'>&lt;p&gt;Night train, no photos.&lt;/p&gt;</content>", b"<summary>Night.</summary><media:group xmlns:media='http://search.yahoo.com/mrss/'><media:content url='https://v.example/a.mp4'><media:description>Clip</media:description></media:content></media:group><content type='html'>&lt;p&gt;Night train.&lt;/p&gt;</content>"), {}),
        (WORDPRESS.replace(b"<item>", b"<item><media:group xmlns:media='http://search.yahoo.com/mrss/'><media:content url='https://m.example/a.mp4'><media:description>Deep</media:description></media:content><media:description type='html'>&lt;b&gt;Shallow&lt;/b&gt;</media:description></media:group>", 1), {}),
        (WORDPRESS.replace(b'version="2.0"', b'version="0.92"', 1), {}),
        (WORDPRESS.replace(b"Forty-one", "Forty\u0092one".encode()), {}),
        (WORDPRESS.replace(b"Forty-one", b"Forty&#146;one"), {}),
        (WORDPRESS.replace(b"+0000</pubDate>", b"+0000 (UTC)</pubDate>".replace(b" (UTC)", b""), 1).replace(b"Tue, ", b"Tuesday, ", 1), {}),
    ],
    ids=["cp1252", "text-xml", "latin1-header", "bom", "utf-16", "xml-base-entry", "xml-base-feed", "itunes-author",
         "origlink-block", "media-content", "itunes-summary-first", "media-group", "podcast-tags",
         "podcast-unstripped-explicit", "rss2-textinput", "rdf-textinput", "date-without-zone",
         "unreadable-date", "empty-date", "comment-before-root", "dc-title-after-title",
         "first-non-empty-title", "comment-beside-channel",
         "mastodon-media-descriptions", "atom-summary-media-content", "space-before-declaration",
         "media-descriptions-by-depth", "rss092",
        "c1-controls", "c1-reference", "long-weekday"],
)  # fmt: skip
def test_extensions_encodings_and_bases_take_the_fast_path(
    content: bytes, headers: dict[str, str]
) -> None:
    """Issue 13: what feedparser decodes, resolves or ignores the way the fast path can copy."""
    assert assert_same(content, URLS[0], headers)


def test_whitespace_before_the_declaration_keeps_feedparsers_warning() -> None:
    """Read strictly, but flagged as feedparser flags it (its strict parser fails there)."""
    content = b"\n\n" + WORDPRESS
    assert accepted(content)
    feed = read(content, URLS[0], fast=True)
    assert feed == read(content, URLS[0], fast=False)
    assert "XML or text declaration not at start of entity" in (feed.warning or "")  # type: ignore[attr-defined]
    assert len(feed.entries) == 2  # type: ignore[attr-defined]


def _rss_with_date(text: str, tag: str = "pubDate") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>t</title>'
        f"<link>https://a.example/</link><item><title>x</title><link>https://a.example/1</link>"
        f"<{tag}>{text}</{tag}></item></channel></rss>"
    ).encode()


_STAMPS = st.datetimes(min_value=datetime(1985, 1, 1), max_value=datetime(2030, 12, 31)).map(
    lambda stamp: stamp.replace(microsecond=0)
)
_OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@settings(max_examples=150, deadline=None)
@given(stamp=_STAMPS, zone=_OFFSETS, fraction=st.sampled_from(["", ".0", ".001", ".999999"]))
def test_w3cdtf_dates_read_the_same(stamp: datetime, zone: timezone, fraction: str) -> None:
    aware = stamp.replace(tzinfo=zone)
    text = aware.isoformat()
    text = text[:19] + fraction + ("Z" if text.endswith("+00:00") and fraction else text[19:])
    assert assert_same(_rss_with_date(text, "dc:date"), URLS[0])


@settings(max_examples=150, deadline=None)
@given(
    stamp=_STAMPS,
    zone=st.sampled_from(
        ["GMT", "UT", "UTC", "Z", "EST", "EDT", "CST", "PDT", "+0000", "-0930", "+0545", "+1400"]
    ),  # fmt: skip
    weekday=st.booleans(),
    short_day=st.booleans(),
)
def test_rfc822_dates_read_the_same(
    stamp: datetime, zone: str, weekday: bool, short_day: bool
) -> None:
    day = str(stamp.day) if short_day else f"{stamp.day:02d}"
    text = f"{day} {stamp:%b %Y %H:%M:%S} {zone}"
    if weekday:
        text = format_datetime(stamp.replace(tzinfo=UTC))[:5] + text
    assert assert_same(_rss_with_date(text), URLS[0])


def test_a_random_mix_of_item_elements_reads_the_same() -> None:
    """Items built from the accepted elements in random orders, counts and values."""
    rng = random.Random(8)
    pieces = [
        "<title>T &amp; t</title>", "<title></title>", "<link>https://a.example/p?a=1&amp;b=2</link>",
        "<link>/relative/post</link>", '<guid isPermaLink="false">id-1</guid>', "<guid>42</guid>",
        '<guid isPermaLink="true">https://a.example/g</guid>', "<description>&lt;p&gt;S&lt;/p&gt;</description>",
        "<description></description>", "<content:encoded><![CDATA[<p>C</p>]]></content:encoded>",
        "<category>A</category>", '<category domain="d">A</category>', '<category domain="d"/>',
        "<dc:subject>B</dc:subject>", "<author>me@a.example (Me)</author>", "<dc:creator>Ann</dc:creator>",
        "<comments>/c#comments</comments>", "<wfw:commentRss>feed/</wfw:commentRss>",
        "<slash:comments>7</slash:comments>", '<enclosure url="/a.mp3" length="10" type="Audio/MPEG"/>',
        "<pubDate>Tue, 12 Nov 2024 09:14:03 +0000</pubDate>", "<dc:date>2024-11-12T09:14:03Z</dc:date>",
        "<title>Ã©tÃ©</title>", "<description>cafÃ©</description>",
    ]  # fmt: skip
    count = 0
    for _ in range(300):
        items = "".join(
            "<item>" + "".join(rng.sample(pieces, rng.randint(0, 8))) + "</item>"
            for _ in range(rng.randint(1, 3))
        )
        content = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
            'xmlns:wfw="http://wellformedweb.org/CommentAPI/" '
            'xmlns:slash="http://purl.org/rss/1.0/modules/slash/"><channel><title>t</title>'
            f"<link>https://a.example/</link>{items}</channel></rss>"
        ).encode()
        for url in URLS:
            count += assert_same(content, url)
    assert count >= 200


_DECLARATIONS = st.sampled_from(
    [
        b"",
        b'<?xml version="1.0"?>',
        b'<?xml version="1.0" encoding="utf-8"?>',
        b"<?xml version='1.0' encoding='UTF-8'?>",
        b'<?xml version="1.0" encoding="iso-8859-1"?>',
        b'<?xml version="1.0" encoding="windows-1251"?>',
        b'<?xml version="1.0" encoding="utf-16"?>',
        b'<?xml version="1.0"\n encoding="iso-8859-1"?>',
        b"<?xml-stylesheet href='a.xsl'?>",
        b"\xef\xbb\xbf<?xml version='1.0'?>",
        b"<o",
        b"<\x00?\x00",
    ]
)
_BODIES = st.lists(
    st.sampled_from(
        [
            b"\n",
            b"\r\n",
            b"<rss>",
            b"</rss>",
            b"caf\xc3\xa9",
            b"\xe9",
            b"\xc3",
            b"\xed\xa0\x80",
            b"\xf0\x9f\x98\x80",
            b"\xc0\xaf",
            b">",
            b"?>",
            b"a",
            b" ",
        ]
    ),  # fmt: skip
    max_size=12,
).map(b"".join)
_HEADERS = st.sampled_from(
    [
        {},
        {"content-type": "application/xml"},
        {"content-type": "application/rss+xml; charset=utf-8"},
        {"content-type": "application/xml; charset=iso-8859-1"},
        {"content-type": "text/xml"},
        {"content-type": "text/xml; charset=UTF-8"},
        {"content-type": "text/html; charset=utf-8"},
        {"content-type": "application/octet-stream"},
    ]
)


@settings(max_examples=500, deadline=None)
@given(_DECLARATIONS, _BODIES, _HEADERS, st.booleans())
@example(b"", b"<rss>\ncaf\xc3\xa9</rss>", {"content-type": "application/xml"}, True)
@example(b"<?xml version='1.0'?>", b"\n<rss>caf\xe9</rss>", {}, False)
def test_utf8_shortcut_is_feedparsers_decoding(
    declaration: bytes, body: bytes, headers: dict[str, str], located: bool
) -> None:
    """fastfeed reads a UTF-8 document without feedparser's decode and encode of it all: where it
    does, the bytes are what ``convert_to_utf8`` gives, and it took UTF-8."""
    import feedparser.encodings

    from aggregator.parse.fastfeed import _read_as_utf8

    if located:
        headers = {**headers, "content-location": "https://blog.example.org/feed/"}
    content = declaration + body
    shortcut = _read_as_utf8(headers, content)
    if shortcut is not None:
        result: dict[str, object] = {}
        assert shortcut == feedparser.encodings.convert_to_utf8(headers, content, result)
        assert result["encoding"] == "utf-8"
        assert "bozo_exception" not in result or type(result["bozo_exception"]).__name__ == (
            "NonXMLContentType"
        )


def test_a_plain_utf8_feed_takes_the_utf8_shortcut() -> None:
    from aggregator.parse.fastfeed import _read_as_utf8

    content = "<?xml version='1.0' encoding='UTF-8'?>\n<rss><channel><title>Café</title>"
    shortcut = _read_as_utf8({"content-type": "application/rss+xml"}, content.encode())
    assert shortcut == b"<?xml version='1.0' encoding='utf-8'?>" + content.encode()[38:]


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [b" ", b"\t", b"\n", b"\x0c", b"base", b"=", b"'", b'"', b"x", b"xml:", b"<a ", b">"]
        ),
        max_size=12,
    ).map(b"".join)
)
@example(b"base='x'")
@example(b"database = 'x' base")
@example(b'<a\nbase\t=\n"x">')
def test_base_attributes_are_found_as_by_their_pattern(content: bytes) -> None:
    import re

    from aggregator.parse.fastfeed import _has_base_attribute

    pattern = re.compile(rb"""\sbase\s*=\s*["']""")
    assert _has_base_attribute(content) == bool(b"xml:base" in content or pattern.search(content))
