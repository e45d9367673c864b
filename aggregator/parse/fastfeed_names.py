"""Which elements the main-feed fast path reads, and feedparser's rules for the others.

:mod:`aggregator.parse.fastfeed` reads a few elements of each format itself (the tables of known
channel, item, entry, author and image children here); every other element is named as
feedparser names it (:func:`_feedparser_name`: ``prefix_local``, lower case) and either skipped,
because feedparser's reading of it leaves every value feed.py reads unchanged (:func:`_inert`,
from feedparser's own handler table and the keys feed.py reads), or declined. Pure tables and
predicates: reading values is :mod:`aggregator.parse.fastfeed_items`' job.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import feedparser.api
from lxml import etree

from aggregator.parse.fastxml import (
    ATOM,
    CONTENT,
    DC,
    DCTERMS,
    GD,
    MEDIA,
    RSS1,
    SLASH,
    SY,
    THR,
    WFW,
    WORDPRESS,
)

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
#: spelling (``pubdate``, ``wfw:commentRSS``, a ``dc`` namespace without its final slash), an
#: ``id`` (feedparser's ``_start_id`` is its ``_start_guid``), or the Atom and ``dcterms`` date
#: elements, which feedparser reads as ``pubDate`` and ``dc:date``.
_RSS_ITEM_BY_NAME = {
    "title": "title", "dc_title": "title", "link": "link", "guid": "guid", "id": "guid",
    "description": "description",
    "pubdate": "pubDate", "published": "pubDate", "author": "author", "category": "category",
    "comments": "comments", "enclosure": "enclosure", "dc_creator": f"{DC}creator",
    "dc_date": f"{DC}date", "updated": f"{DC}date", "dc_subject": f"{DC}subject",
    "dcterms_issued": "pubDate", "dcterms_modified": f"{DC}date",
    "content_encoded": f"{CONTENT}encoded", "wfw_commentrss": f"{WFW}commentRss",
    "wfw_comment": f"{WFW}comment", "slash_comments": f"{SLASH}comments",
}  # fmt: skip
_RSS1_CHANNEL_KNOWN = {
    f"{RSS1}title", f"{RSS1}link", f"{RSS1}description", f"{RSS1}items", f"{DC}language",
    f"{DC}rights", f"{DC}publisher", f"{DC}creator", f"{DC}date", f"{SY}updatePeriod",
    f"{SY}updateFrequency", f"{SY}updateBase",
}  # fmt: skip
_RSS1_ITEM_KNOWN = {
    f"{RSS1}title", f"{DC}title", f"{RSS1}link", f"{RSS1}description", f"{DC}creator", f"{DC}date",
    f"{DC}subject", f"{CONTENT}encoded", f"{WFW}commentRss", f"{SLASH}comments",
    f"{DCTERMS}issued", f"{DCTERMS}modified",
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
    "itunes_image", "itunes_explicit", "itunes_link", "itunes_duration", "itunes_episode",
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
    known = _NAMES.get(element.tag)
    if known is not None:
        return known
    name = etree.QName(element)
    local = name.localname.lower()
    uri = (name.namespace or "").lower()
    if "backend.userland.com/rss" in uri:
        uri = "http://backend.userland.com/rss"
    prefix = _PREFIXES.get(uri)
    if prefix is None:  # named by the document's own prefix: not remembered
        prefix = next((p for p, u in element.nsmap.items() if p and u == name.namespace), "")
    elif len(_NAMES) < 4096 and len(element.tag) <= 300:  # the same in every document
        _NAMES[element.tag] = f"{prefix.lower()}_{local}" if prefix else local
    return f"{prefix.lower()}_{local}" if prefix else local


#: The names of tags whose namespace feedparser knows (or that have none), by tag: a feed names
#: the same few dozen elements again in every item. Bounded: a hostile document could make
#: any number of tags.
_NAMES: dict[str, str] = {}


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
        if _read_by_feedparser(name) if len(name) <= 300 else _handled(name):
            return False
    return True


def _handled(name: str) -> bool:
    """Whether feedparser stores an element of this name under a key feed.py reads, or has a
    handler for it (the same answer for every element of the name)."""
    return (
        name in _USED_KEYS
        or hasattr(_FEEDPARSER, f"_start_{name}")
        or hasattr(_FEEDPARSER, f"_end_{name}")
    )


#: :func:`_handled`, remembered for names up to 300 characters (the few dozen a feed uses).
_read_by_feedparser = lru_cache(maxsize=1024)(_handled)


_MEDIA_TEXT_HOLDERS = {"media_group", "media_content", "media_title", "media_description"}
