"""What storing one poll's entries, or one thread's comments, writes: decided here, written by
:class:`~aggregator.storage.Storage` (:mod:`aggregator.storage.entries`, :mod:`.comments`).

Pure: the input is the stored rows as plain dicts (as ``Storage._rows`` reads them), the parsed
entries or comments and the time; the output is a plan of renames, inserts and updates. No SQL
and no sqlite import here; executing the plan, and reading what it needs, is storage's job.

The decisions: a stored row read under one of an item's ``alternate_keys`` takes the item's key
(issue 13); the first copy of a key within a document wins; keys ``aggregator prune`` removed
stay removed; new vs changed vs unchanged by content hash; a new entry's ``sort_at`` is its
publication time unless that is in the future (then when it was first seen); a comment count
that moved in the feed makes the thread due.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aggregator.models import CommentData, EntryData
from aggregator.storage.ids import comment_public_id, entry_public_id
from aggregator.storage.rows import format_time

Row = Mapping[str, Any]


@dataclass(frozen=True)
class EntryInsert:
    """A new entry: its row is inserted with this public id and ``sort_at``."""

    entry: EntryData
    public_id: str
    sort_at: str


@dataclass(frozen=True)
class EntryUpdate:
    """A stored entry seen again: every column rewritten when ``changed`` (its content hash
    moved), else only its comment hints. ``count_moved``: its thread is made due at once."""

    entry: EntryData
    row_id: int
    changed: bool
    count_moved: bool


@dataclass
class EntryPlan:
    """The writes of one :meth:`Storage.store_entries`, in the order they are made: updates
    in document order, then inserts from the document's last item to its first."""

    stamp: str
    renames: list[tuple[int, str]] = field(default_factory=list)  # (row id, its new key)
    writes: list[EntryInsert | EntryUpdate] = field(default_factory=list)

    @property
    def new(self) -> int:
        return sum(1 for write in self.writes if isinstance(write, EntryInsert))

    @property
    def updated(self) -> int:
        return sum(1 for w in self.writes if isinstance(w, EntryUpdate) and w.changed)

    @property
    def unchanged(self) -> int:
        return sum(1 for w in self.writes if isinstance(w, EntryUpdate) and not w.changed)

    @property
    def moved(self) -> int:
        return sum(1 for w in self.writes if isinstance(w, EntryUpdate) and w.count_moved)


def plan_entries(
    source_name: str,
    existing_rows: Sequence[Row],
    entries: Sequence[EntryData],
    pruned: set[str],
    now: datetime,
) -> EntryPlan:
    """Decide how to store ``entries`` of the source ``source_name`` over its stored rows.

    ``existing_rows`` need ``id``, ``key``, ``title``, ``content_hash``, ``comment_count_hint``
    and ``comments_hint_polled``; ``pruned`` are the entries' keys that ``aggregator prune``
    removed (they stay removed while the feed carries them).
    """
    existing = {row["key"]: row for row in existing_rows}
    plan = EntryPlan(stamp=format_time(now))
    plan.renames = adopt_alternate_keys(existing, entries)
    stamp = plan.stamp
    seen: set[str] = set(pruned)
    inserts: list[EntryInsert] = []
    for entry in entries:
        if entry.key in seen:
            continue  # the same item written twice (identity.assign_keys): the first wins
        seen.add(entry.key)
        row = existing.get(entry.key)
        if row is None:
            published = format_time(entry.published_at)
            inserts.append(
                EntryInsert(
                    entry,
                    entry_public_id(source_name, entry.key),
                    published if published and published <= stamp else stamp,
                )
            )
        else:
            plan.writes.append(
                EntryUpdate(
                    entry,
                    row["id"],
                    changed=row["content_hash"] != entry.content_hash,
                    count_moved=count_moved(row, entry.comment_count),
                )
            )
    # New rows are inserted last item first: entries that share a sort time (undated ones
    # take the poll's) are listed newest id first, so the document's own order, newest
    # first in feeds, is the order they are published in and new_source_limit keeps the
    # document's first items, not its oldest.
    plan.writes.extend(reversed(inserts))
    return plan


def adopt_alternate_keys(
    existing: dict[str, Row], entries: Sequence[EntryData]
) -> list[tuple[int, str]]:
    """Give stored rows the key their entry has now, when the entry is stored under one of
    its ``alternate_keys`` (a key of the previous rule, or of a link that became shared or
    unique again), so that it is updated rather than stored again (issue 13).

    A row is claimed by one entry at most, and never while an entry of this document has
    its key: of several entries naming it, the one with the row's title wins, else the
    first. The row keeps its public id, so published feeds see the same entry.

    Moves the rows of ``existing`` to their new keys; returns the (row id, new key) renames.
    """
    keys = {entry.key for entry in entries}
    claims: dict[str, list[EntryData]] = {}
    for entry in entries:
        if entry.key in existing:
            continue
        for alternate in entry.alternate_keys:
            if alternate in existing and alternate not in keys:
                claims.setdefault(alternate, []).append(entry)
                break
    adopted: set[str] = set()
    renames: list[tuple[int, str]] = []
    for alternate, claimants in claims.items():
        row = existing[alternate]
        entry = next((e for e in claimants if e.title == row["title"]), claimants[0])
        if entry.key in adopted:
            continue
        adopted.add(entry.key)
        renames.append((row["id"], entry.key))
        existing[entry.key] = existing.pop(alternate)
    return renames


def count_moved(row: Row, count: int | None) -> bool:
    """Whether the entry's comment count moved in its feed since the stored hint, to a count
    its thread was not last polled at: then the thread is made due at once, and followed again
    if it had stopped (it went quiet, or its comment feed answered 404); the poller reads it
    in this poll (issue 15)."""
    if count is None or count == row["comment_count_hint"]:
        return False
    return bool(count != row["comments_hint_polled"])


@dataclass(frozen=True)
class CommentUpdate:
    """A stored comment whose text changed (or that came back): ``values`` in
    ``_COMMENT_COLUMNS`` order. ``revise``: its earlier text is recorded (issue 15)."""

    comment: CommentData
    row: Row
    values: tuple[Any, ...]
    revise: bool


@dataclass(frozen=True)
class CommentRenumber:
    """An unchanged comment the blog renumbered (an earlier one was deleted)."""

    row_id: int
    number: int


@dataclass
class CommentPlan:
    """The writes of one :meth:`Storage.store_comments`: renames first, then ``writes`` in
    order, then ``inserts`` (rows in ``_INSERT_COMMENT`` order) in one executemany."""

    stamp: str
    renames: list[tuple[int, str]] = field(default_factory=list)  # (row id, its new key)
    inserts: list[tuple[Any, ...]] = field(default_factory=list)
    writes: list[CommentUpdate | CommentRenumber] = field(default_factory=list)
    updated: int = 0
    unchanged: int = 0


def plan_comments(
    entry_id: int,
    entry_public: str,
    existing_rows: Sequence[Row],
    comments: Sequence[CommentData],
    now: datetime,
) -> CommentPlan:
    """Decide how to store the ``comments`` of one entry over its stored comment rows
    (``id``, ``key``, ``content_hash``, ``gone_at``, ``number``, ``content``, ``author``)."""
    existing = {row["key"]: row for row in existing_rows}
    plan = CommentPlan(stamp=format_time(now))
    plan.renames = adopt_alternate_comment_keys(existing, comments)
    stamp = plan.stamp
    seen: set[str] = set()
    for comment in comments:
        if comment.key in seen:
            continue
        seen.add(comment.key)
        row = existing.get(comment.key)
        published = format_time(comment.published_at)
        values = (
            comment.author,
            comment.author_url,
            comment.title,
            comment.content,
            comment.link,
            comment.number,
            comment.parent_key,
            published,
            comment.content_hash,
        )
        if row is None:
            plan.inserts.append(
                (
                    entry_id,
                    comment.key,
                    comment_public_id(entry_public, comment.key),
                    stamp,
                    published or stamp,
                    stamp,
                    *values,
                )
            )
        elif row["content_hash"] != comment.content_hash or row["gone_at"]:
            # A feed knows no number or parent, a page does: what one read lacks, keep.
            revise = row["content"] != comment.content
            plan.writes.append(CommentUpdate(comment, row, values, revise))
            plan.updated += 1
        else:
            if comment.number is not None and comment.number != row["number"]:
                # The blog renumbered (an earlier comment was deleted): not a change to show.
                plan.writes.append(CommentRenumber(row["id"], comment.number))
            plan.unchanged += 1
    return plan


def adopt_alternate_comment_keys(
    existing: dict[str, Row], comments: Sequence[CommentData]
) -> list[tuple[int, str]]:
    """Give a stored comment the key it has now when it is stored under one of its
    ``alternate_keys`` (the previous rule's), so it is not stored twice (issue 13).

    Moves the rows of ``existing`` to their new keys; returns the (row id, new key) renames."""
    keys = {comment.key for comment in comments}
    renames: list[tuple[int, str]] = []
    for comment in comments:
        if comment.key in existing:
            continue
        for alternate in comment.alternate_keys:
            if alternate in existing and alternate not in keys:
                row = existing.pop(alternate)
                renames.append((row["id"], comment.key))
                existing[comment.key] = row
                break
    return renames
