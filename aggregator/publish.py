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
from aggregator.models import StoredEntry
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


def urn(public_id: str) -> str:
    """An entry's public id as a URI (``urn:uuid:...``), valid as Atom id and RSS guid."""
    return uuid.UUID(hex=public_id).urn


def entry_updated(entry: StoredEntry) -> datetime:
    """The time an entry last changed at its source; comment activity never moves it."""
    return entry.updated_at or entry.published_at or entry.first_seen_at


def feed_updated(entries: Sequence[StoredEntry]) -> datetime:
    return max((entry_updated(e) for e in entries), default=_EPOCH)


def render_output(
    output: OutputConfig, entries: Sequence[StoredEntry], links: FeedLinks, fmt: str
) -> bytes:
    """Render one output in one format ("atom", "rss" or "json")."""
    if fmt == "json":
        return _render_json(output, entries, links)
    generator = _feed_generator(output, entries, links, fmt)
    if fmt == "atom":
        return generator.atom_str(pretty=True)
    if fmt == "rss":
        return generator.rss_str(pretty=True)
    raise PublishError(f"unknown format {fmt!r}")


def _feed_generator(
    output: OutputConfig, entries: Sequence[StoredEntry], links: FeedLinks, fmt: str
) -> FeedGenerator:
    generator = FeedGenerator()
    if fmt == "rss":
        generator.load_extension("dc", atom=False, rss=True)
    generator.id(uuid.uuid5(uuid.NAMESPACE_URL, f"aggregator:output:{output.name}").urn)
    generator.title(output.display_title)
    generator.subtitle(output.description or f"{output.display_title}, merged by aggregator")
    generator.description(output.description or f"{output.display_title}, merged by aggregator")
    generator.link(href=links.page(), rel="alternate")
    generator.link(href=links.feed(fmt), rel="self", type=MEDIA_TYPES[fmt])
    generator.author({"name": output.display_title})
    generator.generator(*GENERATOR)
    generator.language("en")
    updated = feed_updated(entries)
    generator.updated(updated)
    generator.lastBuildDate(updated)
    # feedgen prepends entries; add oldest first so the document lists newest first.
    for entry in reversed(entries):
        _add_entry(generator, entry, links, fmt)
    return generator


def _add_entry(generator: FeedGenerator, entry: StoredEntry, links: FeedLinks, fmt: str) -> None:
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
    for term in entry.categories:
        item.category(term=term)
    for enclosure in entry.enclosures:
        item.enclosure(
            enclosure.url, str(enclosure.length or 0), enclosure.type or "application/octet-stream"
        )
    source_title = entry.source_title or entry.source_name
    # A local demo file's URL means nothing to a subscriber: name the site instead.
    source_url = entry.source_url if not entry.source_url.startswith("file:") else entry.source_link
    if source_url:
        item.source(url=source_url, title=source_title)


def _render_json(output: OutputConfig, entries: Sequence[StoredEntry], links: FeedLinks) -> bytes:
    items = []
    for entry in entries:
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
                "comment_count": entry.comment_count,
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


class Publisher:
    """Renders the configured outputs from storage into the public folder."""

    def __init__(self, config: AppConfig, storage: Storage):
        self.config = config
        self.storage = storage

    def links(self, output: OutputConfig) -> FeedLinks:
        return FeedLinks(self.config.server.public_url, output.name)

    def entries_for(self, output: OutputConfig) -> list[StoredEntry]:
        """The entries an output shows now, newest first."""
        names = [source.name for source in self.config.sources_for(output)]
        return self.storage.list_entries(names, output.limit)

    def publish(self, outputs: Sequence[OutputConfig] | None = None) -> list[Path]:
        """Render and write outputs (all when ``None``); returns the files that changed."""
        changed: list[Path] = []
        for output in outputs if outputs is not None else self.config.outputs:
            entries = self.entries_for(output)
            links = self.links(output)
            for fmt in output.formats:
                path = self.config.public_dir / "feeds" / f"{output.name}.{EXTENSIONS[fmt]}"
                if write_atomic(path, render_output(output, entries, links, fmt)):
                    changed.append(path)
        return changed
