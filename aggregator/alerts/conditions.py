"""Pure: which of the new comments and entries past its mark an alert reports.

An alert's condition names entries (``watch: {output: NAME}``, the entries that output
publishes; or ``sources``/``tags`` and entry rules inline) and, for ``new_comments``, whose
comments (``authors``: written by; ``replies_to``: replying to a comment by). Without entry
conditions every entry counts; without authors every comment counts. Names compare without
case. Does no IO: the caller says which entries pass (``entry_passes``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aggregator.config.notify import AlertCondition
from aggregator.config.schema import AppConfig
from aggregator.models import AlertItem


def source_names(config: AppConfig, condition: AlertCondition) -> frozenset[str] | None:
    """The sources named by ``sources``/``tags`` (``None``: no such limit)."""
    if condition.sources is None and condition.tags is None:
        return None
    names = set(condition.sources or ())
    tags = set(condition.tags or ())
    return frozenset(
        source.name for source in config.sources if source.name in names or tags & set(source.tags)
    )


def _folded(names: Sequence[str]) -> frozenset[str]:
    return frozenset(name.strip().casefold() for name in names)


def by_author(condition: AlertCondition, item: AlertItem) -> bool:
    """Whether a comment is by one of ``authors`` or replies to one of ``replies_to`` (true
    when the condition names neither)."""
    if not condition.authors and not condition.replies_to:
        return True
    author = (item.author or "").strip().casefold()
    parent = (item.parent_author or "").strip().casefold()
    return bool(
        (author and author in _folded(condition.authors))
        or (parent and parent in _folded(condition.replies_to))
    )


def select_items(
    config: AppConfig,
    condition: AlertCondition,
    items: Sequence[AlertItem],
    entry_passes: Callable[[AlertItem], bool],
) -> list[AlertItem]:
    """The items an alert reports, in the order given."""
    sources = source_names(config, condition)
    kept = []
    for item in items:
        if sources is not None and item.source_name not in sources:
            continue
        if item.kind == "comment" and not by_author(condition, item):
            continue
        if not entry_passes(item):
            continue
        kept.append(item)
    return kept


def needs_entry_rules(condition: AlertCondition) -> bool:
    """Whether entries must be checked against rules (a watch or inline entry rules)."""
    return bool(
        condition.watch
        or condition.include
        or condition.exclude
        or condition.max_age
        or condition.before
        or condition.after
    )
