"""Tests for polling (aggregator.poll.poller and ``aggregator poll``): a local feed server, a real
SQLite file in tmp_path, and the fixture feeds under ``tests/data/feeds``.

``tests/data/feeds/formats/<name>.<ext>`` are discovered automatically: each has a
``<name>.expected.json`` beside it naming the feed version and every entry's key and title.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aggregator.config.loading import load_config
from aggregator.parse.feed import parse_feed
from aggregator.poll.poller import POLL_CACHE_KIB, Poller
from aggregator.storage import Storage

FEEDS = Path(__file__).parent / "data" / "feeds"
FORMAT_FIXTURES = sorted(
    path for path in (FEEDS / "formats").iterdir() if not path.name.endswith(".expected.json")
)


def expected_for(fixture: Path) -> dict:
    return json.loads(fixture.with_suffix(".expected.json").read_text())


def poll_all(config_path: Path, *, force: bool = False):
    """Poll every configured source once, as ``aggregator poll`` (``--force``) does."""
    config = load_config(config_path)
    with Poller(config, manual=True) as poller:
        return {result.source: result for result in poller.poll_many(config.sources, force=force)}


def stored_entries(config_path: Path, *names: str):
    config = load_config(config_path)
    with Storage(config.database) as storage:
        return storage.list_entries(list(names) or None, 1000)


def source_state(config_path: Path, name: str):
    config = load_config(config_path)
    with Storage(config.database) as storage:
        return storage.get_source(name)


def run_cli(config_path: Path, *args: str):
    return subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def three_formats(feed_server, write_config):
    """A config with one RSS 2.0, one Atom 1.0 and one RSS 1.0 source on the feed server."""
    return write_config(
        sources=[
            {"name": "mill", "url": feed_server.serve_feed("/mill.rss", "formats/rss2.rss")},
            {"name": "light", "url": feed_server.serve_feed("/light.atom", "formats/atom10.atom")},
            {"name": "orchard", "url": feed_server.serve_feed("/orchard.rdf", "formats/rss10.rdf")},
        ]
    )


# -- first poll ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", FORMAT_FIXTURES, ids=[p.name for p in FORMAT_FIXTURES])
def test_every_entry_is_stored(feed_server, write_config, fixture):
    expected = expected_for(fixture)
    url = feed_server.serve_feed(f"/{fixture.name}", f"formats/{fixture.name}")
    path = write_config(sources=[{"name": "feed", "url": url}])

    results = poll_all(path)

    assert results["feed"].status == "new"
    assert results["feed"].new == len(expected["entries"])
    assert results["feed"].http_status == 200
    entries = stored_entries(path)
    assert {(e.key, e.title) for e in entries} == {
        (item["key"], item["title"]) for item in expected["entries"]
    }
    assert all(entry.source_name == "feed" for entry in entries)
    assert parse_feed(fixture.read_bytes()).version == expected["version"]
    assert (path.parent / "var" / "aggregator.db").is_file()


def test_three_formats_in_one_poll(three_formats):
    results = poll_all(three_formats)

    assert {name: r.new for name, r in results.items()} == {"mill": 3, "light": 2, "orchard": 2}
    assert all(r.ok for r in results.values())
    assert len(stored_entries(three_formats)) == 7
    assert source_state(three_formats, "light").title == "Lighthouse Log"


# -- polling again -------------------------------------------------------------------------------


def test_second_poll_is_conditional_and_stores_nothing(feed_server, three_formats):
    poll_all(three_formats)
    before = {e.public_id: e.first_seen_at for e in stored_entries(three_formats)}

    results = poll_all(three_formats)

    assert {r.status for r in results.values()} == {"not-modified"}
    assert all(r.new == 0 and r.updated == 0 for r in results.values())
    assert {e.public_id: e.first_seen_at for e in stored_entries(three_formats)} == before
    for path in ("/mill.rss", "/light.atom", "/orchard.rdf"):
        route = feed_server.routes[path]
        first, second = feed_server.requests_for(path)
        assert "if-none-match" not in first.headers
        assert second.headers["if-none-match"] == route.etag
        assert second.headers["if-modified-since"] == route.last_modified
    assert source_state(three_formats, "mill").last_status == 304


def test_200_with_identical_body_counts_as_unchanged(feed_server, write_config):
    url = feed_server.serve_feed("/mill.rss", "formats/rss2.rss", validators=False)
    path = write_config(sources=[{"name": "mill", "url": url}])
    poll_all(path)

    result = poll_all(path)["mill"]

    assert result.status == "unchanged"
    assert (result.new, result.updated, result.http_status) == (0, 0, 200)
    assert result.describe() == "mill: unchanged"
    assert len(stored_entries(path)) == 3
    assert all("if-none-match" not in r.headers for r in feed_server.requests_for("/mill.rss"))


def test_changed_entry_is_updated_in_place(feed_server, write_config):
    url = feed_server.serve_feed("/ferry.rss", "poll/changed-v1.rss")
    path = write_config(sources=[{"name": "ferry", "url": url}])
    poll_all(path)
    before = {e.key: e for e in stored_entries(path)}
    feed_server.serve_feed("/ferry.rss", "poll/changed-v2.rss")

    result = poll_all(path)["ferry"]

    assert (result.status, result.new, result.updated) == ("updated", 0, 1)
    after = {e.key: e for e in stored_entries(path)}
    assert sorted(after) == ["ferry-0", "ferry-1"]
    assert after["ferry-1"].title == "Winter timetable (corrected)"
    assert "20:20" in (after["ferry-1"].content or after["ferry-1"].summary)
    assert after["ferry-1"].public_id == before["ferry-1"].public_id
    assert after["ferry-1"].id == before["ferry-1"].id
    assert after["ferry-0"] == before["ferry-0"]


def test_entries_without_guid_are_keyed_by_link_then_content(feed_server, write_config):
    url = feed_server.serve_feed("/parish.rss", "poll/no-guid.rss")
    path = write_config(sources=[{"name": "parish", "url": url}])
    poll_all(path)
    keys = {e.title: e.key for e in stored_entries(path)}

    assert keys["Hall roof repaired"] == "https://parish.example.org/notices/roof"
    hashed = keys["Lost umbrella"]
    assert len(hashed) == 64 and int(hashed, 16) >= 0  # a sha256 hex digest

    # A new body with the same items (a comment added) must find them again, not add copies.
    feed_server.serve_feed("/parish.rss", (FEEDS / "poll/no-guid.rss").read_bytes() + b"<!-- -->")
    result = poll_all(path)["parish"]

    assert (result.new, result.updated) == (0, 0)
    assert {e.title: e.key for e in stored_entries(path)} == keys


@pytest.mark.parametrize("content_type", ["text/html", "text/plain", "application/octet-stream"])
def test_feed_with_wrong_content_type_is_still_read(feed_server, write_config, content_type):
    url = feed_server.serve_feed("/feed", "formats/atom10.atom", content_type=content_type)
    path = write_config(sources=[{"name": "light", "url": url}])

    result = poll_all(path)["light"]

    assert result.ok, result.error
    assert result.new == 2


def test_gzip_feed_is_polled(feed_server, write_config):
    url = feed_server.serve_feed("/mill.rss", "formats/rss2.rss", gzip=True)
    path = write_config(sources=[{"name": "mill", "url": url}])

    assert poll_all(path)["mill"].new == 3


# -- failing sources -----------------------------------------------------------------------------


@pytest.fixture
def mixed_sources(feed_server, write_config, free_port):
    """One good source among four that fail in different ways."""
    return write_config(
        sources=[
            {"name": "good", "url": feed_server.serve_feed("/good.rss", "formats/rss2.rss")},
            {"name": "broken", "url": feed_server.route("/broken.rss", status=500, body=b"oops")},
            {"name": "text", "url": feed_server.serve_feed("/text.rss", "poll/not-a-feed.txt")},
            {"name": "page", "url": feed_server.serve_feed("/page.rss", "poll/html-page.html")},
            {"name": "refused", "url": f"http://127.0.0.1:{free_port}/feed.rss"},
        ]
    )


def test_one_failing_source_does_not_stop_the_others(mixed_sources):
    results = poll_all(mixed_sources)

    assert results["good"].ok and results["good"].new == 3
    assert [name for name, r in results.items() if not r.ok] == [
        "broken",
        "text",
        "page",
        "refused",
    ]
    assert results["broken"].http_status == 500
    assert "500" in results["broken"].error
    assert "not a feed" in results["text"].error
    assert "HTML" in results["page"].error
    assert "cannot connect" in results["refused"].error
    assert {e.source_name for e in stored_entries(mixed_sources)} == {"good"}


def test_errors_are_recorded_and_cleared_on_recovery(feed_server, mixed_sources):
    poll_all(mixed_sources)
    # A failed source is in backoff: a plain manual poll names it and skips it; --force polls.
    assert poll_all(mixed_sources)["broken"].status == "skipped"
    poll_all(mixed_sources, force=True)

    broken = source_state(mixed_sources, "broken")
    assert broken.last_status == 500
    assert "500" in broken.last_error
    assert broken.error_count == 2
    assert source_state(mixed_sources, "good").last_error is None
    assert "HTML" in source_state(mixed_sources, "page").last_error

    feed_server.serve_feed("/broken.rss", "formats/atom10.atom")
    assert poll_all(mixed_sources, force=True)["broken"].new == 2

    recovered = source_state(mixed_sources, "broken")
    assert (recovered.last_error, recovered.error_count, recovered.last_status) == (None, 0, 200)


def test_cli_poll_exits_1_with_one_line_per_source(mixed_sources):
    result = run_cli(mixed_sources, "poll")

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == [
        "good",
        "broken",
        "text",
        "page",
        "refused",
    ]
    assert lines[0] == "good: 3 new"
    assert all(": error: " in line for line in lines[1:]), lines
    assert "Traceback" not in result.stderr


def test_cli_poll_prints_new_counts_then_304(three_formats):
    first = run_cli(three_formats, "poll")
    second = run_cli(three_formats, "poll")

    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ["mill: 3 new", "light: 2 new", "orchard: 2 new"]
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == [
        "mill: unchanged (304)",
        "light: unchanged (304)",
        "orchard: unchanged (304)",
    ]


def test_cli_poll_named_sources_only(feed_server, three_formats):
    result = run_cli(three_formats, "poll", "light")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["light: 2 new"]
    assert feed_server.requests_for("/mill.rss") == []


def test_cli_poll_unknown_source_is_one_line(three_formats):
    result = run_cli(three_formats, "poll", "nosuch")

    assert result.returncode != 0
    assert len(result.stderr.splitlines()) == 1
    assert "nosuch" in result.stderr
    assert result.stdout == ""


def test_poll_threads_use_small_page_caches(three_formats: Path, tmp_path: Path) -> None:
    """Each poll thread has its own connection; a small cache each keeps 32 of them cheap."""
    with Storage(tmp_path / "default.db") as default:
        assert default.db.execute("PRAGMA cache_size").fetchone()[0] == -2000  # SQLite's own
    with Poller(load_config(three_formats), manual=True) as poller:
        cache = poller.storage.db.execute("PRAGMA cache_size").fetchone()[0]
    assert cache == -POLL_CACHE_KIB


@pytest.mark.parametrize(
    ("outputs", "queued"),
    [([{"name": "all"}], True), ([{"name": "all"}, {"name": "found", "search": "mill"}], False)],
    ids=["no-search", "search"],
)
def test_polls_index_for_search_only_when_an_output_searches(
    feed_server, write_config, outputs, queued
):
    """Without a ``search`` rule the poll leaves new rows queued for the full-text index (the
    first search indexes them); with one, every committed row is indexed at once."""
    url = feed_server.serve_feed("/mill.rss", "formats/rss2.rss")
    path = write_config(sources=[{"name": "mill", "url": url}], outputs=outputs)
    assert poll_all(path)["mill"].new == 3
    with Storage(load_config(path).database) as storage:
        waiting = storage.db.execute("SELECT count(*) FROM search_queue").fetchone()[0]
        indexed = storage.db.execute("SELECT count(*) FROM entries_fts").fetchone()[0]
        assert (waiting, indexed) == ((3, 0) if queued else (0, 3))
        storage.ensure_search_index()
        assert storage.db.execute("SELECT count(*) FROM entries_fts").fetchone()[0] == 3
