"""The readable web pages (Jinja2), served next to the feeds by :mod:`aggregator.server`.

* ``GET /``: every output, with its subscribe links and ``<link rel="alternate">`` autodiscovery.
* ``GET /outputs/{name}``: an output's recent entries with source, time and comment count.
* ``GET /outputs/{name}/{entry}``: one entry with its comment thread, replies nested.
* ``GET /opml``: the outputs as an OPML subscription list (:mod:`aggregator.opml`).

Pages read the database through :class:`~aggregator.storage.Storage`, one connection per
request (SQLite in WAL mode lets them read while the daemon writes), and select entries and
hide comments exactly as the published feeds do, through :class:`~aggregator.publish.Publisher`.
Entry and comment HTML was sanitized when it was stored (:mod:`aggregator.sanitize`) and is
shown as is; every other value is escaped by Jinja2's autoescaping. No JavaScript.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from aggregator import __version__
from aggregator.config import AppConfig, OutputConfig
from aggregator.errors import NotFoundError
from aggregator.models import StoredComment, StoredEntry
from aggregator.opml import OpmlFeed, make_opml
from aggregator.publish import EXTENSIONS, MEDIA_TYPES, FeedLinks, Publisher
from aggregator.shaping import plain_text
from aggregator.storage import Storage

OPML_TYPE = "text/x-opml; charset=utf-8"
EXCERPT_CHARS = 280
_ENTRY_ID_LENGTH = 32

templates = Environment(
    loader=PackageLoader("aggregator", "templates"),
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
    text = plain_text(html)
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
# Stored HTML is sanitized once, when stored (aggregator.sanitize): mark it safe to show.
templates.filters["sanitized"] = lambda html: Markup(html or "")
templates.globals["version"] = __version__
templates.globals["media_types"] = MEDIA_TYPES


def _render(name: str, status: int = 200, **context: object) -> HTMLResponse:
    return HTMLResponse(templates.get_template(name).render(**context), status_code=status)


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

    def index(request: Request) -> Response:
        config = current()
        outputs = [
            {
                "output": output,
                "feeds": _feed_links(config, output),
                "sources": [s.title or s.name for s in config.sources_for(output)],
            }
            for output in config.outputs
        ]
        return _render("index.html", outputs=outputs, alternates=_alternates(config, None))

    def output_page(request: Request) -> Response:
        config = current()
        output = _output(config, request.path_params["name"])
        if output is None:
            return _not_found(f"No such output: {request.path_params['name']}")
        number = _page_number(request.query_params.get("page", "1"))
        if number is None:
            return _not_found(f"No such page of {output.name}: {request.query_params['page']}")
        with Storage(config.database) as storage:
            publisher = Publisher(config, storage)
            first = publisher.entries_for(output)
            # The same pages as the feed's RFC 5005 pages, so page N here is page N there.
            pages = [first, *publisher.older_pages(output, first)]
            if number > len(pages):
                return _not_found(f"No such page of {output.name}: {number}")
            entries = [
                EntryView(
                    entry,
                    len(publisher.visible_comments(output, entry)) if entry.comment_count else 0,
                    excerpt(entry.summary or entry.content),
                )
                for entry in pages[number - 1]
            ]
            has_older = number < len(pages)
        return _render(
            "output.html",
            output=output,
            entries=entries,
            page=number,
            has_older=has_older,
            feeds=_feed_links(config, output),
            alternates=_alternates(config, output),
        )

    def entry_page(request: Request) -> Response:
        config = current()
        output = _output(config, request.path_params["name"])
        if output is None:
            return _not_found(f"No such output: {request.path_params['name']}")
        public_id = request.path_params["entry"].lower()
        if len(public_id) != _ENTRY_ID_LENGTH or not public_id.isalnum():
            return _not_found(f"No such entry: {public_id}")
        with Storage(config.database) as storage:
            try:
                entry = storage.get_entry(public_id)
            except NotFoundError:
                return _not_found(f"No such entry in {output.name}: {public_id}")
            if entry.source_name not in {s.name for s in config.sources_for(output)}:
                return _not_found(f"No such entry in {output.name}: {public_id}")
            comments = Publisher(config, storage).visible_comments(output, entry)
        links = FeedLinks(config.server.public_url, output.name)
        thread_feeds = [
            (fmt, MEDIA_TYPES[fmt], links.comments(entry.public_id, fmt))
            for fmt in output.formats
            if (
                config.public_dir / "feeds" / output.name / entry.public_id
                / f"comments.{EXTENSIONS[fmt]}"
            ).exists()
        ]  # fmt: skip
        return _render(
            "entry.html",
            output=output,
            entry=entry,
            thread=build_thread(comments),
            comment_count=len(comments),
            thread_feeds=thread_feeds,
            alternates=[
                (f"Comments on {entry.title or 'this post'} ({fmt.upper()})", kind, url)
                for fmt, kind, url in thread_feeds
            ],
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
            for output in config.outputs
        ]
        body = make_opml("aggregator outputs", feeds)
        headers = {"Content-Disposition": 'inline; filename="aggregator.opml"'}
        return Response(body, media_type=OPML_TYPE, headers=headers)

    return [
        Route("/", index, methods=["GET", "HEAD"]),
        Route("/opml", opml, methods=["GET", "HEAD"]),
        Route("/outputs/{name}", output_page, methods=["GET", "HEAD"]),
        Route("/outputs/{name}/{entry}", entry_page, methods=["GET", "HEAD"]),
    ]


def _page_number(value: str) -> int | None:
    return int(value) if value.isdigit() and 0 < int(value) <= 1000 else None


def _output(config: AppConfig, name: str) -> OutputConfig | None:
    try:
        return config.output(name)
    except KeyError:
        return None


def _alternates(config: AppConfig, only: OutputConfig | None) -> list[tuple[str, str, str]]:
    """(title, media type, URL) for the ``<link rel="alternate">`` autodiscovery tags."""
    return [
        (f"{output.display_title} ({fmt.upper()})", kind, url)
        for output in config.outputs
        if only is None or output.name == only.name
        for fmt, kind, url in _feed_links(config, output)
    ]
