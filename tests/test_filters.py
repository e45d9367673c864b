"""Tests for aggregator.select.rule_compile and .filters: rule semantics, errors, explanations, comment rules."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from factories import make_entry as stored_entry
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.errors import AggregatorError
from aggregator.models import StoredComment, StoredEntry
from aggregator.select.filters import (
    MAX_MATCH_CHARS,
    comment_verdict,
    evaluate,
    keep,
    keep_comment,
    select,
)
from aggregator.select.rule_compile import (
    RuleError,
    combine_comment_rules,
    combine_rules,
    compile_comment_rules,
    compile_rules,
)

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)
CASES = sorted((Path(__file__).parent / "data" / "filters").glob("*.yaml"))


def make_entry(**fields: Any) -> StoredEntry:
    """One entry of "moa", published an hour before NOW (tests.factories builds it)."""
    defaults = {"id": 1, "public_id": "e1", "key": "k1", "source_title": "Moon of Alabama"}
    fields = {**defaults, "source_url": "https://example.org/feed", "source_link": None, **fields}
    fields.setdefault("link", "https://example.org/post/1")
    fields.setdefault("title", "A title")
    fields.setdefault("published_at", NOW - timedelta(hours=1))
    return stored_entry(source="moa", **fields)


def make_comment(**fields: Any) -> StoredComment:
    values: dict[str, Any] = {
        "id": 1,
        "public_id": "c1",
        "entry_id": 1,
        "entry_public_id": "e1",
        "key": "k1",
        "content": "<p>Nice post</p>",
        "author": "Alice",
        "author_url": None,
        "published_at": None,
        "first_seen_at": NOW,
        "link": None,
        "number": None,
    }
    values.update(fields)
    return StoredComment(**values)


# -- data-driven cases: tests/data/filters/*.yaml ---------------------------------------------


@pytest.mark.parametrize("path", CASES, ids=[path.stem for path in CASES])
def test_case_file(path: Path) -> None:
    case = yaml.safe_load(path.read_text())
    rules = compile_rules(case.get("include"), case.get("exclude"))
    for raw in case["entries"]:
        expected = {key: raw.pop(key) for key in ("expect", "rule", "field", "text") if key in raw}
        entry = make_entry(**raw)
        verdict = evaluate(rules, entry, NOW)
        assert verdict.kept == (expected["expect"] == "kept"), (raw, verdict)
        assert keep(rules, entry, NOW) == verdict.kept
        if "rule" in expected:
            assert verdict.rule == expected["rule"], (raw, verdict)
        if "field" in expected:
            assert verdict.field == expected["field"], (raw, verdict)
        if "text" in expected:
            assert expected["text"] in (verdict.text or ""), (raw, verdict)


def test_case_files_exist() -> None:
    assert len(CASES) >= 5


# -- semantics ----------------------------------------------------------------------------------


def test_no_rules_keeps_everything() -> None:
    verdict = evaluate(compile_rules(), make_entry(), NOW)
    assert verdict.kept
    assert verdict.rule is None
    assert verdict.explain() == "kept: no rule applies"


def test_exclude_only_keeps_what_does_not_match() -> None:
    rules = compile_rules(exclude=[{"title": "crypto"}])
    assert keep(rules, make_entry(title="Gardening"), NOW)
    assert not keep(rules, make_entry(title="Crypto news"), NOW)


def test_category_matches_any_category() -> None:
    rules = compile_rules(include=[{"category": "^war$"}])
    assert keep(rules, make_entry(categories=("Politics", "War")), NOW)
    assert not keep(rules, make_entry(categories=("Warfare",)), NOW)
    assert not keep(rules, make_entry(categories=()), NOW)


def test_missing_field_never_matches() -> None:
    rules = compile_rules(exclude=[{"author": ".*"}])
    assert keep(rules, make_entry(author=None), NOW)
    assert not keep(rules, make_entry(author="Bob"), NOW)


def test_select_keeps_order() -> None:
    rules = compile_rules(exclude=[{"title": "b"}])
    entries = [make_entry(id=n, title=title) for n, title in enumerate("acbd")]
    assert [entry.title for entry in select(rules, entries, NOW)] == ["a", "c", "d"]


def test_numbers_in_yaml_are_patterns() -> None:
    rules = compile_rules(include=[{"title": 1984}])
    assert keep(rules, make_entry(title="Orwell: 1984"), NOW)


# -- thresholds ---------------------------------------------------------------------------------


def test_max_age_uses_published_else_first_seen() -> None:
    rules = compile_rules(max_age=timedelta(days=7))
    assert keep(rules, make_entry(published_at=NOW - timedelta(days=6)), NOW)
    old = make_entry(published_at=NOW - timedelta(days=8))
    verdict = evaluate(rules, old, NOW)
    assert not verdict.kept
    assert verdict.rule == "max_age"
    assert "older than 7d" in verdict.explain()
    undated = make_entry(published_at=None, first_seen_at=NOW - timedelta(days=8))
    assert not keep(rules, undated, NOW)


def test_before_and_after_accept_dates_and_naive_datetimes() -> None:
    rules = compile_rules(after=date(2024, 1, 1), before=datetime(2024, 2, 1))
    assert keep(rules, make_entry(published_at=datetime(2024, 1, 15, tzinfo=UTC)), NOW)
    assert (
        evaluate(rules, make_entry(published_at=datetime(2023, 12, 31, tzinfo=UTC)), NOW).rule
        == "after"
    )
    assert (
        evaluate(rules, make_entry(published_at=datetime(2024, 2, 1, tzinfo=UTC)), NOW).rule
        == "before"
    )


def test_min_comments() -> None:
    rules = compile_rules(min_comments=5)
    assert keep(rules, make_entry(comment_count=5), NOW)
    verdict = evaluate(rules, make_entry(comment_count=2), NOW)
    assert (verdict.kept, verdict.rule, verdict.field) == (False, "min_comments", "comments")


# -- combining levels ---------------------------------------------------------------------------


def test_combine_adds_excludes_and_requires_every_include_level() -> None:
    defaults = compile_rules(
        include=[{"title": "syria"}], exclude=[{"author": "spam"}], scope="defaults"
    )
    output = compile_rules(
        include=[{"category": "news"}], max_age=timedelta(days=3), scope="outputs.mid"
    )
    rules = combine_rules(defaults, output)
    assert rules == defaults + output
    both = make_entry(title="Syria", categories=("News",))
    verdict = evaluate(rules, both, NOW)
    assert verdict.kept
    assert [m.rule for m in verdict.matches] == ["defaults.include[0]", "outputs.mid.include[0]"]
    assert not keep(rules, make_entry(title="Syria"), NOW)
    assert evaluate(rules, replace(both, author="spammer"), NOW).rule == "defaults.exclude[0]"
    assert not keep(rules, replace(both, published_at=NOW - timedelta(days=4)), NOW)


def test_combine_takes_the_strictest_threshold() -> None:
    a = compile_rules(max_age=timedelta(days=7), min_comments=1, after=date(2024, 1, 1))
    b = compile_rules(max_age=timedelta(days=2), min_comments=3, after=date(2023, 1, 1))
    for rules in (combine_rules(a, b), combine_rules(b, a)):
        assert rules.max_age == timedelta(days=2)
        assert rules.min_comments == 3
        assert rules.after == datetime(2024, 1, 1, tzinfo=UTC)


def test_combine_of_nothing_keeps_everything() -> None:
    assert keep(combine_rules(), make_entry(), NOW)


# -- order independence (property) --------------------------------------------------------------

WORDS = ["syria", "iraq", "war", "peace", "guest", "news", "Sport"]
field_names = st.sampled_from(["title", "author", "category", "source", "content"])
patterns = st.sampled_from(["syria", "^war", "peace$", "guest|news", "s", "^Sport$", "q"])
items = st.dictionaries(field_names, patterns, min_size=1, max_size=3)
entries = st.builds(
    make_entry,
    title=st.lists(st.sampled_from(WORDS), max_size=3).map(" ".join),
    author=st.none() | st.sampled_from(WORDS),
    categories=st.lists(st.sampled_from(WORDS), max_size=2).map(tuple),
    source_name=st.sampled_from(["moa", "news-site"]),
    content=st.none() | st.lists(st.sampled_from(WORDS), max_size=4).map(" ".join),
)


@settings(max_examples=200, deadline=None)
@given(
    include=st.lists(items, max_size=4),
    exclude=st.lists(items, max_size=4),
    sample=st.lists(entries, min_size=1, max_size=5),
    seed=st.integers(0, 2**32),
)
def test_rule_order_never_changes_the_decision(include, exclude, sample, seed) -> None:
    rng = random.Random(seed)
    rules = compile_rules(include, exclude)
    shuffled = compile_rules(rng.sample(include, len(include)), rng.sample(exclude, len(exclude)))
    for entry in sample:
        assert keep(rules, entry, NOW) == keep(shuffled, entry, NOW)
        assert evaluate(rules, entry, NOW).kept == keep(rules, entry, NOW)


@settings(max_examples=200, deadline=None)
@given(
    include=st.lists(items, max_size=3),
    exclude=st.lists(items, min_size=1, max_size=3),
    sample=st.lists(entries, min_size=1, max_size=5),
)
def test_exclude_wins_and_filtering_is_idempotent(include, exclude, sample) -> None:
    rules = compile_rules(include, exclude)
    excluded_only = compile_rules(exclude=exclude)
    kept = select(rules, sample, NOW)
    assert select(rules, kept, NOW) == kept
    for entry in sample:
        if not keep(excluded_only, entry, NOW):
            assert not keep(rules, entry, NOW)


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("include", "exclude", "path", "words"),
    [
        (
            None,
            [{"title": "ok"}, {"author": "(unclosed"}],
            "exclude[1].author",
            "bad regular expression",
        ),
        ([{"title": r"(a)\1"}], None, "include[0].title", "bad regular expression"),
        ([{"title": "(?<=a)b"}], None, "include[0].title", "bad regular expression"),
        ([{"titel": "x"}], None, "include[0].titel", "unknown field"),
        ([{}], None, "include[0]", "expected a mapping"),
        (["syria"], None, "include[0]", "expected a mapping"),
        ([{"title": ""}], None, "include[0].title", "empty pattern"),
        ([{"title": ["a", "b"]}], None, "include[0].title", "expected a regular expression"),
        ({"title": "x"}, None, "include", "expected a list"),
    ],
)
def test_bad_rules_raise_rule_error_naming_the_item(include, exclude, path, words) -> None:
    with pytest.raises(RuleError) as caught:
        compile_rules(include, exclude)
    assert caught.value.path == path
    assert str(caught.value).startswith(f"{path}: ")
    assert words in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, AggregatorError)


@pytest.mark.parametrize(
    ("keyword", "value"),
    [("max_age", timedelta(0)), ("min_comments", -1), ("min_comments", True), ("before", "2024")],
)
def test_bad_thresholds_raise_rule_error(keyword: str, value: Any) -> None:
    with pytest.raises(RuleError, match=f"^{keyword}: "):
        compile_rules(**{keyword: value})


def test_rule_error_leaves_stderr_quiet(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuleError):
        compile_rules([{"title": "("}])
    assert capfd.readouterr().err == ""


# -- pathological input ---------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["(a+)+$", "(a|a)*b", "(a*)*c", "(.*a){20}"])
def test_catastrophic_patterns_return(pattern: str) -> None:
    # With a backtracking engine each of these takes longer than the age of the universe on
    # this text; RE2 answers in linear time, so the test finishes at once or not at all.
    rules = compile_rules(exclude=[{"title": pattern}, {"content": pattern}])
    entry = make_entry(title="a" * 5_000 + "!", content="<p>" + "a" * 50_000 + "!</p>")
    verdict = evaluate(rules, entry, NOW)
    assert verdict.kept is keep(rules, entry, NOW)


def test_only_the_start_of_a_huge_field_is_examined() -> None:
    rules = compile_rules(exclude=[{"content": "needle"}])
    early = make_entry(content="needle " + "x" * (MAX_MATCH_CHARS * 3))
    late = make_entry(content="x " * MAX_MATCH_CHARS + "needle")
    assert not keep(rules, early, NOW)
    assert keep(rules, late, NOW)


# -- explanations --------------------------------------------------------------------------------


def test_explain_names_rule_field_and_text() -> None:
    rules = compile_rules(exclude=[{"title": "nothing"}, {"content": "sponsor(ed)?"}])
    body = "<p>" + "word " * 40 + "this post is <b>Sponsored</b> by ACME " + "more " * 40 + "</p>"
    verdict = evaluate(rules, make_entry(content=body), NOW)
    assert not verdict.kept
    assert (verdict.rule, verdict.field) == ("exclude[1]", "content")
    assert "Sponsored" in (verdict.text or "")
    assert len(verdict.text or "") < 200
    assert verdict.text and verdict.text.startswith("\u2026") and verdict.text.endswith("\u2026")
    assert verdict.explain().startswith("dropped by exclude[1]: content /sponsor(ed)?/ matched ")


def test_explain_lists_every_field_of_an_and_item() -> None:
    rules = compile_rules(include=[{"title": "syria", "author": "bob"}])
    verdict = evaluate(rules, make_entry(title="Syria", author="Bob"), NOW)
    assert {match.field for match in verdict.matches} == {"title", "author"}
    assert "title /syria/" in verdict.explain() and "author /bob/" in verdict.explain()


def test_explain_when_nothing_included() -> None:
    verdict = evaluate(compile_rules(include=[{"title": "x"}]), make_entry(title="y"), NOW)
    assert verdict.explain() == "dropped by include: include: none of title /x/ matched"
    assert verdict.reason == "matched no include rule"


def test_excerpt_keeps_multibyte_text_whole() -> None:
    rules = compile_rules(exclude=[{"title": "ü"}])
    verdict = evaluate(rules, make_entry(title="ä" * 100 + "ü" + "ö" * 100), NOW)
    assert verdict.text is not None
    assert set(verdict.text) <= set("äöü\u2026")
    assert "ü" in verdict.text


# -- comments ---------------------------------------------------------------------------------------


def test_killfile_exact_name_ignores_case_and_spaces() -> None:
    rules = compile_comment_rules(["Troll"])
    verdict = comment_verdict(rules, make_comment(author="  tROLL "))
    assert (verdict.kept, verdict.rule, verdict.field) == (False, "killfile[0]", "author")
    assert keep_comment(rules, make_comment(author="Trolling"))
    assert keep_comment(rules, make_comment(author=None))


def test_killfile_regex_form() -> None:
    rules = compile_comment_rules(["nobody", "/^anon/i", "/^Bot$/"])
    assert comment_verdict(rules, make_comment(author="Anonymous")).rule == "killfile[1]"
    assert not keep_comment(rules, make_comment(author="Bot"))
    assert keep_comment(rules, make_comment(author="bot"))  # no i flag: case matters
    assert keep_comment(rules, make_comment(author="Not anon"))


@pytest.mark.parametrize(
    ("killfile", "words"),
    [
        (["/x/q"], "unknown regular expression flag 'q'"),
        (["/(/"], "bad regular expression"),
        ([""], "expected"),
    ],
)
def test_bad_killfile_entries(killfile: list[str], words: str) -> None:
    with pytest.raises(RuleError, match=r"^killfile\[0\]: ") as caught:
        compile_comment_rules(killfile)
    assert words in str(caught.value)


def test_comment_exclude_patterns_match_visible_text() -> None:
    rules = compile_comment_rules([], ["buy now", "viagra"])
    verdict = comment_verdict(rules, make_comment(content="<p>Cheap! <b>BUY</b>   now</p>"))
    assert (verdict.kept, verdict.rule, verdict.field, verdict.text) == (
        False,
        "exclude[0]",
        "content",
        "Cheap! BUY now",
    )
    assert keep_comment(rules, make_comment(content="<a href='/buy now'>link</a>"))
    with pytest.raises(RuleError, match=r"^exclude\[0\]: bad regular expression"):
        compile_comment_rules([], ["(?P<x"])


def test_combine_comment_rules() -> None:
    rules = combine_comment_rules(
        compile_comment_rules(["alice"], scope="defaults"),
        compile_comment_rules(["/^bob/i"], ["spam"], scope="sources.moa"),
    )
    assert comment_verdict(rules, make_comment(author="Alice")).rule == "defaults.killfile[0]"
    assert comment_verdict(rules, make_comment(author="Bobby")).rule == "sources.moa.killfile[0]"
    assert not keep_comment(rules, make_comment(author="Carol", content="spam"))
    assert keep_comment(rules, make_comment(author="Carol"))
