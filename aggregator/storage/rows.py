"""Conversions between stored rows and aggregator's values: times as sortable UTC text,
column values (sets as JSON, outside text made harmless), entry columns, and rows read back as
:class:`~aggregator.models.StoredEntry` and :class:`~aggregator.models.StoredComment`.

Pure: no SQL and no sqlite import; the mixins of :class:`~aggregator.storage.Storage` run the
queries and use these to convert what they write and read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, overload

from aggregator.models import EnclosureData, EntryData, StoredComment, StoredEntry
from aggregator.storage.ids import comment_public_id
from aggregator.terminal import safe_text


@overload
def format_time(value: datetime) -> str: ...
@overload
def format_time(value: None) -> None: ...


def format_time(value: datetime | None) -> str | None:
    """Store times as sortable ISO 8601 text in UTC."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds")


def parse_time(value: str | None) -> datetime | None:
    """Read a stored time back as an aware UTC datetime."""
    if not value:
        return None
    return datetime.fromisoformat(value).astimezone(UTC)


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# Columns whose text may quote the outside world (a reason phrase, an error from a server):
# stored without terminal control sequences, so that `status` and the web pages show them
# harmless (issue 12).
_OUTSIDE_TEXT = frozenset({"last_error", "comments_error", "next_poll_detail"})


def _column_value(value: Any, key: str = "") -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, frozenset | set):
        return json.dumps(sorted(value))
    if isinstance(value, str) and key in _OUTSIDE_TEXT:
        return safe_text(value)
    return value


def _entry_values(entry: EntryData) -> dict[str, Any]:
    return {
        "guid": entry.guid,
        "title": entry.title,
        "link": entry.link,
        "author": entry.author,
        "summary": entry.summary,
        "content": entry.content,
        "published_at": format_time(entry.published_at),
        "updated_at": format_time(entry.updated_at),
        "content_hash": entry.content_hash,
        "categories": json.dumps(list(entry.categories)),
        "enclosures": json.dumps([[e.url, e.type, e.length] for e in entry.enclosures]),
        "podcast": json.dumps([list(pair) for pair in entry.podcast]) if entry.podcast else None,
        "comments_feed_url": entry.comments_feed_url,
        "comments_page_url": entry.comments_page_url,
        "comment_count_hint": entry.comment_count,
    }


def _stored_entry(row: dict[str, Any]) -> StoredEntry:
    return StoredEntry(
        id=row["id"],
        public_id=row["public_id"],
        source_name=row["source_name"],
        source_title=row["source_title"],
        source_url=row["source_url"],
        source_link=row["source_link"],
        key=row["key"],
        guid=row["guid"],
        title=row["title"],
        link=row["link"],
        author=row["author"],
        summary=row["summary"],
        content=row["content"],
        published_at=parse_time(row["published_at"]),
        updated_at=parse_time(row["updated_at"]),
        first_seen_at=parse_time(row["first_seen_at"]) or datetime.now(UTC),
        categories=tuple(json.loads(row["categories"] or "[]")),
        enclosures=tuple(
            EnclosureData(url=url, type=kind, length=length)
            for url, kind, length in json.loads(row["enclosures"] or "[]")
        ),
        podcast=tuple(
            (str(name), str(value)) for name, value in json.loads(row.get("podcast") or "[]")
        ),
        comment_count=row["comment_count"] or 0,
        last_comment_at=parse_time(row["last_comment_at"]),
        extra={
            "changed_at": row["changed_at"],
            "comments_feed_url": row["comments_feed_url"],
            "comments_page_url": row["comments_page_url"],
            "comment_count_hint": row["comment_count_hint"],
            # Per-site counts of the threads about the entry elsewhere (migration 0010).
            "discussions": tuple(
                tuple(site) for site in json.loads(row.get("discussions") or "[]")
            ),
        },
        sort_at=parse_time(row["sort_at"]),
        full_text=row.get("full_text"),
    )


def _stored_comments(rows: list[dict[str, Any]]) -> list[StoredComment]:
    # A parent's public id is derived from its entry and key, as every comment's is, so a
    # parent not among ``rows`` (or not stored yet) still gets the same id.
    return [
        StoredComment(
            id=row["id"],
            public_id=row["public_id"],
            entry_id=row["entry_id"],
            entry_public_id=row["entry_public_id"],
            key=row["key"],
            content=row["content"],
            author=row["author"],
            author_url=row["author_url"],
            published_at=parse_time(row["published_at"]),
            first_seen_at=parse_time(row["first_seen_at"]) or datetime.now(UTC),
            link=row["link"],
            number=row["number"],
            parent_public_id=(
                comment_public_id(row["entry_public_id"], row["parent_key"])
                if row["parent_key"]
                else None
            ),
            gone_at=parse_time(row["gone_at"]),
        )
        for row in rows
    ]
