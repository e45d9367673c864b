"""The status page, ``GET /status`` (issue 18): every source's state, polls, counts and errors,
with a small chart per source drawn on the server as SVG (no JavaScript).

It shows the data of ``aggregator status --json`` (:func:`aggregator.serve.status.status_rows`), a
page of :data:`PAGE_SIZE` sources at a time, ordered by state (failing first) or by name. A page
costs a constant number of SQL queries whatever the number of sources (see
:mod:`aggregator.storage.status`). Only loopback clients may see it, unless
``server.public_status`` is true: error texts and URLs can name internal hosts
(:func:`status_allowed`, which believes the socket's peer address, never a header).

The page sets its own Content-Security-Policy (no script, styles only from this server), and
its stylesheet is ``/static/status.css``.
"""

from __future__ import annotations

import ipaddress
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from aggregator import __version__
from aggregator.config.schema import AppConfig
from aggregator.serve.status import STATES, short_time, source_state, state_order, status_rows
from aggregator.storage import Storage

PAGE_SIZE = 100
CHART_DAYS = 30
SORTS = ("state", "name")
STATUS_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
templates = Environment(
    loader=PackageLoader("aggregator.serve", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["short_time"] = short_time
templates.globals["version"] = __version__
_STYLESHEET = (resources.files("aggregator.serve") / "static" / "status.css").read_bytes()


def is_loopback_address(host: str | None) -> bool:
    """Whether a peer address (``127.0.0.1``, ``::1``, ``::ffff:127.0.0.2``) is loopback.
    Anything unparsable (a Unix socket's empty name, a host name) is not."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def status_allowed(client_host: str | None, public_status: bool) -> bool:
    """Whether a client at ``client_host`` (the socket's peer) may see the status page."""
    return public_status or is_loopback_address(client_host)


@dataclass(frozen=True)
class Activity:
    """A source's last 30 days: new entries and comments per UTC day, and its polls."""

    entries: dict[str, int] = field(default_factory=dict)
    comments: dict[str, int] = field(default_factory=dict)
    # (when, milliseconds, failed)
    polls: list[tuple[datetime, int, bool]] = field(default_factory=list)


@dataclass(frozen=True)
class SourceView:
    """One source as the page shows it."""

    item: dict[str, Any]
    state: str
    feed_url: str | None
    site_url: str | None
    activity_chart: Markup
    polls_chart: Markup

    @property
    def why(self) -> str:
        return self.item["next_poll_detail"] or self.item["next_poll_reason"] or ""


@dataclass(frozen=True)
class StatusPage:
    """Everything the template shows."""

    now: datetime
    sources: list[SourceView]
    counts: dict[str, int]
    total_sources: int
    totals: dict[str, int]
    page: int
    pages: int
    sort: str

    def link(self, page: int | None = None, sort: str | None = None) -> str:
        return "/status?" + urlencode({"sort": sort or self.sort, "page": page or self.page})


def build_status_page(
    storage: Storage, config: AppConfig, now: datetime, *, page: int = 1, sort: str = "state"
) -> StatusPage:
    """Read one page of the status page: a constant number of queries for any number of
    sources (the states of all, to count and order them; then only the page's sources)."""
    stale_after = config.defaults.stale_after
    states = storage.list_source_states()
    state_of = {row["id"]: source_state(row, now, stale_after) for row in states}
    counts = {state: 0 for state in STATES}
    for state in state_of.values():
        counts[state] += 1
    if sort == "state":
        states.sort(key=lambda row: (state_order(state_of[row["id"]]), row["name"]))
    pages = max(1, math.ceil(len(states) / PAGE_SIZE))
    page = min(max(1, page), pages)
    chosen = [row["id"] for row in states[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]]
    rows = {row["id"]: row for row in storage.list_source_rows(chosen, details=True)}
    since = (now - timedelta(days=CHART_DAYS - 1)).replace(hour=0, minute=0, second=0)
    activity = _activity(storage.daily_activity(chosen, since))
    configured = {source.name for source in config.sources}
    views = []
    days = [(since + timedelta(days=n)).strftime("%Y-%m-%d") for n in range(CHART_DAYS)]
    for source_id in chosen:
        row = rows[source_id]
        item = status_rows([row], configured, now=now)[0]
        seen = activity.get(source_id, Activity())
        views.append(
            SourceView(
                item=item,
                state=state_of[source_id],
                feed_url=item["url"] if _is_web(item["url"]) else None,
                site_url=row.get("link") if _is_web(row.get("link")) else None,
                activity_chart=activity_svg(days, seen.entries, seen.comments),
                polls_chart=polls_svg(seen.polls, since, now),
            )
        )
    return StatusPage(
        now=now,
        sources=views,
        counts=counts,
        total_sources=len(states),
        totals=storage.totals(),
        page=page,
        pages=pages,
        sort=sort,
    )


def _is_web(url: str | None) -> bool:
    return bool(url) and urlsplit(url or "").scheme in ("http", "https")


def _activity(rows: Sequence[Mapping[str, Any]]) -> dict[int, Activity]:
    found: dict[int, Activity] = defaultdict(Activity)
    for row in rows:
        seen = found[row["source_id"]]
        if row["kind"] == "entries":
            seen.entries[row["day"]] = int(row["value"])
        elif row["kind"] == "comments":
            seen.comments[row["day"]] = int(row["value"])
        else:
            when = datetime.fromisoformat(row["day"])
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            seen.polls.append((when, int(row["value"]), row["error"] is not None))
    return found


# -- charts (pure) -----------------------------------------------------------------------------
CHART_WIDTH = 240
CHART_HEIGHT = 48


def _svg(label: str, body: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" '
        f'width="{CHART_WIDTH}" height="{CHART_HEIGHT}" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>"
        f'<line class="axis" x1="0" y1="{CHART_HEIGHT - 0.5}" x2="{CHART_WIDTH}" '
        f'y2="{CHART_HEIGHT - 0.5}"/>' + "".join(body) + "</svg>"
    )


def activity_svg(
    days: Sequence[str], entries: Mapping[str, int], comments: Mapping[str, int]
) -> Markup:
    """Bars per day: new entries (left half of each day) and new comments (right half), each
    scaled to its own maximum, so a day of 3 posts still shows beside one of 400 comments."""
    slot = CHART_WIDTH / len(days)
    bar = max(1.0, slot / 2 - 0.5)
    top_entries = max([1, *entries.values()])
    top_comments = max([1, *comments.values()])
    body = []
    for index, day in enumerate(days):
        for offset, kind, count, top in (
            (0.0, "entries", entries.get(day, 0), top_entries),
            (bar, "comments", comments.get(day, 0), top_comments),
        ):
            if not count:
                continue
            height = max(1.5, (CHART_HEIGHT - 2) * count / top)
            body.append(
                f'<rect class="{kind}" x="{index * slot + offset:.1f}" '
                f'y="{CHART_HEIGHT - 1 - height:.1f}" width="{bar:.1f}" height="{height:.1f}">'
                f"<title>{day}: {count} new {kind}</title></rect>"
            )
    total_entries, total_comments = sum(entries.values()), sum(comments.values())
    label = (
        f"New per day over {len(days)} days: {total_entries} entries "
        f"(most {max(entries.values(), default=0)} a day), {total_comments} comments "
        f"(most {max(comments.values(), default=0)} a day)"
    )
    return _svg(label, body)


def polls_svg(
    polls: Sequence[tuple[datetime, int, bool]], since: datetime, now: datetime
) -> Markup:
    """One tick per poll at its time, as tall as its duration (on a square-root scale: one slow
    poll must not flatten the rest); failed polls in their own class."""
    span = max(1.0, (now - since).total_seconds())
    top = math.sqrt(max([1, *(ms for _, ms, _ in polls)]))
    body = []
    for when, ms, failed in polls:
        x = min(CHART_WIDTH - 2.0, max(0.0, (when - since).total_seconds() / span * CHART_WIDTH))
        height = max(1.5, (CHART_HEIGHT - 2) * math.sqrt(ms) / top)
        kind = "poll failed" if failed else "poll"
        body.append(
            f'<rect class="{kind}" x="{x:.1f}" y="{CHART_HEIGHT - 1 - height:.1f}" width="1.5" '
            f'height="{height:.1f}"><title>{when:%Y-%m-%d %H:%M} UTC: {ms} ms'
            f"{' (failed)' if failed else ''}</title></rect>"
        )
    failures = sum(1 for _, _, bad in polls if bad)
    slowest = max((ms for _, ms, _ in polls), default=0)
    label = f"{len(polls)} polls, {failures} failed, slowest {slowest} ms"
    return _svg(label, body)


# -- the route ---------------------------------------------------------------------------------


def status_routes(
    config_source: AppConfig | Callable[[], AppConfig],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[Route]:
    """``/status`` and its stylesheet; ``config_source`` may be a callable (daemon reloads)."""
    current: Callable[[], AppConfig] = (
        config_source if callable(config_source) else (lambda: config_source)
    )

    def status(request: Request) -> Response:  # sync: starlette runs it on its thread pool
        config = current()
        client = request.client.host if request.client else None
        if not status_allowed(client, config.server.public_status):
            return PlainTextResponse("Not found.\n", status_code=404)
        sort = request.query_params.get("sort", "state")
        number = request.query_params.get("page", "1")
        if sort not in SORTS or not number.isdigit() or not 0 < int(number) <= 1_000_000:
            return PlainTextResponse("No such status page.\n", status_code=404)
        with Storage(config.database) as storage:
            page = build_status_page(storage, config, clock(), page=int(number), sort=sort)
        body = templates.get_template("status.html").render(status=page)
        headers = {"Content-Security-Policy": STATUS_CSP, "Cache-Control": "no-store"}
        return HTMLResponse(body, headers=headers)

    def stylesheet(request: Request) -> Response:
        return Response(
            _STYLESHEET,
            media_type="text/css",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    return [
        Route("/status", status, methods=["GET", "HEAD"]),
        Route("/static/status.css", stylesheet, methods=["GET", "HEAD"]),
    ]
