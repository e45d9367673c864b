"""Choose an output's entries from its candidates, and say why each was kept or dropped.

Pure: receives candidate entries a page at a time (already in the output's order, from
:meth:`Storage.iter_candidates`), the rules that apply to each source, and ``now``; returns a
:class:`Selection`. It reads no storage and no clock. The pipeline, per page:

1. the entry rules (:func:`aggregator.select.filters.evaluate`: dates, comments, include/exclude);
2. the full-text search, when the output has one and SQL did not already apply it;
3. duplicates across sources (:func:`aggregator.select.dedupe.dedupe`) among the entries kept so far;
4. flood control (:func:`cap_floods`): ``new_source_limit`` and ``per_source_limit``;

and it stops as soon as ``limit`` distinct entries are kept, or the candidates run out. So a
page is read only when the entries before it were not enough.

:func:`shape_entry` then prepares a kept entry for rendering: a summary instead of the full
content, a visible "via Source" line, and an "Also in: ..." line naming its copies.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from aggregator.models import SearchHit, StoredEntry
from aggregator.parse.sanitize import strip_images
from aggregator.select.dedupe import DedupedEntry, Duplicate, dedupe
from aggregator.select.filters import RuleMatch, Verdict, evaluate
from aggregator.select.rule_compile import RuleSet
from aggregator.select.shaping import summarize

SUMMARY_CHARS = 500
_REASONS = {"guid": "the same guid", "link": "the same link", "title": "the same title"}


@dataclass(frozen=True)
class CandidatePage:
    """One page of candidates in output order.

    ``hits`` maps entry ids to where the output's search matched them. ``None`` means the
    search is not checked here: the output has none, or SQL already kept only matches.
    """

    entries: Sequence[StoredEntry]
    hits: Mapping[int, SearchHit] | None = None


@dataclass(frozen=True)
class Candidate:
    """One examined entry and the verdict on it."""

    entry: StoredEntry
    verdict: Verdict


@dataclass(frozen=True)
class Selection:
    """What an output shows and, for ``preview --explain``, every candidate's verdict.

    ``entries`` are the kept entries in output order (each with the copies it stands for);
    ``candidates`` every entry examined, in order; ``exhausted`` is true when every candidate
    SQL returned was examined (the output may then hold fewer than ``limit`` entries).
    """

    entries: tuple[DedupedEntry, ...]
    candidates: tuple[Candidate, ...]
    exhausted: bool

    @property
    def kept(self) -> list[StoredEntry]:
        return [item.entry for item in self.entries]


def select_entries(
    pages: Iterable[CandidatePage],
    rules_for: Callable[[str], RuleSet],
    now: datetime,
    *,
    limit: int,
    search: str | None = None,
    search_rule: str = "search",
    per_source_limit: int | None = None,
    new_source_limit: int | None = None,
    page_size: int | None = None,
) -> Selection:
    """Apply rules, search and dedupe to candidates until ``limit`` entries are kept.

    ``rules_for(source_name)`` gives the combined rules for that source's entries.
    ``search_rule`` names the search in verdicts (``outputs[0].search``). Stops reading
    ``pages`` once enough entries are kept. ``per_source_limit`` and ``new_source_limit``
    are the output's flood control (:func:`cap_floods`); ``page_size`` is the size of one
    output page for ``per_source_limit`` (``limit`` when not given).
    """
    examined: list[Candidate] = []
    passed: list[StoredEntry] = []
    groups: list[DedupedEntry] = []
    capped: dict[str, Verdict] = {}
    exhausted = True
    for page in pages:
        for entry in page.entries:
            verdict = evaluate(rules_for(entry.source_name), entry, now)
            if verdict.kept and search and page.hits is not None:
                verdict = _search_verdict(verdict, page.hits.get(entry.id), search, search_rule)
            examined.append(Candidate(entry, verdict))
            if verdict.kept:
                passed.append(entry)
        groups, capped = cap_floods(
            dedupe(passed), per_source_limit, new_source_limit, page_size or limit
        )
        if len(groups) >= limit:
            exhausted = False
            break
    shown = tuple(groups[:limit])
    verdicts = _final_verdicts(examined, groups, shown, limit, capped)
    return Selection(shown, tuple(verdicts), exhausted)


def cap_floods(
    groups: Sequence[DedupedEntry],
    per_source_limit: int | None,
    new_source_limit: int | None,
    page_size: int,
) -> tuple[list[DedupedEntry], dict[str, Verdict]]:
    """Keep one source from burying the others; return the entries kept and why others left.

    ``new_source_limit``: of the entries one source brought in a single poll that take their
    place from the time of that poll (no date of their own in the past: an undated archive, a
    re-platformed blog), only the first ``new_source_limit`` in output order are shown; the
    others stay stored and searchable but are left out. Entries with their own past dates are
    already sorted by them and are not counted. ``per_source_limit``: at most that many
    entries of one source on each output page of ``page_size`` entries (the rest are left
    out, not pushed to later pages). ``groups`` are in output order.
    """
    if per_source_limit is None and new_source_limit is None:
        return list(groups), {}
    kept: list[DedupedEntry] = []
    dropped: dict[str, Verdict] = {}
    batches: dict[tuple[str, datetime], int] = {}
    on_page: dict[str, int] = {}
    for item in groups:
        entry = item.entry
        if new_source_limit is not None and entry.sort_at == entry.first_seen_at:
            batch = (entry.source_name, entry.first_seen_at)
            batches[batch] = batches.get(batch, 0) + 1
            if batches[batch] > new_source_limit:
                text = (
                    f"one of more than {new_source_limit} undated entries {entry.source_name} "
                    "brought in one poll (new_source_limit)"
                )
                dropped[entry.public_id] = Verdict(
                    False,
                    "new_source_limit",
                    text,
                    (RuleMatch("new_source_limit", "new_source_limit", "", text),),
                )
                continue
        if per_source_limit is not None:
            if len(kept) % page_size == 0:
                on_page = {}
            count = on_page.get(entry.source_name, 0)
            if count >= per_source_limit:
                text = (
                    f"more than {per_source_limit} entries of {entry.source_name} on one page "
                    "(per_source_limit)"
                )
                dropped[entry.public_id] = Verdict(
                    False,
                    "per_source_limit",
                    text,
                    (RuleMatch("per_source_limit", "per_source_limit", "", text),),
                )
                continue
            on_page[entry.source_name] = count + 1
        kept.append(item)
    return kept, dropped


def _search_verdict(verdict: Verdict, hit: SearchHit | None, query: str, rule: str) -> Verdict:
    if hit is None:
        text = f"no match for {query!r} in the entry or its comments"
        return Verdict(False, rule, text, (RuleMatch(rule, "search", "", text),))
    where = "entry" if hit.where == "entry" else f"comment by {hit.comment_author or 'anonymous'}"
    match = RuleMatch(rule, f"search ({where})", "", hit.text)
    return Verdict(True, verdict.rule or rule, verdict.reason, (*verdict.matches, match))


def _final_verdicts(
    examined: list[Candidate],
    groups: list[DedupedEntry],
    shown: tuple[DedupedEntry, ...],
    limit: int,
    capped: Mapping[str, Verdict],
) -> Iterable[Candidate]:
    """The verdicts once dedupe and the limit are known: copies and overflow are dropped."""
    shown_ids = {item.entry.public_id for item in shown}
    copy_of: dict[str, tuple[StoredEntry, Duplicate]] = {
        duplicate.public_id: (item.entry, duplicate)
        for item in groups
        for duplicate in item.duplicates
    }
    for candidate in examined:
        entry, verdict = candidate.entry, candidate.verdict
        if not verdict.kept or entry.public_id in shown_ids:
            yield candidate
        elif entry.public_id in capped:
            yield Candidate(entry, capped[entry.public_id])
        elif entry.public_id in copy_of:
            kept, duplicate = copy_of[entry.public_id]
            text = (
                f"{_REASONS.get(duplicate.reason, duplicate.reason)} as "
                f'"{kept.title}" from {kept.source_title or kept.source_name}, kept as the '
                "earliest copy"
            )
            match = RuleMatch("duplicate", duplicate.reason, "", text)
            yield Candidate(entry, Verdict(False, "duplicate", text, (match,)))
        else:
            text = f"beyond the output's limit of {limit} entries"
            yield Candidate(
                entry, Verdict(False, "limit", text, (RuleMatch("limit", "limit", "", text),))
            )


# -- shaping ------------------------------------------------------------------------------------


def shape_entry(
    item: DedupedEntry,
    *,
    content: str = "full",
    via: bool = False,
    images: str = "keep",
    content_from: str = "full_text",
) -> StoredEntry:
    """The entry as an output publishes it.

    ``content_from`` chooses the text of an entry that has a full text (the article fetched
    from its page, ``full_text``): ``"full_text"`` publishes the article as the content and the
    feed's own text as the summary; ``"feed"`` the feed's text only; ``"both"`` the feed's
    text, a rule, then the article. An entry without a full text keeps the feed's text.
    ``content="summary"`` replaces the full content by a summary (the feed's own summary, or
    the content, cut cleanly at about :data:`SUMMARY_CHARS` characters by
    :func:`aggregator.select.shaping.summarize`). ``via`` appends a visible "via Source" line; copies
    found in other sources are named in an "Also in: ..." line. ``images="strip"`` removes
    images (:func:`aggregator.parse.sanitize.strip_images`). Nothing else changes.
    """
    entry = item.entry
    body, summary = entry.content, entry.summary
    if entry.full_text and content_from == "full_text":
        body, summary = entry.full_text, entry.summary or entry.content
    elif entry.full_text and content_from == "both":
        own = entry.content or entry.summary
        body = f"{own}<hr>{entry.full_text}" if own else entry.full_text
    if images == "strip":
        body, summary = strip_images(body), strip_images(summary)
    if content == "summary":
        body, summary = None, summarize(entry.summary or entry.content, SUMMARY_CHARS) or None
    lines = []
    if via:
        lines.append(via_line(entry))
    if item.duplicates:
        lines.append(also_in_line(item.duplicates))
    if not lines:
        if body is entry.content and summary is entry.summary:
            return entry  # full content, no extra line: nothing to change
        return replace(entry, content=body, summary=summary)
    extra = "".join(lines)
    if body is None and summary is None:
        summary = extra
    else:
        body = body + extra if body is not None else None
        summary = summary + extra if summary is not None else None
    return replace(entry, content=body, summary=summary)


def via_line(entry: StoredEntry) -> str:
    """``<p>via <a href="...">Source Title</a></p>``, linking the source's site when known."""
    name = html.escape(entry.source_title or entry.source_name)
    link = entry.source_link or (
        entry.source_url if entry.source_url.startswith(("http:", "https:")) else None
    )
    named = f'<a href="{html.escape(link, quote=True)}">{name}</a>' if link else name
    return f'<p class="aggregator-via">via {named}</p>'


def also_in_line(duplicates: Sequence[Duplicate]) -> str:
    """``<p>Also in: <a href="...">Source B</a>, Source C</p>``, each linking its own copy."""
    names = []
    for duplicate in duplicates:
        name = html.escape(duplicate.source_title or duplicate.source_name)
        if duplicate.link and duplicate.link.startswith(("http:", "https:")):
            name = f'<a href="{html.escape(duplicate.link, quote=True)}">{name}</a>'
        names.append(name)
    return f'<p class="aggregator-also-in">Also in: {", ".join(names)}</p>'
