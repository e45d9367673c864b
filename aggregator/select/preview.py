"""Format ``aggregator preview``: an output's entries and, with ``--explain``, every verdict.

Pure: turns :class:`~aggregator.select.selection.Selection` values into lines of text or a JSON
document. It reads nothing and writes nothing; :mod:`aggregator.cli` prints what it returns.

Each verdict names its rule by its place in the configuration (``outputs[0].exclude[1]``) and,
when the rule is written in the file, by its line (``config/aggregator.yaml:17``), so that a
surprising verdict leads straight to the rule behind it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from aggregator.config.outputs import OutputConfig
from aggregator.config.schema import AppConfig
from aggregator.models import RewriteRule, SourceRewrites, StoredEntry
from aggregator.select.dedupe import DedupedEntry
from aggregator.select.filters import Verdict
from aggregator.select.selection import Selection

_REASONS = {"guid": "same guid", "link": "same link", "title": "same title"}


def rule_location(config: AppConfig, rule: str | None, where: str) -> str | None:
    """``config/aggregator.yaml:17`` for a rule written in the file, else ``None``."""
    line = config.line_of(rule) if rule else None
    return f"{where}:{line}" if line else None


def explain_verdict(config: AppConfig, verdict: Verdict, where: str) -> str:
    """:meth:`Verdict.explain` with the rule's place in the file added after its name."""
    text = verdict.explain()
    location = rule_location(config, verdict.rule, where)
    if location and verdict.rule:
        text = text.replace(f" by {verdict.rule}", f" by {verdict.rule} ({location})", 1)
    return text


def preview_text(
    config: AppConfig,
    output: OutputConfig,
    shown: Selection,
    explained: Selection | None,
    where: str,
    rewrites: Sequence[SourceRewrites] = (),
) -> Iterator[str]:
    """Human lines: a header, the entries, then (``explained``) every candidate's verdict and
    what each source's rewrite rules change in its feed now (``rewrites``)."""
    sources = ", ".join(source.name for source in config.sources_for(output)) or "none"
    count = len(shown.entries)
    yield (
        f"{output.name}: {output.display_title}: {count} entr{'y' if count == 1 else 'ies'} "
        f"(sources: {sources}; sort: {output.sort}; limit: {output.limit})"
    )
    for item in shown.entries:
        yield from _entry_lines(item)
    if explained is None:
        return
    yield ""
    yield f"Candidates in output order ({len(explained.candidates)} examined):"
    shown_ids = {item.entry.public_id for item in shown.entries}
    for candidate in explained.candidates:
        entry, verdict = candidate.entry, candidate.verdict
        state = "kept" if entry.public_id in shown_ids else "dropped"
        yield f"  {state:8} {_date(entry)}  {entry.source_name}  {entry.title or '(untitled)'}"
        reason = explain_verdict(config, verdict, where)
        if verdict.kept and entry.public_id not in shown_ids:
            reason += "; but not in the output now (see the note below)"
        yield f"           {reason}"
    missing = shown_ids - {candidate.entry.public_id for candidate in explained.candidates}
    if not explained.exhausted or missing:
        yield ""
        yield (
            f"Note: --explain examined the first {len(explained.candidates)} entries of the "
            f"selected sources in output order (the output's `candidates` window is "
            f"{output.candidates}); entries beyond them are not explained."
        )
    yield from rewrite_lines(config, rewrites, where)


def describe_rule(rule: RewriteRule) -> str:
    """A rewrite rule in a few words: ``remove 'div.ad'``, ``hosts youtube.com→yewtu.be``."""
    if rule.kind == "hosts":
        return "hosts " + ", ".join(f"{old}→{new}" for old, new in rule.hosts)
    text = f"{rule.kind} {rule.pattern!r}"
    if rule.kind != "remove":
        text += f" with {rule.replacement!r}"
    if rule.fields:
        text += f" in {', '.join(rule.fields)}"
    return text


def rewrite_lines(
    config: AppConfig, rewrites: Sequence[SourceRewrites], where: str
) -> Iterator[str]:
    """For each source with rewrite rules: its rules (with their lines in the file) and, per
    rule, what it changes in the source's feed as served now."""
    if not rewrites:
        return
    yield ""
    yield "Rewrite rules (applied before storing; each source's feed fetched now):"
    for found in rewrites:
        yield f"  {found.source}:"
        for rule in found.rules:
            location = rule_location(config, rule.name, where)
            changes = [change for change in found.changes if change.rule == rule.name]
            total = sum(change.count for change in changes)
            entries = len({change.entry_key for change in changes})
            effect = (
                f"{total} change(s) in {entries} entr{'y' if entries == 1 else 'ies'}"
                if changes
                else "changes nothing now"
            )
            place = f" ({location})" if location else ""
            yield f"    {rule.name}{place}: {describe_rule(rule)}: {effect}"
            for change in changes:
                arrow = f": {change.before!r} → {change.after!r}" if change.before else ""
                yield (
                    f"      {change.entry_title or change.entry_key}: {change.field}"
                    f" ×{change.count}{arrow}"
                )
        if found.error:
            yield f"    (could not read the feed: {found.error})"


def _entry_lines(item: DedupedEntry) -> Iterator[str]:
    entry = item.entry
    comments = f"  [{entry.comment_count} comments]" if entry.comment_count else ""
    yield f"  {_date(entry)}  {entry.source_name}  {entry.title or '(untitled)'}{comments}"
    if entry.link:
        yield f"      {entry.link}"
    if item.duplicates:
        copies = ", ".join(
            f"{copy.source_name} ({_REASONS.get(copy.reason, copy.reason)})"
            for copy in item.duplicates
        )
        yield f"      also in: {copies}"


def preview_json(
    config: AppConfig,
    output: OutputConfig,
    shown: Selection,
    explained: Selection | None,
    where: str,
    rewrites: Sequence[SourceRewrites] = (),
) -> str:
    """One JSON document: ``entries`` (what the output holds) and, with ``explained``,
    ``candidates`` (every examined entry with ``kept``, ``rule``, ``line`` and ``matches``)
    and ``rewrites`` (each source's rules and what they change now)."""
    document: dict[str, Any] = {
        "output": output.name,
        "title": output.display_title,
        "sources": [source.name for source in config.sources_for(output)],
        "sort": output.sort,
        "limit": output.limit,
        "entries": [
            {
                **_entry_json(item.entry),
                "duplicates": [
                    {
                        "source": copy.source_name,
                        "link": copy.link,
                        "public_id": copy.public_id,
                        "same": copy.reason,
                    }
                    for copy in item.duplicates
                ],
            }
            for item in shown.entries
        ],
    }
    if explained is not None:
        shown_ids = {item.entry.public_id for item in shown.entries}
        document["candidates"] = [
            {
                **_entry_json(candidate.entry),
                "kept": candidate.entry.public_id in shown_ids,
                "rule": candidate.verdict.rule,
                "line": config.line_of(candidate.verdict.rule) if candidate.verdict.rule else None,
                "reason": candidate.verdict.reason,
                "matches": [
                    {
                        "rule": match.rule,
                        "field": match.field,
                        "pattern": match.pattern or None,
                        "text": match.text,
                    }
                    for match in candidate.verdict.matches
                ],
                "explain": explain_verdict(config, candidate.verdict, where),
            }
            for candidate in explained.candidates
        ]
        document["candidates_exhausted"] = explained.exhausted
        document["rewrites"] = [
            {
                "source": found.source,
                "error": found.error,
                "rules": [
                    {
                        "rule": rule.name,
                        "line": config.line_of(rule.name),
                        "kind": rule.kind,
                        "describe": describe_rule(rule),
                        "changes": [
                            {
                                "entry": change.entry_key,
                                "title": change.entry_title,
                                "field": change.field,
                                "count": change.count,
                                "before": change.before,
                                "after": change.after,
                            }
                            for change in found.changes
                            if change.rule == rule.name
                        ],
                    }
                    for rule in found.rules
                ],
            }
            for found in rewrites
        ]
    return json.dumps(document, ensure_ascii=False, indent=2)


def _entry_json(entry: StoredEntry) -> dict[str, Any]:
    return {
        "public_id": entry.public_id,
        "title": entry.title,
        "link": entry.link,
        "source": entry.source_name,
        "date": _iso(entry.dated_at),
        "comments": entry.comment_count,
    }


def _date(entry: StoredEntry) -> str:
    return entry.dated_at.strftime("%Y-%m-%d %H:%M")


def _iso(value: datetime) -> str:
    return value.isoformat()
