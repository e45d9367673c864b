"""Tests for aggregator.config: loading, validation, error lines, path resolution, the check CLI.

The invalid configurations live in ``tests/data/configs/``. Each mistaken line carries a comment
``# expect: <key.path>: <start of the message>``; the tests read those comments, so a fixture
states its own expectations and a new one is picked up without touching this file.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from aggregator.config.loading import CONFIG_ENV, load_config
from aggregator.errors import ConfigError

TESTS = Path(__file__).parent
REPO = TESTS.parent
CONFIGS = TESTS / "data" / "configs"
INVALID_CONFIGS = sorted(CONFIGS.glob("*.yaml"))
PROBLEM_LINE = re.compile(r"^(?P<path>.+?):(?P<line>\d+): (?P<rest>.+)$")


def expected_problems(path: Path) -> list[str]:
    """The problem lines a fixture announces with ``# expect:`` comments, in file order."""
    expected = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        _, marker, expectation = text.partition("# expect: ")
        if marker:
            expected.append(f"{path}:{number}: {expectation.strip()}")
    return expected


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None):
    """``python -m aggregator ARGS`` in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "aggregator", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
    )


# -- valid configurations ------------------------------------------------------------------------


def test_demo_config_loads():
    config = load_config(REPO / "config" / "aggregator.yaml")

    assert [source.name for source in config.sources] == ["riverbank", "harbour", "weather"]
    assert [output.name for output in config.outputs] == ["all", "local"]
    for source in config.sources:
        assert source.url.startswith("file:///")
        assert Path(source.url.removeprefix("file://")).is_file(), source.url
    assert config.database == (REPO / "var" / "aggregator.db").resolve()
    assert config.public_dir == (REPO / "var" / "public").resolve()
    assert [s.name for s in config.sources_for(config.output("local"))] == ["harbour", "weather"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("90s", timedelta(seconds=90)),
        ("1w", timedelta(weeks=1)),
        (45, timedelta(seconds=45)),
    ],
)
def test_durations(write_config, text, expected):
    path = write_config(
        sources=[{"name": "mill", "url": "http://127.0.0.1:9/a.rss", "interval": text}],
        defaults={"interval": text, "timeout": text},
    )

    config = load_config(path)

    assert config.defaults.interval == expected
    assert config.defaults.timeout == expected
    assert config.interval_for(config.sources[0]) == expected


@pytest.mark.parametrize("text", ["soon", "15 minutes", "-5m", "1y", True])
def test_bad_durations_are_errors(write_config, text):
    path = write_config(defaults={"interval": text})

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    [problem] = caught.value.problems
    rows = path.read_text().splitlines()
    line = next(n for n, row in enumerate(rows, start=1) if row.strip().startswith("interval:"))
    assert problem.startswith(f"{path}:{line}: defaults.interval: ")


def test_relative_paths_resolve_against_the_config_folder(tmp_path, monkeypatch):
    folder = tmp_path / "conf"
    (folder / "feeds").mkdir(parents=True)
    for name in ("a.rss", "b.rss"):  # a file source must exist (issue 18)
        (folder / "feeds" / name).write_text("<rss/>")
    (folder / "aggregator.yaml").write_text(
        yaml.safe_dump(
            {
                "database": "../var/agg.db",
                "public_dir": "public",
                "sources": [
                    {"name": "bare", "url": "feeds/a.rss"},
                    {"name": "dotted", "url": "./feeds/b.rss"},
                    {"name": "remote", "url": "https://example.org/feed"},
                ],
            }
        )
    )
    elsewhere = tmp_path / "elsewhere" / "deeper"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)

    config = load_config("../../conf/aggregator.yaml")

    assert config.database == (tmp_path / "var" / "agg.db").resolve()
    assert config.public_dir == (folder / "public").resolve()
    assert config.sources[0].url == (folder / "feeds" / "a.rss").resolve().as_uri()
    assert config.sources[1].url == (folder / "feeds" / "b.rss").resolve().as_uri()
    assert config.sources[2].url == "https://example.org/feed"
    assert config.config_path == (folder / "aggregator.yaml").resolve()


def test_demo_config_checks_from_another_folder(tmp_path):
    result = run_cli("--config", str(REPO / "config" / "aggregator.yaml"), "check", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "ok (3 sources, 2 outputs; comment threads followed on 3 of 3 sources)" in result.stdout


def test_empty_output_selection_defaults_to_every_source(write_config):
    path = write_config(
        sources=[
            {"name": "a", "url": "http://127.0.0.1:9/a", "tags": ["x"]},
            {"name": "b", "url": "http://127.0.0.1:9/b", "tags": ["y"]},
        ],
        outputs=[{"name": "all"}, {"name": "xs", "tags": ["x"]}, {"name": "bs", "sources": ["b"]}],
    )

    config = load_config(path)

    assert [s.name for s in config.sources_for(config.output("all"))] == ["a", "b"]
    assert [s.name for s in config.sources_for(config.output("xs"))] == ["a"]
    assert [s.name for s in config.sources_for(config.output("bs"))] == ["b"]


# -- invalid configurations: exact problem lines -------------------------------------------------


@pytest.mark.parametrize("path", INVALID_CONFIGS, ids=[p.stem for p in INVALID_CONFIGS])
def test_invalid_config_problems(path):
    expected = expected_problems(path)
    assert expected, f"{path.name} announces no '# expect:' problems"

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    problems = caught.value.problems
    assert len(problems) == len(expected), "\n".join(problems)
    for problem, wanted in zip(problems, expected, strict=True):
        assert problem.startswith(wanted), f"{problem!r} does not start with {wanted!r}"
        assert "\n" not in problem


def test_three_mistakes_give_exactly_three_lines():
    path = CONFIGS / "three-mistakes.yaml"

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    problems = caught.value.problems
    assert len(problems) == 3
    shapes = [PROBLEM_LINE.match(problem) for problem in problems]
    assert all(shapes), problems
    assert [int(m["line"]) for m in shapes] == [6, 10, 13]
    assert [m["rest"].split(": ", 1)[0] for m in shapes] == [
        "defaults.interval",
        "sources[0].colour",
        "outputs[0].sources[1]",
    ]


def test_check_prints_every_problem_and_exits_2():
    path = CONFIGS / "three-mistakes.yaml"

    result = run_cli("--config", str(path), "check")

    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    expected = expected_problems(path)
    assert len(lines) == len(expected) == 3, result.stderr
    for line, wanted in zip(lines, expected, strict=True):
        assert line.startswith(wanted)


def test_check_accepts_a_valid_config(write_config):
    path = write_config(sources=[{"name": "mill", "url": "http://127.0.0.1:9/a.rss"}])

    result = run_cli("--config", str(path), "check")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == [
        f"{path}: ok (1 sources, 1 outputs; comment threads followed on 1 of 1 sources)",
        "note: server.base_url is not set: feeds and their comment links use "
        "http://127.0.0.1:8080, the listening address; set base_url to the URL subscribers use",
    ]


def test_check_counts_the_sources_that_follow_comments(write_config):
    """Comments are followed by default; ``comments: false`` opts out in defaults or per source."""
    path = write_config(
        sources=[
            {"name": "a", "url": "http://127.0.0.1:9/a.rss"},
            {"name": "b", "url": "http://127.0.0.1:9/b.rss", "comments": False},
            {"name": "c", "url": "http://127.0.0.1:9/c.rss"},
        ],
        server={"base_url": "https://feeds.example.org"},
    )
    result = run_cli("--config", str(path), "check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        f"{path}: ok (3 sources, 1 outputs; comment threads followed on 2 of 3 sources)"
    )
    off = write_config(
        sources=[
            {"name": "a", "url": "http://127.0.0.1:9/a.rss"},
            {"name": "b", "url": "http://127.0.0.1:9/b.rss", "comments": True},
        ],
        defaults={"comments": False},
        server={"base_url": "https://feeds.example.org"},
    )
    config = load_config(off)
    assert [config.comments_for(s) for s in config.sources] == [False, True]
    assert "followed on 1 of 2 sources" in run_cli("--config", str(off), "check").stdout


# -- which file, and a missing one ---------------------------------------------------------------


def test_environment_variable_names_the_config(write_config, tmp_path):
    path = write_config(sources=[{"name": "mill", "url": "http://127.0.0.1:9/a.rss"}])
    env = {**os.environ, CONFIG_ENV: str(path)}

    result = run_cli("check", cwd=tmp_path, env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{path}: ok")


def test_environment_variable_is_used_even_when_invalid(tmp_path):
    env = {**os.environ, CONFIG_ENV: str(CONFIGS / "three-mistakes.yaml")}

    result = run_cli("check", cwd=tmp_path, env=env)

    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 3


def test_config_option_wins_over_environment_variable(write_config, tmp_path):
    path = write_config()
    env = {**os.environ, CONFIG_ENV: str(CONFIGS / "three-mistakes.yaml")}

    result = run_cli("--config", str(path), "check", cwd=tmp_path, env=env)

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("command", ["check", "poll", "publish", "status"])
def test_missing_file_is_one_clear_line(tmp_path, command):
    missing = tmp_path / "nowhere" / "aggregator.yaml"

    result = run_cli("--config", str(missing), command, cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"{missing}: no such file"]
    assert not (tmp_path / "nowhere").exists(), "a missing config must not create anything"


def test_default_config_is_missing_outside_the_project(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != CONFIG_ENV}

    result = run_cli("check", cwd=tmp_path, env=env)

    assert result.returncode == 2
    assert result.stderr.splitlines() == ["config/aggregator.yaml: no such file"]


# -- a new user's mistakes and defaults (issue 18) -----------------------------------------------


def test_a_scheme_less_url_is_refused_at_its_line_with_the_https_suggestion(tmp_path):
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "sources:\n"
        "  - name: typo\n"
        "    url: example.com/feed\n"
        "  - name: missing\n"
        "    url: https://example.org/feed\n"
        "    comments_url: comments.xml\n"
    )

    result = run_cli("--config", str(path), "check", cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{path}:3: sources[0].url: 'example.com/feed' is neither an http(s) URL nor an "
        "existing file (did you mean 'https://example.com/feed'?)",
        f"{path}:6: sources[1].comments_url: 'comments.xml' is neither an http(s) URL nor an "
        "existing file",
    ]


def test_an_existing_file_that_looks_like_a_host_is_a_file(tmp_path):
    (tmp_path / "example.com").mkdir()
    (tmp_path / "example.com" / "feed").write_text("<rss/>")
    path = tmp_path / "feeds.yaml"
    path.write_text("sources:\n  - name: local\n    url: example.com/feed\n")

    config = load_config(path)

    assert config.sources[0].url == (tmp_path / "example.com" / "feed").resolve().as_uri()


def test_paths_default_to_beside_the_config_and_check_names_them(tmp_path):
    folder = tmp_path / "feeds"
    folder.mkdir()
    path = folder / "aggregator.yaml"
    path.write_text("sources:\n  - name: a\n    url: https://example.org/feed\n")

    result = run_cli("--config", str(path), "check", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert f"database:  {folder.resolve() / 'aggregator.db'}" in result.stdout
    assert f"published: {folder.resolve() / 'public' / 'feeds'}" in result.stdout
    config = load_config(path)
    assert config.database == folder.resolve() / "aggregator.db"
    assert config.public_dir == folder.resolve() / "public"


def test_the_shipped_config_keeps_the_repository_var_folder():
    config = load_config(REPO / "config" / "aggregator.yaml")

    assert config.database == (REPO / "var" / "aggregator.db").resolve()
    assert config.public_dir == (REPO / "var" / "public").resolve()


@pytest.mark.parametrize(
    ("contact", "agent"),
    [
        (None, "aggregator/{v}"),
        ("ops@example.org", "aggregator/{v} (+mailto:ops@example.org)"),
        ("mailto:ops@example.org", "aggregator/{v} (+mailto:ops@example.org)"),
        ("https://example.org/about", "aggregator/{v} (+https://example.org/about)"),
    ],
)
def test_contact_goes_into_the_default_user_agent(tmp_path, contact, agent):
    from aggregator import __version__

    path = tmp_path / "a.yaml"
    path.write_text(f"contact: {contact}\n" if contact else "")

    assert load_config(path).defaults.user_agent == agent.format(v=__version__)


def test_a_user_agent_set_by_hand_is_kept_and_a_bad_contact_is_one_line(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("contact: ops@example.org\ndefaults:\n  user_agent: mine/1\n")
    assert load_config(path).defaults.user_agent == "mine/1"

    path.write_text("contact: somebody\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [
        f"{path}:1: contact: 'somebody' is neither an email address nor an http(s) URL"
    ]


def test_nothing_names_an_invented_project_url():
    import aggregator

    assert not hasattr(aggregator, "PROJECT_URL")
    for module in [*(REPO / "aggregator").rglob("*.py"), REPO / "config" / "aggregator.service"]:
        assert "aggregator-project" not in module.read_text(), module
