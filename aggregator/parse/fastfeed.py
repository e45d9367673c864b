"""A fast path for plain main feeds: lxml reads what feedparser would, or declines (issue 8).

feedparser is the reference parser and costs about 20 ms of pure Python per feed of 30 entries
with a few KB of HTML each; lxml parses the same bytes in well under a millisecond. Most feeds
are one of three plain shapes (RSS 2.0, Atom 1.0, RSS 1.0; UTF-8; well-formed), so for exactly
those shapes :func:`read_feed` builds the raw values feedparser would hand to
:func:`aggregator.parse.feed.parse_feed` -- the feed's ``title``/``link``/``subtitle``/``ttl``/``sy_*``
keys, and per entry ``title``, ``link``, ``id``, the dates' time tuples, ``author``,
``summary``, ``content``, ``tags``, ``links``, ``enclosures``, ``comments``, ``wfw_commentrss``,
``slash_comments``, ``thr_total`` -- and feed.py does all the cleaning, the same way for both.

What is copied from feedparser 6 (``mixin.py``, ``namespaces/_base.py``, ``encodings.py``),
because a value must come out the same, not merely equivalent:

* element text is stripped, URL-ish text (``link``, ``comments``, ``wfw:commentRss``, link
  ``href``) is joined to the document's address as feedparser's ``_urljoin`` does (an empty
  value stays empty), and text is "un-double-encoded" (``output.encode('latin-1')
  .decode('utf-8')`` when that works); a ``guid`` or Atom ``id`` is kept as written, as
  feed.py has feedparser keep it (issue 13);
* a permalink ``guid`` (or Atom ``id``) stands for the entry's link when it has none
  (``guidislink``; feed.py resolves it);
* the alternate link is the last ``rel="alternate"`` link of an HTML type; ``rel``/``type``
  are lower-cased and default to ``alternate``/``text/html``;
* ``<description>`` or ``<summary>`` is the summary, else the content is copied to it;
  ``dc:date`` is the *updated* date, ``pubDate`` the published one;
* Atom authors are ``name (email)``, ``name`` or ``email``; RSS ``<author>`` and
  ``dc:creator`` are their text;
* categories are ``(term, scheme, label)`` triples without repeats, in order;
* the version (``rss20``, ``atom10``, ``rss10``; ``rss091u``, ``rss092`` ... from an
  ``<rss>`` element's ``version``) as feedparser's namespace sniffing gives it.

Real feeds (issue 13) need more, also copied rather than imitated:

* the bytes are decoded by feedparser's own ``encodings.convert_to_utf8`` over the headers
  feed.py gives it (RFC 3023: the HTTP charset, the XML declaration, US-ASCII for ``text/*``,
  ISO-8859-1 without Content-Type, then its fallbacks), BOMs and UTF-16 included;
* ``xml:base`` (and ``base``) attributes change the base per element as feedparser's
  ``unknown_starttag`` does (``make_safe_absolute_uri``; :meth:`_Reader.base_of`);
* a date in another format is read by feedparser's own ``_parse_date``;
* elements of other namespaces are named as feedparser names them (``prefix_local``, lower
  case: :func:`_feedparser_name`): those it has no handler for and stores under keys feed.py
  does not read (``itunes:duration``, ``feedburner:origLink``, ``openSearch:*``, ``yt:*``,
  ``georss``...) and the handled ones that write no such key (``media:content``,
  ``media:thumbnail``, ``itunes:image``...; at the feed level also authors, tags, dates:
  :func:`_inert`) are skipped; those feedparser maps onto a field feed.py reads are mapped the
  same way: ``itunes:subtitle`` (the feed's subtitle), ``itunes:summary`` and a second
  ``<description>`` (summary, or content when a summary came first and no content yet, with
  feedparser's ``hasContent`` carried over from the channel), ``itunes:author`` (the last author
  wins), ``itunes:keywords`` and ``itunes:category`` (tags with the iTunes scheme),
  ``media:title`` (never over the entry's own title) and ``media:description`` (the summary of
  an entry without one), ``pubdate``/``wfw:commentRSS``/a ``dc`` namespace without its slash
  (the same elements under feedparser's lower-cased names), ``atom:updated``/``published`` in
  RSS (``dc:date``/``pubDate``);
* C1 control characters in text are mapped to cp1252's characters (feedparser's ``_cp1252``).

Everything else is declined (``None``; the caller uses feedparser): an encoding feedparser
cannot decode, a Content-Location header, a DOCTYPE or entity, XML that is not well-formed
(feedparser's loose parser), ``xml:base`` without a document URL, markup or comments inside a text element, XHTML or base64
content, several titles, contents or dates in one entry, an element feedparser maps onto a
field feed.py reads in a way not copied here (``dc:title``, ``media:category`` in an entry,
``<textinput>``, ``atom:content`` in RSS ...), a date feedparser cannot read, more entries than
feed.py keeps. ``tests/test_fastfeed.py`` runs both paths over every feed file of the
project's fixtures, feedparser's corpus and the real-world corpus, and requires the same
``FeedData`` wherever this one accepts; ``benchmarks/fastpath_share.py`` prints the share of
real-world feeds accepted and why the others are declined.

feedparser is imported here for those shared pieces only (its RFC 3023 decoder, URL joining,
date parser, cp1252 table, exceptions and handler table), so the values cannot drift apart; the feedparser
parse itself is :mod:`aggregator.parse.feed`'s, and no other module imports feedparser.
"""

from __future__ import annotations

import contextlib
import re
import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import feedparser.api
import feedparser.datetimes
import feedparser.encodings
import feedparser.exceptions
import feedparser.html
import feedparser.urls
from lxml import etree

from aggregator.parse.fastparse import ATOM, C1, CONTENT, DC, SAFE_PARSER, SLASH, THR, WFW

RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
RSS1 = "{http://purl.org/rss/1.0/}"
SY = "{http://purl.org/rss/1.0/modules/syndication/}"
MEDIA = "{http://search.yahoo.com/mrss/}"
GD = "{http://schemas.google.com/g/2005}"
WORDPRESS = "{com-wordpress:feed-additions:1}"

# feedparser's map of C1 controls to cp1252's characters, applied to every text it reads.
_CP1252 = feedparser.html._cp1252
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_]")  # after the declaration, comments and PIs
_BASE_ATTRIBUTE = re.compile(rb"""\sbase\s*=\s*["']""")
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
_XML_ATTRIBUTES = {XML_BASE, "{http://www.w3.org/XML/1998/namespace}lang"}
_NAMESPACE_DECLARATION = re.compile(r"""xmlns(?::[\w.-]+)?\s*=\s*["']([^"']*)["']""")
_URIFIXER = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")
_HTML_TYPES = {"text/html", "application/xhtml+xml"}

_RSS_CHANNEL_KNOWN = {
    "title", "link", "description", "language", "copyright", "managingEditor", "webMaster",
    "pubDate", "lastBuildDate", "category", "generator", "docs", "ttl", "image", "cloud",
    "skipHours", "skipDays", "item", f"{ATOM}link", f"{SY}updatePeriod",
    f"{SY}updateFrequency", f"{SY}updateBase", f"{WORDPRESS}site",
}  # fmt: skip
_RSS_ITEM_KNOWN = {
    "title", "link", "guid", "description", "pubDate", "author", "category", "comments",
    "enclosure", f"{DC}creator", f"{DC}date", f"{DC}subject", f"{CONTENT}encoded",
    f"{WFW}commentRss", f"{WFW}comment", f"{SLASH}comments", f"{THR}total", f"{WORDPRESS}post-id",
}  # fmt: skip
#: Item elements under the names feedparser gives them (lower case, canonical prefix): another
#: spelling (``pubdate``, ``wfw:commentRSS``, a ``dc`` namespace without its final slash) or
#: the Atom date elements, which feedparser reads as ``pubDate`` and ``dc:date``.
_RSS_ITEM_BY_NAME = {
    "title": "title", "link": "link", "guid": "guid", "description": "description",
    "pubdate": "pubDate", "published": "pubDate", "author": "author", "category": "category",
    "comments": "comments", "enclosure": "enclosure", "dc_creator": f"{DC}creator",
    "dc_date": f"{DC}date", "updated": f"{DC}date", "dc_subject": f"{DC}subject",
    "content_encoded": f"{CONTENT}encoded", "wfw_commentrss": f"{WFW}commentRss",
    "wfw_comment": f"{WFW}comment", "slash_comments": f"{SLASH}comments",
}  # fmt: skip
_RSS1_CHANNEL_KNOWN = {
    f"{RSS1}title", f"{RSS1}link", f"{RSS1}description", f"{RSS1}items", f"{DC}language",
    f"{DC}rights", f"{DC}publisher", f"{DC}creator", f"{DC}date", f"{SY}updatePeriod",
    f"{SY}updateFrequency", f"{SY}updateBase",
}  # fmt: skip
_RSS1_ITEM_KNOWN = {
    f"{RSS1}title", f"{RSS1}link", f"{RSS1}description", f"{DC}creator", f"{DC}date",
    f"{DC}subject", f"{CONTENT}encoded", f"{WFW}commentRss", f"{SLASH}comments",
}  # fmt: skip
_ATOM_FEED_KNOWN = {
    f"{ATOM}{name}"
    for name in (
        "title", "subtitle", "link", "id", "updated", "author", "generator", "rights", "icon",
        "logo", "entry", "category",
    )
}  # fmt: skip
_ATOM_ENTRY_KNOWN = {
    f"{ATOM}{name}"
    for name in ("id", "title", "link", "published", "updated", "author", "content", "summary",
                 "category")
} | {f"{THR}total", f"{MEDIA}thumbnail"}  # fmt: skip
_ATOM_AUTHOR_KNOWN = {f"{ATOM}name", f"{ATOM}uri", f"{ATOM}email", f"{GD}image"}
_RSS1_IMAGE_KNOWN = {f"{RSS1}title", f"{RSS1}url", f"{RSS1}link"}
_IMAGE_KNOWN = {"url", "title", "link", "width", "height", "description"}

_RFC822 = re.compile(
    r"^(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?(\d{1,2}) "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) "
    r"(\d{2}):(\d{2}):(\d{2}) ([+-]\d{4}|GMT|UTC|UT|Z|EST|EDT|CST|CDT|MST|MDT|PST|PDT)$"
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}
_ZONES = {
    "GMT": 0, "UTC": 0, "UT": 0, "Z": 0, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5,
    "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
}  # fmt: skip
_W3CDTF = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"
)


# feedparser's parser class (for its element handlers) and its namespace -> prefix table.
_FEEDPARSER = feedparser.api.StrictFeedParser
_PREFIXES = {uri.lower(): prefix for uri, prefix in _FEEDPARSER.namespaces.items()}
#: The keys feed.py reads from a feed or an entry: an element stored under one of them is read.
_USED_KEYS = {
    "title", "link", "links", "id", "guidislink", "author", "author_detail", "summary",
    "content", "tags", "enclosures", "published_parsed", "updated_parsed", "created_parsed",
    "comments", "wfw_commentrss", "slash_comments", "thr_total", "thr_in-reply-to", "subtitle",
    "ttl", "sy_updateperiod", "sy_updatefrequency", "skiphours", "skipdays",
    # An episode's podcast tags (parse._podcast_tags): this path leaves them to feedparser.
    "itunes_duration", "itunes_episode", "podcast_transcript", "podcast_chapters",
}  # fmt: skip
#: Elements feedparser has a handler for that write none of those keys, anywhere (they keep
#: media, artwork, ratings, places, chapters: values feed.py does not read).
_INERT_HANDLED = {
    "media_content", "media_thumbnail", "media_group", "media_rating", "media_credit",
    "media_restriction", "media_license", "media_player",
    "itunes_block", "itunes_owner", "itunes_name", "itunes_email",
    "georss_point", "georss_line", "georss_polygon", "georss_box", "georss_where", "where",
    "gml_point", "gml_linestring", "gml_polygon", "gml_exterior", "gml_linearring", "gml_pos",
    "gml_poslist", "psc_chapters", "psc_chapter", "admin_generatoragent",
    "admin_errorreportsto",
}  # fmt: skip
#: Harmless in an entry too: its publisher, rights, contributors and language, unread.
_INERT_HANDLED |= {
    "dc_publisher", "dc_rights", "dc_contributor", "dc_language", "rights", "copyright",
    "language",
}  # fmt: skip
#: More of them, harmless at the feed level only: they write the feed's author, tags,
#: language, rights, publisher, dates or image, none of which feed.py reads for a feed.
_INERT_IN_FEED = _INERT_HANDLED | {
    # An episode's image and rating, read in entries (parse._podcast_tags): inert in the feed.
    "itunes_image", "itunes_explicit", "itunes_link",
    "itunes_author", "itunes_category", "itunes_keywords", "media_category", "media_keywords",
    "dc_language", "dc_publisher", "dc_rights", "dc_creator", "dc_author", "dc_date",
    "dc_contributor", "dc_subject", "dcterms_created", "dcterms_issued", "dcterms_modified",
    "author", "managingeditor", "webmaster", "copyright", "rights", "updated", "id", "icon",
    "logo", "generator", "language", "pubdate", "lastbuilddate", "category", "published",
    "feedburner_browserfriendly", "info",
}  # fmt: skip


def _feedparser_name(element: Any) -> str:
    """The name feedparser gives ``element`` (``prefix_local``, lower case): its own prefix for a
    namespace it knows, else the prefix the document declared for it, else the local name."""
    name = etree.QName(element)
    local = name.localname.lower()
    uri = (name.namespace or "").lower()
    if "backend.userland.com/rss" in uri:
        uri = "http://backend.userland.com/rss"
    prefix = _PREFIXES.get(uri)
    if prefix is None:
        prefix = next((p for p, u in element.nsmap.items() if p and u == name.namespace), "")
    return f"{prefix.lower()}_{local}" if prefix else local


def _inert(element: Any, in_feed: bool) -> bool:
    """Whether feedparser's reading of ``element`` and everything inside it leaves every value
    feed.py reads unchanged: each is an element feedparser has no handler for and stores under
    a key feed.py does not read (``itunes:duration``, ``feedburner:origLink``,
    ``openSearch:totalResults``, ``yt:videoId`` ...), or one of the handled elements known to
    write only such keys (``media:content``, ``itunes:image`` ...; at the feed level also the
    feed's author, tags, dates)."""
    harmless = _INERT_IN_FEED if in_feed else _INERT_HANDLED
    for node in element.iter():
        if not isinstance(node.tag, str):
            continue
        name = _feedparser_name(node)
        if name in harmless:
            continue
        if (
            name in _USED_KEYS
            or hasattr(_FEEDPARSER, f"_start_{name}")
            or hasattr(_FEEDPARSER, f"_end_{name}")
        ):
            return False
    return True


class Declined(Exception):
    """The document is not of the plain shape this fast path reads exactly like feedparser."""


def read_feed(
    content: bytes, headers: Mapping[str, str] | None, url: str, max_entries: int
) -> dict[str, Any] | None:
    """feedparser's result for ``content`` as :func:`parse.parse_feed` reads it (``feed``,
    ``entries``, ``version``, ``bozo``), or ``None`` to decline.

    ``url`` is the document's address, as feed.py passes it to feedparser (an http(s) URL
    becomes its base for relative links); a document with more than ``max_entries`` entries is
    declined, so feed.py's cut and its warning stay feedparser's.
    """
    try:
        return _read(content, headers or {}, url, max_entries)
    except (Declined, etree.XMLSyntaxError, ValueError, TypeError, OverflowError):
        return None


def _read(content: bytes, headers: Mapping[str, str], url: str, max_entries: int) -> dict[str, Any]:
    lowered = {key.lower(): value for key, value in headers.items()}
    if "content-location" in lowered:
        raise Declined("a base feedparser may read differently")
    base = _base(url)
    if base is None:
        raise Declined("a base feedparser may read differently")
    content = _decoded(content, lowered, url)
    if b"<!DOCTYPE" in content[:4096] or b"<!ENTITY" in content:
        raise Declined("a DOCTYPE")
    if not base and (b"xml:base" in content or _BASE_ATTRIBUTE.search(content)):
        raise Declined("xml:base without a document URL (feedparser keeps it past its element)")
    root = etree.fromstring(content, SAFE_PARSER)
    if root.getroottree().docinfo.doctype:
        raise Declined("a DOCTYPE")
    reader = _Reader(base, max_entries)
    if root.tag == "rss":
        if len(root) != 1:
            raise Declined("not one channel")
        feed, entries = reader.rss(root[0])
        version = _rss_version(content, root.get("version") or "")
    elif root.tag == f"{ATOM}feed":
        feed, entries = reader.atom(root)
        version = _sniffed_version(content)
    elif root.tag == f"{RDF}RDF":
        feed, entries = reader.rdf(root)
        version = _sniffed_version(content)
    else:
        raise Declined("neither RSS 2.0, Atom 1.0 nor RSS 1.0")
    if len(entries) > max_entries:
        raise Declined("more entries than feed.py keeps")
    return {"feed": feed, "entries": entries, "version": version, "bozo": False}


def _decoded(content: bytes, headers: Mapping[str, str], url: str) -> bytes:
    """``content`` as the UTF-8 bytes feedparser parses: decoded by feedparser's own RFC 3023
    rules (``encodings.convert_to_utf8``, over the headers feed.py gives it: Content-Location
    for an http(s) URL), its XML declaration rewritten to UTF-8. Declined when no encoding fits
    (feedparser then falls back to its loose parser)."""
    response = dict(headers)
    if url.startswith(("http://", "https://")):
        response["content-location"] = url
    result: dict[str, Any] = {}
    data = feedparser.encodings.convert_to_utf8(response, content, result)
    if not result.get("encoding") or isinstance(
        result.get("bozo_exception"), feedparser.exceptions.CharacterEncodingUnknown
    ):
        raise Declined("an encoding feedparser cannot decode")
    return data


def _urljoin(base: str, uri: str) -> str:
    """feedparser's ``urls._urljoin``, exactly."""
    uri = _URIFIXER.sub(r"\1\3", uri)
    try:
        return urllib.parse.urljoin(base, uri)
    except ValueError:
        return ""


def _base(url: str) -> str | None:
    """The base feedparser resolves against: the Content-Location feed.py gives it for an
    http(s) URL (then re-joined to itself at every element), else none."""
    if not url.startswith(("http://", "https://")):
        return ""
    base = _urljoin(url, url)
    if not base or _urljoin(base, base) != base:
        return None
    return base


def _rss_version(content: bytes, attribute: str) -> str:
    """feedparser's version of an ``<rss>`` document (``_start_rss``): from its ``version``
    attribute, unless a namespace declared on it already gave RSS 1.0 (then declined)."""
    try:
        sniffed = _sniffed_version(content)
    except Declined:
        sniffed = "rss"
    if sniffed == "rss10":
        raise Declined("an RSS 1.0 namespace on an <rss> element")
    versions = {"0.91": "rss091u", "0.92": "rss092", "0.93": "rss093", "0.94": "rss094"}
    return versions.get(attribute) or ("rss20" if attribute.startswith("2.") else "rss")


def _sniffed_version(content: bytes) -> str:
    """The version feedparser's namespace tracking gives an Atom or RDF document: the first of
    the RSS 1.0 and Atom namespaces declared on the root element."""
    found = _FIRST_ELEMENT.search(content)
    if found is None:
        raise Declined("no root element")
    start = found.start()
    end = content.find(b">", start)
    tag = content[start:end].decode("utf-8")
    for uri in _NAMESPACE_DECLARATION.findall(tag):
        lowered = uri.lower()
        if lowered == "http://my.netscape.com/rdf/simple/0.9/":
            raise Declined("RSS 0.90")
        if lowered == "http://purl.org/rss/1.0/":
            return "rss10"
        if lowered == "http://www.w3.org/2005/atom":
            return "atom10"
    raise Declined("no version on the root element")


def _fix(text: str) -> str:
    """feedparser's repair of UTF-8 text decoded as Latin-1, applied to every text it reads."""
    if not text.isascii():
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            text = text.encode("iso-8859-1").decode("utf-8")
        if C1.search(text):  # e.g. &#146;: feedparser maps C1 controls to cp1252's characters
            text = text.translate(_CP1252)
    return text


def _raw_text(element: Any) -> str:
    """An element's stripped text; markup or comments inside it are declined."""
    if len(element):
        raise Declined("markup inside a text element")
    return (element.text or "").strip()


def _text(element: Any) -> str:
    return _fix(_raw_text(element))


def _content_type(value: str | None) -> str:
    """feedparser's ``map_content_type``."""
    kind = (value or "").lower()
    if kind in ("text", "plain"):
        return "text/plain"
    if kind == "html":
        return "text/html"
    if kind == "xhtml":
        return "application/xhtml+xml"
    return kind


def _rfc822(text: str) -> tuple[int, ...]:
    found = _RFC822.match(text)
    if not found:
        raise Declined(f"an unusual date: {text!r}")
    day, month, year, hour, minute, second, zone = found.groups()
    if zone[0] in "+-":
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
        offset = -offset if zone[0] == "-" else offset
    else:
        offset = timedelta(hours=_ZONES[zone])
    stamp = datetime(
        int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second),
        tzinfo=timezone(offset),
    )  # fmt: skip
    return tuple(stamp.astimezone(UTC).timetuple())


def _w3cdtf(text: str) -> tuple[int, ...]:
    found = _W3CDTF.match(text)
    if not found:
        raise Declined(f"an unusual date: {text!r}")
    year, month, day, hour, minute, second, zone = found.groups()
    if zone == "Z":
        offset = timedelta(0)
    else:
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        offset = -offset if zone[0] == "-" else offset
    stamp = datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second),
        tzinfo=timezone(offset),
    )  # fmt: skip
    return tuple(stamp.astimezone(UTC).timetuple())


def _date(element: Any) -> tuple[int, ...]:
    text = _text(element)
    if not text:
        raise Declined("an empty date")
    try:
        return _w3cdtf(text) if text[:1].isdigit() and "-" in text[:5] else _rfc822(text)
    except Declined:
        # Any other format: feedparser's own date handlers, so the result is theirs.
        parsed = feedparser.datetimes._parse_date(text)
        if parsed is None:
            raise
        return tuple(parsed)


def _no_attributes(element: Any, allowed: tuple[str, ...] = ()) -> None:
    """Decline an attribute other than ``allowed``, ``xml:base`` (read by :meth:`_Reader.base_of`)
    and ``xml:lang`` (the language, which feed.py does not read)."""
    if any(key not in allowed and key not in _XML_ATTRIBUTES for key in element.attrib):
        raise Declined(f"unusual attributes on {element.tag}")


class _Reader:
    """Builds feedparser's raw dicts for one document (``base``: its base for relative URLs)."""

    def __init__(self, base: str, max_entries: int = 1 << 62) -> None:
        self.base = base
        self.max_entries = max_entries
        self.bases: dict[Any, str] = {}
        self.feed_summary = False  # an itunes:summary was read in the channel
        # feedparser's hasContent: set by content anywhere, cleared only at the end of an item.
        self.has_content = False

    def base_of(self, element: Any) -> str:
        """The base feedparser resolves ``element``'s URLs against: the document's, changed by
        each ``xml:base`` (or plain ``base``) attribute from the root down to ``element``, as
        feedparser's ``unknown_starttag`` joins them (a base of a scheme it refuses is ignored).
        """
        if element is None:
            return self.base
        known = self.bases.get(element)
        if known is not None:
            return known
        parent = self.base_of(element.getparent())
        own = element.get(XML_BASE, element.get("base")) or parent
        if parent:
            base = feedparser.urls.make_safe_absolute_uri(parent, own) or parent
        elif own:
            raise Declined("xml:base without a document URL")
        else:
            base = ""
        self.bases[element] = base
        return base

    def url(self, text: str, element: Any) -> str:
        """URL-ish element text as feedparser resolves it (then un-double-encodes it)."""
        return _fix(_urljoin(self.base_of(element), text))

    def optional_url(self, text: str, element: Any) -> str:
        """Like :meth:`url`, but empty text stays empty: feedparser resolves only a value, and an
        empty one joined to the base would be the feed's own URL (issue 13)."""
        return self.url(text, element) if text else ""

    # -- RSS 2.0 --------------------------------------------------------------------------------

    def rss(self, channel: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        if channel.tag != "channel":
            raise Declined("no channel")
        feed: dict[str, Any] = {}
        entries = []
        seen: set[str] = set()
        for child in channel:
            tag = child.tag
            if not isinstance(tag, str):
                continue  # a comment or processing instruction between elements
            if tag not in _RSS_CHANNEL_KNOWN:
                self.channel_extension(feed, child, seen)
                continue
            if tag == "item":
                entries.append(self.rss_item(child))
                if len(entries) > self.max_entries:  # declined before reading them all
                    raise Declined("more entries than feed.py keeps")
                continue
            if tag in seen and tag in ("title", "link", "description", "ttl", "skipHours",
                                       "skipDays", "image", f"{SY}updatePeriod",
                                       f"{SY}updateFrequency"):  # fmt: skip
                raise Declined(f"several {tag}")
            seen.add(tag)
            self.channel_element(feed, child)
        return feed, entries

    def channel_extension(self, feed: dict[str, Any], child: Any, seen: set[str]) -> None:
        """A channel element outside RSS 2.0 as feedparser maps it: ``itunes:subtitle`` is the
        feed's subtitle (the last of it and ``<description>`` wins); ``itunes:summary`` is its
        summary, unread, but a ``<description>`` after it is then read as the feed's content, not
        its subtitle; the rest must be inert (:func:`_inert`)."""
        name = _feedparser_name(child)
        if name == "itunes_subtitle":
            _no_attributes(child)
            if name in seen:
                raise Declined("several itunes:subtitle")
            seen.add(name)
            feed["subtitle"] = _text(child)
        elif name == "itunes_summary":
            _raw_text(child)
            self.feed_summary = True
        elif not _inert(child, in_feed=True):
            raise Declined(f"an unusual channel element {child.tag}")

    def channel_element(self, feed: dict[str, Any], child: Any) -> None:
        """One channel child of RSS 2.0 or RSS 1.0 (namespace already checked by the caller)."""
        tag = etree.QName(child).localname if child.tag.startswith(RSS1) else child.tag
        if tag == "title":
            _no_attributes(child)
            feed["title"] = _text(child)
        elif tag == "link":
            _no_attributes(child)
            text = _raw_text(child)
            if not text:
                raise Declined("an empty link")
            feed["link"] = re.sub("&([A-Za-z0-9_]+);", r"&\g<1>", self.url(text, child))
        elif tag == "description":
            _no_attributes(child)
            text = _text(child)
            if not self.feed_summary:
                feed["subtitle"] = text
            elif not self.has_content:  # feedparser reads it as the feed's content
                self.has_content = True
            else:
                feed["summary"] = text
        elif tag == "ttl":
            feed["ttl"] = _text(child)
        elif tag == f"{SY}updatePeriod":
            feed["sy_updateperiod"] = _text(child)
        elif tag == f"{SY}updateFrequency":
            feed["sy_updatefrequency"] = _text(child)
        elif tag in ("skipHours", "skipDays"):
            for item in child:
                if isinstance(item.tag, str) and item.tag not in ("hour", "day"):
                    raise Declined("an unusual skip list")
            feed[tag.lower()] = ""
        elif tag == "image":
            for item in child:
                if isinstance(item.tag, str) and (item.tag not in _IMAGE_KNOWN or len(item)):
                    raise Declined("an unusual image")
        elif tag == f"{ATOM}link":
            self.atom_link(feed, child)
        elif tag in ("items", "cloud"):
            pass  # RSS 1.0's table of contents; <cloud>: attributes only
        elif len(child):
            raise Declined(f"markup inside {tag}")

    def rss_item(self, item: Any) -> dict[str, Any]:
        _no_attributes(item)
        raw: dict[str, Any] = {"links": [], "tags": [], "enclosures": []}
        counts: dict[str, int] = {}
        children = []
        media: list[tuple[str, Any]] = []
        for child in item:
            tag = child.tag
            if not isinstance(tag, str):
                continue
            if tag not in _RSS_ITEM_KNOWN:
                name = _feedparser_name(child)
                if name in _RSS_ITEM_BY_NAME:  # another spelling feedparser reads the same
                    tag = _RSS_ITEM_BY_NAME[name]
                elif name in ("itunes_author", "itunes_summary", "itunes_keywords",
                              "itunes_category"):  # fmt: skip
                    tag = name  # read below, as feedparser maps it
                elif name == "source" and not len(child):
                    continue  # the item's source, which is not read
                elif name in _MEDIA_TEXT_HOLDERS:
                    media.extend(_media_texts(child))
                    continue
                elif name == "itunes_subtitle" or _inert(child, in_feed=False):
                    continue  # itunes:subtitle: the entry's subtitle, which is not read
                else:
                    raise Declined(f"an unusual item element {tag}")
            children.append((tag, child))
            counts[tag] = counts.get(tag, 0) + 1
        _at_most_one(counts, "title", "link", "guid", "description", "pubDate", f"{DC}date",
                     f"{CONTENT}encoded", "comments", f"{WFW}commentRss", f"{SLASH}comments",
                     f"{THR}total")  # fmt: skip
        if counts.get("itunes_summary", 0) > 1:
            raise Declined("several itunes:summary")
        has_content = self.has_content
        self.has_content = False  # as feedparser's _end_item leaves it
        link = guid_link = None
        for tag, child in children:
            if tag == "title":
                _no_attributes(child)
                raw["title"] = _text(child)
            elif tag == "link":
                _no_attributes(child)
                text = _raw_text(child)
                if not text:
                    raise Declined("an empty link")
                link = self.entry_link(text, child)
                raw["links"].append({"rel": "alternate", "type": "text/html", "href": link})
            elif tag == "guid":
                _no_attributes(child, ("isPermaLink",))
                permalink = child.get("isPermaLink", "true").lower() == "true"
                if child.get("isPermaLink", "true") not in ("true", "false"):
                    raise Declined("an unusual isPermaLink")
                text = _raw_text(child)
                if not text:
                    raise Declined("an empty guid")
                # As written: feed.py keeps feedparser from resolving ids (issue 13).
                raw["id"] = _fix(text)
                raw["guidislink"] = permalink and link is None
                if permalink:
                    guid_link = raw["id"]
            elif tag in ("author", f"{DC}creator", "itunes_author"):
                _no_attributes(child)
                raw["author"] = _text(child)  # the last one wins, as in feedparser
            elif tag == "itunes_keywords":  # feedparser's _end_itunes_keywords
                _no_attributes(child)
                for term in _text(child).split(","):
                    if term.strip():
                        _add_tag(raw["tags"], term.strip(), "http://www.itunes.com/")
            elif tag == "itunes_category":  # _start_itunes_category, nested ones in turn
                for node in child.iter():
                    if _feedparser_name(node) != "itunes_category" or (node.text or "").strip():
                        raise Declined("an unusual itunes:category")
                    _no_attributes(node, ("text",))
                    if (node.tail or "").strip() and node is not child:
                        raise Declined("an unusual itunes:category")
                    _add_tag(raw["tags"], node.get("text"), "http://www.itunes.com/")
            elif tag == "pubDate":
                _no_attributes(child)
                raw["published_parsed"] = _date(child)
            elif tag == f"{DC}date":
                _no_attributes(child)
                raw["updated_parsed"] = _date(child)
            elif tag in ("description", "itunes_summary"):
                # feedparser's _start_description / _start_summary: a second summary of an item
                # without content yet is its content.
                _no_attributes(child)
                text = _text(child)
                if "summary" in raw and not has_content:
                    has_content = True
                    raw.setdefault("content", []).append({"value": text})
                else:
                    raw["summary"] = text
            elif tag == f"{CONTENT}encoded":
                _no_attributes(child)
                has_content = True
                text = _text(child)
                raw.setdefault("content", []).append({"value": text})
                raw.setdefault("summary", text)  # _end_content's copy to the summary
            elif tag in ("category", f"{DC}subject"):
                _no_attributes(child, ("domain",) if tag == "category" else ())
                _add_category(raw["tags"], None, child.get("domain"), None, _text(child))
            elif tag == "enclosure":
                self.enclosure(raw, child)
            elif tag == "comments":
                _no_attributes(child)
                raw["comments"] = self.optional_url(_raw_text(child), child)
            elif tag == f"{WFW}commentRss":
                _no_attributes(child)
                raw["wfw_commentrss"] = self.optional_url(_raw_text(child), child)
            elif tag == f"{SLASH}comments":
                _no_attributes(child)
                raw["slash_comments"] = _text(child)
            elif tag == f"{THR}total":
                _no_attributes(child)
                if child.prefix == "thr":
                    raw["thr_total"] = _text(child)
            elif len(child):  # wfw:comment, WordPress's post-id: text feedparser keeps aside
                raise Declined(f"markup inside {tag}")
        _media_fields(raw, media, counts.get("description", 0) + counts.get("itunes_summary", 0)
                      + counts.get(f"{CONTENT}encoded", 0))  # fmt: skip
        self.finish(raw, link, guid_link)
        return raw

    def entry_link(self, text: str, element: Any) -> str:
        """An RSS ``<link>``'s text as feedparser stores it for an entry."""
        value = self.url(text, element).replace("&amp;", "&")
        return re.sub("&([A-Za-z0-9_]+);", r"&\g<1>", value)

    def enclosure(self, raw: dict[str, Any], child: Any) -> None:
        _no_attributes(child, ("url", "length", "type"))
        if not child.get("url") or len(child) or (child.text or "").strip():
            raise Declined("an unusual enclosure")
        attrs = {key: value for key, value in child.attrib.items()}
        href = attrs.pop("url")
        if "type" in attrs:
            attrs["type"] = attrs["type"].lower()
        raw["enclosures"].append({**attrs, "href": href})
        raw["links"].append({**attrs, "href": href, "rel": "enclosure"})

    def finish(self, raw: dict[str, Any], link: str | None, guid_link: str | None) -> None:
        """The values feedparser derives at the end of an entry: the link, the summary."""
        if link is not None:
            raw["link"] = link
        elif guid_link is not None:
            raw["link"] = guid_link
        content = raw.get("content")
        if "summary" not in raw and content:
            raw["summary"] = content[0]["value"]

    # -- RSS 1.0 --------------------------------------------------------------------------------

    def rdf(self, root: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        channels = [c for c in root if c.tag == f"{RSS1}channel"]
        if len(channels) != 1:
            raise Declined("not one RSS 1.0 channel")
        feed: dict[str, Any] = {}
        seen: set[str] = set()
        for child in channels[0]:
            tag = child.tag
            if not isinstance(tag, str):
                continue
            if tag not in _RSS1_CHANNEL_KNOWN:
                if tag == f"{RSS1}image" and not len(child) or _inert(child, in_feed=True):
                    continue  # image: a reference to the RDF's <image>
                raise Declined(f"an unusual channel element {tag}")
            if tag in seen:
                raise Declined(f"several {tag}")
            seen.add(tag)
            if tag.startswith(RSS1) or tag.startswith(SY):
                self.channel_element(feed, child)
            elif len(child):
                raise Declined(f"markup inside {tag}")
        entries = []
        for child in root:
            tag = child.tag
            if not isinstance(tag, str) or child is channels[0]:
                continue
            if tag != f"{RSS1}item":
                if tag == f"{RSS1}image" and all(
                    c.tag in _RSS1_IMAGE_KNOWN and not len(c)
                    for c in child
                    if isinstance(c.tag, str)
                ):
                    continue  # feedparser keeps its title and link as the image's
                if tag != f"{RSS1}image" and _inert(child, in_feed=True):
                    continue
                raise Declined(f"an unusual RDF element {tag}")
            entries.append(self.rdf_item(child))
            if len(entries) > self.max_entries:  # declined before reading them all
                raise Declined("more entries than feed.py keeps")
        return feed, entries

    def rdf_item(self, item: Any) -> dict[str, Any]:
        _no_attributes(item, (f"{RDF}about",))
        raw: dict[str, Any] = {"links": [], "tags": [], "enclosures": []}
        counts: dict[str, int] = {}
        children = []
        for child in item:
            if not isinstance(child.tag, str):
                continue
            if child.tag not in _RSS1_ITEM_KNOWN:
                if _inert(child, in_feed=False):
                    continue
                raise Declined(f"an unusual item element {child.tag}")
            children.append(child)
            counts[child.tag] = counts.get(child.tag, 0) + 1
        _at_most_one(counts, *(_RSS1_ITEM_KNOWN - {f"{DC}subject"}))
        about = item.get(f"{RDF}about")
        if about:
            raw["id"] = about
        link = None
        for child in children:
            tag = child.tag
            _no_attributes(child)
            if tag == f"{RSS1}title":
                raw["title"] = _text(child)
            elif tag == f"{RSS1}link":
                text = _raw_text(child)
                if not text:
                    raise Declined("an empty link")
                link = self.entry_link(text, child)
                raw["links"].append({"rel": "alternate", "type": "text/html", "href": link})
            elif tag == f"{RSS1}description":
                raw["summary"] = _text(child)
            elif tag == f"{DC}creator":
                raw["author"] = _text(child)
            elif tag == f"{DC}date":
                raw["updated_parsed"] = _date(child)
            elif tag == f"{DC}subject":
                _add_category(raw["tags"], None, None, None, _text(child))
            elif tag == f"{CONTENT}encoded":
                raw["content"] = [{"value": _text(child)}]
            elif tag == f"{WFW}commentRss":
                raw["wfw_commentrss"] = self.optional_url(_raw_text(child), child)
            elif tag == f"{SLASH}comments":
                raw["slash_comments"] = _text(child)
        self.finish(raw, link, None)
        return raw

    # -- Atom 1.0 -------------------------------------------------------------------------------

    def atom(self, root: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        feed: dict[str, Any] = {}
        entries = []
        counts: dict[str, int] = {}
        ident = None
        for child in root:
            tag = child.tag
            if not isinstance(tag, str):
                continue
            if tag not in _ATOM_FEED_KNOWN:
                if _inert(child, in_feed=True):
                    continue
                raise Declined(f"an unusual feed element {tag}")
            if tag == f"{ATOM}entry":
                entries.append(self.atom_entry(child))
                if len(entries) > self.max_entries:  # declined before reading them all
                    raise Declined("more entries than feed.py keeps")
                continue
            counts[tag] = counts.get(tag, 0) + 1
            if counts[tag] > 1 and tag not in (f"{ATOM}link", f"{ATOM}category"):
                raise Declined(f"several {tag}")
            if tag == f"{ATOM}title":
                feed["title"] = _atom_text(child)
            elif tag == f"{ATOM}subtitle":
                feed["subtitle"] = _atom_text(child)
            elif tag == f"{ATOM}link":
                self.atom_link(feed, child)
            elif tag == f"{ATOM}id":
                ident = self.atom_id(child)
            elif tag == f"{ATOM}author":
                _atom_author(child)  # checked only: the feed's author is not read
            elif tag == f"{ATOM}rights":
                _atom_text(child)
            elif len(child):
                raise Declined(f"markup inside {tag}")
        if "link" not in feed and ident is not None:
            feed["link"] = ident
        return feed, entries

    def atom_id(self, element: Any) -> str:
        _no_attributes(element)
        text = _raw_text(element)
        if not text:
            raise Declined("an empty id")
        return _fix(text)  # as written: feed.py keeps feedparser from resolving ids (issue 13)

    def atom_link(self, context: dict[str, Any], element: Any) -> None:
        """An Atom link (also ``atom:link`` in RSS) appended to ``links``; an alternate link of
        an HTML type becomes the ``link``, the last one winning."""
        attrs: dict[str, str] = {}
        for key, value in element.attrib.items():
            name = etree.QName(key)
            if name.namespace is None:
                attrs[name.localname.lower()] = value
            elif name.namespace == THR[1:-1] and name.localname == "count":
                attrs["count"] = value
                prefix = next((p for p, u in element.nsmap.items() if u == name.namespace), None)
                if prefix:
                    attrs[f"{prefix}:count".lower()] = value
            else:
                raise Declined("an unusual link attribute")
        if len(element) or (element.text or "").strip():
            raise Declined("an unusual link")
        if not attrs.get("href") or "url" in attrs or "uri" in attrs:
            raise Declined("a link without a plain href")
        for key in ("rel", "type"):
            if key in attrs:
                attrs[key] = attrs[key].lower()
        attrs.setdefault("rel", "alternate")
        attrs.setdefault("type", "application/atom+xml" if attrs["rel"] == "self" else "text/html")
        attrs["href"] = _urljoin(self.base_of(element), attrs["href"])
        context.setdefault("links", []).append(attrs)
        if attrs["rel"] == "alternate" and _content_type(attrs["type"]) in _HTML_TYPES:
            context["link"] = attrs["href"]
        if attrs["rel"] == "enclosure":
            context.setdefault("enclosures", []).append(
                {key: value for key, value in attrs.items() if key != "rel"}
            )

    def atom_entry(self, entry: Any) -> dict[str, Any]:
        _no_attributes(entry)
        raw: dict[str, Any] = {"links": [], "tags": [], "enclosures": []}
        counts: dict[str, int] = {}
        children = []
        media: list[tuple[str, Any]] = []
        for child in entry:
            if not isinstance(child.tag, str):
                continue
            if child.tag not in _ATOM_ENTRY_KNOWN:
                if _feedparser_name(child) in _MEDIA_TEXT_HOLDERS:
                    media.extend(_media_texts(child))
                    continue
                if _inert(child, in_feed=False):
                    continue
                raise Declined(f"an unusual entry element {child.tag}")
            children.append(child)
            counts[child.tag] = counts.get(child.tag, 0) + 1
        _at_most_one(counts, *(_ATOM_ENTRY_KNOWN - {f"{ATOM}link", f"{ATOM}category",
                                                    f"{MEDIA}thumbnail"}))  # fmt: skip
        ident = None
        for child in children:
            tag = child.tag
            if tag == f"{ATOM}id":
                ident = raw["id"] = self.atom_id(child)
                raw["guidislink"] = "link" not in raw
            elif tag == f"{ATOM}title":
                raw["title"] = _atom_text(child)
            elif tag == f"{ATOM}link":
                self.atom_link(raw, child)
            elif tag == f"{ATOM}published":
                _no_attributes(child)
                raw["published_parsed"] = _date(child)
            elif tag == f"{ATOM}updated":
                _no_attributes(child)
                raw["updated_parsed"] = _date(child)
            elif tag == f"{ATOM}author":
                raw["author"] = _atom_author(child)
            elif tag == f"{ATOM}content":
                raw["content"] = [{"value": _atom_text(child)}]
            elif tag == f"{ATOM}summary":
                raw["summary"] = _atom_text(child)
            elif tag == f"{ATOM}category":
                _no_attributes(child, ("term", "scheme", "label"))
                _add_category(
                    raw["tags"], child.get("term"), child.get("scheme"), child.get("label"),
                    _text(child),
                )  # fmt: skip
            elif tag == f"{THR}total":
                _no_attributes(child)
                if child.prefix == "thr":
                    raw["thr_total"] = _text(child)
            elif tag == f"{MEDIA}thumbnail" and (len(child) or (child.text or "").strip()):
                raise Declined("an unusual thumbnail")
        if "link" not in raw and ident is not None:
            raw["link"] = ident
        _media_fields(raw, media, counts.get(f"{ATOM}summary", 0) + counts.get(f"{ATOM}content", 0))
        self.finish(raw, raw.pop("link", None), None)
        return raw


_MEDIA_TEXT_HOLDERS = {"media_group", "media_content", "media_title", "media_description"}


def _media_texts(element: Any) -> list[tuple[str, Any]]:
    """The ``media:title`` and ``media:description`` elements in ``element`` (a Media RSS group
    or content, or one of them), which feedparser reads as the entry's title and description;
    everything else in it must be inert."""
    found = []
    for node in element.iter():
        if not isinstance(node.tag, str):
            continue
        name = _feedparser_name(node)
        if name in ("media_title", "media_description"):
            if len(node):
                raise Declined(f"markup inside {name}")
            found.append((name, node))
        elif name not in ("media_group", "media_content") and not _inert(node, in_feed=False):
            raise Declined(f"an unusual media element {node.tag}")
    return found


def _media_fields(raw: dict[str, Any], media: list[tuple[str, Any]], summaries: int) -> None:
    """What feedparser makes of an entry's ``media:title`` and ``media:description``: a title
    of the entry's own (non-empty) always wins over a ``media:title`` (feedparser's title depth);
    a lone ``media:description`` of an entry without summary or content is its summary (beside
    them, feedparser's order and depth rules decide: declined)."""
    titles = [node for name, node in media if name == "media_title"]
    descriptions = [node for name, node in media if name == "media_description"]
    if titles and not raw.get("title"):
        raise Declined("a media:title without a title")
    if descriptions:
        if len(descriptions) > 1 or summaries:
            raise Declined("a media:description beside a summary")
        _no_attributes(descriptions[0], ("type",))
        raw["summary"] = _text(descriptions[0])


def _at_most_one(counts: Mapping[str, int], *tags: str) -> None:
    for tag in tags:
        if counts.get(tag, 0) > 1:
            raise Declined(f"several {tag}")


def _add_tag(tags: list[dict[str, Any]], term: str | None, scheme: str | None) -> None:
    """feedparser's ``_add_tag`` (a tag without a label, not repeated)."""
    value = {"term": term, "scheme": scheme, "label": None}
    if (term or scheme) and value not in tags:
        tags.append(value)


def _add_category(
    tags: list[dict[str, Any]], term: str | None, scheme: str | None, label: str | None, text: str
) -> None:
    """feedparser's ``_start_category`` + ``_end_category``: a (term, scheme, label) triple from
    the attributes, its term filled in or a new tag made from the element's text."""
    if term or scheme or label:
        value = {"term": term, "scheme": scheme, "label": label}
        if value not in tags:
            tags.append(value)
    if not text:
        return
    if tags and not tags[-1]["term"]:
        tags[-1]["term"] = text
    else:
        value = {"term": text, "scheme": None, "label": None}
        if value not in tags:
            tags.append(value)


def _atom_text(element: Any) -> str:
    """An Atom text construct or content of type text or html (escaped): its text."""
    _no_attributes(element, ("type",))
    kind = element.get("type", "text")
    if kind not in ("text", "html"):
        raise Declined(f"an Atom {kind} construct")
    return _text(element)


def _atom_author(element: Any) -> str:
    """feedparser's ``author``: ``name (email)``, ``name`` or ``email``."""
    _no_attributes(element)
    if (element.text or "").strip():
        raise Declined("text inside an author")
    found: dict[str, str] = {}
    for child in element:
        if not isinstance(child.tag, str):
            continue
        if child.tag not in _ATOM_AUTHOR_KNOWN or child.tag in found or (child.tail or "").strip():
            raise Declined("an unusual author")
        if child.tag == f"{GD}image":
            if len(child) or (child.text or "").strip():
                raise Declined("an unusual author image")
            continue
        _no_attributes(child)
        found[child.tag] = _raw_text(child)
    name = found.get(f"{ATOM}name")
    email = found.get(f"{ATOM}email")
    if name and email:
        return f"{name} ({email})"
    return name or email or ""
