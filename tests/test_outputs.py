"""End to end: three local feeds → poll → publish → read back with feedparser.

A real HTTP server on 127.0.0.1 serves the fixture feeds in ``tests/data/outputs/`` (dates
written relative to the test's "now"); ``aggregator.yaml`` beside them declares one output per
kind of rule, as the README's configuration reference writes them; ``expected.yaml`` says what
each output must hold and which rule ``preview --explain`` must name for every other entry.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest
import yaml
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.cli import main
from aggregator.config.loading import load_config
from aggregator.config.schema import AppConfig
from aggregator.models import PollResult
from aggregator.poll.poller import Poller
from aggregator.publish.publisher import Publisher
from aggregator.run.daemon import Daemon
from aggregator.storage import Storage

DATA = Path(__file__).parent / "data" / "outputs"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((DATA / "expected.yaml").read_text())
_DATE = re.compile(r"\{\{(rfc822|iso):(\d+)([hd])\}\}")
MEDIA = {".rss": "application/rss+xml", ".atom": "application/atom+xml"}


def render(text: str, now: datetime) -> str:
    """Replace ``{{rfc822:2d}}`` / ``{{iso:5h}}`` by the date that long before ``now``."""

    def date(match: re.Match[str]) -> str:
        kind, number, unit = match.groups()
        when = now - timedelta(**{"hours" if unit == "h" else "days": int(number)})
        return format_datetime(when) if kind == "rfc822" else when.isoformat()

    return _DATE.sub(date, text)


@dataclass
class World:
    """A served set of feeds, a config file using them, and a database."""

    folder: Path
    server: HTTPServer
    now: datetime
    files: dict[str, str] = field(default_factory=dict)  # URL path -> body served now

    @property
    def config_path(self) -> Path:
        return self.folder / "aggregator.yaml"

    def config(self) -> AppConfig:
        return load_config(self.config_path)

    def feeds(self) -> Path:
        return self.folder / "var" / "public" / "feeds"

    def poll(self, config: AppConfig | None = None) -> list[PollResult]:
        config = config or self.config()
        with Poller(config, manual=True) as poller:
            return poller.poll_many(list(config.sources))

    def publisher(self, storage: Storage, config: AppConfig | None = None) -> Publisher:
        return Publisher(config or self.config(), storage, clock=lambda: self.now)


def _serve(world: World, request: Request) -> Response:
    body = world.files.get(request.path)
    if body is None:
        return Response("not found", status=404)
    return Response(body, content_type=MEDIA.get(Path(request.path).suffix, "application/xml"))


def make_world(folder: Path) -> Iterator[World]:
    now = datetime.now(UTC).replace(microsecond=0)
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    world = World(folder, server, now)
    for path in DATA.rglob("*"):
        if path.suffix in (".rss", ".atom", ".rdf"):
            world.files["/" + path.relative_to(DATA).as_posix()] = render(path.read_text(), now)
    server.expect_request(re.compile(".*")).respond_with_handler(
        lambda request: _serve(world, request)
    )
    base = server.url_for("").rstrip("/")
    folder.mkdir(parents=True, exist_ok=True)
    world.config_path.write_text((DATA / "aggregator.yaml").read_text().replace("{{base}}", base))
    try:
        yield world
    finally:
        server.clear()
        server.stop()


@pytest.fixture(scope="module")
def polled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, list[PollResult]]]:
    """One world, polled once and published once, shared by the read-only tests."""
    for world in make_world(tmp_path_factory.mktemp("outputs")):
        results = world.poll()
        with Storage(world.config().database) as storage:
            world.publisher(storage).publish()
        yield world, results


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[World]:
    """A fresh world for tests that change feeds or configuration."""
    yield from make_world(tmp_path / "world")


def titles_in(world: World, output: str) -> dict[str, list[str]]:
    """The entry titles of every published format of ``output``, in document order."""
    found = {}
    for path in sorted(world.feeds().glob(f"{output}.*")):
        if path.suffix == ".json":
            found["json"] = [item["title"] for item in json.loads(path.read_text())["items"]]
        else:
            parsed = feedparser.parse(path.read_bytes())
            assert not parsed.bozo, parsed.get("bozo_exception")
            found[path.suffix[1:]] = [entry.title for entry in parsed.entries]
    return found


def preview(world: World, *args: str) -> Any:
    result = CliRunner().invoke(main, ["-c", str(world.config_path), "preview", *args])
    assert result.exit_code == 0, result.output
    return result.output


# -- every output holds exactly the expected entries ------------------------------------------


@pytest.mark.parametrize("output", sorted(EXPECTED))
def test_published_output_holds_exactly_the_expected_entries(
    polled: tuple[World, list[PollResult]], output: str
) -> None:
    world, _ = polled
    formats = world.config().output(output).formats
    found = titles_in(world, output)
    assert sorted(found) == sorted(formats)
    for fmt, titles in found.items():
        assert titles == EXPECTED[output]["entries"], fmt


@pytest.mark.parametrize("output", sorted(EXPECTED))
def test_preview_explain_names_the_rule_behind_every_dropped_entry(
    polled: tuple[World, list[PollResult]], output: str
) -> None:
    world, _ = polled
    report = json.loads(preview(world, output, "--explain", "--json"))
    assert [entry["title"] for entry in report["entries"]] == EXPECTED[output]["entries"]
    kept = [c["title"] for c in report["candidates"] if c["kept"]]
    assert kept == EXPECTED[output]["entries"]
    dropped = {c["title"]: c for c in report["candidates"] if not c["kept"]}
    assert {title: c["rule"] for title, c in dropped.items()} == EXPECTED[output]["dropped"]
    lines = world.config_path.read_text().splitlines()
    for candidate in dropped.values():
        assert candidate["explain"].startswith(f"dropped by {candidate['rule']}")
        assert candidate["matches"], candidate
        if candidate["rule"].startswith("outputs["):
            # The line named is the rule's own: its list item, else its key.
            line = lines[candidate["line"] - 1]
            if candidate["rule"].endswith("]"):
                assert line.lstrip().startswith("- "), candidate
            else:
                assert line.lstrip().startswith(candidate["rule"].rpartition(".")[2]), candidate


def test_preview_text_names_rule_field_text_and_line(
    polled: tuple[World, list[PollResult]],
) -> None:
    world, _ = polled
    text = preview(world, "syria", "--explain")
    lines = world.config_path.read_text().splitlines()
    guest = next(n for n, line in enumerate(lines, 1) if "^guest$" in line)
    assert (
        f"dropped by outputs[0].exclude[0] ({world.config_path}:{guest}): author /^guest$/ "
        'matched "Guest"'
    ) in text
    assert 'content /sponsored/ matched "This post is sponsored by a travel agency."' in text
    assert "dropped by outputs[0].max_age" in text and "is older than 7d" in text
    assert "kept by outputs[0].include[0]" in text


def test_preview_without_explain_lists_what_the_output_holds(
    polled: tuple[World, list[PollResult]],
) -> None:
    world, _ = polled
    text = preview(world, "everything")
    assert "everything: Everything: 10 entries" in text
    assert "also in: moa (same link)" in text
    assert "Candidates" not in text


def test_preview_of_unknown_output_is_one_clear_line(
    polled: tuple[World, list[PollResult]],
) -> None:
    world, _ = polled
    result = CliRunner().invoke(main, ["-c", str(world.config_path), "preview", "nope"])
    assert result.exit_code == 1
    assert "no output named 'nope' (outputs: syria, hot, talk" in result.output


def test_search_explains_where_it_matched(polled: tuple[World, list[PollResult]]) -> None:
    world, _ = polled
    report = json.loads(preview(world, "talk", "--explain", "--json"))
    by_title = {c["title"]: c for c in report["candidates"]}
    thread = by_title["Weekly open thread"]["matches"]
    assert thread[-1]["field"] == "search (comment by Hal)"
    assert "«Deraa»" in thread[-1]["text"]
    assert by_title["Syria: the road to Deraa"]["matches"][-1]["field"] == "search (entry)"


# -- dedupe, shaping ---------------------------------------------------------------------------


def test_article_in_two_sources_appears_once_and_names_the_other(
    polled: tuple[World, list[PollResult]],
) -> None:
    world, _ = polled
    atom = feedparser.parse((world.feeds() / "everything.atom").read_bytes())
    ceasefire = [e for e in atom.entries if "Ceasefire" in e.title]
    assert len(ceasefire) == 1
    assert ceasefire[0].title == "Ceasefire talks resume in Geneva"  # the earliest copy
    assert "Also in: " in ceasefire[0].summary and "Moon of Alabama" in ceasefire[0].summary
    assert 'via <a href="https://wire.example/">Wire Service</a>' in ceasefire[0].summary
    document = json.loads((world.feeds() / "everything.json").read_text())
    item = next(i for i in document["items"] if "Ceasefire" in i["title"])
    [copy] = item["_aggregator"]["duplicates"]
    assert copy["source"] == "moa"
    assert copy["same"] == "link"
    assert copy["url"] == "https://news.example/ceasefire?utm_source=moa"
    assert copy["id"].startswith("urn:uuid:")


def test_summary_content_and_via_line(polled: tuple[World, list[PollResult]]) -> None:
    world, _ = polled
    atom = feedparser.parse((world.feeds() / "talk.atom").read_bytes())
    road = next(e for e in atom.entries if e.title == "Syria: the road to Deraa")
    assert "content" not in road  # content: summary publishes no full content
    assert "checkpoints changed hands" in road.summary
    assert 'via <a href="https://moa.example/">Moon of Alabama</a>' in road.summary
    everything = feedparser.parse((world.feeds() / "everything.atom").read_bytes())
    plain = feedparser.parse((world.feeds() / "syria.atom").read_bytes())
    assert all("aggregator-via" in e.summary for e in everything.entries)
    assert not any("aggregator-via" in e.summary for e in plain.entries)


def test_rules_of_defaults_and_sources_keep_new_entries_out_of_storage(
    polled: tuple[World, list[PollResult]],
) -> None:
    world, results = polled
    skipped = {result.source: result.skipped for result in results}
    assert skipped == {"moa": 0, "wire": 1, "harbour": 1}
    assert "1 skipped by rules" in next(r for r in results if r.source == "wire").describe()
    with Storage(world.config().database) as storage:
        titles = {row[0] for row in storage.db.execute("SELECT title FROM entries").fetchall()}
    assert "Advert: cheap flights to Beirut" not in titles
    assert "Sponsored: harbour tours" not in titles
    assert len(titles) == 12


# -- bad input ---------------------------------------------------------------------------------


def test_bad_regular_expression_is_reported_with_its_line(tmp_path: Path) -> None:
    text = (DATA / "aggregator.yaml").read_text().replace('"sponsored"', '"spons(ored"')
    path = tmp_path / "aggregator.yaml"
    path.write_text(text)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "spons(ored" in row)
    result = CliRunner().invoke(main, ["-c", str(path), "check"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"{path}:{line}: outputs[0].exclude[1].content: bad regular expression: "
        "missing ): spons(ored"
    )


# -- freshness ---------------------------------------------------------------------------------


def _mtimes(folder: Path) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()}


def test_publishing_unchanged_inputs_rewrites_nothing(world: World) -> None:
    world.poll()
    with Storage(world.config().database) as storage:
        assert world.publisher(storage).publish()
        before = _mtimes(world.feeds())
        # A new Publisher (as after a restart) renders again but writes nothing.
        assert world.publisher(storage).publish() == []
    assert _mtimes(world.feeds()) == before


def test_config_change_rerenders_exactly_the_outputs_it_changes(world: World) -> None:
    world.poll()
    with Storage(world.config().database) as storage:
        publisher = world.publisher(storage)
        publisher.publish()
        assert publisher.publish() == []
        text = world.config_path.read_text()
        world.config_path.write_text(text.replace('- author: "^guest$"', '- author: "^b$"'))
        publisher.configure(world.config())
        changed = {path.relative_to(world.feeds()).as_posix() for path in publisher.publish()}
    # The output and its latest-comments feed (which follows the output's rules), nothing else.
    assert changed == {
        "syria.atom",
        "syria.rss",
        "syria.json",
        "syria/comments.atom",
        "syria/comments.rss",
        "syria/comments.json",
    }
    assert titles_in(world, "syria")["atom"] == [
        "Syria: aid convoy reaches Deraa",
        "Iraq: oil deal signed",
    ]


def test_a_source_rule_added_later_hides_stored_entries(world: World) -> None:
    world.poll()
    text = world.config_path.read_text().replace(
        "    tags: [news]\n", '    tags: [news]\n    exclude:\n      - title: "^markets"\n'
    )
    world.config_path.write_text(text)
    with Storage(world.config().database) as storage:
        world.publisher(storage).publish()
        assert storage.count("entries") == 12  # nothing is deleted
    assert "Markets fall on rate fears" not in titles_in(world, "everything")["atom"]


def test_new_and_edited_comments_republish_the_outputs_of_their_source(world: World) -> None:
    world.poll()
    moa = world.config().source("moa")
    path = "/comments/moa-open-thread.rss"
    daemon = Daemon(world.config())
    daemon.poller.manual = True  # read every thread now, not only those due
    try:
        daemon.publish()
        hot = world.feeds() / "hot.atom"
        before = _mtimes(world.feeds())
        daemon.publish()
        assert _mtimes(world.feeds()) == before

        # An edited comment: its text changes at the source; its thread's feed follows.
        world.files[path] = world.files[path].replace("First.", "First, and edited.")
        result = daemon.poller.poll_comments(moa, PollResult("moa", "unchanged"))
        assert (result.new_comments, result.changed_comments) == (0, 1)
        daemon._after_poll(moa, result)
        threads = [
            p for p in world.feeds().glob("hot/*/comments.atom") if "edited" in p.read_text()
        ]
        assert len(threads) == 1

        # A new comment: the count in the output changes.
        # (A comment of its own: its own guid and its own permalink.)
        extra = (
            world.files[path]
            .replace("open-c2", "open-c3")
            .replace("#c2", "#c3")
            .split("<item>")[-1]
        )
        world.files[path] = world.files[path].replace(
            "</channel>", "<item>" + extra.split("</channel>")[0] + "</channel>"
        )
        result = daemon.poller.poll_comments(moa, PollResult("moa", "unchanged"))
        assert result.new_comments == 1 and result.changed
        daemon._after_poll(moa, result)
        entry = next(
            e for e in feedparser.parse(hot.read_bytes()).entries if e.title == "Weekly open thread"
        )
        assert entry.thr_total == "3"
    finally:
        daemon.poller.close()


def test_a_source_removed_from_the_config_is_in_no_output(world: World) -> None:
    world.poll()
    text = world.config_path.read_text()
    start = text.index("  - name: harbour")
    world.config_path.write_text(text[:start] + text[text.index("outputs:") :])
    text = world.config_path.read_text()
    world.config_path.write_text(text.replace("    tags: [local]\n    exclude:", "    exclude:"))
    with Storage(world.config().database) as storage:
        world.publisher(storage).publish()
    titles = titles_in(world, "everything")["atom"]
    assert "Ferry timetable changes" not in titles
    assert "Syria: aid convoy reaches Deraa" in titles and len(titles) == 8


def test_published_feeds_keep_ids_across_republishing(world: World) -> None:
    world.poll()
    with Storage(world.config().database) as storage:
        world.publisher(storage).publish()
        first = [
            e.id for e in feedparser.parse((world.feeds() / "everything.atom").read_bytes()).entries
        ]
        shutil.rmtree(world.feeds())
        world.publisher(storage).publish()
    again = [
        e.id for e in feedparser.parse((world.feeds() / "everything.atom").read_bytes()).entries
    ]
    assert first == again and len(set(first)) == 10
