"""Tests for aggregator.select.selection (pure): paging, rules, search, dedupe, limit, shaping."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from factories import make_entry as stored_entry

from aggregator.models import SearchHit, StoredEntry
from aggregator.parse.sanitize import plain_text
from aggregator.select.dedupe import DedupedEntry, Duplicate
from aggregator.select.rule_compile import RuleSet, compile_rules
from aggregator.select.selection import CandidatePage, select_entries, shape_entry

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def make_entry(title: str, hours: float = 0, source: str = "a", **fields: Any) -> StoredEntry:
    """An entry of ``source`` published ``hours`` before NOW (tests.factories builds it)."""
    fields = {"published_at": NOW - timedelta(hours=hours), **fields}
    return stored_entry(title, source=source, **fields)


def pages_of(entries: Sequence[StoredEntry], size: int, read: list[int]) -> Iterator[CandidatePage]:
    for start in range(0, len(entries), size):
        read.append(start // size)
        yield CandidatePage(entries[start : start + size])


def everything(_source: str) -> RuleSet:
    return RuleSet()


def test_reads_only_the_pages_it_needs() -> None:
    entries = [make_entry(f"e{n}", n) for n in range(10)]
    read: list[int] = []
    selection = select_entries(pages_of(entries, 3, read), everything, NOW, limit=4)
    assert [e.title for e in selection.kept] == ["e0", "e1", "e2", "e3"]
    assert read == [0, 1]
    assert not selection.exhausted
    assert [c.verdict.rule for c in selection.candidates[4:]] == ["limit", "limit"]
    assert selection.candidates[5].verdict.explain() == (
        "dropped by limit: limit: beyond the output's limit of 4 entries"
    )


def test_keeps_reading_while_rules_drop_entries() -> None:
    entries = [make_entry("skip me", n) for n in range(7)] + [make_entry("keep", 8)]
    rules = compile_rules(exclude=[{"title": "skip"}], scope="outputs[0]")
    read: list[int] = []
    selection = select_entries(pages_of(entries, 2, read), lambda _: rules, NOW, limit=5)
    assert [e.title for e in selection.kept] == ["keep"]
    assert read == [0, 1, 2, 3] and selection.exhausted
    assert {c.verdict.rule for c in selection.candidates[:-1]} == {"outputs[0].exclude[0]"}


def test_a_copy_on_a_later_page_is_folded_into_the_earliest() -> None:
    newer = make_entry("Ceasefire talks", 1, source="a", link="https://news.example/x?utm_source=a")
    other = make_entry("Markets", 2, source="b")
    older = make_entry("Ceasefire talks resume", 5, source="b", link="https://news.example/x")
    read: list[int] = []
    selection = select_entries(pages_of([newer, other, older], 2, read), everything, NOW, limit=10)
    assert [(item.entry.title, len(item.duplicates)) for item in selection.entries] == [
        ("Markets", 0),
        ("Ceasefire talks resume", 1),
    ]
    verdict = selection.candidates[0].verdict
    assert (verdict.kept, verdict.rule, verdict.field) == (False, "duplicate", "link")
    assert 'the same link as "Ceasefire talks resume" from B' in verdict.explain()


def test_search_verdicts_when_search_is_checked_here() -> None:
    first, second = make_entry("one"), make_entry("two")
    hits = {first.id: SearchHit("comment", "the «tanf» base", "c1", "Ann")}
    selection = select_entries(
        [CandidatePage([first, second], hits)],
        everything,
        NOW,
        limit=10,
        search="tanf",
        search_rule="outputs[2].search",
    )
    assert selection.kept == [first]
    kept, dropped = (c.verdict for c in selection.candidates)
    assert kept.explain() == ("kept by outputs[2].search: search (comment by Ann): the «tanf» base")
    assert dropped.explain() == (
        "dropped by outputs[2].search: search: no match for 'tanf' in the entry or its comments"
    )


def test_search_already_applied_by_sql_is_not_checked_again() -> None:
    entry = make_entry("one")
    selection = select_entries([CandidatePage([entry])], everything, NOW, limit=5, search="x")
    assert selection.kept == [entry]


def test_rules_come_per_source() -> None:
    a, b = make_entry("x", source="a"), make_entry("x", 30 * 24, source="b")
    strict = compile_rules(max_age=timedelta(days=7), scope="sources[1]")
    rules = {"a": RuleSet(), "b": strict}
    selection = select_entries([CandidatePage([a, b])], rules.__getitem__, NOW, limit=5)
    assert selection.kept == [a]
    assert selection.candidates[1].verdict.rule == "sources[1].max_age"


# -- shaping -----------------------------------------------------------------------------------


def test_full_content_is_untouched_without_via_or_copies() -> None:
    entry = make_entry("t", content="<p>body</p>", summary="short")
    assert shape_entry(DedupedEntry(entry, ())) == entry


def test_summary_prefers_the_feeds_own_summary_and_drops_the_content() -> None:
    entry = make_entry("t", content="<p>long body</p>", summary="<p>short</p>")
    shaped = shape_entry(DedupedEntry(entry, ()), content="summary")
    assert (shaped.content, shaped.summary) == (None, "<p>short</p>")


def test_summary_of_long_content_is_cut_cleanly() -> None:
    body = "<p>" + " ".join(["<b>word</b>"] * 300) + "</p>"
    shaped = shape_entry(DedupedEntry(make_entry("t", content=body), ()), content="summary")
    assert shaped.content is None and shaped.summary is not None
    assert len(plain_text(shaped.summary, limit=None)) <= 501
    assert shaped.summary.endswith("\u2026</b></p>")


def test_via_and_also_in_lines_are_escaped_html() -> None:
    entry = make_entry("t", content="<p>body</p>", source_title="A & <B>")
    copy = Duplicate("c", "C's blog", "https://c.example/1", "p9", "link")
    odd = Duplicate("d", None, "javascript:alert(1)", "p10", "title")
    shaped = shape_entry(DedupedEntry(entry, (copy, odd)), via=True)
    assert shaped.content == (
        "<p>body</p>"
        '<p class="aggregator-via">via <a href="https://a.example/">A &amp; &lt;B&gt;</a></p>'
        '<p class="aggregator-also-in">Also in: <a href="https://c.example/1">C&#x27;s blog</a>, '
        "d</p>"
    )


def test_via_without_a_web_link_names_the_source_only() -> None:
    entry = make_entry("t", source_link=None, source_url="file:///srv/feed.xml")
    shaped = shape_entry(DedupedEntry(entry, ()), via=True)
    assert shaped.summary == '<p class="aggregator-via">via A</p>' and shaped.content is None


def test_per_source_limit_counts_each_page_apart() -> None:
    from datetime import UTC, datetime, timedelta

    from aggregator.select.dedupe import DedupedEntry
    from aggregator.select.selection import cap_floods
    from tests.factories import make_entry

    start = datetime(2026, 1, 1, tzinfo=UTC)
    entries = [
        make_entry(f"f{i}", source="flood", sort_at=start - timedelta(minutes=i)) for i in range(6)
    ] + [
        make_entry(f"c{i}", source="calm", sort_at=start - timedelta(hours=i + 1)) for i in range(4)
    ]
    kept, dropped = cap_floods([DedupedEntry(e) for e in entries], 2, None, 3)
    titles = [item.entry.title for item in kept]
    # Page 1 (3 entries): f0, f1, then c0; page 2 restarts the count.
    assert titles[:3] == ["f0", "f1", "c0"]
    assert titles[3:] == ["c1", "c2"]  # c3 would be a third of calm on page 2
    assert {verdict.rule for verdict in dropped.values()} == {"per_source_limit"}
