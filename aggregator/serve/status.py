"""Pure: what ``aggregator status`` and the status page say about each source (issue 18).

:func:`status_rows` turns stored source rows into the data ``status --json`` prints, and the
status page (:mod:`aggregator.serve.status_page`) shows the same data. :func:`source_state` names a
source's state, :func:`state_order` puts the ones needing attention first, and
:func:`status_table` lays the rows out for a terminal of a given width. No IO.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

#: The states, in the order an operator should look at them.
STATES = ("failing", "retired", "backing off", "new", "ok")
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


def status_rows(rows: Sequence[Mapping[str, Any]], configured: set[str]) -> list[dict[str, Any]]:
    """The ``status`` data: stored columns plus a list of notes for the operator."""
    data = []
    for row in rows:
        item = {key: row.get(key) for key in _KEYS} | {"configured": row["name"] in configured}
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
        item["notes"] = notes
        data.append(item)
    return data


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
