"""Pure: what ``aggregator status`` and the status page say about each source (issue 18).

:func:`status_rows` turns stored source rows (with their WebSub subscription and full-text
counts) into the data ``status --json`` prints, and the
status page (:mod:`aggregator.serve.status_page`) shows the same data. :func:`source_state` names a
source's state, :func:`state_order` puts the ones needing attention first, and
:func:`status_table` lays the rows out for a terminal of a given width. No IO.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from aggregator.models import WEBSUB_DENIED

#: The states, in the order an operator should look at them.
STATES = ("failing", "retired", "backing off", "new", "ok")
#: A WebSub subscription's states in ``status`` (see :func:`websub_status`).
WEBSUB_STATES = ("verified", "pending", "denied", "error", "expired", "unsubscribing")
#: The full-text outcomes ``status`` counts per source (table ``full_texts``).
FULL_TEXT_COUNTS = ("ok", "retry", "failed", "skipped")
#: Errors in a row after which a source counts as failing rather than backing off.
FAILING_STREAK = 3

_KEYS = (
    "name",
    "url",
    "config_url",
    "last_polled_at",
    "last_status",
    "last_success_at",
    "entry_count",
    "comment_total",
    "next_poll_at",
    "next_poll_reason",
    "next_poll_detail",
    "error_count",
    "last_error",
    "redirect_url",
    "redirect_count",
    "retired_at",
    "comments_note",
    "comments_note_count",
)


def status_rows(
    rows: Sequence[Mapping[str, Any]], configured: set[str], *, now: datetime
) -> list[dict[str, Any]]:
    """The ``status`` data: stored columns, the source's WebSub subscription and full text
    (:func:`websub_status`, :func:`full_text_status`; rows read with ``details``), plus a list
    of notes for the operator."""
    data = []
    for row in rows:
        item = {key: row.get(key) for key in _KEYS} | {"configured": row["name"] in configured}
        item["websub"] = websub_status(row.get("websub"), now)
        item["full_text"] = full_text_status(row.get("full_text"), row.get("full_text_error"))
        notes = []
        if item["retired_at"]:
            notes.append(f"RETIRED {item['retired_at']} (410 Gone): no more requests")
        if item["last_error"]:
            notes.append(f"error: {item['last_error']}")
        if item["redirect_url"]:
            notes.append(
                f"pending redirect to {item['redirect_url']} (seen {item['redirect_count']}x)"
            )
        if item["config_url"] and item["url"] != item["config_url"]:
            notes.append(f"moved: now polled at {item['url']} (update the config)")
        if not item["configured"]:
            notes.append("not in the config")
        if item["comments_note"]:
            count = item["comments_note_count"] or 1
            notes.append(f"comments of {count} post(s): {item['comments_note']}")
        if item["websub"]:
            notes.append(_websub_note(item["websub"]))
        if item["full_text"]:
            notes.append(_full_text_note(item["full_text"]))
        item["notes"] = notes
        data.append(item)
    return data


def websub_status(sub: Mapping[str, Any] | None, now: datetime) -> dict[str, Any] | None:
    """What ``status`` says of a source's WebSub subscription (as stored: no secret is ever
    read), or ``None`` for none. Its ``state``, one of :data:`WEBSUB_STATES`:

    * ``verified``: the hub verified it and the lease has not ended (the hub pushes);
    * ``pending``: requested, or about to be, and not verified yet;
    * ``denied``: the hub denied it (asked again later); ``error``: the last request failed;
    * ``expired``: the lease ended without a renewal verified;
    * ``unsubscribing``: the feed no longer names the hub.
    """
    if not sub:
        return None
    expires = _time(sub.get("expires_at"))
    error = sub.get("last_error")
    if sub.get("mode") == "unsubscribe":
        state = "unsubscribing"
    elif error and error.startswith(WEBSUB_DENIED):
        state = "denied"
    elif expires is not None and expires > now:
        state = "verified"
    elif sub.get("error_count"):
        state = "error"
    elif expires is not None:
        state = "expired"
    else:
        state = "pending"
    return {
        "hub": sub.get("hub"),
        "state": state,
        "lease_ends_at": sub.get("expires_at"),
        "requested_at": sub.get("requested_at"),
        "verified_at": sub.get("verified_at"),
        "pushed_at": sub.get("pushed_at"),
        "retry_at": sub.get("retry_at"),
        "error_count": int(sub.get("error_count") or 0),
        "last_error": error,
    }


def full_text_status(
    counts: Mapping[str, Any] | None, last_error: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """What ``status`` says of a source's full text: its entries' pages by outcome (``ok``,
    ``retry``, ``failed``, ``skipped``: left to the feed by ``full_text: auto``) and the newest
    error of a page to retry or given up; ``None`` when no page was considered."""
    if not counts:
        return None
    data: dict[str, Any] = {key: int(counts.get(key) or 0) for key in FULL_TEXT_COUNTS}
    data["last_error"] = last_error.get("error") if last_error else None
    data["last_error_at"] = last_error.get("at") if last_error else None
    return data


def _websub_note(sub: Mapping[str, Any]) -> str:
    note = f"WebSub: {sub['state']} by {sub['hub']}"
    if sub["state"] in ("verified", "expired") and sub["lease_ends_at"]:
        verb = "ends" if sub["state"] == "verified" else "ended"
        note += f", lease {verb} {short_time(sub['lease_ends_at'])}"
    if sub["last_error"] and sub["state"] in ("denied", "error"):
        note += f": {sub['last_error']}"
    return note


def _full_text_note(full: Mapping[str, Any]) -> str:
    parts = [f"{full[key]} {key}" for key in FULL_TEXT_COUNTS if full[key]]
    note = f"full text: {', '.join(parts) or 'none'}"
    if full["last_error"]:
        note += f"; last error: {full['last_error']}"
    return note


def source_state(row: Mapping[str, Any], now: datetime, stale_after: timedelta) -> str:
    """One of :data:`STATES` for a stored source row.

    * ``retired``: the server answered 410 Gone; it is not requested again.
    * ``ok``: the last poll succeeded. ``new``: never polled yet.
    * ``backing off``: the last poll failed and the source waits out a Retry-After, or a
      backoff window after fewer than :data:`FAILING_STREAK` errors while its last success is
      recent (within ``stale_after``).
    * ``failing``: the last poll failed, and the errors go on (a streak of
      :data:`FAILING_STREAK` or more, or no success within ``stale_after``, or never).
    """
    if row.get("retired_at"):
        return "retired"
    errors = int(row.get("error_count") or 0)
    if not errors and not row.get("last_error"):
        return "ok" if row.get("last_polled_at") else "new"
    if row.get("next_poll_reason") == "retry-after":
        return "backing off"
    success = _time(row.get("last_success_at"))
    if errors >= FAILING_STREAK or success is None or now - success > stale_after:
        return "failing"
    return "backing off"


def state_order(state: str) -> int:
    """Sort key: failing first, then retired, backing off, new, ok."""
    return STATES.index(state) if state in STATES else len(STATES)


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def short_time(value: str | None) -> str:
    """``2024-05-01 12:30`` from a stored time; ``never`` for none."""
    return value[:16].replace("T", " ") if value else "never"


def _cut(text: str, width: int) -> str:
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: max(0, width - 1)] + "\u2026"


def status_table(data: Sequence[Mapping[str, Any]], states: Sequence[str], width: int) -> list[str]:
    """The terminal table: sources needing attention first (failing, retired, backing off,
    new, ok; by name within each), every line at most ``width`` characters. The name and the
    notes (error texts) are cut to fit; narrow terminals drop the least useful columns."""
    rows = sorted(zip(data, states, strict=True), key=lambda p: (state_order(p[1]), p[0]["name"]))
    name_width = min(24, max([6, *(len(item["name"]) for item, _ in rows)]))
    # (header, width, right-aligned, value): dropped from the end of this list when too narrow.
    columns: list[tuple[str, int, bool, Any]] = [
        ("state", 11, False, lambda item, state: state),
        ("last poll", 16, False, lambda item, state: short_time(item["last_polled_at"])),
        ("http", 4, True, lambda item, state: str(item["last_status"] or "-")),
        ("entries", 7, True, lambda item, state: str(item["entry_count"])),
        ("comments", 8, True, lambda item, state: str(item["comment_total"])),
        ("errors", 6, True, lambda item, state: str(item["error_count"])),
        ("next poll", 16, False, lambda item, state: short_time(item["next_poll_at"])),
        ("why", 12, False, lambda item, state: item["next_poll_reason"] or "-"),
    ]
    optional = ["why", "last poll", "http", "errors", "comments", "next poll", "entries"]
    notes_min = 12

    def used(cols: list[tuple[str, int, bool, Any]]) -> int:
        return name_width + sum(1 + col[1] for col in cols) + 2

    while used(columns) + notes_min > width and optional:
        drop = optional.pop(0)
        columns = [col for col in columns if col[0] != drop]
    notes_width = max(0, width - used(columns))

    def line(name: str, cells: list[str], notes: str) -> str:
        parts = [_cut(name, name_width).ljust(name_width)]
        for (_, col_width, right, _), cell in zip(columns, cells, strict=True):
            cell = _cut(cell, col_width)
            parts.append(cell.rjust(col_width) if right else cell.ljust(col_width))
        text = " ".join(parts) + "  " + _cut(notes, notes_width)
        return text.rstrip()[:width]

    lines = [line("source", [col[0] for col in columns], "notes")]
    for item, state in rows:
        cells = [str(col[3](item, state)) for col in columns]
        lines.append(line(item["name"], cells, "; ".join(item["notes"])))
    return lines
