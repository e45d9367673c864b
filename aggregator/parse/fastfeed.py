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
* the version (``rss20``, ``atom10``, ``rss10``, ``rss090``; ``rss091u``, ``rss092`` ... from
  an ``<rss>`` element's ``version``) as feedparser's namespace sniffing gives it; an RSS 0.90
  document is read as RSS 1.0, its elements renamed (feedparser maps both namespaces alike).

Real feeds (issue 13) need more, also copied rather than imitated:

* the bytes are decoded by feedparser's own ``encodings.convert_to_utf8`` over the headers
  feed.py gives it (RFC 3023: the HTTP charset, the XML declaration, US-ASCII for ``text/*``,
  ISO-8859-1 without Content-Type, then its fallbacks), BOMs and UTF-16 included;
* ``xml:base`` (and ``base``) attributes change the base per element as feedparser's
  ``unknown_starttag`` does (``make_safe_absolute_uri``; :meth:`EntryReader.base_of`);
* a date in another format is read by feedparser's own ``_parse_date``;
* elements of other namespaces are named as feedparser names them (``prefix_local``, lower
  case: :mod:`aggregator.parse.fastfeed_names`): those it has no handler for and stores under keys feed.py
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
* markup is serialized as feedparser's strict parser writes it (mixin's ``unknown_starttag`` /
  ``unknown_endtag``, then ``pop``): Atom ``type="xhtml"`` constructs (the enclosing ``<div>``
  removed by its rule), an RSS item's ``xhtml:body``, and markup written unescaped inside an
  RSS ``<description>`` or ``content:encoded`` (HTML until its first element that is not a
  ``<div>``, XHTML from there: :func:`aggregator.parse.fastfeed_items._rss_html`);
* more of feedparser's element mappings (issue 13, last round): RSS ``<id>`` is its ``guid``
  (several: the last is the id, the first decides ``guidislink``), an RSS ``<author>`` holding
  ``name``/``email`` is read as an Atom author, ``dcterms:issued``/``modified`` are dates,
  ``media:category``/``keywords`` in a Media RSS group are tags, ``creativeCommons:license`` is
  a license link, empty ``<link>`` elements and an empty ``href`` are stored as feedparser
  stores them, a channel's ``dc:title``/``content:encoded`` follow its title depth and
  ``hasContent``; RSS 0.90 is read as RSS 1.0 (version ``rss090``) and an ``<rss>`` in a
  default namespace feedparser reads as none (``backend.userland.com/rss2``, an unknown one)
  without it.

Everything else is declined (``None``; the caller uses feedparser): an encoding feedparser
cannot decode, a Content-Location header, a DOCTYPE or entity, XML that is not well-formed
(feedparser's loose parser), ``xml:base`` without a document URL, markup inside other text
elements, SVG, MathML or elements feedparser has handlers for inside markup, base64 content,
several titles, contents or dates in one entry, an element feedparser maps onto a
field feed.py reads in a way not copied here (``dc:title``, ``media:category`` in an entry,
``<textinput>``, ``atom:content`` in RSS ...), a date feedparser cannot read, more entries than
feed.py keeps. ``tests/test_fastfeed.py`` runs both paths over every feed file of the
project's fixtures, feedparser's corpus and the real-world corpus, and requires the same
``FeedData`` wherever this one accepts; ``benchmarks/fastpath_share.py`` prints the share of
real-world feeds accepted and why the others are declined.

feedparser is imported by the fast paths for those shared pieces only (its RFC 3023 decoder
here, URL joining in :mod:`aggregator.parse.fastfeed_items`, date parser and cp1252 table in
:mod:`aggregator.parse.fastxml`, exceptions here and handler table in
:mod:`aggregator.parse.fastfeed_names`), so the values cannot drift apart; the feedparser parse
itself is :mod:`aggregator.parse.feed`'s. The entries are read by
:mod:`aggregator.parse.fastfeed_items`, the element tables and feedparser's naming and inert
rules are :mod:`aggregator.parse.fastfeed_names`', the shared parser, text and date readers
:mod:`aggregator.parse.fastxml`'s.
"""

from __future__ import annotations

import io
import re
import xml.sax
import xml.sax.handler
import xml.sax.xmlreader
from collections.abc import Mapping
from typing import Any

import feedparser.encodings
import feedparser.exceptions
from lxml import etree

from aggregator.parse.fastfeed_items import EntryReader, _atom_author, _atom_text, unescaped_names
from aggregator.parse.fastfeed_names import (
    _ATOM_FEED_KNOWN,
    _IMAGE_KNOWN,
    _PREFIXES,
    _RSS1_CHANNEL_KNOWN,
    _RSS1_IMAGE_KNOWN,
    _RSS_CHANNEL_KNOWN,
    _feedparser_name,
    _inert,
)
from aggregator.parse.fastxml import (
    ATOM,
    RDF,
    RSS1,
    SAFE_PARSER,
    SY,
    Declined,
    _no_attributes,
    _raw_text,
    _text,
    _urljoin,
)

#: feedparser's own declaration in front of a document's, which only whitespace preceded.
_MISPLACED_DECLARATION = re.compile(
    rb"(<\?xml version='1.0' encoding='utf-8'\?>\n)[ \t\r\n]*<\?xml[ \t\r\n][^>]*\?>"
)
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_]")  # after the declaration, comments and PIs
# feedparser's encodings.RE_XML_DECLARATION over bytes, and the declaration it writes instead.
_XML_DECLARATION = re.compile(rb"^<\?xml[^>]*?>")
_UTF8_DECLARATION = b"<?xml version='1.0' encoding='utf-8'?>"
# A base attribute's name, with its value's start; _has_base_attribute checks the space before.
_BASE_ATTRIBUTE = re.compile(rb"""base\s*=\s*["']""")
_RSS090 = "{http://my.netscape.com/rdf/simple/0.9/}"
_NAMESPACE_DECLARATION = re.compile(r"""xmlns(:[\w.-]+)?\s*=\s*["']([^"']*)["']""")


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
    content, strict_error = _misplaced_declaration(content)
    if b"<!DOCTYPE" in content[:4096] or b"<!ENTITY" in content:
        raise Declined("a DOCTYPE")
    if not base and _has_base_attribute(content):
        raise Declined("xml:base without a document URL (feedparser keeps it past its element)")
    root = etree.fromstring(content, SAFE_PARSER)
    if root.getroottree().docinfo.doctype:
        raise Declined("a DOCTYPE")
    reader = _Reader(base, max_entries)
    # _base checked that the document's base joined to itself is itself, so without base
    # attributes it is every element's base. (Looked for only as "base": a closer look costs
    # more than the walks up the tree it would spare.)
    reader.no_base_attributes = b"base" not in content
    namespace = etree.QName(root).namespace
    if namespace and root.prefix is None and etree.QName(root).localname == "rss":
        _without_namespace(root, namespace)
    if root.tag == "rss":
        children = [child for child in root if isinstance(child.tag, str)]  # not comments
        if len(children) != 1:
            raise Declined("not one channel")
        feed, entries = reader.rss(children[0])
        version = _rss_version(content, root.get("version") or "")
    elif root.tag == f"{ATOM}feed":
        feed, entries = reader.atom(root)
        version = _sniffed_version(content)
        if version == "rss090":
            raise Declined("RSS 0.90")
    elif root.tag == f"{RDF}RDF":
        version = _sniffed_version(content)
        if version == "rss090":
            _as_rss10(root)
        feed, entries = reader.rdf(root)
    else:
        raise Declined("neither RSS 2.0, Atom 1.0 nor RSS 1.0")
    if len(entries) > max_entries:
        raise Declined("more entries than feed.py keeps")
    if strict_error is not None:
        return {
            "feed": feed, "entries": entries, "version": version, "bozo": True,
            "bozo_exception": strict_error,
        }  # fmt: skip
    return {"feed": feed, "entries": entries, "version": version, "bozo": False}


def _has_base_attribute(content: bytes) -> bool:
    """Whether ``content`` may have an ``xml:base`` or ``base`` attribute: ``xml:base``, or
    ``base=`` after whitespace (``\\sbase\\s*=\\s*["']``, searched from its literal part,
    which is many times faster than a pattern starting with a class)."""
    if b"xml:base" in content:
        return True
    if b"base" not in content:
        return False
    return any(
        found.start() > 0 and content[found.start() - 1] in b" \t\n\r\x0b\x0c"
        for found in _BASE_ATTRIBUTE.finditer(content)
    )


def _misplaced_declaration(data: bytes) -> tuple[bytes, Exception | None]:
    """``data`` (feedparser's UTF-8 text) without the document's own XML declaration when only
    whitespace came before it, with the error feedparser's strict parser reports for it.

    feedparser finds no declaration at the start of such a document, so it puts its own in front
    and expat then fails on the document's one ("XML or text declaration not at start of
    entity"); feedparser reads the document again with its loose parser and flags it as
    ill-formed. This path reads it strictly instead, with the same error as feedparser's
    ``bozo_exception``, so the feed's warning is the same. A deliberate difference: where the loose
    parser misreads the rest (it doubles an upper-case ``<BR />`` inside CDATA), the strict
    reading is the document's (tests/test_fastfeed.py lists the corpus file)."""
    found = _MISPLACED_DECLARATION.match(data)
    if found is None:
        return data, None
    return found.group(1) + data[found.end() :], _strict_error(data)


def _strict_error(data: bytes) -> Exception:
    """The exception feedparser's strict parser (expat through SAX, namespaces on) raises on
    ``data``, or :class:`Declined` when it raises none."""
    parser = xml.sax.make_parser([])
    parser.setFeature(xml.sax.handler.feature_namespaces, 1)
    parser.setFeature(xml.sax.handler.feature_external_ges, 0)
    source = xml.sax.xmlreader.InputSource()
    source.setByteStream(io.BytesIO(data))
    try:
        parser.parse(source)
    except xml.sax.SAXParseException as error:
        return error
    raise Declined("a second XML declaration that expat accepts")


def _decoded(content: bytes, headers: Mapping[str, str], url: str) -> bytes:
    """``content`` as the UTF-8 bytes feedparser parses: decoded by feedparser's own RFC 3023
    rules (``encodings.convert_to_utf8``, over the headers feed.py gives it: Content-Location
    for an http(s) URL), its XML declaration rewritten to UTF-8. Declined when no encoding fits
    (feedparser then falls back to its loose parser)."""
    response = dict(headers)
    if url.startswith(("http://", "https://")):
        response["content-location"] = url
    as_utf8 = _read_as_utf8(response, content)
    if as_utf8 is not None:
        return as_utf8
    result: dict[str, Any] = {}
    data = feedparser.encodings.convert_to_utf8(response, content, result)
    if not result.get("encoding") or isinstance(
        result.get("bozo_exception"), feedparser.exceptions.CharacterEncodingUnknown
    ):
        raise Declined("an encoding feedparser cannot decode")
    return data


def _read_as_utf8(headers: Mapping[str, str], content: bytes) -> bytes | None:
    """What ``convert_to_utf8`` makes of ``content`` when it reads it as UTF-8 at its first try
    (most feeds), without decoding it all to text and encoding it back; else ``None``.

    Its choice of encoding depends on the first four bytes (a byte order mark, ``<?xm`` in
    another encoding), the encoding in an XML declaration on the first line, the headers, and
    whether the whole document decodes. So it is asked about the first line alone: when it
    takes UTF-8, the encoding the headers and declaration name, with no override, and the
    whole document is UTF-8 as well, it would take UTF-8 for the whole document, and give it
    back with its XML declaration (``RE_XML_DECLARATION``: ``>`` is never part of a multi-byte
    character, so the match is the same on the bytes) replaced by its own, or its own put in
    front. tests/test_fastfeed.py compares it with ``convert_to_utf8``."""
    if content[:1] != b"<" or content[1:2] in (b"\x00", b"o"):
        return None  # a BOM, or "<?xm" in UTF-16, UTF-32 or EBCDIC: the whole decoder
    newline = content.find(b"\n", 0, 4096)
    if newline < 0:
        return None
    result: dict[str, Any] = {}
    feedparser.encodings.convert_to_utf8(headers, content[: newline + 1], result)
    if result.get("encoding") != "utf-8" or isinstance(
        result.get("bozo_exception"),
        feedparser.exceptions.CharacterEncodingOverride
        | feedparser.exceptions.CharacterEncodingUnknown,
    ):
        return None
    if not content.isascii():
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            return None
    found = _XML_DECLARATION.match(content)
    if found is None:
        return _UTF8_DECLARATION + b"\n" + content
    return _UTF8_DECLARATION + content[found.end() :]


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


def _without_namespace(root: Any, namespace: str) -> None:
    """An ``<rss>`` document in a default namespace that feedparser reads as no namespace
    (``backend.userland.com/rss2``, ``blogs.law.harvard.edu/tech/rss``: its own table maps them
    to no prefix; one it does not know has none either) with its elements' namespace removed;
    declined for any other (RSS 1.0, Atom ...)."""
    lowered = namespace.lower()
    plain = ("backend.userland.com/rss", "http://blogs.law.harvard.edu/tech/rss")
    if lowered in _PREFIXES and not lowered.startswith(plain) and plain[0] not in lowered:
        raise Declined("an <rss> element in a namespace")
    prefix = "{" + namespace + "}"
    for element in root.iter():
        tag = element.tag
        if isinstance(tag, str) and tag.startswith(prefix):
            element.tag = tag[len(prefix) :]


def _as_rss10(root: Any) -> None:
    """An RSS 0.90 document's elements renamed into the RSS 1.0 namespace: feedparser maps both
    namespaces to no prefix, so it reads their channel, image, text input and items alike (the
    version, ``rss090``, is the only difference)."""
    for element in root.iter():
        tag = element.tag
        if isinstance(tag, str) and tag.startswith(_RSS090):
            element.tag = RSS1 + tag[len(_RSS090) :]


def _root_start(content: bytes) -> int:
    """Where the root element's start tag begins: after the XML declaration, processing
    instructions and comments (a comment may itself hold ``<updated>``)."""
    position = 0
    while True:
        found = _FIRST_ELEMENT.search(content, position)
        if found is None:
            raise Declined("no root element")
        comment = content.find(b"<!--", position, found.start())
        instruction = content.find(b"<?", position, found.start())
        skipped = [at for at in (comment, instruction) if at >= 0]
        if not skipped:
            return found.start()
        first = min(skipped)
        closing = b"-->" if first == comment else b"?>"
        end = content.find(closing, first + 2)
        if end < 0:
            raise Declined("no root element")
        position = end + len(closing)


def _sniffed_version(content: bytes) -> str:
    """The version feedparser's namespace tracking gives an Atom or RDF document: the first of
    the RSS 0.90 (as the default namespace), RSS 1.0 and Atom namespaces declared on the root
    element."""
    start = _root_start(content)
    end = content.find(b">", start)
    tag = content[start:end].decode("utf-8")
    for prefix, uri in _NAMESPACE_DECLARATION.findall(tag):
        lowered = uri.lower()
        if lowered == _RSS090[1:-1]:
            if prefix:  # feedparser's track_namespace: RSS 0.90 as the default namespace only
                raise Declined("RSS 0.90 under a prefix")
            return "rss090"
        if lowered == "http://purl.org/rss/1.0/":
            return "rss10"
        if lowered == "http://www.w3.org/2005/atom":
            return "atom10"
    raise Declined("no version on the root element")


_TEXTINPUT_KNOWN = ("title", "description", "name", "link")


def _plain_textinput(element: Any, namespace: str) -> None:
    """Check a ``<textinput>`` (``<textInput>``) that feedparser keeps apart as the feed's
    ``textinput``, which feed.py does not read: only its title, description, name and link, as
    plain text. Any other child would end feedparser's text input mid-way (its ``intextinput``
    is cleared by any other element) and send the rest to the feed itself: declined."""
    _no_attributes(element, (f"{RDF}about", "about"))  # feedparser reads neither
    for child in element:
        if not isinstance(child.tag, str):
            continue
        if child.tag not in {namespace + name for name in _TEXTINPUT_KNOWN}:
            raise Declined("an unusual textinput")
        _no_attributes(child)
        _raw_text(child)


class _Reader(EntryReader):
    """Builds feedparser's raw dicts for one document (``base``: its base for relative URLs)."""

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
            if tag in ("item", "image"):
                self.feed_title_set = False  # feedparser's _start_item and _start_image
            if tag == "item":
                entries.append(self.rss_item(child))
                if len(entries) > self.max_entries:  # declined before reading them all
                    raise Declined("more entries than feed.py keeps")
                continue
            if tag in seen and tag in ("link", "description", "ttl", "skipHours",
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
        elif name == "content_encoded":
            # feedparser's _start_content_encoded sets hasContent, and its _end_content saves
            # the text as the feed's content and summary, neither of which feed.py reads.
            _no_attributes(child)
            _raw_text(child)
            self.has_content = self.channel_content = True
        elif name == "textinput":
            self.feed_title_set = False  # feedparser's _start_textinput
            _plain_textinput(child, "")
        elif name == "dc_title":
            self.feed_title(feed, child)
        elif name == "guid" and child.get("isPermaLink", "true") != "true":
            # The feed's id (unread); feedparser's _end_guid saves no link for a guid that is
            # not a permalink.
            _no_attributes(child, ("isPermaLink",))
            _raw_text(child)
        elif not _inert(child, in_feed=True):
            raise Declined(f"an unusual channel element {child.tag}")

    def channel_element(self, feed: dict[str, Any], child: Any) -> None:
        """One channel child of RSS 2.0 or RSS 1.0 (namespace already checked by the caller)."""
        tag = etree.QName(child).localname if child.tag.startswith(RSS1) else child.tag
        if tag == "title":
            self.feed_title(feed, child)
        elif tag == "link":
            _no_attributes(child)
            text = _raw_text(child)
            if not text:  # feedparser resolves no empty value: the feed's link is ""
                feed["link"] = ""
                return
            feed["link"] = unescaped_names(self.url(text, child))
        elif tag == "description":
            _no_attributes(child)
            text = _text(child)
            # feedparser's _start_description: read as the feed's content when the feed has a
            # summary (an itunes:summary, or a content:encoded copied to it) and no content yet.
            if (self.feed_summary or self.channel_content) and not self.has_content:
                self.has_content = True
            else:
                feed["subtitle"] = text
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

    def feed_title(self, feed: dict[str, Any], child: Any) -> None:
        """A channel's ``<title>`` or ``<dc:title>`` as feedparser's title depth keeps it: stored
        unless a title that was not empty came before it at the channel's level (with no item,
        image or text input in between)."""
        _no_attributes(child)
        text = _text(child)
        if not self.feed_title_set:
            feed["title"] = text
            self.feed_title_set = bool(text)

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
                if tag in (f"{RSS1}image", f"{RSS1}textinput") and not len(child):
                    self.feed_title_set = False  # feedparser's _start_image, _start_textinput
                    continue  # a reference to the RDF's <image> or <textinput>
                if _feedparser_name(child) == "dc_title":
                    self.feed_title(feed, child)
                    continue
                rel = (child.get("rel") or "alternate").lower()
                if tag == f"{ATOM}link" and rel != "alternate":
                    self.atom_link(feed, child)  # rel="self", "hub" ...: only the feed's links
                    continue
                if _inert(child, in_feed=True):
                    continue
                raise Declined(f"an unusual channel element {tag}")
            if tag in seen and tag != f"{RSS1}title":
                raise Declined(f"several {tag}")
            seen.add(tag)
            if tag.startswith(RSS1) or tag.startswith(SY):
                self.channel_element(feed, child)
            elif len(child):
                raise Declined(f"markup inside {tag}")
        entries = []
        after_channel = False
        for child in root:
            tag = child.tag
            if child is channels[0]:
                after_channel = True
                continue
            if not isinstance(tag, str):
                continue
            if tag in (f"{RSS1}image", f"{RSS1}textinput") and not after_channel:
                # Its title would set feedparser's title depth, and the channel's own title,
                # at the same depth, would then be dropped.
                raise Declined(f"an RDF {tag} before the channel")
            if tag == f"{RSS1}textinput":
                _plain_textinput(child, RSS1)
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
