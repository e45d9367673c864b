"""Publish the configured outputs: choose, render and write every document, atomically.

Owns the orchestration of a publish (:class:`Publisher`): per output, its feed, its older pages
(RFC 5005), its entries' comment feeds, its latest-comments feed, its comment-changes feeds
(:mod:`aggregator.publish.changefeed`) and, for ``items: comments``, its pages of comments; the
signature of every file written, so a document is rendered again only when what it shows
changed; and the writing (:mod:`aggregator.publish.files`). Choosing is
:class:`aggregator.select.chooser.OutputChooser`; rendering is :mod:`aggregator.publish.render`
(entries) and :mod:`aggregator.publish.render_comments` (comments); URLs are
:mod:`aggregator.publish.links`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from aggregator.config.outputs import OutputConfig
from aggregator.config.schema import AppConfig
from aggregator.errors import PublishError
from aggregator.models import StoredComment, StoredEntry
from aggregator.publish.access import feeds_folder, remove_public_copies
from aggregator.publish.changefeed import publish_changes
from aggregator.publish.comment_outputs import publish_comment_items, publish_latest_comments
from aggregator.publish.files import remove_leftovers, write_atomic
from aggregator.publish.fragments import FragmentCache
from aggregator.publish.inline import thread_section, with_thread
from aggregator.publish.links import EXTENSIONS, FeedLinks, Page
from aggregator.publish.render import CommentView, render_output, with_bump
from aggregator.publish.render_comments import (
    comment_updated,
    render_comments,
    shown_comments,
)
from aggregator.publish.timing import StageTimes
from aggregator.select.chooser import OutputChooser, has_rules
from aggregator.select.dedupe import DedupedEntry, Duplicate
from aggregator.select.filters import keep_comment
from aggregator.select.selection import shape_entry
from aggregator.storage import Storage

log = logging.getLogger(__name__)


class Publisher:
    """Chooses, renders and writes the configured outputs, their comment feeds and
    latest-comments feeds.

    Keeps the signature of every file it wrote, so a republish renders again only the feeds
    whose inputs changed (entries, comments, or the configuration), and never rewrites an
    unchanged file. Reuse one Publisher in a long-running process; ``storage`` may be a
    :class:`Storage` or a function returning the calling thread's own. It also keeps the bytes
    of rendered entries and comments, up to ``fragment_bytes`` (see :mod:`aggregator.publish.fragments`).
    """

    def __init__(
        self,
        config: AppConfig,
        storage: Storage | Callable[[], Storage],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        fragment_bytes: int = 32 * 1024 * 1024,
    ):
        self.config = config
        # Chooses each output's entries and the comments it shows (as the web pages do).
        self.chooser = OutputChooser(config, storage, clock=clock)
        self._signatures: dict[Path, tuple[object, ...]] = {}
        self._paths: dict[tuple[object, ...], list[Path]] = {}
        # Entries and comments rendered before, reused when a document moves or grows; a
        # publisher used once (``aggregator publish``) keeps none (fragment_bytes=0).
        self._fragments = FragmentCache(fragment_bytes) if fragment_bytes > 0 else None
        self._swept = False
        # Where the last publish() spent its time, by stage (see benchmarks/publish.py).
        self.times = StageTimes()

    def configure(self, config: AppConfig) -> None:
        """Use a new configuration (a reload); the next publish re-renders what it changes."""
        self.config = config
        self.chooser.configure(config)

    @property
    def storage(self) -> Storage:
        return self.chooser.storage

    def links(self, output: OutputConfig) -> FeedLinks:
        return FeedLinks(
            self.config.server.public_url, output.name, hub=self.config.server.websub_hub
        )

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
            # A private output's files go where a plain web server does not serve them.
            if output.access is not None:
                remove_public_copies(self.config.public_dir / "feeds", output.name)
            with self.times.stage("comment items"):
                return publish_comment_items(
                    self.chooser,
                    output,
                    self.links(output),
                    feeds_folder(self.config, output),
                    self._write_if_changed,
                    self._fragments,
                )
        with self.times.stage("feed: select"):
            selection = self.chooser.select(output)
        entries = selection.kept
        with self.times.stage("pages: select"):
            older = self.chooser.older_pages(output, entries)
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
            shape_entry(
                item,
                content=output.content,
                via=output.via,
                images=output.images,
                content_from=output.content_from,
            )
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
                changed.extend(
                    publish_latest_comments(
                        self.chooser,
                        output,
                        known,
                        links,
                        folder,
                        self._write_if_changed,
                        self._fragments,
                    )
                )
        if output.comment_changes:
            with self.times.stage("comment changes"):
                changed.extend(
                    publish_changes(self.chooser, output, links, folder, self._write_if_changed)
                )
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
                comments = self.chooser.merged_thread(output, entry, copies[entry.id])
            else:
                rules = self.chooser.comment_rules(output, entry.source_name)
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
                or (entry.source_name in followed and self.chooser.can_have_comments(entry))
            ]
            plain = {
                entry.id
                for entry in shown
                if entry.comment_count
                and entry.id not in copies
                and not has_rules(self.chooser.comment_rules(output, entry.source_name))
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
                        comments = self.chooser.merged_thread(output, entry, copies[entry.id])
                    elif entry.comment_count:
                        comments = self.chooser.visible_comments(output, entry)
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
                    content_from=output.content_from,
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
