"""A fast path for plain comment feeds: lxml reads what feedparser would, or declines.

feedparser is the reference parser and does about 80% of a cold poll's work (issue 8): a
comment feed of 25 comments costs it ~12 ms of pure Python, lxml ~0.3 ms. Comment feeds are
nearly always the same plain shape (WordPress, Movable Type, Blogger: RSS 2.0 or Atom 1.0, UTF-8,
well-formed), so for exactly that shape this module builds the same raw values feedparser would
hand to :mod:`aggregator.parse.feed`, which then does everything else the same way.

Anything else makes :func:`read_comment_feed` return ``None`` and the caller uses feedparser:
another encoding, a DOCTYPE, XML that is not well-formed, a date feedparser cannot read, RSS
``<author>`` e-mail fields, Atom text or XHTML content, dc:date, several alternate links. A
test (``tests/test_fastparse.py``) runs both parsers over every feed file of the project's
fixtures and feedparser's corpus and requires the same comments wherever this one accepts.
``Declined``, the parser, the namespaces and the text and date readers are shared with the
main-feed fast path (:mod:`aggregator.parse.fastxml`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lxml import etree

from aggregator.parse.fastxml import (
    ATOM,
    C1,
    CONTENT,
    DC,
    SAFE_PARSER,
    SLASH,
    THR,
    WFW,
    Declined,
    _raw_text,
    read_date,
)

# Item children we read; any other element makes the item "unusual" unless it is known harmless.
_RSS_ITEM_KNOWN = {
    "title", "link", "guid", "description", "pubDate", "comments", "category",
    f"{DC}creator", f"{CONTENT}encoded", f"{THR}in-reply-to", f"{WFW}commentRss",
    f"{SLASH}comments",
}  # fmt: skip
_ATOM_ENTRY_KNOWN = {
    f"{ATOM}{name}"
    for name in ("id", "title", "link", "published", "updated", "author", "content", "summary")
} | {f"{THR}in-reply-to", f"{ATOM}category"}


def read_comment_feed(
    content: bytes, headers: Mapping[str, str] | None
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """``(feed, entries)`` as feedparser's raw dicts would hold them, or ``None`` to decline."""
    try:
        return _read(content, headers or {})
    except (Declined, etree.XMLSyntaxError, ValueError, TypeError, OverflowError):
        return None


def _read(
    content: bytes, headers: Mapping[str, str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    head = content[:200].lstrip()
    if (
        not head.startswith(b"<?xml")
        and not head.startswith(b"<rss")
        and not head.startswith(b"<feed")
    ):
        raise Declined("no plain XML start")
    declaration = head.split(b"?>", 1)[0].lower() if head.startswith(b"<?xml") else b""
    if b"encoding" in declaration and b"utf-8" not in declaration:
        raise Declined("not UTF-8")
    kind = {k.lower(): v for k, v in headers.items()}.get("content-type", "").lower()
    if "charset" in kind and "utf-8" not in kind:
        raise Declined("a charset other than UTF-8")
    if b"<!DOCTYPE" in content[:2048] or b"<!ENTITY" in content:
        raise Declined("a DOCTYPE")
    if b"xml:base" in content:
        raise Declined("xml:base (feedparser resolves links against it)")
    root = etree.fromstring(content, SAFE_PARSER)
    if root.tag == "rss" and root.get("version") in ("2.0", "0.92", "0.91"):
        return _rss(root)
    if root.tag == f"{ATOM}feed":
        return _atom(root)
    raise Declined("neither RSS 2.0 nor Atom 1.0")


def _text(element: Any) -> str:
    if element is None:
        return ""
    text = _raw_text(element)  # markup inside: feedparser would read it as content, not text
    if C1.search(text):
        # C1 controls: cp1252 text mislabelled, which feedparser repairs ("demoronizes").
        raise Declined("C1 control characters")
    return text


def _one(parent: Any, tag: str) -> Any:
    found = parent.findall(tag)
    if len(found) > 1:
        raise Declined(f"several {tag}")
    return found[0] if found else None


def _children(parent: Any, known: set[str]) -> dict[str, list[Any]]:
    """An item's element children by tag, read in one pass (a ``findall`` per field was most of
    this module's time); :class:`Declined` when one of them is not in ``known``."""
    children: dict[str, list[Any]] = {}
    for child in parent:
        tag = child.tag
        if not isinstance(tag, str):  # a comment or processing instruction
            continue
        if tag not in known:
            raise Declined("an unusual item")
        found = children.get(tag)
        if found is None:
            children[tag] = [child]
        else:
            found.append(child)
    return children


def _only(children: Mapping[str, list[Any]], tag: str) -> Any:
    """The one child of that tag, or ``None``; :class:`Declined` when there are several."""
    found = children.get(tag)
    if found is None:
        return None
    if len(found) > 1:
        raise Declined(f"several {tag}")
    return found[0]


def _date(text: str) -> tuple[int, ...] | None:
    """A date's text as feedparser's time tuple (:func:`aggregator.parse.fastxml.read_date`);
    ``None`` when there is none."""
    return read_date(text) if text else None


def _absolute(url: str) -> str:
    """A URL as found, which must be absolute: feedparser would resolve a relative one against
    the document's address, which this path does not know."""
    if url and not url.lower().startswith(("http://", "https://")):
        raise Declined("a relative or unusual URL")
    return url


def _in_reply_to(element: Any) -> dict[str, str] | None:
    if element is None:
        return None
    found = {key: value for key, value in element.attrib.items() if key in ("ref", "href", "type")}
    if "href" in found:
        _absolute(found["href"])
    return found


def _rss(root: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    channel = _one(root, "channel")
    if channel is None:
        raise Declined("no channel")
    feed: dict[str, Any] = {"link": _absolute(_text(_one(channel, "link"))), "links": []}
    for link in channel.findall(f"{ATOM}link"):
        href = _absolute((link.get("href") or "").strip())
        feed["links"].append({"rel": link.get("rel", "alternate"), "href": href})
    entries = []
    for item in channel.iter("item"):
        children = _children(item, _RSS_ITEM_KNOWN)
        raw: dict[str, Any] = {}
        title = _only(children, "title")
        if title is not None:
            raw["title"] = _text(title)
        link = _absolute(_text(_only(children, "link")))
        if link:
            raw["link"] = link
        guid = _only(children, "guid")
        if guid is not None:
            raw["id"] = _text(guid)
            if not link and guid.get("isPermaLink", "true").lower() != "false":
                raise Declined("a permalink guid standing for the link")
        creator = _only(children, f"{DC}creator")
        if creator is not None and _text(creator):
            raw["author"] = _text(creator)
        date = _date(_text(_only(children, "pubDate")))
        if date is not None:
            raw["published_parsed"] = date
        encoded = _only(children, f"{CONTENT}encoded")
        description = _only(children, "description")
        if encoded is not None:
            raw["content"] = [{"value": _text(encoded)}]
        if description is not None:
            raw["summary"] = _text(description)
        reply = _in_reply_to(_only(children, f"{THR}in-reply-to"))
        if reply is not None:
            raw["thr_in-reply-to"] = reply
        entries.append(raw)
    return feed, entries


def _atom(root: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    feed: dict[str, Any] = {"links": []}
    for link in root.findall(f"{ATOM}link"):
        rel = link.get("rel", "alternate")
        href = _absolute((link.get("href") or "").strip())
        feed["links"].append({"rel": rel, "href": href})
        if rel == "alternate" and "link" not in feed:
            feed["link"] = href
    entries = []
    for entry in root.findall(f"{ATOM}entry"):
        children = _children(entry, _ATOM_ENTRY_KNOWN)
        raw: dict[str, Any] = {}
        title = _only(children, f"{ATOM}title")
        if title is not None:
            if title.get("type", "text") != "text":
                raise Declined("a title that is not text")
            raw["title"] = _text(title)
        alternates = [
            link
            for link in children.get(f"{ATOM}link", ())
            if link.get("rel", "alternate") == "alternate"
        ]
        if len(alternates) > 1:
            raise Declined("several alternate links")
        if alternates:
            raw["link"] = _absolute((alternates[0].get("href") or "").strip())
        ident = _only(children, f"{ATOM}id")
        if ident is not None:
            raw["id"] = _text(ident)
        author = _only(children, f"{ATOM}author")
        if author is not None:
            if author.find(f"{ATOM}email") is not None:
                raise Declined("an author e-mail")
            name = _text(author.find(f"{ATOM}name"))
            if name:
                raw["author"] = name
            uri = _absolute(_text(author.find(f"{ATOM}uri")))
            if uri:
                raw["author_detail"] = {"href": uri}
        published = _date(_text(_only(children, f"{ATOM}published")))
        updated = _date(_text(_only(children, f"{ATOM}updated")))
        if published is not None:
            raw["published_parsed"] = published
        if updated is not None:
            raw["updated_parsed"] = updated
        for tag, key in ((f"{ATOM}content", "content"), (f"{ATOM}summary", "summary")):
            element = _only(children, tag)
            if element is None:
                continue
            if element.get("type") != "html" or element.get("src"):
                raise Declined("content that is not escaped HTML")
            value = _text(element)
            raw[key] = [{"value": value}] if key == "content" else value
        reply = _in_reply_to(_only(children, f"{THR}in-reply-to"))
        if reply is not None:
            raw["thr_in-reply-to"] = reply
        entries.append(raw)
    return feed, entries
