"""Render an output's entry documents: Atom 1.0, RSS 2.0 (feedgen) and JSON Feed 1.1.

Rendering is a function of the entries it is given only: the same entries give the same bytes,
so ETags stay stable and readers never see a duplicate. Entry ids come from storage (stable
across restarts and re-publishing) and an entry's ``updated`` time is its own, never its
comments'. Owns :func:`render_output`, how an entry's thread is announced (:func:`thread_links`)
and the feed-level metadata every document carries (:func:`new_generator`), which the comment
documents (:mod:`aggregator.publish.render_comments`) and the comment-changes feeds
(:mod:`aggregator.publish.changefeed`) share. Does not choose entries
(:class:`aggregator.select.chooser.OutputChooser`) nor write files
(:mod:`aggregator.publish.publisher`). Pure: no IO.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from feedgen.feed import FeedGenerator

from aggregator import __version__
from aggregator.config.outputs import OutputConfig
from aggregator.errors import PublishError
from aggregator.models import StoredEntry
from aggregator.publish.feedext import (
    register_atom_links,
    register_comment_extensions,
    register_podcast,
    register_rss_atom_links,
)
from aggregator.publish.fragments import FragmentCache, Piece
from aggregator.publish.links import EXTENSIONS, MEDIA_TYPES, FeedLinks, Page, urn
from aggregator.select.dedupe import Duplicate

# feedgen's order: name, version, uri. No uri: the project has no public home to name (issue 18).
GENERATOR = ("aggregator", __version__)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


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
    return max((entry_updated(e) for e in entries), default=EPOCH)


# What a rendered entry depends on (see aggregator.publish.fragments.Piece).
_EntryPiece = Piece[tuple[StoredEntry, CommentView | None, FeedLinks, tuple[Duplicate, ...]]]


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
            return json_bytes({**document, "items": [item(piece) for piece in pieces]})
        return fragments.json(document, pieces, item)
    head = _feed_head(output, links, fmt, page, feed_updated(entries))

    def render(some: Sequence[_EntryPiece]) -> bytes:
        generator = head()
        # feedgen prepends entries; add oldest first so the document lists newest first.
        for piece in reversed(some):
            entry = piece.depends[0]
            _add_entry(generator, entry, links, fmt, threads.get(entry.id))
        return serialize(generator, fmt)

    return render(pieces) if fragments is None else fragments.xml(fmt, pieces, render)


def serialize(generator: FeedGenerator, fmt: str) -> bytes:
    return generator.atom_str(pretty=True) if fmt == "atom" else generator.rss_str(pretty=True)


def new_generator(
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
    return lambda: new_generator(
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
    # Threads about the entry on other sites (issue 16), counts in the title: a link
    # rel="related" in Atom, an atom:link rel="related" in RSS.
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
    :mod:`aggregator.discussions`): site, label, url, score, what the site calls the score,
    comments, likes and reposts when counted (webmention, Mastodon), and a line of text."""
    from aggregator.discussions.registry import count_text_of, label_of, score_label_of

    sites: list[dict[str, object]] = []
    for row in entry.extra.get("discussions") or ():  # type: ignore[attr-defined]
        site, url, score, comments = row[:4]
        likes, reposts = (row[4], row[5]) if len(row) >= 6 else (None, None)
        if not url:
            continue
        label = label_of(site)
        counts = count_text_of(site, score, comments, likes, reposts)
        sites.append(
            {
                "site": site,
                "label": label,
                "url": url,
                "score": score,
                "comments": comments,
                "score_label": score_label_of(site),
                **({"likes": likes} if likes is not None else {}),
                **({"reposts": reposts} if reposts is not None else {}),
                "text": f"{label}: {counts}" if counts else label,
            }
        )
    return sites


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


def json_bytes(document: dict[str, object]) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")
