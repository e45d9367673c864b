"""The readable web pages (Jinja2), served next to the feeds by :mod:`aggregator.serve.server`.

* ``GET /``: every output, with its subscribe links and ``<link rel="alternate">`` autodiscovery.
* ``GET /outputs/{name}``: an output's recent entries with source, time and comment count.
* ``GET /outputs/{name}/{entry}``: one entry with its comment thread, replies nested.
* ``GET /opml``: the outputs as an OPML subscription list (:mod:`aggregator.config.opml`).

Pages read the database through :class:`~aggregator.storage.Storage` (SQLite in WAL mode lets
them read while the daemon writes), and select entries and hide comments exactly as the
published feeds do, through :class:`~aggregator.select.chooser.OutputChooser`: an entry page exists
only for an entry that one of the output's feed pages shows (rules, search, sources, limit x pages),
else 404. Entry and comment HTML was sanitized when it was stored (:mod:`aggregator.parse.sanitize`)
and is shown as is (without images under ``images: strip``); every other value is escaped by
Jinja2's autoescaping. No JavaScript, no inline style: the stylesheet is ``/static/site.css``,
and each page carries a Content-Security-Policy (:func:`aggregator.serve.responses.page_csp`).

Output and entry pages are kept rendered (:class:`PageCache`) while what the output published
is unchanged: the stamp of its feed files, page folder and latest-comments feeds (and for an
entry page, its comment feeds) is compared on each request, so a publish by this process or any
other invalidates them; they are answered with an ``ETag`` and 304 to a matching
``If-None-Match``. An output that has published nothing yet is rendered per request.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from aggregator import __version__
from aggregator.config.opml import OpmlFeed, make_opml
from aggregator.config.outputs import OutputConfig
from aggregator.config.schema import AppConfig
from aggregator.errors import NotFoundError
from aggregator.models import StoredComment, StoredEntry
from aggregator.parse.sanitize import plain_text, strip_images
from aggregator.publish.access import allowed, feeds_folder
from aggregator.publish.links import EXTENSIONS, MEDIA_TYPES, FeedLinks
from aggregator.publish.render import entry_discussions
from aggregator.select.chooser import OutputChooser
from aggregator.select.dedupe import DedupedEntry
from aggregator.select.selection import shape_entry
from aggregator.serve.responses import CachedFile, cached_body, file_response, page_csp
from aggregator.storage import Storage

if TYPE_CHECKING:
    from pathlib import Path

OPML_TYPE = "text/x-opml; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
#: Rendered output and entry pages kept at most (bodies and their gzipped copies).
PAGE_CACHE_BYTES = 32 * 1024 * 1024
# Pages are answered again after a publish: browsers revalidate (cheap: 304 by ETag).
PAGE_CACHE_CONTROL = "no-cache"
EXCERPT_CHARS = 280
_ENTRY_ID_LENGTH = 32

templates = Environment(
    loader=PackageLoader("aggregator.serve", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class ThreadNode:
    """One comment in a thread, with the replies to it."""

    comment: StoredComment
    replies: list[ThreadNode] = field(default_factory=list)


@dataclass(frozen=True)
class EntryView:
    """An entry as a page lists it."""

    entry: StoredEntry
    comment_count: int
    excerpt: str

    @property
    def shown_at(self) -> datetime:
        return self.entry.published_at or self.entry.first_seen_at


def build_thread(comments: Sequence[StoredComment]) -> list[ThreadNode]:
    """Nest comments under the comment they reply to, keeping their order.

    A reply whose parent is not among ``comments`` (hidden by a killfile, or never read) is
    shown at the top level rather than lost. Pure: no IO.
    """
    nodes = {comment.public_id: ThreadNode(comment) for comment in comments}
    roots: list[ThreadNode] = []
    for comment in comments:
        parent = nodes.get(comment.parent_public_id or "")
        if parent is not None and parent.comment.public_id != comment.public_id:
            parent.replies.append(nodes[comment.public_id])
        else:
            roots.append(nodes[comment.public_id])
    return roots


def excerpt(html: str | None, limit: int = EXCERPT_CHARS) -> str:
    """A plain-text excerpt of entry HTML, cut on a word boundary."""
    text = plain_text(html, limit=None)
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:.-") + "\u2026"


def _format_time(value: datetime | None) -> str:
    return value.strftime("%d %b %Y, %H:%M UTC") if value else ""


def _size(length: float | None) -> str:
    if not length:
        return ""
    for unit in ("bytes", "KB", "MB", "GB"):
        if length < 1024 or unit == "GB":
            return f"{length:.0f} {unit}" if unit == "bytes" else f"{length:.1f} {unit}"
        length /= 1024
    return ""


templates.filters["when"] = _format_time
templates.filters["size"] = _size


def _sanitized(html: str | None, images: str = "keep") -> Markup:
    """Stored HTML is sanitized once, when stored (aggregator.parse.sanitize): mark it safe to show,
    without its images when the output strips them."""
    return Markup((strip_images(html) if images == "strip" else html) or "")


templates.filters["sanitized"] = _sanitized
templates.globals["version"] = __version__
templates.globals["media_types"] = MEDIA_TYPES


def _render(name: str, csp: str = page_csp(False), **context: object) -> HTMLResponse:
    body = templates.get_template(name).render(**context)
    return HTMLResponse(body, headers={"Content-Security-Policy": csp})


def _render_bytes(name: str, **context: object) -> bytes:
    return templates.get_template(name).render(**context).encode("utf-8")


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def published_stamp(config: AppConfig, output: OutputConfig) -> tuple[object, ...] | None:
    """What an output published, as file stamps: its feeds, its older pages' folder and its
    latest-comments feeds. ``None`` when it has published nothing (pages are not cached)."""
    feeds = feeds_folder(config, output)
    paths = [
        *(feeds / f"{output.name}.{EXTENSIONS[fmt]}" for fmt in output.formats),
        *(feeds / output.name / f"comments.{EXTENSIONS[fmt]}" for fmt in output.formats),
        feeds / output.name / "page",
    ]
    stamp = tuple(_stat(path) for path in paths)
    return stamp if any(stamp) else None


def _thread_stamp(config: AppConfig, output: OutputConfig, public_id: str) -> tuple[object, ...]:
    folder = feeds_folder(config, output) / output.name / public_id
    return tuple(_stat(folder / f"comments.{EXTENSIONS[fmt]}") for fmt in output.formats)


@dataclass(frozen=True)
class OutputSelection:
    """An output's entries as its feed and older pages show them, page by page."""

    pages: list[list[StoredEntry]]
    public_ids: frozenset[str]


class PageCache:
    """Rendered pages and the output selections behind them, valid for one stamp.

    A stamp is :func:`published_stamp` (plus an entry's comment feeds): when it changes, the
    page is rendered again. A new configuration object (a reload) empties the cache. Holds at
    most ``max_bytes`` of pages, least recently served first out. One lock per output: a burst
    of requests after a publish renders each page once.
    """

    def __init__(self, max_bytes: int = PAGE_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._pages: OrderedDict[tuple[str, ...], CachedFile] = OrderedDict()
        self._selections: dict[str, tuple[tuple[object, ...], OutputSelection]] = {}
        self._config: AppConfig | None = None
        self._lock = threading.Lock()
        self._output_locks: dict[str, threading.Lock] = {}

    def output_lock(self, config: AppConfig, name: str) -> threading.Lock:
        with self._lock:
            if config is not self._config:
                self._pages.clear()
                self._selections.clear()
                self.size = 0
                self._config = config
            return self._output_locks.setdefault(name, threading.Lock())

    def selection(
        self,
        name: str,
        stamp: tuple[object, ...] | None,
        build: Callable[[], OutputSelection],
    ) -> OutputSelection:
        with self._lock:
            known = self._selections.get(name)
        if stamp is not None and known is not None and known[0] == stamp:
            return known[1]
        selection = build()
        if stamp is not None:
            with self._lock:
                self._selections[name] = (stamp, selection)
        return selection

    def page(
        self,
        key: tuple[str, ...],
        stamp: tuple[object, ...] | None,
        render: Callable[[], bytes],
    ) -> CachedFile:
        with self._lock:
            cached = self._pages.get(key)
            if stamp is not None and cached is not None and cached.stamp == stamp:
                self._pages.move_to_end(key)
                return cached
        cached = cached_body(render(), datetime.now(UTC), stamp or ())
        if stamp is None:
            return cached
        with self._lock:
            old = self._pages.pop(key, None)
            if old is not None:
                self.size -= len(old.body) + len(old.gzipped)
            self._pages[key] = cached
            self.size += len(cached.body) + len(cached.gzipped)
            while self.size > self.max_bytes and len(self._pages) > 1:
                _, evicted = self._pages.popitem(last=False)
                self.size -= len(evicted.body) + len(evicted.gzipped)
        return cached


def select_output(config: AppConfig, output: OutputConfig) -> OutputSelection:
    """The entries an output's feed and its older pages show, exactly as published."""
    with Storage(config.database) as storage:
        chooser = OutputChooser(config, storage)
        first = chooser.entries_for(output)
        # The same pages as the feed's RFC 5005 pages, so page N here is page N there.
        pages = [first, *chooser.older_pages(output, first)]
    return OutputSelection(pages, frozenset(e.public_id for page in pages for e in page))


def _not_found(text: str) -> PlainTextResponse:
    return PlainTextResponse(f"{text}\n", status_code=404)


def _feed_links(config: AppConfig, output: OutputConfig) -> list[tuple[str, str, str]]:
    links = FeedLinks(config.server.public_url, output.name)
    return [(fmt, MEDIA_TYPES[fmt], links.feed(fmt)) for fmt in output.formats]


def web_routes(config_source: AppConfig | Callable[[], AppConfig]) -> list[Route]:
    """The page routes; ``config_source`` may be a callable, so a daemon's reload shows at once."""
    current: Callable[[], AppConfig] = (
        config_source if callable(config_source) else (lambda: config_source)
    )
    cache = PageCache()

    def index(request: Request) -> Response:
        config = current()
        visible = _visible(config, request)
        outputs = [
            {
                "output": output,
                "feeds": _feed_links(config, output),
                "sources": [s.title or s.name for s in config.sources_for(output)],
            }
            for output in visible
        ]
        alternates = _alternates(config, None, visible)
        return _render("index.html", outputs=outputs, alternates=alternates)

    def output_page(request: Request) -> Response:
        config = current()
        output = _output(config, request.path_params["name"])
        if output is None or not allowed(output.access, request.headers, request.query_params):
            return _not_found(f"No such output: {request.path_params['name']}")
        number = _page_number(request.query_params.get("page", "1"))
        if number is None:
            return _not_found(f"No such page of {output.name}: {request.query_params['page']}")
        with cache.output_lock(config, output.name):
            stamp = published_stamp(config, output)
            selection = cache.selection(output.name, stamp, lambda: select_output(config, output))
            if number > len(selection.pages):
                return _not_found(f"No such page of {output.name}: {number}")

            def render() -> bytes:
                with Storage(config.database) as storage:
                    chooser = OutputChooser(config, storage)
                    entries = [
                        EntryView(
                            entry,
                            len(chooser.visible_comments(output, entry))
                            if entry.comment_count
                            else 0,
                            excerpt(entry.summary or entry.content),
                        )
                        for entry in selection.pages[number - 1]
                    ]
                return _render_bytes(
                    "output.html",
                    output=output,
                    entries=entries,
                    page=number,
                    has_older=number < len(selection.pages),
                    feeds=_feed_links(config, output),
                    alternates=_alternates(config, output),
                )

            page = cache.page(("output", output.name, str(number)), stamp, render)
        return _page_response(request, page, output)

    def entry_page(request: Request) -> Response:
        config = current()
        output = _output(config, request.path_params["name"])
        if output is None or not allowed(output.access, request.headers, request.query_params):
            return _not_found(f"No such output: {request.path_params['name']}")
        public_id = request.path_params["entry"].lower()
        if len(public_id) != _ENTRY_ID_LENGTH or not public_id.isalnum():
            return _not_found(f"No such entry: {public_id}")
        missing = _not_found(f"No such entry in {output.name}: {public_id}")
        with cache.output_lock(config, output.name):
            stamp = published_stamp(config, output)
            selection = cache.selection(output.name, stamp, lambda: select_output(config, output))
            # Only what the output's feeds show: its rules, search, sources and pages decide.
            if public_id not in selection.public_ids:
                return missing
            if stamp is not None:
                stamp = (*stamp, *_thread_stamp(config, output, public_id))

            def render() -> bytes:
                with Storage(config.database) as storage:
                    entry = storage.get_entry(public_id)
                    # The text the output's feeds publish: the full text or the feed's own.
                    entry = shape_entry(DedupedEntry(entry), content_from=output.content_from)
                    chooser = OutputChooser(config, storage)
                    copies = chooser.copies_in(output, entry)
                    comments = chooser.merged_thread(output, entry, copies)
                links = FeedLinks(config.server.public_url, output.name)
                thread_feeds = [
                    (fmt, MEDIA_TYPES[fmt], links.comments(entry.public_id, fmt))
                    for fmt in output.formats
                    if (
                        feeds_folder(config, output) / output.name / entry.public_id
                        / f"comments.{EXTENSIONS[fmt]}"
                    ).exists()
                ]  # fmt: skip
                return _render_bytes(
                    "entry.html",
                    output=output,
                    entry=entry,
                    images=output.images,
                    thread=build_thread(comments),
                    comment_count=len(comments),
                    discussions=entry_discussions(entry),
                    thread_feeds=thread_feeds,
                    alternates=[
                        (f"Comments on {entry.title or 'this post'} ({fmt.upper()})", kind, url)
                        for fmt, kind, url in thread_feeds
                    ],
                )

            try:
                page = cache.page(("entry", output.name, public_id), stamp, render)
            except NotFoundError:  # gone from the database since the selection was made
                return missing
        return _page_response(request, page, output)

    def stylesheet(request: Request) -> Response:
        return file_response(
            request,
            _STYLESHEET,
            "text/css; charset=utf-8",
            cache_control="public, max-age=3600",
        )

    def opml(request: Request) -> Response:
        config = current()
        feeds = [
            OpmlFeed(
                xml_url=FeedLinks(config.server.public_url, output.name).feed(output.formats[0]),
                title=output.display_title,
                html_url=f"{config.server.public_url}/outputs/{output.name}",
                description=output.description,
            )
            for output in _visible(config, request)
        ]
        body = make_opml("aggregator outputs", feeds)
        headers = {"Content-Disposition": 'inline; filename="aggregator.opml"'}
        return Response(body, media_type=OPML_TYPE, headers=headers)

    return [
        Route("/", index, methods=["GET", "HEAD"]),
        Route("/opml", opml, methods=["GET", "HEAD"]),
        Route("/outputs/{name}", output_page, methods=["GET", "HEAD"]),
        Route("/outputs/{name}/{entry}", entry_page, methods=["GET", "HEAD"]),
        Route("/static/site.css", stylesheet, methods=["GET", "HEAD"]),
    ]


_STYLESHEET = cached_body(
    (resources.files("aggregator.serve") / "static" / "site.css").read_bytes(),
    datetime.now(UTC),
    ("site.css",),
)


def _page_response(request: Request, page: CachedFile, output: OutputConfig) -> Response:
    return file_response(
        request,
        page,
        HTML_TYPE,
        cache_control=PAGE_CACHE_CONTROL if output.access is None else "private, no-cache",
        headers={"Content-Security-Policy": page_csp(output.images == "keep")},
    )


def _page_number(value: str) -> int | None:
    return int(value) if value.isdigit() and 0 < int(value) <= 1000 else None


def _visible(config: AppConfig, request: Request) -> list[OutputConfig]:
    """The outputs listed to this request: the public ones, and the private ones whose
    credential it carries."""
    return [
        output
        for output in config.outputs
        if allowed(output.access, request.headers, request.query_params)
    ]


def _output(config: AppConfig, name: str) -> OutputConfig | None:
    try:
        return config.output(name)
    except KeyError:
        return None


def _alternates(
    config: AppConfig,
    only: OutputConfig | None,
    outputs: Sequence[OutputConfig] | None = None,
) -> list[tuple[str, str, str]]:
    """(title, media type, URL) for the ``<link rel="alternate">`` autodiscovery tags, of
    ``outputs`` (every output when not given)."""
    return [
        (f"{output.display_title} ({fmt.upper()})", kind, url)
        for output in (config.outputs if outputs is None else outputs)
        if only is None or output.name == only.name
        for fmt, kind, url in _feed_links(config, output)
    ]
