"""What both lxml fast paths share: the parser, the namespaces, the text and date readers.

:mod:`aggregator.parse.fastfeed` (main feeds) and :mod:`aggregator.parse.fastparse` (comment
feeds) each read one plain shape of document exactly as feedparser would, or decline. This
module owns the pieces they have in common: :class:`Declined` (the one way either says "not
this document"), the safe lxml parser, the namespace URIs in lxml's ``{uri}`` form, the C1
pattern, the element text readers (stripped, markup declined, feedparser's repair of
double-encoded text), feedparser's ``_urljoin`` and content-type mapping, the attribute check,
and the date readers (RFC 822 and W3C-DTF read here, any other format by feedparser's own
``_parse_date``, so a date comes out as feedparser's).

It does not know any feed format's elements or decide what a document is: the element tables
and feedparser's naming rules are in :mod:`aggregator.parse.fastfeed_names`, the entry reading in
:mod:`aggregator.parse.fastfeed_items`, the document level in the two entry points.
"""

from __future__ import annotations

import contextlib
import re
import urllib.parse
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

import feedparser.datetimes
import feedparser.html
from lxml import etree

from aggregator.parse.sanitize import is_usable_base, joins_as_itself

#: C1 control characters (feedparser maps them to cp1252's characters).
C1 = re.compile("[\x80-\x9f]")
_C1_UTF8 = re.compile(b"\xc2[\x80-\x9f]")

ATOM = "{http://www.w3.org/2005/Atom}"
DC = "{http://purl.org/dc/elements/1.1/}"
DCTERMS = "{http://purl.org/dc/terms/}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
THR = "{http://purl.org/syndication/thread/1.0}"
WFW = "{http://wellformedweb.org/CommentAPI/}"
SLASH = "{http://purl.org/rss/1.0/modules/slash/}"
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
RSS1 = "{http://purl.org/rss/1.0/}"
SY = "{http://purl.org/rss/1.0/modules/syndication/}"
MEDIA = "{http://search.yahoo.com/mrss/}"
GD = "{http://schemas.google.com/g/2005}"
WORDPRESS = "{com-wordpress:feed-additions:1}"
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
_XML_ATTRIBUTES = {XML_BASE, "{http://www.w3.org/XML/1998/namespace}lang"}

#: No entities, no DTD, no network, no huge trees, no recovery: used by both fast paths.
SAFE_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=False
)

# feedparser's map of C1 controls to cp1252's characters, applied to every text it reads.
_CP1252 = feedparser.html._cp1252
_URIFIXER = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")  # urlsplit's scheme, up to the first ":"
_SEGMENT = re.compile(r"[A-Za-z0-9_~!$&'()*+,=@%.\-]+")  # a path segment: see _segment_prefix

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


class Declined(Exception):
    """The document is not of the plain shape this fast path reads exactly like feedparser."""


def _urljoin(base: str, uri: str) -> str:
    r"""feedparser's ``urls._urljoin``, exactly (its ``_urifixer.sub(r"\1\3", uri)`` drops the
    slashes after ``scheme://``; done here without expanding a template at every URL). A plain
    absolute URL, most links in a feed, is what the join gives back (:func:`joins_as_itself`)."""
    if joins_as_itself(uri, base) or _of_another_kind(uri, base):
        return uri
    if _SEGMENT.fullmatch(uri) and uri not in (".", ".."):
        # A relative path of one plain segment (a guid "1600-2823", "page.html"): it replaces
        # the base's last segment, and the rest of the join depends on the base alone.
        prefix = _segment_prefix(base)
        if prefix is not None:
            return prefix + uri
    return _join(base, uri)


@lru_cache(maxsize=256)
def _segment_prefix(base: str) -> str | None:
    """What the join of ``base`` and a one-segment relative path puts before that segment: the
    join with ``x`` without its ``x`` (``None`` when the join fails). urljoin's merge keeps the
    base's directories (each ``..`` and ``.`` resolved, empty ones dropped) and appends the
    segment; only a segment that is empty, ``.`` or ``..``, or holds ``/ ? # ; :`` or
    whitespace, is treated otherwise (:data:`_SEGMENT` allows none of them)."""
    joined = _join(base, "x")
    return joined[:-1] if joined.endswith("x") else None


def _join(base: str, uri: str) -> str:
    found = _URIFIXER.match(uri)
    if found is not None and found.group(2):
        uri = found.group(1) + uri[found.end(2) :]
    try:
        return urllib.parse.urljoin(base, uri)
    except ValueError:
        return ""


def _of_another_kind(uri: str, base: str) -> bool:
    """Whether ``uri`` has a scheme that urljoin does not resolve against any base (``tag:``,
    ``urn:``, ``mailto:``: not in ``uses_relative``) and no ``//`` after it, so that urljoin
    gives it back as it is (nothing in it for urlsplit to refuse) and feedparser's fix-up of
    ``scheme:///`` does not touch it; ``base`` must be one urljoin can read. Many Atom ids are
    such URIs (``tag:blogger.com,1999:...``)."""
    found = _SCHEME.match(uri)
    return (
        found is not None
        and found.group(1).lower() not in urllib.parse.uses_relative
        and not uri.startswith("//", found.end())
        and is_usable_base(base)
    )


def _fix(text: str) -> str:
    """feedparser's repair of UTF-8 text decoded as Latin-1, applied to every text it reads."""
    if not text.isascii():
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            text = text.encode("iso-8859-1").decode("utf-8")
        if _has_c1(text):  # e.g. &#146;: feedparser maps C1 controls to cp1252's characters
            text = text.translate(_CP1252)
    return text


def _has_c1(text: str) -> bool:
    """Whether :data:`C1` finds a character in ``text``; on long text (an entry's HTML) checked
    on its UTF-8 bytes, a few times faster: U+0080..U+009F are C2 80..C2 9F there, and C2 is
    never a continuation byte."""
    if len(text) < 256:
        return C1.search(text) is not None
    return _C1_UTF8.search(text.encode("utf-8", "surrogatepass")) is not None


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
    stamp = datetime(
        int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second),
        tzinfo=_zone(zone),
    )  # fmt: skip
    return tuple(stamp.astimezone(UTC).timetuple())


@lru_cache(maxsize=128)
def _zone(zone: str) -> timezone:
    """The time zone of an RFC 822 date (``+0100``, ``GMT``, ``EST``) or a W3C-DTF one (``Z``,
    ``+01:00``), made once per spelling (a feed writes the same one on every date)."""
    if zone[0] in "+-":
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[-2:]))
        return timezone(-offset if zone[0] == "-" else offset)
    return timezone(timedelta(hours=_ZONES[zone]))


def _w3cdtf(text: str) -> tuple[int, ...]:
    found = _W3CDTF.match(text)
    if not found:
        raise Declined(f"an unusual date: {text!r}")
    year, month, day, hour, minute, second, zone = found.groups()
    stamp = datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second),
        tzinfo=_zone(zone),
    )  # fmt: skip
    return tuple(stamp.astimezone(UTC).timetuple())


def read_date(text: str) -> tuple[int, ...]:
    """A date's text (not empty) as feedparser's time tuple: RFC 822 and W3C-DTF read here, any
    other format by feedparser's own date handlers; :class:`Declined` when they cannot read it."""
    try:
        return _w3cdtf(text) if text[:1].isdigit() and "-" in text[:5] else _rfc822(text)
    except Declined:
        # Any other format: feedparser's own date handlers, so the result is theirs.
        parsed = feedparser.datetimes._parse_date(text)
        if parsed is None:
            raise
        return tuple(parsed)


def _date(element: Any) -> tuple[int, ...]:
    text = _text(element)
    if not text:
        raise Declined("an empty date")
    return read_date(text)


def _no_attributes(element: Any, allowed: tuple[str, ...] = ()) -> None:
    """Decline an attribute other than ``allowed``, ``xml:base`` (read by
    :meth:`aggregator.parse.fastfeed_items.EntryReader.base_of`)
    and ``xml:lang`` (the language, which feed.py does not read)."""
    keys = element.keys()  # (most elements have none)
    if keys and any(key not in allowed and key not in _XML_ATTRIBUTES for key in keys):
        raise Declined(f"unusual attributes on {element.tag}")
