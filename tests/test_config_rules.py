"""Tests for the rule keys of aggregator.config: shapes, defaults, and errors at their line."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.config.loading import load_config
from aggregator.errors import ConfigError

GOOD = """\
defaults:
  exclude:
    - title: "^advert"
  max_age: 30d
sources:
  - name: moa
    url: https://moa.example/feed
    tags: [politics]
    include:
      - title: syria
    before: 2030-01-01
outputs:
  - name: syria
    sources: [moa]
    include:
      - title: "syria|iraq"
        author: b
      - category: middle-east
    exclude:
      - author: "^guest$"
    max_age: 7d
    after: 2024-05-01T12:00:00Z
    min_comments: 5
    search: "tanf OR deraa"
    sort: most_comments
    limit: 20
    content: summary
    via: true
    candidates: 800
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "aggregator.yaml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return [problem.removeprefix(f"{path}:") for problem in caught.value.problems]


def test_every_rule_key_is_read(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    output = config.output("syria")
    assert output.rule_items("include") == [
        {"title": "syria|iraq", "author": "b"},
        {"category": "middle-east"},
    ]
    assert output.rule_items("exclude") == [{"author": "^guest$"}]
    assert output.max_age == timedelta(days=7)
    assert output.after == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert (output.min_comments, output.search, output.sort) == (
        5,
        "tanf OR deraa",
        "most_comments",
    )
    assert (output.limit, output.content, output.via, output.candidates) == (
        20,
        "summary",
        True,
        800,
    )
    assert config.defaults.rule_items("exclude") == [{"title": "^advert"}]
    assert hash(config)  # the configuration stays hashable, rules and all
    assert config.defaults.max_age == timedelta(days=30)
    assert config.source("moa").before == date(2030, 1, 1)


def test_a_number_is_a_pattern_too(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, "outputs:\n  - name: x\n    include:\n      - title: 1984\n")
    )
    assert config.output("x").rule_items("include") == [{"title": "1984"}]


def test_output_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "outputs:\n  - name: all\n"))
    output = config.output("all")
    assert (output.sort, output.content, output.via, output.limit) == ("newest", "full", False, 50)
    assert (output.include, output.exclude, output.search, output.min_comments) == (
        (),
        (),
        None,
        None,
    )


def test_line_of_every_rule(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    lines = GOOD.splitlines()
    assert lines[config.line_of("outputs[0].exclude[0]") - 1] == '      - author: "^guest$"'
    assert lines[config.line_of("outputs[0].include") - 1] == "    include:"
    assert lines[config.line_of("outputs[0].max_age") - 1] == "    max_age: 7d"
    assert lines[config.line_of("defaults.exclude[0]") - 1] == '    - title: "^advert"'
    assert config.line_of("outputs[3]") is None


def test_bad_pattern_is_reported_at_its_own_line(tmp_path: Path) -> None:
    text = GOOD.replace('author: "^guest$"', 'author: "^guest(("')
    assert problems(tmp_path, text) == [
        "20: outputs[0].exclude[0].author: bad regular expression: missing ): ^guest(("
    ]


def test_the_second_field_of_an_item_is_reported_at_its_line(tmp_path: Path) -> None:
    text = GOOD.replace("author: b\n", "author: b(\n")
    assert problems(tmp_path, text) == [
        "17: outputs[0].include[0].author: bad regular expression: missing ): b("
    ]


def test_every_bad_rule_in_the_file_is_reported(tmp_path: Path) -> None:
    text = (
        GOOD.replace('- title: "^advert"', '- title: "(?<=x)advert"')
        .replace("      - title: syria\n", "      - titel: syria\n")
        .replace("- category: middle-east", "- middle-east")
        .replace("max_age: 7d", "max_age: 0s")
        .replace('search: "tanf OR deraa"', 'search: "tanf OR"')
        .replace("min_comments: 5", "min_comments: -1")
        .replace("sort: most_comments", "sort: hottest")
        .replace("content: summary", "content: excerpt")
    )
    found = problems(tmp_path, text)
    assert found[0].startswith("3: defaults.exclude[0].title: bad regular expression: ")
    assert found[1:] == [
        "10: sources[0].include[0].titel: unknown field; use one of title, content, author, "
        "category, link, source",
        "18: outputs[0].include[1]: expected a mapping of fields (title, content, author, "
        "category, link, source) to patterns",
        "21: outputs[0].max_age: expected a positive duration",
        "23: outputs[0].min_comments: Input should be greater than or equal to 0",
        '24: outputs[0].search: bad search query: fts5: syntax error near "" '
        '(see README.md, "Search query syntax")',
        "25: outputs[0].sort: 'hottest' is not allowed: 'newest', 'most_comments' or "
        "'recent_activity'",
        "27: outputs[0].content: 'excerpt' is not allowed: 'full' or 'summary'",
    ]


def test_search_and_min_comments_belong_to_outputs_only(tmp_path: Path) -> None:
    text = GOOD.replace("    before: 2030-01-01\n", "    before: 2030-01-01\n    search: x\n")
    assert problems(tmp_path, text) == ["12: sources[0].search: unknown key"]


def test_killfile_and_comment_patterns_point_at_their_item(tmp_path: Path) -> None:
    text = GOOD.replace(
        "    candidates: 800\n",
        '    candidates: 800\n    killfile: ["ok", "/a(/"]\n    comments_exclude: ["[x"]\n',
    )
    assert problems(tmp_path, text) == [
        "30: outputs[0].killfile[1]: bad regular expression: missing ): a(",
        "31: outputs[0].comments_exclude[0]: bad regular expression: missing ]: [x",
    ]
