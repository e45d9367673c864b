"""Tests for aggregator.select.rules (pure): levels, store-time screening, the SQL half of outputs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aggregator.config.schema import AppConfig
from aggregator.models import EntryData
from aggregator.select.filters import evaluate
from aggregator.select.rules import RuleBook, as_stored, candidate_query, screen_new_entries

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def config(**outputs: Any) -> AppConfig:
    return AppConfig.model_validate(
        {
            "defaults": {"exclude": [{"title": "^advert"}], "max_age": "30d"},
            "sources": [
                {"name": "a", "url": "https://a.example/f", "tags": ["x"]},
                {
                    "name": "b",
                    "url": "https://b.example/f",
                    "tags": ["y"],
                    "include": [{"title": "syria"}],
                    "max_age": "2d",
                },
            ],
            "outputs": [{"name": name, **fields} for name, fields in outputs.items()],
        }
    )


def data(title: str, hours: float = 0, key: str | None = None) -> EntryData:
    return EntryData(key=key or title, title=title, published_at=NOW - timedelta(hours=hours))


def test_levels_name_their_rules() -> None:
    book = RuleBook.from_config(config(out={"exclude": [{"author": "x"}]}))
    rules = book.for_output("out", "b")
    assert [r.name for r in rules.exclude] == ["defaults.exclude[0]", "outputs[0].exclude[0]"]
    assert [[r.name for r in group] for group in rules.include] == [["sources[1].include[0]"]]
    assert rules.max_age == timedelta(days=2) and rules.names["max_age"] == "sources[1].max_age"
    assert book.for_output("out", "gone") == book.defaults + book.outputs["out"]


def test_store_time_screening_skips_only_new_entries() -> None:
    ruleset = RuleBook.from_config(config()).for_storing("b")
    entries = [
        data("Syria now"),
        data("Advert: syria"),
        data("Weather"),
        data("Weather", key="old"),
    ]
    screened = screen_new_entries(
        ruleset,
        entries,
        {"old"},
        source_name="b",
        source_title="B",
        source_url="https://b.example/f",
        now=NOW,
    )
    assert [e.key for e in screened.kept] == ["Syria now", "old"]
    assert [(e.title, v.rule) for e, v in screened.skipped] == [
        ("Advert: syria", "defaults.exclude[0]"),
        ("Weather", "sources[1].include"),
    ]


def test_a_future_date_counts_as_now_when_storing() -> None:
    stored = as_stored(data("x", -72), "a", None, "u", NOW)
    assert stored.dated_at == NOW
    ruleset = RuleBook.from_config(config()).for_storing("a")
    assert evaluate(ruleset, stored, NOW).kept


def test_candidate_query_leaves_source_rules_to_python() -> None:
    cfg = config(
        out={"tags": ["y"], "after": NOW - timedelta(days=3), "min_comments": 2, "search": "s"}
    )
    query = candidate_query(cfg, RuleBook.from_config(cfg), cfg.output("out"), NOW, explain=False)
    assert query.source_names == ("b",)
    # The defaults' 30d and the output's 3d: the later bound wins; b's own 2d is not used.
    assert query.since == NOW - timedelta(days=3)
    assert (query.until, query.min_comments, query.search) == (None, 2, "s")


def test_candidate_query_for_every_source_and_for_explain() -> None:
    cfg = config(out={"max_age": "1d", "sort": "recent_activity", "candidates": 77})
    book = RuleBook.from_config(cfg)
    query = candidate_query(cfg, book, cfg.output("out"), NOW, explain=False)
    assert query.source_names == ("a", "b") and query.since == NOW - timedelta(days=1)
    explained = candidate_query(cfg, book, cfg.output("out"), NOW, explain=True)
    assert (explained.since, explained.until, explained.min_comments, explained.search) == (
        None,
        None,
        None,
        None,
    )
    assert (explained.sort, explained.window) == ("recent_activity", 77)


def test_documented_pattern_forms() -> None:
    """README: a keyword is a pattern; \\Q...\\E is literal text; \\b marks whole words."""
    cfg = config(out={"include": [{"title": r"\QC++\E"}, {"title": r"\bwar\b"}, {"source": "^a$"}]})
    rules = RuleBook.from_config(cfg).for_output("out", "b")
    now = NOW

    def kept(title: str) -> bool:
        return evaluate(rules, as_stored(data(title), "b", "B", "u", now), now).kept

    assert kept("Syria: learning c++") and not kept("Syria: learning c")
    assert kept("Syria: the war ends") and not kept("Syria: software")
