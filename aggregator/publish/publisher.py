"""Render outputs as Atom 1.0, RSS 2.0 (feedgen) and JSON Feed 1.1, and write them atomically.

Rendering is a function of stored entries only: the same entries give the same bytes, so ETags
stay stable and readers never see a duplicate. Entry ids come from storage (stable across
restarts and re-publishing) and an entry's ``updated`` time is its own, never its comments'.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from feedgen.feed import FeedGenerator

from aggregator import __version__
from aggregator.config.outputs import OutputConfig
from aggregator.config.schema import AppConfig
from aggregator.errors import NotFoundError, PublishError
from aggregator.models import StoredComment, StoredEntry
from aggregator.parse.sanitize import strip_images
from aggregator.publish.access import feeds_folder, remove_public_copies
from aggregator.publish.commentitems import ParentView, as_entry, as_item, item_title
from aggregator.publish.feedext import (
    register_atom_links,
    register_comment_extensions,
    register_podcast,
    register_rss_atom_links,
)
from aggregator.publish.files import remove_leftovers, write_atomic
from aggregator.publish.fragments import FragmentCache, Piece
from aggregator.publish.inline import merge_threads, thread_section, with_thread
from aggregator.select.dedupe import DedupedEntry, Duplicate
from aggregator.select.filters import evaluate, keep_comment
from aggregator.select.rule_compile import (
    CommentRules,
    RuleSet,
    combine_comment_rules,
    compile_comment_rules,
)
from aggregator.select.rules import RuleBook, candidate_query
from aggregator.select.selection import CandidatePage, Selection, select_entries, shape_entry
from aggregator.storage import Storage

EXTENSIONS = {"atom": "atom", "rss": "rss", "json": "json"}
MEDIA_TYPES = {
    "atom": "application/atom+xml",
    "rss": "application/rss+xml",
    "json": "application/feed+json",
}
# feedgen's order: name, version, uri. No uri: the project has no public home to name (issue 18).
GENERATOR = ("aggregator", __version__)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_UUID_HEX = re.compile(r"[0-9a-f]{32}")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedLinks:
    """The public URLs of one output, built from the server's base URL.

    ``hub`` is the WebSub hub every document names in ``rel="hub"``, when one is configured.
    """

    base_url: str
    output: str
    hub: str | None = None

    def feed(self, fmt: str) -> str:
        return f"{self.base_url}/feeds/{self.output}.{EXTENSIONS[fmt]}"

    def feed_page(self, fmt: str, number: int) -> str:
        """Page ``number`` of the output (RFC 5005 paging); page 1 is the feed itself."""
        if number <= 1:
            return self.feed(fmt)
        return f"{self.base_url}/feeds/{self.output}/page/{number}.{EXTENSIONS[fmt]}"

    def web_page(self) -> str:
        """The output's readable web page."""
        return f"{self.base_url}/outputs/{self.output}"

    def web_entry(self, entry_public_id: str) -> str:
        """One entry of the output with its comment thread, as a web page."""
        return f"{self.base_url}/outputs/{self.output}/{entry_public_id}"

    def page(self) -> str:
        return f"{self.base_url}/"

    def comments(self, entry_public_id: str, fmt: str) -> str:
        return f"{self.base_url}/feeds/{self.output}/{entry_public_id}/comments.{EXTENSIONS[fmt]}"

    def latest_comments(self, fmt: str) -> str:
        return f"{self.base_url}/feeds/{self.output}/comments.{EXTENSIONS[fmt]}"


@dataclass(frozen=True)
class Page:
    """Where a document sits in an output's RFC 5005 paged feed: page ``number`` of ``count``."""

    number: int = 1
    count: int = 1

    def links(self, links: FeedLinks, fmt: str) -> list[tuple[str, str]]:
        """The (rel, href) paging links of this page; none when the output has one page."""
        if self.count <= 1:
            return []
        result = [("first", links.feed_page(fmt, 1))]
        if self.number > 1:
            result.append(("previous", links.feed_page(fmt, self.number - 1)))
        if self.number < self.count:
            result.append(("next", links.feed_page(fmt, self.number + 1)))
        result.append(("last", links.feed_page(fmt, self.count)))
        return result


@dataclass(frozen=True)
class CommentView:
    """How an entry's thread is shown in an output: the visible count and the latest time."""

    count: int
    last_at: datetime | None


@dataclass(frozen=True)
class ThreadLinks:
    """Where an entry's thread can be read, and its count, as every format announces them.

    ``page`` is the thread's web page: aggregator's own entry page (``/outputs/{output}/{entry}``,
    served by :mod:`aggregator.serve.web`) when aggregator follows the thread, else the comments page
    the source itself gave. ``feeds`` says whether aggregator publishes comment feeds for it.
    ``source_page`` is the source's own comments page, kept beside aggregator's (Atom
    ``rel="via"``, JSON ``_aggregator.source_comments_url``); ``source_feed`` the source's own
    comment feed, passed on (``wfw:commentRss``) only for a thread aggregator does not follow.
    """

    page: str | None
    count: int | None
    updated: datetime | None = None
    feeds: bool = False
    source_page: str | None = None
    source_feed: str | None = None


def _web_url(value: object) -> str | None:
    """``value`` when it is an absolute http(s) URL a reader can open, else ``None``."""
    if isinstance(value, str) and value.lower().startswith(("http://", "https://")):
        return value
    return None


def thread_links(
    entry: StoredEntry, links: FeedLinks, thread: CommentView | None
) -> ThreadLinks | None:
    """How ``entry``'s thread is announced in an output; ``None`` when there is nothing to say.

    Pure. With ``thread`` (aggregator follows it, or has stored comments of it) the page is the
    entry's own web page and the count the comments the output shows; without, the source's own
    comments page and count (``slash:comments``, ``thr:total``) are passed on as its feed gave
    them, so a reader shows them even for a source whose comments are not followed.
    """
    source_page = _web_url(entry.extra.get("comments_page_url"))
    hint = entry.extra.get("comment_count_hint")
    if thread is not None:
        return ThreadLinks(
            links.web_entry(entry.public_id),
            thread.count,
            thread.last_at,
            feeds=True,
            source_page=source_page,
        )
    count = hint if isinstance(hint, int) and not isinstance(hint, bool) and hint >= 0 else None
    source_feed = _web_url(entry.extra.get("comments_feed_url"))
    if source_page is None and count is None and source_feed is None:
        return None
    return ThreadLinks(source_page, count, source_page=source_page, source_feed=source_feed)


class StageTimes:
    """Seconds spent in each stage of a publish, for ``benchmarks/publish.py`` and debug logs.

    A stage's time excludes the stages nested in it, so the stages add up to the whole. Reading
    the clock is all it costs (a few hundred calls per publish).
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self.seconds: dict[str, float] = {}
        self._clock = clock
        self._stack: list[str] = []
        self._mark = 0.0

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._switch()
        self._stack.append(name)
        try:
            yield
        finally:
            self._switch()
            self._stack.pop()

    def _switch(self) -> None:
        now = self._clock()
        if self._stack:
            name = self._stack[-1]
            self.seconds[name] = self.seconds.get(name, 0.0) + now - self._mark
        self._mark = now


def urn(public_id: str) -> str:
    """An entry's public id as a URI (``urn:uuid:...``), valid as Atom id and RSS guid."""
    if _UUID_HEX.fullmatch(public_id):  # as storage writes them (uuid.hex): no UUID object
        h = public_id
        return f"urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return uuid.UUID(hex=public_id).urn


def entry_updated(entry: StoredEntry) -> datetime:
    """The time an entry last changed at its source; comment activity never moves it."""
    return entry.updated_at or entry.published_at or entry.first_seen_at


def with_bump(entry: StoredEntry, last_comment_at: datetime | None) -> StoredEntry:
    """``entry`` with its ``updated`` time moved to its newest comment's, when that is later
    (``comment_updates: bump``); its id never changes."""
    if last_comment_at is None or last_comment_at <= entry_updated(entry):
        return entry
    return replace(entry, updated_at=last_comment_at)


def entry_author(entry: StoredEntry) -> str:
    """The name an entry is credited to: its author, else its source's title or name."""
    return entry.author or entry.source_title or entry.source_name


def feed_updated(entries: Sequence[StoredEntry]) -> datetime:
    return max((entry_updated(e) for e in entries), default=_EPOCH)


# What a rendered entry and a rendered comment depend on (see aggregator.publish.fragments.Piece).
_EntryPiece = Piece[tuple[StoredEntry, CommentView | None, FeedLinks, tuple[Duplicate, ...]]]
_CommentPiece = Piece[
    tuple[
        StoredComment,
        tuple[str, str, str | None],
        str | None,
        str,
        Callable[[StoredComment, str], str],
    ]
]


def render_output(
    output: OutputConfig,
    entries: Sequence[StoredEntry],
    links: FeedLinks,
    fmt: str,
    threads: dict[int, CommentView] | None = None,
    page: Page | None = None,
    duplicates: Mapping[int, Sequence[Duplicate]] | None = None,
    *,
    fragments: FragmentCache | None = None,
) -> bytes:
    """Render one output in one format ("atom", "rss" or "json").

    ``threads`` maps entry ids to their visible comment count; an entry not in it shows none.
    ``page`` places the document in the output's paged feed (RFC 5005 section 3); the default
    is a feed of one page.
    ``duplicates`` maps entry ids to the copies of it left out (JSON ``_aggregator.duplicates``;
    the HTML names them already, see :func:`aggregator.select.selection.shape_entry`).
    ``fragments`` holds entries rendered before, reused when nothing they show changed: the
    bytes are the same as without it.
    """
    threads = threads or {}
    page = page or Page()
    duplicates = duplicates or {}
    if fmt not in EXTENSIONS:
        raise PublishError(f"unknown format {fmt!r}")
    pieces = [
        Piece(
            ("entry", links.output, fmt, entry.id),
            (entry, threads.get(entry.id), links, tuple(duplicates.get(entry.id, ()))),
        )
        for entry in entries
    ]
    if fmt == "json":
        document = _json_document(output, links, page)

        def item(piece: _EntryPiece) -> dict[str, object]:
            entry = piece.depends[0]
            return _json_item(entry, links, threads.get(entry.id), duplicates)

        if fragments is None:
            return _json_bytes({**document, "items": [item(piece) for piece in pieces]})
        return fragments.json(document, pieces, item)
    head = _feed_head(output, links, fmt, page, feed_updated(entries))

    def render(some: Sequence[_EntryPiece]) -> bytes:
        generator = head()
        # feedgen prepends entries; add oldest first so the document lists newest first.
        for piece in reversed(some):
            entry = piece.depends[0]
            _add_entry(generator, entry, links, fmt, threads.get(entry.id))
        return _serialize(generator, fmt)

    return render(pieces) if fragments is None else fragments.xml(fmt, pieces, render)


def _serialize(generator: FeedGenerator, fmt: str) -> bytes:
    return generator.atom_str(pretty=True) if fmt == "atom" else generator.rss_str(pretty=True)


def _new_generator(
    feed_id: str,
    title: str,
    description: str,
    self_url: str,
    fmt: str,
    updated: datetime,
    home: str,
    extra_links: Sequence[tuple[str, str]] = (),
) -> FeedGenerator:
    """A FeedGenerator with the feed-level metadata every document carries.

    ``extra_links`` are (rel, href) pairs such as ``hub`` (WebSub) and the RFC 5005 paging
    links; in RSS they become ``atom:link`` elements of the channel.
    """
    generator = FeedGenerator()
    if fmt == "rss":
        generator.load_extension("dc", atom=False, rss=True)
        register_rss_atom_links(generator)
        register_podcast(generator)
    else:
        register_atom_links(generator)
    register_comment_extensions(generator)
    generator.id(feed_id)
    generator.title(title)
    generator.subtitle(description)
    generator.description(description)
    generator.link(href=self_url, rel="self", type=MEDIA_TYPES[fmt])
    # Added last on purpose: feedgen uses the last link as the RSS channel <link>, which must
    # be the website, not the feed itself.
    generator.link(href=home, rel="alternate", type="text/html")
    for rel, href in extra_links:
        if fmt == "rss":
            generator.rsslinks.add(href, rel, MEDIA_TYPES[fmt] if rel != "hub" else None)
        else:
            generator.link(
                href=href, rel=rel, **({"type": MEDIA_TYPES[fmt]} if rel != "hub" else {})
            )
    generator.author({"name": title})
    generator.generator(*GENERATOR)
    generator.language("en")
    generator.updated(updated)
    generator.lastBuildDate(updated)
    return generator


def _feed_head(
    output: OutputConfig, links: FeedLinks, fmt: str, page: Page, updated: datetime
) -> Callable[[], FeedGenerator]:
    """A maker of the output's FeedGenerator with its feed-level metadata and no entries."""
    description = output.description or f"{output.display_title}, merged by aggregator"
    return lambda: _new_generator(
        uuid.uuid5(uuid.NAMESPACE_URL, f"aggregator:output:{output.name}").urn,
        output.display_title,
        description,
        links.feed_page(fmt, page.number),
        fmt,
        updated,
        links.web_page(),
        _hub_links(links) + page.links(links, fmt),
    )


def _add_entry(
    generator: FeedGenerator,
    entry: StoredEntry,
    links: FeedLinks,
    fmt: str,
    thread: CommentView | None,
) -> None:
    item = generator.add_entry()
    item.id(urn(entry.public_id))
    item.guid(urn(entry.public_id), permalink=False)
    item.title(entry.title or "(untitled)")
    if entry.link:
        item.link(href=entry.link, rel="alternate")
    if fmt == "atom":
        # Threads about the entry on other sites (issue 16), counts in the title.
        for site in entry_discussions(entry):
            item.atomlinks.add(str(site["url"]), "related", title=str(site["text"]))
    # An entry without an author is credited to its source, as Planet-style aggregators do,
    # so that a reader's author column names where it came from.
    author = entry_author(entry)
    if fmt == "rss":
        # RSS <author> must be an e-mail address; a name belongs in dc:creator.
        item.dc.dc_creator(author)
    else:
        item.author({"name": author})
    item.updated(entry_updated(entry))
    item.published(entry.published_at or entry.first_seen_at)
    if entry.content:
        item.content(entry.content, type="html")
        if entry.summary:
            item.summary(entry.summary, type="html")
        if fmt == "rss":
            item.description(entry.summary or entry.content)
    elif entry.summary:
        item.summary(entry.summary, type="html")
    if not entry.link and not entry.content:
        # An Atom entry needs content or an alternate link (RFC 4287 4.1.2); without either,
        # feedgen refuses the entry and with it the whole output.
        item.content(entry.summary or "", type="html")
    for term in entry.categories:
        item.category(term=term)
    for index, enclosure in enumerate(entry.enclosures):
        kind = enclosure.type or "application/octet-stream"
        if fmt == "rss":
            # RSS 2.0 allows one enclosure per item (feedgen would keep the last): the first,
            # and the others as atom:link rel="enclosure" (aggregator.publish.feedext, "episode").
            if index == 0:
                item.enclosure(enclosure.url, str(enclosure.length or 0), kind)
            else:
                item.episode.extra_enclosure(enclosure.url, kind, enclosure.length)
        else:
            item.atomlinks.add(enclosure.url, "enclosure", kind, enclosure.length)
    if fmt == "rss" and entry.podcast:
        item.episode.tags(entry.podcast)
    shown = thread_links(entry, links, thread)
    if shown is not None:
        _add_thread(item, entry, links, fmt, shown)
    source_title = entry.source_title or entry.source_name
    # A local demo file's URL means nothing to a subscriber: name the site instead.
    source_url = entry.source_url if not entry.source_url.startswith("file:") else entry.source_link
    # RSS <source url> must be the source's feed, an http(s) URL (RSS 2.0 "source").
    if source_url and source_url.startswith(("http://", "https://")):
        item.source(url=source_url, title=source_title)


def _add_thread(
    item: Any, entry: StoredEntry, links: FeedLinks, fmt: str, shown: ThreadLinks
) -> None:
    """Announce an entry's thread in each element some reader reads (README, "What readers
    show of comments"): RFC 4685 in Atom, ``<comments>``, ``slash`` and ``wfw`` in RSS."""
    if fmt == "atom":
        if shown.feeds:
            # Liferea and RSS Guard read the thread itself from an Atom-typed replies link.
            item.thread.replies(
                href=links.comments(entry.public_id, "atom"),
                type=MEDIA_TYPES["atom"],
                count=shown.count,
                updated=shown.updated,
            )
        if shown.page:
            # Miniflux, QuiteRSS and Tiny Tiny RSS read only a text/html replies link.
            item.thread.replies(
                href=shown.page, type="text/html", count=shown.count, updated=shown.updated
            )
        if shown.count is not None:
            item.thread.total(shown.count)
        if shown.feeds and shown.source_page and shown.source_page != shown.page:
            item.atomlinks.add(shown.source_page, "via", "text/html")
        return
    if shown.count is not None:
        item.slash.comments(shown.count)
    if shown.feeds:
        item.wfw.comment_rss(links.comments(entry.public_id, "rss"))
    elif shown.source_feed:
        item.wfw.comment_rss(shown.source_feed)
    if shown.page:
        item.comments(shown.page)


def entry_discussions(entry: StoredEntry) -> list[dict[str, object]]:
    """The threads about ``entry`` on other sites, with their counts (stored by
    :mod:`aggregator.discussions`): site, label, url, score, comments and a line of text."""
    from aggregator.discussions.registry import label_of

    sites: list[dict[str, object]] = []
    for site, url, score, comments in entry.extra.get("discussions") or ():  # type: ignore[attr-defined]
        if not url:
            continue
        label = label_of(site)
        counts = [f"{score} points"] if score is not None else []
        counts.append(f"{comments} comments")
        sites.append(
            {
                "site": site,
                "label": label,
                "url": url,
                "score": score,
                "comments": comments,
                "text": f"{label}: {', '.join(counts)}",
            }
        )
    return sites


def _has_rules(rules: CommentRules) -> bool:
    """Whether ``rules`` can drop a comment (``CommentRules.names`` is left out of ``==``)."""
    return bool(rules.names or rules.authors or rules.exclude)


def _hub_links(links: FeedLinks) -> list[tuple[str, str]]:
    return [("hub", links.hub)] if links.hub else []


def _json_item(
    entry: StoredEntry,
    links: FeedLinks,
    thread: CommentView | None,
    duplicates: Mapping[int, Sequence[Duplicate]],
) -> dict[str, object]:
    copies = duplicates.get(entry.id, ())
    shown = thread_links(entry, links, thread)
    item: dict[str, object] = {
        "id": urn(entry.public_id),
        "title": entry.title or "(untitled)",
        "content_html": entry.content or entry.summary or "",
        "date_published": (entry.published_at or entry.first_seen_at).isoformat(),
        "date_modified": entry_updated(entry).isoformat(),
        "_aggregator": {
            "source": {
                "name": entry.source_name,
                "title": entry.source_title,
                "feed_url": entry.source_url,
            },
            "comment_count": (shown.count or 0) if shown else 0,
            **({"comments_url": shown.page} if shown and shown.page else {}),
            **({"discussions": entry_discussions(entry)} if entry_discussions(entry) else {}),
            **({"comments_feed_url": links.comments(entry.public_id, "json")} if thread else {}),
            **({"source_comments_url": shown.source_page} if shown and shown.source_page else {}),
            **(
                {
                    "duplicates": [
                        {
                            "source": copy.source_name,
                            "source_title": copy.source_title,
                            "url": copy.link,
                            "id": urn(copy.public_id),
                            "same": copy.reason,
                        }
                        for copy in copies
                    ]
                }
                if copies
                else {}
            ),
        },
    }
    if entry.link:
        item["url"] = entry.link
    if entry.summary and entry.content:
        item["summary"] = entry.summary
    item["authors"] = [{"name": entry_author(entry)}]
    if entry.categories:
        item["tags"] = list(entry.categories)
    podcast = dict(entry.podcast)
    seconds = duration_seconds(podcast.get("duration"))
    if entry.enclosures:
        item["attachments"] = [
            {
                "url": e.url,
                "mime_type": e.type or "application/octet-stream",
                **({"size_in_bytes": e.length} if e.length else {}),
                **({"duration_in_seconds": seconds} if seconds is not None else {}),
            }
            for e in entry.enclosures
        ]
    if "image" in podcast:
        item["image"] = podcast["image"]
    if podcast:
        # The podcast tags as written in RSS (JSON Feed's extension syntax: "_" + a name).
        item["_podcast"] = podcast
    return item


def duration_seconds(value: str | None) -> int | None:
    """An ``itunes:duration`` (``3723``, ``62:03`` or ``1:02:03``) in seconds; ``None`` when
    it is missing or not of that shape."""
    if not value:
        return None
    parts = value.strip().split(":")
    if len(parts) > 3 or not all(part.isdigit() for part in parts):
        return None
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + int(part)
    return seconds


def _json_document(output: OutputConfig, links: FeedLinks, page: Page) -> dict[str, object]:
    """The JSON Feed of an output, its items left out (``items`` keeps its place)."""
    document: dict[str, object] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": output.display_title,
        "home_page_url": links.web_page(),
        "feed_url": links.feed("json"),
        "description": output.description or f"{output.display_title}, merged by aggregator",
        "authors": [{"name": output.display_title}],
        "language": "en",
        "items": [],
    }
    if page.number < page.count:
        document["next_url"] = links.feed_page("json", page.number + 1)
    if links.hub:
        document["hubs"] = [{"type": "WebSub", "url": links.hub}]
    return document


def _json_bytes(document: dict[str, object]) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")


def shown_comments(output: OutputConfig, comments: list[StoredComment]) -> list[StoredComment]:
    """Comments as ``output`` republishes them: without images under ``images: strip``."""
    if output.images == "keep":
        return comments
    return [replace(c, content=strip_images(c.content) or "") for c in comments]


def shown_comments_with(
    output: OutputConfig, items: list[tuple[StoredComment, StoredEntry]]
) -> list[tuple[StoredComment, StoredEntry]]:
    """As :func:`shown_comments`, for comments paired with their entries."""
    if output.images == "keep":
        return items
    return [(replace(c, content=strip_images(c.content) or ""), e) for c, e in items]


def comment_title(comment: StoredComment, entry_title: str) -> str:
    """A plain-text title for a comment, which Atom requires and readers list."""
    return f"Comment by {comment.author or 'anonymous'} on {entry_title or 'a post'}"


def comment_updated(comment: StoredComment) -> datetime:
    return comment.published_at or comment.first_seen_at


def render_comments(
    title: str,
    feed_id: str,
    comments: Sequence[StoredComment],
    entries: dict[int, StoredEntry],
    self_url: str,
    home: str,
    fmt: str,
    hub: str | None = None,
    *,
    fragments: FragmentCache | None = None,
    title_of: Callable[[StoredComment, str], str] = comment_title,
    page: Page | None = None,
    page_links: FeedLinks | None = None,
    parent_links: Mapping[str, str] | None = None,
) -> bytes:
    """Render a comment feed: one entry's thread, or an output's latest comments.

    Each comment names what it replies to (``thr:in-reply-to``): its parent comment where the
    source threads replies, else the post. ``hub`` is the WebSub hub to name, if any.
    ``fragments`` holds comments rendered before (see :func:`render_output`).
    ``title_of`` makes each item's title; ``page`` and ``page_links`` place the document in
    a paged feed (RFC 5005, an output of ``items: comments``); ``parent_links`` are the
    permalinks of parents that are not in this document.
    """
    updated = max((comment_updated(c) for c in comments), default=_EPOCH)
    permalinks = {**(parent_links or {}), **{c.public_id: c.link for c in comments if c.link}}
    paging = page.links(page_links, fmt) if page and page_links else []
    pieces: list[_CommentPiece] = []
    for comment in comments:
        entry = entries[comment.entry_id]
        replied = (
            permalinks.get(comment.parent_public_id) or entry.link
            if comment.parent_public_id
            else None
        )
        shown = (entry.public_id, entry.title, entry.link)
        pieces.append(
            Piece(("comment", feed_id, fmt, comment.id), (comment, shown, replied, home, title_of))
        )
    if fmt == "json":
        document = {
            "version": "https://jsonfeed.org/version/1.1",
            "title": title,
            "home_page_url": home,
            "feed_url": self_url,
            "authors": [{"name": title}],
            "items": [],
            **({"hubs": [{"type": "WebSub", "url": hub}]} if hub else {}),
        }
        if page and page_links and page.number < page.count:
            document["next_url"] = page_links.feed_page("json", page.number + 1)

        def item(piece: _CommentPiece) -> dict[str, object]:
            comment = piece.depends[0]
            return _json_comment(comment, entries[comment.entry_id], title_of)

        if fragments is None:
            return _json_bytes({**document, "items": [item(piece) for piece in pieces]})
        return fragments.json(document, pieces, item)

    def render(some: Sequence[_CommentPiece]) -> bytes:
        generator = _new_generator(
            feed_id,
            title,
            title,
            self_url,
            fmt,
            updated,
            home,
            ([("hub", hub)] if hub else []) + paging,
        )
        for piece in reversed(some):
            comment, _, replied, _, _ = piece.depends
            _add_comment(
                generator, comment, entries[comment.entry_id], fmt, home, replied, title_of
            )
        return _serialize(generator, fmt)

    return render(pieces) if fragments is None else fragments.xml(fmt, pieces, render)


def _add_comment(
    generator: FeedGenerator,
    comment: StoredComment,
    entry: StoredEntry,
    fmt: str,
    home: str,
    replied: str | None,
    title_of: Callable[[StoredComment, str], str] = comment_title,
) -> None:
    """One comment as an entry; ``replied`` is the parent comment's permalink (else the
    post's), when the comment answers another."""
    item = generator.add_entry()
    item.id(urn(comment.public_id))
    item.guid(urn(comment.public_id), permalink=False)
    item.title(title_of(comment, entry.title))
    item.link(href=comment.link or entry.link or home, rel="alternate")
    if comment.author:
        if fmt == "rss":
            item.dc.dc_creator(comment.author)
        else:
            item.author(
                {
                    "name": comment.author,
                    **({"uri": comment.author_url} if comment.author_url else {}),
                }
            )
    item.published(comment_updated(comment))
    item.updated(comment_updated(comment))
    item.content(comment.content or "", type="html")
    if fmt == "rss":
        item.description(comment.content or "")
    if comment.parent_public_id:
        item.thread.in_reply_to(urn(comment.parent_public_id), href=replied, type="text/html")
    else:
        item.thread.in_reply_to(urn(entry.public_id), href=entry.link, type="text/html")


def _json_comment(
    comment: StoredComment,
    entry: StoredEntry,
    title_of: Callable[[StoredComment, str], str] = comment_title,
) -> dict[str, object]:
    item: dict[str, object] = {
        "id": urn(comment.public_id),
        "title": title_of(comment, entry.title),
        "content_html": comment.content or "",
        "date_published": comment_updated(comment).isoformat(),
        "_aggregator": {
            "in_reply_to": urn(comment.parent_public_id or entry.public_id),
            "entry_url": entry.link,
            "number": comment.number,
            **({"gone_at": comment.gone_at.isoformat()} if comment.gone_at else {}),
        },
    }
    if comment.link:
        item["url"] = comment.link
    if comment.author:
        item["authors"] = [
            {"name": comment.author, **({"url": comment.author_url} if comment.author_url else {})}
        ]
    return item


class Publisher:
    """Chooses, renders and writes the configured outputs, their comment feeds and
    latest-comments feeds.

    Keeps the signature of every file it wrote, so a republish renders again only the feeds
    whose inputs changed (entries, comments, or the configuration), and never rewrites an
    unchanged file. Reuse one Publisher in a long-running process; ``storage`` may be a
    :class:`Storage` or a function returning the calling thread's own. It also keeps the bytes
    of rendered entries and comments, up to ``fragment_bytes`` (see :mod:`aggregator.publish.fragments`).
    """

    LATEST_COMMENTS = 50
    LATEST_SCAN_MAX = 5000  # comments read back at most to fill the latest-comments feed

    def __init__(
        self,
        config: AppConfig,
        storage: Storage | Callable[[], Storage],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        fragment_bytes: int = 32 * 1024 * 1024,
    ):
        self._storage = storage
        self.clock = clock
        self._signatures: dict[Path, tuple[object, ...]] = {}
        self._paths: dict[tuple[object, ...], list[Path]] = {}
        # Entries and comments rendered before, reused when a document moves or grows; a
        # publisher used once (``aggregator publish``) keeps none (fragment_bytes=0).
        self._fragments = FragmentCache(fragment_bytes) if fragment_bytes > 0 else None
        self._swept = False
        self._parent_links: dict[str, str] = {}  # permalinks of parent comments (items: comments)
        # Where the last publish() spent its time, by stage (see benchmarks/publish.py).
        self.times = StageTimes()
        self.configure(config)

    def configure(self, config: AppConfig) -> None:
        """Use a new configuration (a reload); the next publish re-renders what it changes."""
        self.config = config
        self.rules = RuleBook.from_config(config)
        self._comment_rules: dict[tuple[str, str], CommentRules] = {}
        self._sources = {source.name: source for source in config.sources}
        self._entry_rules: dict[tuple[str, str], RuleSet] = {}

    @property
    def storage(self) -> Storage:
        return self._storage if isinstance(self._storage, Storage) else self._storage()

    def links(self, output: OutputConfig) -> FeedLinks:
        return FeedLinks(
            self.config.server.public_url, output.name, hub=self.config.server.websub_hub
        )

    def entries_for(self, output: OutputConfig) -> list[StoredEntry]:
        """The entries an output shows now, in its order (deduplicated, before shaping)."""
        return self.select(output).kept

    def select(
        self, output: OutputConfig, *, explain: bool = False, page_size: int | None = None
    ) -> Selection:
        """Choose the output's entries: SQL fetches candidates, Python applies the rules.

        Candidates are read a page at a time until ``limit`` entries are kept or the
        output's ``candidates`` window is used up. With ``explain``, SQL applies no bounds
        but the sources and the order, so every candidate gets a verdict from the rules.
        """
        now = self.clock()
        query = candidate_query(self.config, self.rules, output, now, explain=explain)
        page_size = min(query.window, max(2 * output.limit, 100))
        storage = self.storage
        pages = storage.iter_candidates(query, page_size)
        index = next((i for i, o in enumerate(self.config.outputs) if o.name == output.name), 0)

        def annotated() -> Iterator[CandidatePage]:
            for entries in pages:
                if output.min_comments:
                    entries = [self._with_visible_count(output, entry) for entry in entries]
                hits = None
                if explain and output.search:
                    hits = storage.search_hits(output.search, [entry.id for entry in entries])
                yield CandidatePage(entries, hits)

        try:
            return select_entries(
                annotated(),
                lambda source_name: self.entry_rules(output, source_name),
                now,
                limit=output.limit,
                search=output.search,
                search_rule=f"outputs[{index}].search",
                per_source_limit=output.per_source_limit,
                new_source_limit=output.new_source_limit,
                page_size=page_size,
            )
        finally:
            pages.close()

    def entry_rules(self, output: OutputConfig, source_name: str) -> RuleSet:
        """The entry rules of all three levels for one source's entries in an output."""
        key = (output.name, source_name)
        rules = self._entry_rules.get(key)
        if rules is None:
            rules = self._entry_rules[key] = self.rules.for_output(output.name, source_name)
        return rules

    def _with_visible_count(self, output: OutputConfig, entry: StoredEntry) -> StoredEntry:
        """``min_comments`` counts the comments an output shows: killfiled ones do not count."""
        rules = self.comment_rules(output, entry.source_name)
        if not entry.comment_count or not _has_rules(rules):
            return entry
        return replace(entry, comment_count=len(self.visible_comments(output, entry)))

    def comment_rules(self, output: OutputConfig, source_name: str) -> CommentRules:
        """The killfile and comment rules that apply to one source's comments in an output."""
        cached = self._comment_rules.get((output.name, source_name))
        if cached is not None:
            return cached
        source = self._sources.get(source_name)
        rules = combine_comment_rules(
            compile_comment_rules(list(self.config.defaults.killfile), ()),
            compile_comment_rules(list(source.killfile) if source else [], ()),
            compile_comment_rules(list(output.killfile), list(output.comments_exclude)),
        )
        self._comment_rules[(output.name, source_name)] = rules
        return rules

    def _can_have_comments(self, entry: StoredEntry) -> bool:
        """Whether aggregator has a way to read this entry's thread."""
        if entry.extra.get("comments_feed_url"):
            return True
        source = self._sources.get(entry.source_name)
        return bool(source and (source.comments_url or (source.comments_page and entry.link)))

    def visible_comments(self, output: OutputConfig, entry: StoredEntry) -> list[StoredComment]:
        """An entry's comments as this output shows them: killfiled authors removed."""
        rules = self.comment_rules(output, entry.source_name)
        return [c for c in self.storage.list_comments(entry.id) if keep_comment(rules, c)]

    def merged_thread(
        self, output: OutputConfig, entry: StoredEntry, copies: Sequence[Duplicate]
    ) -> list[StoredComment]:
        """An entry's visible comments merged with those of the copies dedupe folded into it,
        each labelled with its source, counted once (:func:`aggregator.publish.inline.merge_threads`);
        without copies, :meth:`visible_comments`."""
        own = self.visible_comments(output, entry)
        if not copies:
            return own
        threads = [(entry, own)]
        for copy in copies:
            try:
                other = self.storage.get_entry(copy.public_id)
            except NotFoundError:
                continue
            threads.append((other, self.visible_comments(output, other)))
        return merge_threads(entry, threads)

    def copies_in(self, output: OutputConfig, entry: StoredEntry) -> tuple[Duplicate, ...]:
        """The copies dedupe folds into ``entry`` in the output's feed (none on older pages)."""
        for item in self.select(output).entries:
            if item.entry.id == entry.id:
                return tuple(item.duplicates)
        return ()

    def publish(self, outputs: Sequence[OutputConfig] | None = None) -> list[Path]:
        """Render and write outputs (all when ``None``); returns the files that changed.

        One output that cannot be rendered or written does not stop the others: they are all
        tried, then a :class:`PublishError` names every output that failed.
        """
        changed: list[Path] = []
        failures: list[str] = []
        self.times = StageTimes()
        if not self._swept:
            # Once per publisher (the daemon's start, each `aggregator publish`): a walk of
            # every entry's folder costs too much for each publish.
            self._swept = True
            self.remove_leftovers()
        for output in outputs if outputs is not None else self.config.outputs:
            try:
                with self.times.stage("other"):
                    changed.extend(self._publish_output(output))
            except PublishError as error:
                failures.append(f"{output.name}: {error}")
            except (ValueError, TypeError) as error:  # lxml refusing a stored value
                failures.append(f"{output.name}: cannot render: {error}")
        if failures:
            raise PublishError("; ".join(failures))
        return changed

    def remove_leftovers(self) -> list[Path]:
        """Remove the temporary files that a publish killed mid-write (``kill -9``) left in
        ``public_dir/feeds`` (``.all.json.k3x_9a0q``); those another running publish is
        writing are kept (see :mod:`aggregator.publish.files`). Returns what was removed."""
        suffixes = tuple(f".{extension}" for extension in EXTENSIONS.values())
        removed = remove_leftovers(self.config.public_dir / "feeds", suffixes)
        private = self.config.public_dir / "private" / "feeds"
        if private.is_dir():
            removed += remove_leftovers(private, suffixes)
        if removed:
            log.info(
                "removed %d temporary file(s) left by an interrupted publish in %s",
                len(removed),
                self.config.public_dir / "feeds",
            )
        return removed

    def _publish_output(self, output: OutputConfig) -> list[Path]:
        if output.items == "comments":
            with self.times.stage("comment items"):
                return self._publish_comment_items(output)
        with self.times.stage("feed: select"):
            selection = self.select(output)
        entries = selection.kept
        with self.times.stage("pages: select"):
            older = self.older_pages(output, entries)
        links = self.links(output)
        folder = feeds_folder(self.config, output)
        if output.access is not None:
            remove_public_copies(self.config.public_dir / "feeds", output.name)
        followed = {s.name for s in self.config.sources_for(output) if self.config.comments_for(s)}
        changed: list[Path] = []
        duplicates = {item.entry.id: item.duplicates for item in selection.entries}
        copies = {key: value for key, value in duplicates.items() if value}
        threads = self._publish_threads(
            output, entries, links, folder, followed, changed, "feed: threads", copies
        )
        items = [
            shape_entry(item, content=output.content, via=output.via, images=output.images)
            for item in selection.entries
        ]
        with self.times.stage("feed: inline threads"):
            items = self.with_threads(output, items, threads, links, copies)
        page = Page(1, 1 + len(older))
        # Everything the rendered bytes depend on: unchanged, the files are not even rendered.
        signature = (
            links.base_url,
            links.hub,
            output.model_dump_json(),
            page,
            tuple(items),
            tuple(sorted(threads.items())),
            tuple(sorted((k, v) for k, v in duplicates.items() if v)),
        )
        for fmt in output.formats:
            path = folder / f"{output.name}.{EXTENSIONS[fmt]}"
            with self.times.stage(f"feed: {fmt}"):
                self._write_if_changed(
                    path,
                    signature,
                    partial(
                        render_output,
                        output,
                        items,
                        links,
                        fmt,
                        threads,
                        page,
                        duplicates,
                        fragments=self._fragments,
                    ),
                    changed,
                )
        changed.extend(self._publish_pages(output, older, links, folder, followed))
        if followed:
            with self.times.stage("latest comments"):
                known = [*entries, *(entry for page in older for entry in page)]
                changed.extend(self._publish_latest_comments(output, known, links, folder))
        if output.comment_changes:
            from aggregator.publish.changefeed import publish_changes

            with self.times.stage("comment changes"):
                changed.extend(publish_changes(self, output, links, folder, self._write_if_changed))
        return changed

    def comment_items(self, output: OutputConfig) -> list[tuple[StoredComment, StoredEntry]]:
        """The comments an output of ``items: comments`` shows, newest first, with their
        entries: ``limit × pages`` at most, after the output's rules (killfiles and
        ``comments_exclude``; ``include``/``exclude`` and dates read the comment as an entry,
        see :mod:`aggregator.publish.commentitems`), ``comment_authors`` and ``replies_to``."""
        names = [source.name for source in self.config.sources_for(output)]
        wanted = output.limit * output.pages
        now = self.clock()
        entries: dict[str, StoredEntry] = {}
        kept: list[tuple[StoredComment, StoredEntry]] = []
        rows = self.storage.iter_comment_items(
            names,
            authors=output.comment_authors,
            replies_to=output.replies_to,
            window=output.candidates,
        )
        for comment, parent in rows:
            entry = entries.get(comment.entry_public_id)
            if entry is None:
                entry = entries[comment.entry_public_id] = self.storage.get_entry(
                    comment.entry_public_id
                )
            if not keep_comment(self.comment_rules(output, entry.source_name), comment):
                continue
            rules = replace(self.entry_rules(output, entry.source_name), min_comments=None)
            if not evaluate(rules, as_entry(comment, entry), now).kept:
                continue
            view = ParentView(**parent) if comment.parent_public_id else None
            kept.append((as_item(comment, view), entry))
            if parent.get("link") and comment.parent_public_id:
                self._parent_links[comment.parent_public_id] = parent["link"]
            if len(kept) >= wanted:
                break
        return kept

    def _publish_comment_items(self, output: OutputConfig) -> list[Path]:
        """Write an output whose items are comments: the feed and its pages 2..N."""
        self._parent_links = {}
        items = shown_comments_with(output, self.comment_items(output))
        links = self.links(output)
        folder = self.config.public_dir / "feeds"
        size = output.limit
        chunks = [items[i : i + size] for i in range(0, len(items), size)] or [[]]
        count = len(chunks)
        changed: list[Path] = []
        feed_id = uuid.uuid5(uuid.NAMESPACE_URL, f"aggregator:output:{output.name}").urn
        configured = output.model_dump_json()
        for number, chunk in enumerate(chunks, start=1):
            comments = [comment for comment, _ in chunk]
            entries = {entry.id: entry for _, entry in chunk}
            parents = {
                c.parent_public_id: self._parent_links[c.parent_public_id]
                for c in comments
                if c.parent_public_id in self._parent_links
            }
            page = Page(number, count)
            signature = (
                links,
                configured,
                page,
                tuple(comments),
                tuple(sorted((e.id, e.title, e.link) for e in entries.values())),
                tuple(sorted(parents.items())),
            )
            for fmt in output.formats:
                path = (
                    folder / f"{output.name}.{EXTENSIONS[fmt]}"
                    if number == 1
                    else folder / output.name / "page" / f"{number}.{EXTENSIONS[fmt]}"
                )
                self._write_if_changed(
                    path,
                    signature,
                    partial(
                        render_comments,
                        output.display_title,
                        feed_id,
                        comments,
                        entries,
                        links.feed_page(fmt, page.number),
                        links.web_page(),
                        fmt,
                        hub=links.hub,
                        fragments=self._fragments,
                        title_of=item_title,
                        page=page,
                        page_links=links,
                        parent_links=parents,
                    ),
                    changed,
                )
        page_folder = folder / output.name / "page"
        for path in page_folder.glob("*.*") if page_folder.is_dir() else ():
            if path.stem.isdigit() and int(path.stem) > count:
                path.unlink(missing_ok=True)
        return changed

    def _write_if_changed(
        self,
        path: Path,
        signature: tuple[object, ...],
        render: Callable[[], bytes],
        changed: list[Path],
    ) -> None:
        """Render and write ``path`` unless its last rendering had the same ``signature``
        (everything the bytes depend on) and the file is still there."""
        if self._signatures.get(path) == signature and path.exists():
            return
        if write_atomic(path, render()):
            changed.append(path)
        self._signatures[path] = signature

    def with_threads(
        self,
        output: OutputConfig,
        entries: Sequence[StoredEntry],
        threads: Mapping[int, CommentView],
        links: FeedLinks,
        copies: Mapping[int, Sequence[Duplicate]] | None = None,
    ) -> list[StoredEntry]:
        """``entries`` as an output with ``inline_comments`` or ``comment_updates: bump``
        publishes them (issue 15): each followed thread at the end of its entry's content
        (:mod:`aggregator.publish.inline`), ``updated`` moved to the newest comment under ``bump``.

        The section is part of the entry's content, so the signatures and the fragment cache
        see a changed thread as a changed entry: its bytes are rendered again.
        """
        bump = output.comment_updates == "bump"
        if not output.inline_comments:
            if not bump:
                return list(entries)
            return [
                with_bump(entry, threads[entry.id].last_at) if entry.id in threads else entry
                for entry in entries
            ]
        ids = [entry.id for entry in entries if threads.get(entry.id, CommentView(0, None)).count]
        read = self.storage.list_comments_of(ids) if ids else {}
        result = []
        for entry in entries:
            view = threads.get(entry.id)
            if view is None:
                result.append(entry)
                continue
            if copies and copies.get(entry.id):
                comments = self.merged_thread(output, entry, copies[entry.id])
            else:
                rules = self.comment_rules(output, entry.source_name)
                comments = [c for c in read.get(entry.id, ()) if keep_comment(rules, c)]
            comments = shown_comments(output, comments)
            feeds = [
                (f"Comment feed ({fmt.upper()})", links.comments(entry.public_id, fmt))
                for fmt in output.formats
            ]
            section = thread_section(
                comments, output.inline_comments, links.web_entry(entry.public_id), feeds
            )
            result.append(with_thread(entry, section, view.last_at, bump))
        return result

    def _publish_threads(
        self,
        output: OutputConfig,
        entries: Sequence[StoredEntry],
        links: FeedLinks,
        folder: Path,
        followed: set[str],
        changed: list[Path],
        stage: str,
        copies: Mapping[int, Sequence[Duplicate]] | None = None,
    ) -> dict[int, CommentView]:
        """Write the comment feeds of ``entries``; return each entry's visible thread.

        Where no killfile or comment rule applies, every comment is shown: the count, the
        newest time and whether a feed changed come from one summary query
        (:meth:`Storage.list_thread_summaries`), and only the threads whose feeds must be
        rendered are read in full. Where rules apply, each thread is read and filtered.
        ``copies`` names the copies dedupe folded into an entry: its thread merges theirs.
        """
        copies = copies or {}
        threads: dict[int, CommentView] = {}
        pending: list[tuple[StoredEntry, tuple[object, ...], list[StoredComment] | None]] = []
        with self.times.stage(stage):
            shown = [
                entry
                for entry in entries
                if entry.comment_count
                or entry.id in copies
                or (entry.source_name in followed and self._can_have_comments(entry))
            ]
            plain = {
                entry.id
                for entry in shown
                if entry.comment_count
                and entry.id not in copies
                and not _has_rules(self.comment_rules(output, entry.source_name))
            }
            summaries = self.storage.list_thread_summaries(plain) if plain else {}
            for entry in shown:
                comments: list[StoredComment] | None
                if entry.id in plain:
                    summary = summaries.get(entry.id)
                    comments = None if summary else []
                    threads[entry.id] = (
                        CommentView(summary.count, summary.last_at)
                        if summary
                        else CommentView(0, None)
                    )
                    shown_fields: object = ("all", summary.fingerprint if summary else ())
                else:
                    if entry.id in copies:
                        comments = self.merged_thread(output, entry, copies[entry.id])
                    elif entry.comment_count:
                        comments = self.visible_comments(output, entry)
                    else:
                        comments = []
                    last_at = max((comment_updated(c) for c in comments), default=None)
                    threads[entry.id] = CommentView(len(comments), last_at)
                    shown_fields = (
                        "visible",
                        tuple(
                            (c.public_id, c.content, c.author, c.author_url, c.link)
                            + (c.published_at, c.first_seen_at, c.number)
                            + (c.parent_public_id, c.gone_at)
                            for c in comments
                        ),
                    )
                signature: tuple[object, ...] = (
                    links.base_url,
                    links.hub,
                    entry.title,
                    entry.link,
                    output.images,
                    shown_fields,
                )
                paths = self._thread_paths(output, entry, folder)
                # One signature object is kept for all the formats: compare it once.
                kept = [self._signatures.get(path) for path in paths]
                if (
                    not kept
                    or any(other is not kept[0] for other in kept)
                    or kept[0] != signature
                    or not all(path.exists() for path in paths)
                ):
                    pending.append((entry, signature, comments))
            unread = [entry.id for entry, _, comments in pending if comments is None]
            read = self.storage.list_comments_of(unread) if unread else {}
        with self.times.stage("comment feeds"):
            for entry, signature, comments in pending:
                if comments is None:
                    comments = read.get(entry.id, [])
                self._publish_thread(output, entry, comments, links, folder, signature, changed)
        return threads

    def _thread_paths(self, output: OutputConfig, entry: StoredEntry, folder: Path) -> list[Path]:
        """The comment feeds of one entry in an output, one per format (remembered: a publish
        asks for a thousand of them)."""
        key = (folder, output.name, tuple(output.formats), entry.public_id)
        paths = self._paths.get(key)
        if paths is None:
            if len(self._paths) >= 50_000:  # entries long gone from every output
                self._paths.clear()
            paths = self._paths[key] = [
                folder / output.name / entry.public_id / f"comments.{EXTENSIONS[fmt]}"
                for fmt in output.formats
            ]
        return paths

    def older_pages(
        self, output: OutputConfig, first: Sequence[StoredEntry]
    ) -> list[list[StoredEntry]]:
        """Pages 2 to ``output.pages`` of an output (RFC 5005 paging), ``limit`` entries each.

        They hold the entries that come after ``first`` (the feed itself) in the same selection
        and order, so a reader following ``rel="next"`` reads on where the feed stops. A feed
        shorter than ``limit`` has no older pages.
        """
        if output.pages <= 1 or len(first) < output.limit:
            return []
        deeper = output.model_copy(update={"limit": output.limit * output.pages})
        shown = {entry.id for entry in first}
        deep = self.select(deeper, page_size=output.limit).kept
        rest = [entry for entry in deep if entry.id not in shown]
        size = output.limit
        return [rest[i : i + size] for i in range(0, len(rest), size)][: output.pages - 1]

    def _publish_pages(
        self,
        output: OutputConfig,
        older: list[list[StoredEntry]],
        links: FeedLinks,
        folder: Path,
        followed: set[str],
    ) -> list[Path]:
        """Write pages 2..N (and their entries' comment feeds); remove pages no longer needed."""
        changed: list[Path] = []
        count = 1 + len(older)
        page_folder = folder / output.name / "page"
        configured = output.model_dump_json()
        for number, entries in enumerate(older, start=2):
            threads = self._publish_threads(
                output, entries, links, folder, followed, changed, "pages: threads"
            )
            shaped = [
                shape_entry(
                    DedupedEntry(entry),
                    content=output.content,
                    via=output.via,
                    images=output.images,
                )
                for entry in entries
            ]
            with self.times.stage("pages: inline threads"):
                shaped = self.with_threads(output, shaped, threads, links)
            page = Page(number, count)
            # As for the feed itself: everything a page's bytes depend on.
            signature = (
                links.base_url,
                links.hub,
                configured,
                page,
                tuple(shaped),
                tuple(sorted(threads.items())),
            )
            for fmt in output.formats:
                with self.times.stage("pages: render"):
                    self._write_if_changed(
                        page_folder / f"{number}.{EXTENSIONS[fmt]}",
                        signature,
                        partial(
                            render_output,
                            output,
                            shaped,
                            links,
                            fmt,
                            threads,
                            page,
                            fragments=self._fragments,
                        ),
                        changed,
                    )
        extensions = {EXTENSIONS[fmt] for fmt in output.formats}
        for path in page_folder.glob("*.*") if page_folder.is_dir() else ():
            stale = not path.stem.isdigit() or int(path.stem) > count
            if path.suffix.lstrip(".") in EXTENSIONS.values() and (
                stale or path.suffix.lstrip(".") not in extensions
            ):
                path.unlink(missing_ok=True)
        return changed

    def _passes_rules(self, output: OutputConfig, entries: Sequence[StoredEntry]) -> set[int]:
        """The ids of ``entries`` that the output's rules and search keep (limit aside)."""
        now = self.clock()
        unique = {entry.id: entry for entry in entries}
        hits = self.storage.search_hits(output.search, list(unique)) if output.search else None
        return {
            entry.id
            for entry in unique.values()
            if (hits is None or entry.id in hits)
            and evaluate(self.entry_rules(output, entry.source_name), entry, now).kept
        }

    def _publish_thread(
        self,
        output: OutputConfig,
        entry: StoredEntry,
        comments: list[StoredComment],
        links: FeedLinks,
        folder: Path,
        signature: tuple[object, ...],
        changed: list[Path],
    ) -> None:
        feed_id = uuid.uuid5(
            uuid.NAMESPACE_URL, f"aggregator:comments:{output.name}:{entry.public_id}"
        ).urn
        comments = shown_comments(output, comments)
        for fmt, path in zip(
            output.formats, self._thread_paths(output, entry, folder), strict=True
        ):
            self._write_if_changed(
                path,
                signature,
                partial(
                    render_comments,
                    f"Comments on {entry.title or 'a post'}",
                    feed_id,
                    comments,
                    {entry.id: entry},
                    links.comments(entry.public_id, fmt),
                    entry.link or links.page(),
                    fmt,
                    hub=links.hub,
                    fragments=self._fragments,
                ),
                changed,
            )

    def _publish_latest_comments(
        self, output: OutputConfig, entries: list[StoredEntry], links: FeedLinks, folder: Path
    ) -> list[Path]:
        names = [source.name for source in self.config.sources_for(output)]
        by_id = {entry.id: entry for entry in entries}

        def shown(comment: StoredComment) -> bool:
            if comment.entry_id not in by_id:
                by_id[comment.entry_id] = self.storage.get_entry(comment.entry_public_id)
            rules = self.comment_rules(output, by_id[comment.entry_id].source_name)
            return keep_comment(rules, comment)

        # Read further back while killfiles and rules hide too many of the newest comments.
        limit = self.LATEST_COMMENTS * 2
        while True:
            recent = self.storage.list_recent_comments(names, limit)
            candidates = [c for c in recent if shown(c)]
            kept = self._passes_rules(output, [by_id[c.entry_id] for c in candidates])
            visible = [c for c in candidates if c.entry_id in kept][: self.LATEST_COMMENTS]
            if (
                len(visible) == self.LATEST_COMMENTS
                or len(recent) < limit
                or limit >= self.LATEST_SCAN_MAX
            ):
                break
            limit *= 4
        visible = shown_comments(output, visible)
        changed: list[Path] = []
        title = f"{output.display_title}: latest comments"
        feed_id = uuid.uuid5(uuid.NAMESPACE_URL, f"aggregator:latest-comments:{output.name}").urn
        # What the bytes depend on: the comments and, of their entries, what a comment shows.
        signature = (
            links,
            title,
            tuple(visible),
            tuple((by_id[c.entry_id].title, by_id[c.entry_id].link) for c in visible),
        )
        for fmt in output.formats:
            self._write_if_changed(
                folder / output.name / f"comments.{EXTENSIONS[fmt]}",
                signature,
                partial(
                    render_comments,
                    title,
                    feed_id,
                    visible,
                    by_id,
                    links.latest_comments(fmt),
                    links.page(),
                    fmt,
                    hub=links.hub,
                    fragments=self._fragments,
                ),
                changed,
            )
        return changed
