"""The main-feed fast path's reading of one entry: an RSS 2.0 or RSS 1.0 item, an Atom entry.

:class:`EntryReader` builds the raw dict feedparser would make of one entry (``title``,
``link``, ``id``, dates, ``author``, ``summary``, ``content``, ``tags``, ``links``,
``enclosures``, the comment counts and feeds) and resolves URLs against the document's base as
feedparser does (``xml:base`` included); the helpers below copy feedparser's categories, tags,
Atom text constructs, authors and Media RSS titles/descriptions. It does not read a channel or
feed element, sniff a version or decode bytes (:mod:`aggregator.parse.fastfeed`), nor decide
which unknown elements are harmless (:mod:`aggregator.parse.fastfeed_names`).
"""

from __future__ import annotations

import re
import xml.sax.saxutils
from collections.abc import Mapping
from typing import Any

import feedparser.urls
from lxml import etree

from aggregator.parse.fastfeed_names import (
    _ATOM_AUTHOR_KNOWN,
    _ATOM_ENTRY_KNOWN,
    _FEEDPARSER,
    _MEDIA_TEXT_HOLDERS,
    _RSS1_ITEM_KNOWN,
    _RSS_ITEM_BY_NAME,
    _RSS_ITEM_KNOWN,
    _feedparser_name,
    _inert,
)
from aggregator.parse.fastxml import (
    ATOM,
    CONTENT,
    DC,
    DCTERMS,
    GD,
    MEDIA,
    RDF,
    RSS1,
    SLASH,
    THR,
    WFW,
    XML_BASE,
    Declined,
    _content_type,
    _fix,
    _no_attributes,
    _raw_text,
    _text,
    _urljoin,
    read_date,
)

_HTML_TYPES = {"text/html", "application/xhtml+xml"}
# Element names compared for every child of every entry, made once (an f-string is built anew
# at each comparison).
_DC_CREATOR, _DC_DATE, _DC_SUBJECT = f"{DC}creator", f"{DC}date", f"{DC}subject"
_CONTENT_ENCODED, _WFW_COMMENTRSS = f"{CONTENT}encoded", f"{WFW}commentRss"
_SLASH_COMMENTS, _THR_TOTAL = f"{SLASH}comments", f"{THR}total"
_AUTHORS = ("author", _DC_CREATOR, "itunes_author")
_ATOM_ID, _ATOM_TITLE, _ATOM_LINK = f"{ATOM}id", f"{ATOM}title", f"{ATOM}link"
_ATOM_PUBLISHED, _ATOM_UPDATED = f"{ATOM}published", f"{ATOM}updated"
_ATOM_AUTHOR, _ATOM_CONTENT = f"{ATOM}author", f"{ATOM}content"
_ATOM_SUMMARY, _ATOM_CATEGORY = f"{ATOM}summary", f"{ATOM}category"
_MEDIA_THUMBNAIL = f"{MEDIA}thumbnail"
#: The entry elements an Atom entry may have one of at most.
_ATOM_ENTRY_ONCE = tuple(_ATOM_ENTRY_KNOWN - {_ATOM_LINK, _ATOM_CATEGORY, _MEDIA_THUMBNAIL})
_NAMED_REFERENCE = re.compile("&([A-Za-z0-9_]+);")


def unescaped_names(value: str) -> str:
    """feedparser's ``re.sub("&([A-Za-z0-9_]+);", r"&\\g<1>", value)`` over a link (the ``;``
    of each named reference dropped), done only where there is an ``&``."""
    return _NAMED_REFERENCE.sub(r"&\g<1>", value) if "&" in value else value


class EntryReader:
    """Builds feedparser's raw dicts for one document's entries and resolves its URLs
    (``base``: its base for relative URLs); :class:`aggregator.parse.fastfeed._Reader` adds
    the document level (channel, feed, the loop over entries)."""

    def __init__(self, base: str, max_entries: int = 1 << 62) -> None:
        self.base = base
        self.max_entries = max_entries
        self.bases: dict[Any, str] = {}
        # No xml:base or base attribute anywhere in the document: every element's base is the
        # document's (base_of's joins give it back unchanged). Set by the reader that checked.
        self.no_base_attributes = False
        self._rejoined: dict[str, str] = {}
        self.feed_summary = False  # an itunes:summary was read in the channel
        self.channel_content = False  # a content:encoded was read in the channel
        # feedparser's title depth at the channel's level: a channel title (or dc:title) that is
        # not empty stops later ones at that level until an item, image or text input resets it.
        self.feed_title_set = False
        # feedparser's hasContent: set by content anywhere, cleared only at the end of an item.
        self.has_content = False

    def base_of(self, element: Any) -> str:
        """The base feedparser resolves ``element``'s URLs against: the document's, changed by
        each ``xml:base`` (or plain ``base``) attribute from the root down to ``element``, as
        feedparser's ``unknown_starttag`` joins them (a base of a scheme it refuses is ignored).
        """
        if element is None or self.no_base_attributes:
            return self.base
        known = self.bases.get(element)
        if known is not None:
            return known
        parent = self.base_of(element.getparent())
        attribute = element.get(XML_BASE, element.get("base"))
        own = attribute or parent
        if parent and not attribute:
            # The same join at every element without xml:base: once per distinct base.
            base = self._rejoined.get(parent, "")
            if not base:
                base = feedparser.urls.make_safe_absolute_uri(parent, parent) or parent
                self._rejoined[parent] = base
        elif parent:
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
    def rss_item(self, item: Any) -> dict[str, Any]:
        # feedparser's _start_item reads only rdf:about; a plain attribute (Yandex's
        # turbo="true") is ignored, and xml:base or base is read by base_of.
        _no_attributes(item, tuple(key for key in item.attrib if not key.startswith("{")))
        raw: dict[str, Any] = {"links": [], "tags": [], "enclosures": []}
        counts: dict[str, int] = {}
        children = []
        media: list[tuple[str, Any]] = []
        for child in item:
            tag = child.tag
            if not isinstance(tag, str):
                continue
            if child.get("href") is not None and _feedparser_name(child) == "link":
                # An Atom-style link (atom:link rel="standout", "related" ...): feedparser's
                # _start_link appends it to the links and, unless it is an HTML alternate (then
                # the entry's link, in an order with <link> not copied here), sets nothing else.
                if (child.get("rel") or "alternate").lower() == "alternate":
                    raise Declined("an alternate link with an href in an item")
                children.append(("atom_link", child))
                continue
            if tag not in _RSS_ITEM_KNOWN:
                name = _feedparser_name(child)
                if name in _RSS_ITEM_BY_NAME:  # another spelling feedparser reads the same
                    tag = _RSS_ITEM_BY_NAME[name]
                elif name in ("itunes_author", "itunes_summary", "itunes_keywords",
                              "itunes_category") or name in _PODCAST_ITEM:  # fmt: skip
                    tag = name  # read below, as feedparser maps it
                elif name == "source" and not len(child):
                    continue  # the item's source, which is not read
                elif name == "creativecommons_license":
                    tag = name  # a link with rel="license", read below
                elif tag == _XHTML_BODY:
                    tag = "xhtml_body"  # content, read below
                elif name == "image" and not len(child):
                    tag = "item_image"  # an image's URL as text: the entry's image, unread
                elif name in _MEDIA_TEXT_HOLDERS:
                    tag = "media"  # its titles and descriptions, read below in document order
                elif name == "itunes_subtitle" or (name == "subtitle" and not len(child)):
                    continue  # the entry's subtitle, which is not read
                elif _inert(child, in_feed=False):
                    continue
                else:
                    raise Declined(f"an unusual item element {tag}")
            children.append((tag, child))
            counts[tag] = counts.get(tag, 0) + 1
        _at_most_one(counts, "link", "description", "pubDate", _DC_DATE,
                     _CONTENT_ENCODED, "comments", _WFW_COMMENTRSS, _SLASH_COMMENTS,
                     _THR_TOTAL)  # fmt: skip
        if counts.get("itunes_summary", 0) > 1:
            raise Declined("several itunes:summary")
        summaries = _Summaries(raw, self.has_content)
        self.has_content = False  # as feedparser's _end_item leaves it
        link = guid_link = None
        image_seen = False
        for tag, child in children:
            if tag == "item_image":
                # feedparser's _start_image resets its title depth: a title after it would be
                # stored again, which is not copied here.
                image_seen = True
            elif image_seen and tag in ("title", "media"):  # media:title is a title too
                raise Declined("a title after an item's image")
            elif tag == "title":
                _no_attributes(child)
                _title(raw, _text(child))
            elif tag == "link":
                _no_attributes(child)
                text = _raw_text(child)
                if not text:  # feedparser: the link is "", its links entry has no href
                    link = ""
                    raw["links"].append({"rel": "alternate", "type": "text/html"})
                    continue
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
                # Several guids (or ids): the last is the id, the first decides guidislink and
                # the first permalink one stands for the link (feedparser's _save keeps the
                # first value of each).
                raw["id"] = _fix(text)
                raw.setdefault("guidislink", permalink and link is None)
                if permalink and guid_link is None:
                    guid_link = raw["id"]
            elif tag in _AUTHORS:
                _no_attributes(child)
                if len(child):  # <author><name>...</name></author>, read as an Atom author
                    authors = sum(counts.get(t, 0) for t in _AUTHORS)
                    if tag != "author" or authors > 1:
                        raise Declined("a structured author beside another")
                    raw["author"] = _plain_author(child)
                else:
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
                raw["published_parsed"] = _entry_date(child)
            elif tag == _DC_DATE:
                _no_attributes(child)
                raw["updated_parsed"] = _entry_date(child)
            elif tag in ("description", "itunes_summary"):
                _no_attributes(child)
                summaries.summary(_rss_html(child), 1)
            elif tag == "media":
                for name, node in _media_texts(child):
                    if name == "media_title":
                        media.append((name, node))
                    elif name in ("media_category", "media_keywords"):
                        _media_category(raw["tags"], node)
                    else:
                        summaries.summary(_media_description(node), _depth_in(node, item))
            elif tag == _CONTENT_ENCODED:
                _no_attributes(child)
                summaries.content(_rss_html(child))
            elif tag in ("category", _DC_SUBJECT):
                _no_attributes(child, ("domain",) if tag == "category" else ())
                _add_category(raw["tags"], None, child.get("domain"), None, _text(child))
            elif tag == "enclosure":
                self.enclosure(raw, child)
            elif tag == "atom_link":
                self.atom_link(raw, child)
            elif tag == "xhtml_body":
                summaries.body(_xhtml_body(child))
            elif tag == "creativecommons_license":  # _end_creativecommons_license
                _no_attributes(child)
                text = _text(child)
                raw["links"].append(
                    {"rel": "license", "href": text} if text else {"rel": "license"}
                )
            elif tag in _PODCAST_ITEM:
                _podcast_tag(raw, tag, child)
            elif tag == "comments":
                _no_attributes(child)
                raw["comments"] = self.optional_url(_raw_text(child), child)
            elif tag == _WFW_COMMENTRSS:
                _no_attributes(child)
                raw["wfw_commentrss"] = self.optional_url(_raw_text(child), child)
            elif tag == _SLASH_COMMENTS:
                _no_attributes(child)
                raw["slash_comments"] = _text(child)
            elif tag == _THR_TOTAL:
                _no_attributes(child)
                if child.prefix == "thr":
                    raw["thr_total"] = _text(child)
            elif len(child):  # wfw:comment, WordPress's post-id: text feedparser keeps aside
                raise Declined(f"markup inside {tag}")
        _media_titles(raw, media)
        self.finish(raw, link, guid_link)
        return raw

    def entry_link(self, text: str, element: Any) -> str:
        """An RSS ``<link>``'s text as feedparser stores it for an entry."""
        value = self.url(text, element).replace("&amp;", "&")
        return unescaped_names(value)

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
        _at_most_one(counts, *(_RSS1_ITEM_KNOWN - {f"{DC}subject", f"{RSS1}title", f"{DC}title"}))
        about = item.get(f"{RDF}about")
        if about:
            raw["id"] = about
        link = None
        for child in children:
            tag = child.tag
            _no_attributes(child)
            if tag in (f"{RSS1}title", f"{DC}title"):
                _title(raw, _text(child))
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
            elif tag in (f"{DC}date", f"{DCTERMS}modified"):  # both feedparser's _end_updated
                raw["updated_parsed"] = _entry_date(child)
            elif tag == f"{DCTERMS}issued":  # feedparser's _end_published
                raw["published_parsed"] = _entry_date(child)
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
            elif name.namespace == THR[1:-1] and name.localname in ("count", "updated"):
                attrs[name.localname] = value
                prefix = next((p for p, u in element.nsmap.items() if u == name.namespace), None)
                if prefix:
                    attrs[f"{prefix}:{name.localname}".lower()] = value
            else:
                raise Declined("an unusual link attribute")
        if len(element) or (element.text or "").strip():
            raise Declined("an unusual link")
        if "href" not in attrs or "url" in attrs or "uri" in attrs:  # href="": the base
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
        holders: set[Any] = set()  # Media RSS elements holding titles or descriptions
        for child in entry:
            tag = child.tag  # (lxml makes the string at each reading)
            if not isinstance(tag, str):
                continue
            if tag not in _ATOM_ENTRY_KNOWN:
                if _feedparser_name(child) in _MEDIA_TEXT_HOLDERS:
                    holders.add(child)
                    children.append((tag, child))  # read below, in document order
                    continue
                if _inert(child, in_feed=False):
                    continue
                raise Declined(f"an unusual entry element {tag}")
            children.append((tag, child))
            counts[tag] = counts.get(tag, 0) + 1
        _at_most_one(counts, *_ATOM_ENTRY_ONCE)
        ident = None
        summaries = _Summaries(raw, self.has_content)
        self.has_content = False  # as feedparser's _end_entry leaves it
        for tag, child in children:
            if child in holders:
                for name, node in _media_texts(child):
                    if name == "media_title":
                        media.append((name, node))
                    elif name in ("media_category", "media_keywords"):
                        _media_category(raw["tags"], node)
                    else:
                        summaries.summary(_media_description(node), _depth_in(node, entry))
            elif tag == _ATOM_ID:
                ident = raw["id"] = self.atom_id(child)
                raw["guidislink"] = "link" not in raw
            elif tag == _ATOM_TITLE:
                raw["title"] = _atom_text(child)
            elif tag == _ATOM_LINK:
                self.atom_link(raw, child)
            elif tag == _ATOM_PUBLISHED:
                _no_attributes(child)
                raw["published_parsed"] = _entry_date(child)
            elif tag == _ATOM_UPDATED:
                _no_attributes(child)
                raw["updated_parsed"] = _entry_date(child)
            elif tag == _ATOM_AUTHOR:
                raw["author"] = _atom_author(child)
            elif tag == _ATOM_CONTENT and child.get("src") is not None:
                _out_of_line_content(raw, summaries, child)
            elif tag == _ATOM_CONTENT:
                summaries.content(_atom_text(child))
            elif tag == _ATOM_SUMMARY:
                summaries.summary(_atom_text(child), 1)
            elif tag == _ATOM_CATEGORY:
                _no_attributes(child, ("term", "scheme", "label"))
                _add_category(
                    raw["tags"], child.get("term"), child.get("scheme"), child.get("label"),
                    _text(child),
                )  # fmt: skip
            elif tag == _THR_TOTAL:
                _no_attributes(child)
                if child.prefix == "thr":
                    raw["thr_total"] = _text(child)
            elif tag == _MEDIA_THUMBNAIL and (len(child) or (child.text or "").strip()):
                raise Declined("an unusual thumbnail")
        if "link" not in raw and ident is not None:
            raw["link"] = ident
        _media_titles(raw, media)
        self.finish(raw, raw.pop("link", None), None)
        return raw


#: An episode's iTunes tags that feed.py carries to the outputs (``parse._podcast_tags``).
_PODCAST_ITEM = ("itunes_duration", "itunes_episode", "itunes_explicit", "itunes_image")


def _podcast_tag(raw: dict[str, Any], name: str, element: Any) -> None:
    """An item's ``itunes:duration``, ``itunes:episode``, ``itunes:explicit`` or ``itunes:image``
    as feedparser stores it (the last one wins, as at one depth in feedparser)."""
    if name == "itunes_image":  # _start_itunes_image: the href, else the url, as written
        _no_attributes(element, ("href", "url"))
        if len(element):
            raise Declined("markup inside itunes:image")
        href = element.get("href") or element.get("url")
        if href:
            raw["image"] = {"href": href}
        return
    # Without a handler (duration, episode) or with only an end handler (explicit), an element
    # with attributes is stored as a dict of them: not this path's shape.
    _no_attributes(element)
    if name == "itunes_explicit":
        # _end_itunes_explicit pops the text unstripped: only "yes" and "clean" mean something.
        if len(element):
            raise Declined("markup inside itunes:explicit")
        value = element.text or ""
        raw[name] = True if value == "yes" else False if value == "clean" else None
    else:
        raw[name] = _text(element)


class _Summaries:
    """feedparser's reading of an entry's summaries and contents, in document order.

    ``<description>``, ``itunes:summary`` and ``media:description`` all start as feedparser's
    ``_start_description`` / ``_start_summary``: while the entry has a summary but no content
    yet (``hasContent``), the next one is its content instead; otherwise it is the summary,
    stored only when it is no deeper than the summary stored before (feedparser's property
    depth). ``content:encoded`` is content, and the summary when there is none yet
    (``_end_content``'s copy, which records no depth)."""

    def __init__(self, raw: dict[str, Any], has_content: bool) -> None:
        self.raw = raw
        self.has_content = has_content
        self.depth: int | None = None

    def summary(self, text: str, depth: int) -> None:
        """A summary-like element's text, ``depth`` levels below the entry."""
        if "summary" in self.raw and not self.has_content:
            self.content(text)
        elif self.depth is None or depth <= self.depth:
            self.depth = depth
            self.raw["summary"] = text

    def content(self, text: str) -> None:
        self.has_content = True
        self.raw.setdefault("content", []).append({"value": text})
        self.raw.setdefault("summary", text)

    def body(self, text: str) -> None:
        """An ``xhtml:body``: content like ``content:encoded``, but feedparser's ``_start_body``
        leaves ``hasContent`` as it was."""
        self.raw.setdefault("content", []).append({"value": text})
        self.raw.setdefault("summary", text)


def _depth_in(node: Any, top: Any) -> int:
    """How many levels ``node`` is below ``top`` (1 for a child)."""
    depth = 0
    while node is not None and node is not top:
        node = node.getparent()
        depth += 1
    return depth


#: ``type`` values of a media:description that feedparser reads as plain or HTML text (another
#: type may make it try base64, or read it as XHTML).
_MEDIA_TEXT_TYPES = {None, "plain", "text", "html", "text/plain", "text/html"}


def _media_description(node: Any) -> str:
    _no_attributes(node, ("type",))
    kind = node.get("type")
    if (kind.lower() if kind else None) not in _MEDIA_TEXT_TYPES:
        raise Declined("an unusual media:description type")
    return _text(node)


def _media_category(tags: list[dict[str, Any]], node: Any) -> None:
    """A ``media:category`` in a group or content: feedparser's ``_start_media_category`` (the
    Media RSS scheme by default) and its category rules; ``media:keywords``: a tag per term."""
    if _feedparser_name(node) == "media_keywords":  # _end_media_keywords: comma-separated
        _no_attributes(node)
        for term in _text(node).split(","):
            if term.strip():
                _add_tag(tags, term.strip(), None)
        return
    _no_attributes(node, ("scheme", "label"))
    scheme = node.get("scheme", "http://search.yahoo.com/mrss/category_schema")
    _add_category(tags, None, scheme, node.get("label"), _text(node))


def _media_texts(element: Any) -> list[tuple[str, Any]]:
    """The ``media:title``, ``media:description`` and ``media:category`` elements in
    ``element`` (a Media RSS group or content, or one of them), which feedparser reads as the
    entry's title, description and tags; everything else in it must be inert."""
    found = []
    for node in element.iter():
        if not isinstance(node.tag, str):
            continue
        name = _feedparser_name(node)
        if name in ("media_title", "media_description", "media_category", "media_keywords"):
            if len(node):
                raise Declined(f"markup inside {name}")
            found.append((name, node))
        elif name not in ("media_group", "media_content") and not _inert(node, in_feed=False):
            raise Declined(f"an unusual media element {node.tag}")
    return found


def _media_titles(raw: dict[str, Any], titles: list[tuple[str, Any]]) -> None:
    """An entry's ``media:title`` elements: a title of the entry's own (non-empty) always wins
    over them (feedparser's title depth); without one, which wins depends on feedparser's order
    and depth rules: declined. (Descriptions are read in document order, :class:`_Summaries`.)"""
    if titles and not raw.get("title"):
        raise Declined("a media:title without a title")


def _title(raw: dict[str, Any], text: str) -> None:
    """An entry's ``<title>`` or ``<dc:title>`` (feedparser reads both as its title): the
    first that is not empty wins, since feedparser's ``_end_title`` then sets its title depth
    and a later title at that depth is no longer stored; empty ones before it are."""
    if not raw.get("title"):
        raw["title"] = text


def _entry_date(element: Any) -> tuple[int, ...] | None:
    """An entry's date as feedparser saves it: its time tuple, or ``None`` when the text is
    empty or no date handler of feedparser's reads it ('Seg, 24 Set 2018', 'Friday, January 29,
    2021 04:42 PM'): feedparser then stores ``None`` as the parsed date, which feed.py reads as
    no date."""
    text = _text(element)
    if not text:
        return None
    try:
        return read_date(text)
    except Declined:
        return None


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
    """An Atom text construct or content of type text or html (escaped), or xhtml (serialized
    as feedparser does: :func:`_xhtml`): its text."""
    _no_attributes(element, ("type",))
    kind = element.get("type", "text")
    if kind == "xhtml":
        return _fix(_xhtml(element))
    if kind not in ("text", "html"):
        raise Declined(f"an Atom {kind} construct")
    return _text(element)


def _rss_html(element: Any) -> str:
    """An RSS description or content:encoded: its text, or, with markup written inside it
    rather than escaped, that markup as feedparser's strict parser serializes it. Up to the
    first element that is not a ``<div>``, the content is HTML: text is kept as it is and
    ``<div>`` tags are dropped; that element switches it to XHTML: tags are written as in
    :func:`_xhtml`, text escaped (feedparser's mixin ``unknown_starttag``/``unknown_endtag``).
    Declined for an element that has a feedparser end handler (``_end_title``...), outside
    XHTML or no namespace, SVG or MathML, or XHTML output starting with a ``<div>``."""
    if not len(element):
        return _text(element)
    pieces: list[str] = []
    state = {"xml": False}
    _inline_inner(element, pieces, state)
    kept = [piece for piece in pieces if piece.strip()]
    if kept and kept[0].startswith("<div"):
        raise Declined("inline markup starting with a div")
    return _fix("".join(pieces).strip())


def _inline_text(text: str | None, pieces: list[str], state: dict[str, bool]) -> None:
    if text:
        pieces.append(xml.sax.saxutils.escape(text) if state["xml"] else text)


def _inline_inner(element: Any, pieces: list[str], state: dict[str, bool]) -> None:
    _inline_text(element.text, pieces, state)
    for child in element:
        if isinstance(child.tag, str):
            _inline(child, pieces, state)
        _inline_text(child.tail, pieces, state)


def _inline(element: Any, pieces: list[str], state: dict[str, bool]) -> None:
    tag = element.tag
    if tag.startswith(_XHTML):
        name, handler = tag[len(_XHTML) :].lower(), "_end_xhtml_"
    elif tag.startswith("{"):
        raise Declined("a namespaced element inside a text element")
    else:
        name, handler = tag.lower(), "_end_"
    if name in ("svg", "math") or hasattr(_FEEDPARSER, handler + name):
        raise Declined(f"an element feedparser reads inside a text element: {name}")
    if state["xml"] or name != "div":
        state["xml"] = True
        pieces.append(f"<{name}{_attributes(element)}>")
    _inline_inner(element, pieces, state)
    if state["xml"] or name != "div":
        state["xml"] = True
        pieces.append(f"</{name}>")


_XHTML = "{http://www.w3.org/1999/xhtml}"
_XHTML_BODY = f"{_XHTML}body"
_XML_NAMESPACE = "{http://www.w3.org/XML/1998/namespace}"


def _xhtml(element: Any) -> str:
    """An Atom ``type="xhtml"`` construct as feedparser's strict parser serializes it (mixin's
    ``unknown_starttag``/``unknown_endtag``/``handle_data``, then ``pop``): each XHTML element
    as ``<name attrs>`` ... ``</name>`` (lower case, no namespace, ``<br></br>`` included), text
    and attribute values escaped with ``xml.sax.saxutils``, comments dropped, and the enclosing
    ``<div>`` removed when it is the only element and no text stands beside it. Declined for
    anything whose reading is not copied: elements outside the XHTML namespace (an Atom element
    there would run feedparser's own handler; one of no namespace only when feedparser has no
    end handler of its name), ``body`` (its ``_end_xhtml_body``), SVG or MathML, namespaced
    attributes other than ``xml:*``, namespace declarations for XLink."""
    pieces: list[str] = []
    children = [child for child in element if isinstance(child.tag, str)]
    text = "".join(
        [element.text or ""]
        + [child.tail or "" for child in element if not isinstance(child.tag, str)]
    )
    only_div = (
        len(children) == 1
        and children[0].tag == f"{_XHTML}div"
        and not text.strip()
        and not (children[0].tail or "").strip()
    )
    if only_div:
        _serialize_inner(children[0], pieces)
    else:
        _serialize_inner(element, pieces)
    return "".join(pieces).strip()


def _xhtml_body(element: Any) -> str:
    """An RSS item's ``xhtml:body`` as feedparser serializes it (:func:`_serialize`; no
    enclosing ``<div>`` is removed outside Atom, so one there is declined)."""
    _no_attributes(element)
    pieces: list[str] = []
    _serialize_inner(element, pieces)
    kept = [piece for piece in pieces if piece.strip()]
    if kept and kept[0].startswith("<div"):
        raise Declined("an xhtml body starting with a div")
    return _fix("".join(pieces).strip())


def _serialize_inner(element: Any, pieces: list[str]) -> None:
    if element.text:
        pieces.append(xml.sax.saxutils.escape(element.text))
    for child in element:
        if isinstance(child.tag, str):
            _serialize(child, pieces)
        if child.tail:
            pieces.append(xml.sax.saxutils.escape(child.tail))


def _serialize(element: Any, pieces: list[str]) -> None:
    tag = element.tag
    if tag.startswith(_XHTML):
        name, handler = tag[len(_XHTML) :].lower(), "_end_xhtml_"
    elif tag.startswith("{"):
        raise Declined("a non-XHTML element in xhtml content")
    else:  # no namespace: feedparser's handler of that name runs at its end, if it has one
        name, handler = tag.lower(), "_end_"
    if (
        name in ("svg", "math")
        or hasattr(_FEEDPARSER, handler + name)
        or "http://www.w3.org/1999/xlink" in element.nsmap.values()
    ):
        raise Declined(f"an xhtml {name} feedparser reads apart")
    pieces.append(f"<{name}{_attributes(element)}>")
    _serialize_inner(element, pieces)
    pieces.append(f"</{name}>")


def _attributes(element: Any) -> str:
    """An element's attributes as feedparser's ``strattrs`` writes them."""
    attributes = []
    for key, value in element.attrib.items():
        if key.startswith(_XML_NAMESPACE):
            key = "xml:" + key[len(_XML_NAMESPACE) :]
        elif key.startswith("{"):
            raise Declined("a namespaced attribute in xhtml content")
        key = key.lower()
        if key in ("rel", "type"):
            value = value.lower()
        attributes.append(f' {key}="{xml.sax.saxutils.escape(value, {chr(34): "&quot;"})}"')
    if len({a.split("=", 1)[0] for a in attributes}) != len(attributes):
        raise Declined("attributes differing in case only in xhtml content")
    return "".join(attributes)


def _out_of_line_content(raw: dict[str, Any], summaries: _Summaries, element: Any) -> None:
    """An empty Atom ``<content src="..." type="...">`` of a type that is not text or HTML
    (YouTube's Flash player): feedparser stores an empty content, which feed.py skips, and sets
    its ``hasContent``; its ``_end_content`` copies only text or HTML content to the summary."""
    _no_attributes(element, ("type", "src"))
    kind = _content_type(element.get("type"))
    if (
        len(element)
        or (element.text or "").strip()
        or not kind
        or kind in _HTML_TYPES | {"text/plain"}
    ):
        raise Declined("an unusual out-of-line content")
    summaries.has_content = True
    raw.setdefault("content", []).append({"value": ""})


def _plain_author(element: Any) -> str:
    """An RSS ``<author>`` holding ``name``, ``email`` and ``uri`` elements (no namespace):
    feedparser's ``_end_name``/``_end_email`` build its author as for Atom (``name (email)``)."""
    if (element.text or "").strip():
        raise Declined("text beside an author's elements")
    found: dict[str, str] = {}
    for child in element:
        if not isinstance(child.tag, str):
            raise Declined("a comment inside an author")
        if child.tag not in ("name", "email", "uri") or child.tag in found:
            raise Declined("an unusual author")
        if (child.tail or "").strip():
            raise Declined("text beside an author's elements")
        _no_attributes(child)
        found[child.tag] = _text(child)
    name, email = found.get("name"), found.get("email")
    if name and email:
        return f"{name} ({email})"
    return name or email or ""


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
