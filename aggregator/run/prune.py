"""Retention: remove old entries and comments, never what an output still shows (issue 17).

:func:`prune` decides per source from its ``retention`` (else the defaults'): entries older than
``entries.max_age`` (by the date they sort by) or past the newest ``entries.max_count``, and
comments likewise, of threads no longer followed. Whatever an output shows within its pages
(``limit`` × ``pages`` entries, chosen exactly as the publisher chooses them) is kept, with its
comments. ``dry_run`` reports without writing. Then the file shrinks
(:func:`aggregator.storage.retention.reclaim`). ``aggregator prune`` and the daemon (once a day)
call it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aggregator.config.schema import AppConfig
from aggregator.errors import NotFoundError
from aggregator.select.chooser import OutputChooser
from aggregator.storage import Storage
from aggregator.storage import retention as sql
from aggregator.storage.rows import format_time

#: How often the daemon prunes.
PRUNE_INTERVAL = timedelta(days=1)


@dataclass
class SourcePrune:
    """What pruning removes (or, in a dry run, would remove) from one source."""

    source: str
    entries: int = 0
    comments: int = 0  # removed on their own (an entry's comments go with it, counted here too)
    kept_shown: int = 0  # old entries kept because an output still shows them


@dataclass
class PruneReport:
    sources: list[SourcePrune] = field(default_factory=list)
    dry_run: bool = False
    bytes_before: int = 0
    bytes_after: int = 0
    vacuumed: bool = False  # a full VACUUM switched the file to incremental vacuum

    @property
    def entries(self) -> int:
        return sum(item.entries for item in self.sources)

    @property
    def comments(self) -> int:
        return sum(item.comments for item in self.sources)


def shown_entry_ids(config: AppConfig, storage: Storage) -> set[int]:
    """The ids of every entry an output shows, in its feed and its older pages."""
    chooser = OutputChooser(config, storage)
    shown: set[int] = set()
    for output in config.outputs:
        deep = output.model_copy(update={"limit": output.limit * output.pages})
        shown.update(entry.id for entry in chooser.entries_for(deep))
    return shown


def prune(
    config: AppConfig, storage: Storage, now: datetime, *, dry_run: bool = False
) -> PruneReport:
    """Remove what the retention rules let go; see the module docstring."""
    report = PruneReport(dry_run=dry_run, bytes_before=_size(storage))
    rules = {source.name: config.retention_for(source) for source in config.sources}
    if not any(rule.entries or rule.comments for rule in rules.values()):
        report.bytes_after = report.bytes_before
        return report
    shown = shown_entry_ids(config, storage)
    stamp = format_time(now)
    db = storage.db
    with storage.transaction():
        for source in config.sources:
            retention = rules[source.name]
            if not (retention.entries or retention.comments):
                continue
            try:
                state = storage.get_source(source.name)
            except NotFoundError:
                continue
            item = SourcePrune(source.name)
            if retention.entries:
                rule = retention.entries
                candidates = sql.old_entries(
                    db,
                    state.id,
                    before=format_time(now - rule.max_age) if rule.max_age else None,
                    keep=rule.max_count,
                )
                going = [row for row in candidates if row["id"] not in shown]
                item.kept_shown = len(candidates) - len(going)
                item.entries = len(going)
                item.comments += sum(int(row["comments"]) for row in going)
                if not dry_run:
                    sql.delete_entries(db, state.id, going, stamp)
            if retention.comments:
                rule = retention.comments
                comments = [
                    row
                    for row in sql.old_comments(
                        db,
                        state.id,
                        before=format_time(now - rule.max_age) if rule.max_age else None,
                        keep=rule.max_count,
                    )
                    if row["entry_id"] not in shown
                ]
                item.comments += len(comments)
                if not dry_run:
                    sql.delete_comments(
                        db, [row["id"] for row in comments], [row["entry_id"] for row in comments]
                    )
            report.sources.append(item)
        if not dry_run:
            sql.forget_tombstones(db, format_time(now - timedelta(days=sql.TOMBSTONE_DAYS)))
    if not dry_run:
        report.vacuumed = sql.reclaim(db)
    report.bytes_after = _size(storage)
    return report


def _size(storage: Storage) -> int:
    """The database's size in bytes: the main file plus its write-ahead log."""
    total = 0
    for suffix in ("", "-wal"):
        path = storage.path.with_name(storage.path.name + suffix)
        if path.exists():
            total += path.stat().st_size
    return total
