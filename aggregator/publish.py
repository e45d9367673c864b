"""Render outputs as Atom 1.0, RSS 2.0 (feedgen) and JSON Feed 1.1, and write them atomically.

Rendering is a function of stored entries only: the same entries give the same bytes, so ETags
stay stable and readers never see a duplicate. Entry ids come from storage (stable across
restarts and re-publishing) and an entry's ``updated`` time is its own, never its comments'.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from feedgen.feed import FeedGenerator

from aggregator import PROJECT_URL, __version__
from aggregator.config import AppConfig, OutputConfig
from aggregator.errors import PublishError
from aggregator.feedext import register_atom_links, register_comment_extensions
from aggregator.filters import (
    CommentRules,
    combine_comment_rules,
    compile_comment_rules,
    keep_comment,
)
from aggregator.models import StoredComment, StoredEntry
from aggregator.storage import Storage

EXTENSIONS = {"atom": "atom", "rss": "rss", "json": "json"}
MEDIA_TYPES = {
    "atom": "application/atom+xml",
    "rss": "application/rss+xml",
    "json": "application/feed+json",
}
GENERATOR = ("aggregator", PROJECT_URL, __version__)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedLinks:
    """The public URLs of one output, built from the server's base URL."""

    base_url: str
    output: str

    def feed(self, fmt: str) -> str:
        return f"{self.base_url}/feeds/{self.output}.{EXTENSIONS[fmt]}"

    def page(self) -> str:
        return f"{self.base_url}/"

    def comments(self, entry_public_id: str, fmt: str) -> str:
        return f"{self.base_url}/feeds/{self.output}/{entry_public_id}/comments.{EXTENSIONS[fmt]}"

    def latest_comments(self, fmt: str) -> str:
        return f"{self.base_url}/feeds/{self.output}/comments.{EXTENSIONS[fmt]}"


@dataclass(frozen=True)
class CommentView:
    """How an entry's thread is shown in an output: the visible count and the latest time."""

    count: int
    last_at: datetime | None


def urn(public_id: str) -> str:
    """An entry's public id as a URI (``urn:uuid:...``), valid as Atom id and RSS guid."""
    return uuid.UUID(hex=public_id).urn


def entry_updated(entry: StoredEntry) -> datetime:
    """The time an entry last changed at its source; comment activity never moves it."""
    return entry.updated_at or entry.published_at or entry.first_seen_at


def feed_updated(entries: Sequence[StoredEntry]) -> datetime:
    return max((entry_updated(e) for e in entries), default=_EPOCH)


def render_output(
    output: OutputConfig,
    entries: Sequence[StoredEntry],
    links: FeedLinks,
    fmt: str,
    threads: dict[int, CommentView] | None = None,
) -> bytes:
    """Render one output in one format ("atom", "rss" or "json").

    ``threads`` maps entry ids to their visible comment count; an entry not in it shows none.
    """
    threads = threads or {}
    if fmt == "json":
        return _render_json(output, entries, links, threads)
    generator = _feed_generator(output, entries, links, fmt, threads)
    if fmt == "atom":
        return generator.atom_str(pretty=True)
    if fmt == "rss":
        return generator.rss_str(pretty=True)
    raise PublishError(f"unknown format {fmt!r}")


def _new_generator(
    feed_id: str,
    title: str,
    description: str,
    self_url: str,
    fmt: str,
    updated: datetime,
    home: str,
) -> FeedGenerator:
    generator = FeedGenerator()
    if fmt == "rss":
        generator.load_extension("dc", atom=False, rss=True)
    else:
        register_atom_links(generator)
    register_comment_extensions(generator)
    generator.id(feed_id)
    generator.title(title)
    generator.subtitle(description)
    generator.description(description)
    generator.link(href=home, rel="alternate")
    generator.link(href=self_url, rel="self", type=MEDIA_TYPES[fmt])
    generator.author({"name": title})
    generator.generator(*GENERATOR)
    generator.language("en")
    generator.updated(updated)
    generator.lastBuildDate(updated)
    return generator


def _feed_generator(
    output: OutputConfig,
    entries: Sequence[StoredEntry],
    links: FeedLinks,
    fmt: str,
    threads: dict[int, CommentView],
) -> FeedGenerator:
    description = output.description or f"{output.display_title}, merged by aggregator"
    generator = _new_generator(
        uuid.uuid5(uuid.NAMESPACE_URL, f"aggregator:output:{output.name}").urn,
        output.display_title,
        description,
        links.feed(fmt),
        fmt,
        feed_updated(entries),
        links.page(),
    )
    # feedgen prepends entries; add oldest first so the document lists newest first.
    for entry in reversed(entries):
        _add_entry(generator, entry, links, fmt, threads.get(entry.id))
    return generator


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
    if entry.author:
        if fmt == "rss":
            # RSS <author> must be an e-mail address; a name belongs in dc:creator.
            item.dc.dc_creator(entry.author)
        else:
            item.author({"name": entry.author})
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
    for enclosure in entry.enclosures:
        kind = enclosure.type or "application/octet-stream"
        if fmt == "rss":
            item.enclosure(enclosure.url, str(enclosure.length or 0), kind)
        else:
            item.atomlinks.add(enclosure.url, "enclosure", kind, enclosure.length)
    if thread is not None:
        # RFC 4685 in Atom, slash/wfw in RSS: the count and where to read the thread.
        if fmt == "atom":
            item.thread.replies(
                href=links.comments(entry.public_id, "atom"),
                type=MEDIA_TYPES["atom"],
                count=thread.count,
                updated=thread.last_at,
            )
            item.thread.total(thread.count)
        else:
            item.slash.comments(thread.count)
            item.wfw.comment_rss(links.comments(entry.public_id, "rss"))
            item.comments(entry.link or links.comments(entry.public_id, "rss"))
    source_title = entry.source_title or entry.source_name
    # A local demo file's URL means nothing to a subscriber: name the site instead.
    source_url = entry.source_url if not entry.source_url.startswith("file:") else entry.source_link
    if source_url:
        item.source(url=source_url, title=source_title)


def _render_json(
    output: OutputConfig,
    entries: Sequence[StoredEntry],
    links: FeedLinks,
    threads: dict[int, CommentView],
) -> bytes:
    items = []
    for entry in entries:
        thread = threads.get(entry.id)
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
                "comment_count": thread.count if thread else 0,
                **(
                    {"comments_feed_url": links.comments(entry.public_id, "json")} if thread else {}
                ),
            },
        }
        if entry.link:
            item["url"] = entry.link
        if entry.summary and entry.content:
            item["summary"] = entry.summary
        if entry.author:
            item["authors"] = [{"name": entry.author}]
        if entry.categories:
            item["tags"] = list(entry.categories)
        if entry.enclosures:
            item["attachments"] = [
                {
                    "url": e.url,
                    "mime_type": e.type or "application/octet-stream",
                    **({"size_in_bytes": e.length} if e.length else {}),
                }
                for e in entry.enclosures
            ]
        items.append(item)
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": output.display_title,
        "home_page_url": links.page(),
        "feed_url": links.feed("json"),
        "description": output.description or f"{output.display_title}, merged by aggregator",
        "authors": [{"name": output.display_title}],
        "language": "en",
        "items": items,
    }
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")


def write_atomic(path: Path, content: bytes) -> bool:
    """Write ``content`` to ``path`` via a temp file and rename; skip when already identical.

    Returns True when the file changed. A reader never sees a half-written file.
    """
    try:
        if path.exists() and path.read_bytes() == content:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp, 0o644)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as error:
        raise PublishError(f"cannot write {path}: {error.strerror or error}") from error
    return True


def _json_bytes(document: dict[str, object]) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")


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
) -> bytes:
    """Render a comment feed: one entry's thread, or an output's latest comments.

    Each comment names what it replies to (``thr:in-reply-to``): its parent comment where the
    source threads replies, else the post.
    """
    updated = max((comment_updated(c) for c in comments), default=_EPOCH)
    if fmt == "json":
        return _json_bytes(
            {
                "version": "https://jsonfeed.org/version/1.1",
                "title": title,
                "home_page_url": home,
                "feed_url": self_url,
                "authors": [{"name": title}],
                "items": [_json_comment(c, entries[c.entry_id]) for c in comments],
            }
        )
    generator = _new_generator(feed_id, title, title, self_url, fmt, updated, home)
    for comment in reversed(comments):
        entry = entries[comment.entry_id]
        item = generator.add_entry()
        item.id(urn(comment.public_id))
        item.guid(urn(comment.public_id), permalink=False)
        item.title(comment_title(comment, entry.title))
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
            item.thread.in_reply_to(
                urn(comment.parent_public_id), href=entry.link, type="text/html"
            )
        else:
            item.thread.in_reply_to(urn(entry.public_id), href=entry.link, type="text/html")
    return generator.atom_str(pretty=True) if fmt == "atom" else generator.rss_str(pretty=True)


def _json_comment(comment: StoredComment, entry: StoredEntry) -> dict[str, object]:
    item: dict[str, object] = {
        "id": urn(comment.public_id),
        "title": comment_title(comment, entry.title),
        "content_html": comment.content or "",
        "date_published": comment_updated(comment).isoformat(),
        "_aggregator": {
            "in_reply_to": urn(comment.parent_public_id or entry.public_id),
            "entry_url": entry.link,
            "number": comment.number,
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
    """Renders the configured outputs, their comment feeds and latest-comments feeds.

    Keeps the signature of every comment feed it wrote, so a republish renders again only the
    threads that changed. Reuse one Publisher in a long-running process.
    """

    LATEST_COMMENTS = 50

    def __init__(self, config: AppConfig, storage: Storage):
        self.config = config
        self.storage = storage
        self._signatures: dict[Path, tuple[object, ...]] = {}

    def links(self, output: OutputConfig) -> FeedLinks:
        return FeedLinks(self.config.server.public_url, output.name)

    def entries_for(self, output: OutputConfig) -> list[StoredEntry]:
        """The entries an output shows now, newest first."""
        names = [source.name for source in self.config.sources_for(output)]
        return self.storage.list_entries(names, output.limit)

    def comment_rules(self, output: OutputConfig, source_name: str) -> CommentRules:
        """The killfile and comment rules that apply to one source's comments in an output."""
        source = self.config.source(source_name) if source_name in self._source_names() else None
        return combine_comment_rules(
            compile_comment_rules(list(self.config.defaults.killfile), ()),
            compile_comment_rules(list(source.killfile) if source else [], ()),
            compile_comment_rules(list(output.killfile), list(output.comments_exclude)),
        )

    def _can_have_comments(self, entry: StoredEntry) -> bool:
        """Whether aggregator has a way to read this entry's thread."""
        if entry.extra.get("comments_feed_url"):
            return True
        source = (
            self.config.source(entry.source_name)
            if entry.source_name in self._source_names()
            else None
        )
        return bool(source and (source.comments_url or (source.comments_page and entry.link)))

    def _source_names(self) -> set[str]:
        return {source.name for source in self.config.sources}

    def visible_comments(self, output: OutputConfig, entry: StoredEntry) -> list[StoredComment]:
        """An entry's comments as this output shows them: killfiled authors removed."""
        rules = self.comment_rules(output, entry.source_name)
        return [c for c in self.storage.list_comments(entry.id) if keep_comment(rules, c)]

    def publish(self, outputs: Sequence[OutputConfig] | None = None) -> list[Path]:
        """Render and write outputs (all when ``None``); returns the files that changed.

        One output that cannot be rendered or written does not stop the others: they are all
        tried, then a :class:`PublishError` names every output that failed.
        """
        changed: list[Path] = []
        failures: list[str] = []
        for output in outputs if outputs is not None else self.config.outputs:
            try:
                changed.extend(self._publish_output(output))
            except PublishError as error:
                failures.append(f"{output.name}: {error}")
            except (ValueError, TypeError) as error:  # lxml refusing a stored value
                failures.append(f"{output.name}: cannot render: {error}")
        if failures:
            raise PublishError("; ".join(failures))
        return changed

    def _publish_output(self, output: OutputConfig) -> list[Path]:
        entries = self.entries_for(output)
        links = self.links(output)
        folder = self.config.public_dir / "feeds"
        changed: list[Path] = []
        followed = {s.name for s in self.config.sources_for(output) if self.config.comments_for(s)}
        threads: dict[int, CommentView] = {}
        for entry in entries:
            if not entry.comment_count and not (
                entry.source_name in followed and self._can_have_comments(entry)
            ):
                continue
            comments = self.visible_comments(output, entry) if entry.comment_count else []
            last_at = max((comment_updated(c) for c in comments), default=None)
            threads[entry.id] = CommentView(len(comments), last_at)
            changed.extend(self._publish_thread(output, entry, comments, links, folder))
        for fmt in output.formats:
            path = folder / f"{output.name}.{EXTENSIONS[fmt]}"
            if write_atomic(path, render_output(output, entries, links, fmt, threads)):
                changed.append(path)
        if followed:
            changed.extend(self._publish_latest_comments(output, entries, links, folder))
        return changed

    def _publish_thread(
        self,
        output: OutputConfig,
        entry: StoredEntry,
        comments: list[StoredComment],
        links: FeedLinks,
        folder: Path,
    ) -> list[Path]:
        changed = []
        signature = (
            entry.title,
            entry.link,
            tuple((c.public_id, c.content, c.author) for c in comments),
        )
        for fmt in output.formats:
            path = folder / output.name / entry.public_id / f"comments.{EXTENSIONS[fmt]}"
            if self._signatures.get(path) == signature and path.exists():
                continue
            content = render_comments(
                f"Comments on {entry.title or 'a post'}",
                uuid.uuid5(
                    uuid.NAMESPACE_URL, f"aggregator:comments:{output.name}:{entry.public_id}"
                ).urn,
                comments,
                {entry.id: entry},
                links.comments(entry.public_id, fmt),
                entry.link or links.page(),
                fmt,
            )
            if write_atomic(path, content):
                changed.append(path)
            self._signatures[path] = signature
        return changed

    def _publish_latest_comments(
        self, output: OutputConfig, entries: list[StoredEntry], links: FeedLinks, folder: Path
    ) -> list[Path]:
        names = [source.name for source in self.config.sources_for(output)]
        recent = self.storage.list_recent_comments(names, self.LATEST_COMMENTS * 2)
        by_id = {entry.id: entry for entry in entries}
        for comment in recent:
            if comment.entry_id not in by_id:
                by_id[comment.entry_id] = self.storage.get_entry(comment.entry_public_id)
        visible = [
            c
            for c in recent
            if keep_comment(self.comment_rules(output, by_id[c.entry_id].source_name), c)
        ][: self.LATEST_COMMENTS]
        changed = []
        for fmt in output.formats:
            path = folder / output.name / f"comments.{EXTENSIONS[fmt]}"
            content = render_comments(
                f"{output.display_title}: latest comments",
                uuid.uuid5(uuid.NAMESPACE_URL, f"aggregator:latest-comments:{output.name}").urn,
                visible,
                by_id,
                links.latest_comments(fmt),
                links.page(),
                fmt,
            )
            if write_atomic(path, content):
                changed.append(path)
        return changed
