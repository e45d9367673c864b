"""feedgen extensions for comment threads: ``thr`` (RFC 4685), ``slash`` and ``wfw``.

feedgen 1.0 knows none of these namespaces, so this module adds them through feedgen's own
extension mechanism (``FeedGenerator.register_extension``). There is one extension per XML
namespace, as in feedgen's bundled ``dc`` and ``podcast`` extensions, because feedgen asks a
*feed-level* extension for its namespace without saying which format it renders; one extension per
namespace is what lets the Atom output leave out the RSS-only namespaces.

=========  ==========================================  ===========  ==============================
name       namespace                                   formats      entry methods
=========  ==========================================  ===========  ==============================
``thread`` ``http://purl.org/syndication/thread/1.0``  Atom, RSS    ``replies``, ``total``,
                                                                    ``in_reply_to``
``slash``  ``http://purl.org/rss/1.0/modules/slash/``  RSS only     ``comments``
``wfw``    ``http://wellformedweb.org/CommentAPI/``    RSS only     ``comment_rss``
=========  ==========================================  ===========  ==============================

Usage::

    fg = FeedGenerator()
    register_comment_extensions(fg)
    fe = fg.add_entry()
    fe.thread.replies("https://example.org/p/1/comments.atom", count=12, updated=updated_at)
    fe.thread.replies("https://example.org/outputs/all/1", type="text/html", count=12)
    fe.thread.total(12)
    fe.slash.comments(12)
    fe.wfw.comment_rss("https://example.org/p/1/comments.rss")
    fe.comments("https://example.org/p/1#comments")  # RSS 2.0 <comments>: feedgen's own

    comment = fg.add_entry()
    comment.thread.in_reply_to("urn:uuid:...", href="https://example.org/p/1", type="text/html")

What is written where:

* Atom entry: ``<link rel="replies" type=... href=... thr:count=... thr:updated=.../>`` (one per
  media type: readers differ on which they read, an ``application/atom+xml`` comment feed or a
  ``text/html`` page, see README "What readers show of comments"), ``<thr:total>`` and
  ``<thr:in-reply-to>``.
* RSS item: ``<slash:comments>``, ``<wfw:commentRss>`` and ``<thr:in-reply-to>``. The replies
  links and ``thr:total`` are Atom-only (RFC 4685 defines them for Atom; an unprefixed ``<link>``
  with attributes is not RSS 2.0); RSS carries the same facts in ``slash`` and ``wfw``.

The namespaces are declared once, on the root element, because feedgen builds the root's
namespace map from the registered *feed* extensions. The extensions must therefore be registered
on the ``FeedGenerator`` (as :func:`register_comment_extensions` does), not on a single entry.
Extension elements come after feedgen's own children of an entry; neither Atom nor RSS 2.0 gives
these children an order.

Does not: render whole feeds, read feeds back, or fix feedgen 1.0's Atom entry links losing their
``rel``/``type`` (lkiesow/python-feedgen#135), which is why the replies link is written here rather
than through ``FeedEntry.link``. Do not name an extension ``comments``: feedgen sets the extension
as an attribute of each entry, which would hide ``FeedEntry.comments``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from feedgen.util import xml_elem

THREAD_NS = "http://purl.org/syndication/thread/1.0"
SLASH_NS = "http://purl.org/rss/1.0/modules/slash/"
WFW_NS = "http://wellformedweb.org/CommentAPI/"

ATOM_TYPE = "application/atom+xml"

# feedparser keys elements of namespaces it does not know (RFC 4685's is one) by the prefix the
# document uses, so the prefixes are part of the interface: keep them the conventional ones.
THREAD_PREFIX = "thr"
SLASH_PREFIX = "slash"
WFW_PREFIX = "wfw"


@dataclass(frozen=True)
class RepliesLink:
    """An RFC 4685 ``rel="replies"`` link: where the replies to an entry can be read."""

    href: str
    type: str = ATOM_TYPE
    count: int | None = None
    updated: datetime | None = None


@dataclass(frozen=True)
class InReplyTo:
    """An RFC 4685 ``thr:in-reply-to``: the resource a comment answers."""

    ref: str
    href: str | None = None
    type: str | None = None


def _check_count(value: int, what: str) -> int:
    # RFC 4685 sections 4 and 5: thr:count and thr:total are non-negative integers.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative int, not {value!r}")
    return value


def _check_text(value: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, not {value!r}")
    return value


def _sub(parent: Any, ns: str, prefix: str, name: str, text: str | None = None) -> Any:
    # The nsmap names the prefix when no ancestor declares the namespace; lxml drops the
    # declaration again when the entry is appended under a root that does.
    elem = xml_elem(f"{{{ns}}}{name}", parent, nsmap={prefix: ns})
    if text is not None:
        elem.text = text
    return elem


class ThreadExtension(BaseExtension):
    """Feed-level part of the ``thr`` extension: declares the namespace on the root."""

    def extend_ns(self) -> dict[str, str]:
        """Return the namespace map entry for the feed's root element."""
        return {THREAD_PREFIX: THREAD_NS}


class ThreadEntryExtension(BaseEntryExtension):
    """Entry-level Atom Threading Extensions (RFC 4685).

    Holds the replies links and reply total of a post, or the parent of a comment, and writes
    them into the Atom entry (all three) or the RSS item (``thr:in-reply-to`` only).
    """

    def __init__(self) -> None:
        self._replies: dict[str, RepliesLink] = {}
        self._total: int | None = None
        self._in_reply_to: InReplyTo | None = None

    def replies(
        self,
        href: str | None = None,
        *,
        type: str = ATOM_TYPE,
        count: int | None = None,
        updated: datetime | None = None,
    ) -> list[RepliesLink]:
        """Add a replies link (RFC 4685 section 4) when ``href`` is given; return all of them.

        There is at most one link per media ``type``: adding another with the same type replaces
        it, so an entry can point at both an Atom and an RSS comment feed. ``count`` is the
        number of replies at ``href``; ``updated`` (an aware datetime) when they last changed.
        """
        if href is not None:
            _check_text(href, "replies href")
            _check_text(type, "replies type")
            if count is not None:
                _check_count(count, "replies count")
            if updated is not None and updated.utcoffset() is None:
                raise ValueError("replies updated must be timezone-aware")
            self._replies[type] = RepliesLink(href, type, count, updated)
        return list(self._replies.values())

    def total(self, total: int | None = None) -> int | None:
        """Set the total number of replies (``thr:total``, RFC 4685 section 5) and return it."""
        if total is not None:
            self._total = _check_count(total, "thr:total")
        return self._total

    def in_reply_to(
        self, ref: str | None = None, *, href: str | None = None, type: str | None = None
    ) -> InReplyTo | None:
        """Set what this comment answers (``thr:in-reply-to``, RFC 4685 section 3); return it.

        ``ref`` is the parent's id (the parent comment when threaded, else the post); ``href``
        and ``type`` say where and as what the parent can be read. A comment has one parent
        here, so a second call replaces the first.
        """
        if ref is not None:
            _check_text(ref, "in-reply-to ref")
            self._in_reply_to = InReplyTo(ref, href or None, type or None)
        return self._in_reply_to

    def _write_in_reply_to(self, entry: Any) -> None:
        if self._in_reply_to is None:
            return
        elem = _sub(entry, THREAD_NS, THREAD_PREFIX, "in-reply-to")
        elem.set("ref", self._in_reply_to.ref)
        if self._in_reply_to.href:
            elem.set("href", self._in_reply_to.href)
        if self._in_reply_to.type:
            elem.set("type", self._in_reply_to.type)

    def extend_atom(self, entry: Any) -> Any:
        """Append the replies links, ``thr:total`` and ``thr:in-reply-to`` to an Atom entry."""
        for link in self._replies.values():
            # feedgen writes Atom elements without a namespace and puts xmlns on the root by
            # hand, so the link has to be unqualified too to land in the Atom namespace.
            elem = xml_elem("link", entry, nsmap={THREAD_PREFIX: THREAD_NS})
            elem.set("rel", "replies")
            elem.set("type", link.type)
            elem.set("href", link.href)
            # RFC 4685 section 4: thr:count and thr:updated are namespaced attributes.
            if link.count is not None:
                elem.set(f"{{{THREAD_NS}}}count", str(link.count))
            if link.updated is not None:
                elem.set(f"{{{THREAD_NS}}}updated", link.updated.isoformat())
        if self._total is not None:
            _sub(entry, THREAD_NS, THREAD_PREFIX, "total", str(self._total))
        self._write_in_reply_to(entry)
        return entry

    def extend_rss(self, item: Any) -> Any:
        """Append ``thr:in-reply-to`` to an RSS item; the rest of ``thr`` is Atom-only."""
        self._write_in_reply_to(item)
        return item


class SlashExtension(BaseExtension):
    """Feed-level part of the ``slash`` extension: declares the namespace on the root."""

    def extend_ns(self) -> dict[str, str]:
        """Return the namespace map entry for the feed's root element."""
        return {SLASH_PREFIX: SLASH_NS}


class SlashEntryExtension(BaseEntryExtension):
    """Entry-level Slash module: the ``<slash:comments>`` count of an RSS item."""

    def __init__(self) -> None:
        self._comments: int | None = None

    def comments(self, count: int | None = None) -> int | None:
        """Set the number of comments on the item and return it."""
        if count is not None:
            self._comments = _check_count(count, "slash:comments")
        return self._comments

    def extend_rss(self, item: Any) -> Any:
        """Append ``slash:comments`` to an RSS item."""
        if self._comments is not None:
            _sub(item, SLASH_NS, SLASH_PREFIX, "comments", str(self._comments))
        return item


class WfwExtension(BaseExtension):
    """Feed-level part of the ``wfw`` extension: declares the namespace on the root."""

    def extend_ns(self) -> dict[str, str]:
        """Return the namespace map entry for the feed's root element."""
        return {WFW_PREFIX: WFW_NS}


class WfwEntryExtension(BaseEntryExtension):
    """Entry-level Well-Formed Web Comment API: the ``<wfw:commentRss>`` of an RSS item."""

    def __init__(self) -> None:
        self._comment_rss: str | None = None

    def comment_rss(self, url: str | None = None) -> str | None:
        """Set the URL of the item's comment feed and return it."""
        if url is not None:
            self._comment_rss = _check_text(url, "wfw:commentRss")
        return self._comment_rss

    def extend_rss(self, item: Any) -> Any:
        """Append ``wfw:commentRss`` to an RSS item."""
        if self._comment_rss is not None:
            _sub(item, WFW_NS, WFW_PREFIX, "commentRss", self._comment_rss)
        return item


def register_comment_extensions(fg: FeedGenerator) -> None:
    """Register the ``thread``, ``slash`` and ``wfw`` extensions on a ``FeedGenerator``.

    ``thread`` is used in Atom and RSS; ``slash`` and ``wfw`` in RSS only, so an Atom feed does
    not declare namespaces it never uses. Entries added before or after the call get the entry
    extensions. Raises feedgen's ``ImportError`` if one of the names is already registered.
    """
    fg.register_extension("thread", ThreadExtension, ThreadEntryExtension, atom=True, rss=True)
    fg.register_extension("slash", SlashExtension, SlashEntryExtension, atom=False, rss=True)
    fg.register_extension("wfw", WfwExtension, WfwEntryExtension, atom=False, rss=True)


ATOM_NS = "http://www.w3.org/2005/Atom"


class AtomLinksExtension(BaseExtension):
    """Feed-level part of ``atomlinks``: nothing to declare (links are in the Atom namespace)."""

    def extend_ns(self) -> dict[str, str]:
        return {}


class AtomLinksEntryExtension(BaseEntryExtension):
    """Atom entry links with all their attributes.

    feedgen 1.0 writes an Atom entry link's ``href`` but drops ``rel``, ``type`` and ``length``
    (lkiesow/python-feedgen#135), which would turn an enclosure into a second alternate link.
    Links added here are written whole.
    """

    def __init__(self) -> None:
        self._links: list[dict[str, str]] = []

    def add(
        self,
        href: str,
        rel: str = "alternate",
        type: str | None = None,
        length: int | None = None,
        title: str | None = None,
    ) -> None:
        """Add one ``<link>`` to the Atom entry."""
        attributes = {"href": _check_text(href, "href"), "rel": rel}
        if type:
            attributes["type"] = type
        if length:
            attributes["length"] = str(length)
        if title:
            attributes["title"] = _check_text(title, "title")
        self._links.append(attributes)

    def extend_atom(self, entry: Any) -> Any:
        for attributes in self._links:
            xml_elem("link", entry, **attributes)  # feedgen writes Atom unqualified
        return entry

    def extend_rss(self, item: Any) -> Any:
        # In an RSS item, as atom:link (the prefix feedgen declares on every RSS root).
        for attributes in self._links:
            xml_elem(f"{{{ATOM_NS}}}link", item, **attributes)
        return item


def register_atom_links(fg: FeedGenerator) -> None:
    """Register ``atomlinks``: ``entry.atomlinks.add(href, rel, type, length, title)``, a
    ``<link>`` in an Atom entry and an ``<atom:link>`` in an RSS item."""
    fg.register_extension(
        "atomlinks", AtomLinksExtension, AtomLinksEntryExtension, atom=True, rss=True
    )


class RssAtomLinksExtension(BaseExtension):
    """Feed-level ``atom:link`` elements in an RSS 2.0 channel, beyond feedgen's self link.

    feedgen 1.0 writes only the first ``rel="self"`` link into an RSS channel. WebSub
    (``rel="hub"``) and RFC 5005 paging (``first``, ``previous``, ``next``, ``last``) are read
    from ``atom:link`` elements in RSS too, so they are written here.
    """

    def __init__(self) -> None:
        self._links: list[dict[str, str]] = []

    def extend_ns(self) -> dict[str, str]:
        return {}  # feedgen always declares the atom prefix on an RSS root

    def add(self, href: str, rel: str, type: str | None = None) -> None:
        """Add one ``<atom:link>`` to the channel."""
        attributes = {"href": _check_text(href, "href"), "rel": _check_text(rel, "rel")}
        if type:
            attributes["type"] = type
        self._links.append(attributes)

    def extend_rss(self, feed: Any) -> Any:
        channel = feed.find("channel")
        # After feedgen's own atom:link (rel="self"), so the links stay together.
        anchor = channel.find(f"{{{ATOM_NS}}}link")
        position = list(channel).index(anchor) + 1 if anchor is not None else len(channel)
        for offset, attributes in enumerate(self._links):
            elem = xml_elem(f"{{{ATOM_NS}}}link", None, **attributes)
            channel.insert(position + offset, elem)
        return feed

    def extend_atom(self, feed: Any) -> Any:
        return feed


def register_rss_atom_links(fg: FeedGenerator) -> None:
    """Register ``rsslinks`` (RSS only): ``fg.rsslinks.add(href, rel, type)``."""
    fg.register_extension("rsslinks", RssAtomLinksExtension, None, atom=False, rss=True)


ITUNES_NS = "http://www.itunes.com/dtds/podcast-1.0.dtd"
ITUNES_PREFIX = "itunes"
PODCAST_NS = "https://podcastindex.org/namespace/1.0"
PODCAST_PREFIX = "podcast"


class PodcastExtension(BaseExtension):
    """Feed-level part of ``episode``: declares the iTunes and Podcasting 2.0 namespaces."""

    def extend_ns(self) -> dict[str, str]:
        """Return the namespace map entries for the feed's root element."""
        return {ITUNES_PREFIX: ITUNES_NS, PODCAST_PREFIX: PODCAST_NS}


class PodcastEntryExtension(BaseEntryExtension):
    """An RSS item's podcast tags, carried as the source wrote them, and its enclosures.

    ``itunes:image``, ``itunes:duration``, ``itunes:episode``, ``itunes:explicit``,
    ``podcast:transcript`` and ``podcast:chapters`` (:data:`aggregator.models.PODCAST_TAGS`).
    RSS 2.0 allows one ``<enclosure>`` per item (feedgen writes it); the item's further
    enclosures are written as ``<atom:link rel="enclosure">``, which feedparser and podcast
    apps that read Atom links take as enclosures too.
    """

    def __init__(self) -> None:
        self._tags: dict[str, str] = {}
        self._enclosures: list[dict[str, str]] = []

    def tags(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Set the item's podcast tags from ``(name, value)`` pairs."""
        self._tags = {name: _check_text(value, name) for name, value in pairs}

    def extra_enclosure(self, url: str, type: str, length: int | None) -> None:
        """Add an enclosure beyond the first."""
        attributes = {"href": _check_text(url, "enclosure url"), "rel": "enclosure", "type": type}
        if length:
            attributes["length"] = str(length)
        self._enclosures.append(attributes)

    def extend_rss(self, item: Any) -> Any:
        """Append the podcast tags and the further enclosures to an RSS item."""
        tags = self._tags
        if "image" in tags:
            _sub(item, ITUNES_NS, ITUNES_PREFIX, "image").set("href", tags["image"])
        for name in ("duration", "episode", "explicit"):
            if name in tags:
                _sub(item, ITUNES_NS, ITUNES_PREFIX, name, tags[name])
        for name in ("transcript", "chapters"):
            if name in tags:
                elem = _sub(item, PODCAST_NS, PODCAST_PREFIX, name)
                elem.set("url", tags[name])
                elem.set("type", tags.get(f"{name}_type") or _DEFAULT_TYPES[name])
        for attributes in self._enclosures:
            xml_elem(f"{{{ATOM_NS}}}link", item, **attributes)
        return item


# podcast:transcript and podcast:chapters require a type; these when the source gave none.
_DEFAULT_TYPES = {"transcript": "text/plain", "chapters": "application/json+chapters"}


def register_podcast(fg: FeedGenerator) -> None:
    """Register ``episode`` (RSS only): ``entry.episode.tags(pairs)``,
    ``entry.episode.extra_enclosure(url, type, length)``."""
    fg.register_extension("episode", PodcastExtension, PodcastEntryExtension, atom=False, rss=True)
