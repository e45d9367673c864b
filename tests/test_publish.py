"""Tests for publishing: poll local feeds into a real SQLite file, publish, and read the output
back with feedparser (Atom, RSS) and json.loads (JSON Feed), as a subscriber would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from conftest import make_config_file
from hypothesis import given
from hypothesis import strategies as st

from aggregator import __version__
from aggregator.config.loading import load_config
from aggregator.models import CommentData, EntryData
from aggregator.poll.poller import Poller
from aggregator.publish.links import urn
from aggregator.publish.publisher import Publisher
from aggregator.publish.timing import StageTimes
from aggregator.storage import Storage

# Every entry of the three format fixtures, newest first (by published time, UTC).
ALL_TITLES = [
    "The new bridge opens",  # mill, 2024-03-11 09:00
    "Lamp replaced",  # light, 2024-03-10 18:00
    "First blossom",  # orchard, 2024-03-08 09:00
    "Market day moves to Friday",  # mill, 2024-03-05 12:00
    "Storm watch",  # light, 2024-03-01 06:00
    "Snow closes the school",  # mill, 2024-02-22 07:30
    "Pruning done",  # orchard, 2024-02-20 14:00
]
SOURCE_OF = {
    "The new bridge opens": "Mill Street Notes",
    "Market day moves to Friday": "Mill Street Notes",
    "Snow closes the school": "Mill Street Notes",
    "Lamp replaced": "Lighthouse Log",
    "Storm watch": "Lighthouse Log",
    "First blossom": "Orchard Diary",
    "Pruning done": "Orchard Diary",
}


class World:
    """A config on the feed server, with helpers to poll, publish and read the outputs."""

    def __init__(self, path: Path, server):
        self.path = path
        self.server = server
        self.config = load_config(path)
        self.feeds = self.config.public_dir / "feeds"

    def poll(self):
        with Poller(self.config, manual=True) as poller:
            results = poller.poll_many(self.config.sources)
        assert all(r.ok for r in results), [r.describe() for r in results]
        return results

    def publish(self) -> list[Path]:
        with Storage(self.config.database) as storage:
            return Publisher(self.config, storage).publish()

    def read(self, output: str, ext: str):
        data = (self.feeds / f"{output}.{ext}").read_bytes()
        if ext == "json":
            return json.loads(data)
        parsed = feedparser.parse(data)
        assert parsed.bozo == 0, parsed.get("bozo_exception")
        return parsed

    def snapshot(self) -> dict[str, bytes]:
        return {path.name: path.read_bytes() for path in sorted(self.feeds.glob("*.*"))}


@pytest.fixture
def world(feed_server, write_config):
    path = write_config(
        sources=[
            {
                "name": "mill",
                "url": feed_server.serve_feed("/mill.rss", "formats/rss2.rss"),
                "tags": ["town"],
            },
            {
                "name": "light",
                "url": feed_server.serve_feed("/light.atom", "formats/atom10.atom"),
                "tags": ["coast"],
            },
            {
                "name": "orchard",
                "url": feed_server.serve_feed("/orchard.rdf", "formats/rss10.rdf"),
                "tags": ["country"],
            },
        ],
        outputs=[
            {"name": "all", "title": "Everything", "description": "All of it."},
            {"name": "land", "tags": ["town", "country"], "formats": ["atom", "rss", "json"]},
            {"name": "picked", "sources": ["light"], "formats": ["atom"]},
        ],
        server={"host": "127.0.0.1", "port": 8123},
    )
    world = World(path, feed_server)
    world.poll()
    world.publish()
    return world


# -- reading the outputs back --------------------------------------------------------------------


def test_atom_output_reads_back(world):
    feed = world.read("all", "atom")

    assert feed.version == "atom10"
    assert feed.feed.title == "Everything"
    assert [e.title for e in feed.entries] == ALL_TITLES
    assert all(e.id.startswith("urn:uuid:") for e in feed.entries)
    assert len({e.id for e in feed.entries}) == len(ALL_TITLES)
    self_links = [link.href for link in feed.feed.links if link.rel == "self"]
    assert self_links == ["http://127.0.0.1:8123/feeds/all.atom"]
    for entry in feed.entries:
        assert entry.source.title == SOURCE_OF[entry.title]
        assert entry.source.link.startswith(world.server.url("/"))


def test_atom_output_keeps_content_links_and_times(world):
    entries = {e.title: e for e in world.read("all", "atom").entries}

    lamp = entries["Lamp replaced"]
    assert lamp.link == "https://light.example.net/log/lamp"
    assert "<b>brighter</b>" in lamp.content[0].value
    storm = entries["Storm watch"]
    assert storm.published == "2024-03-01T06:00:00+00:00"
    assert storm.updated == "2024-03-02T08:00:00+00:00"  # the entry's own update time
    assert entries["The new bridge opens"].author == "Ada Brook"


def test_rss_output_reads_back(world):
    feed = world.read("all", "rss")

    assert feed.version == "rss20"
    assert [e.title for e in feed.entries] == ALL_TITLES
    for entry in feed.entries:
        assert entry.id.startswith("urn:uuid:")
        assert entry.source.title == SOURCE_OF[entry.title]
        assert entry.source.href.startswith(world.server.url("/"))
    mill = next(e for e in feed.entries if e.title == "The new bridge opens")
    assert mill.author == "Ada Brook"  # dc:creator
    assert mill.link == "https://mill.example.org/2024/03/bridge"


def test_json_feed_reads_back(world):
    document = world.read("all", "json")

    assert document["version"] == "https://jsonfeed.org/version/1.1"
    assert document["title"] == "Everything"
    assert document["feed_url"] == "http://127.0.0.1:8123/feeds/all.json"
    assert document["home_page_url"] == "http://127.0.0.1:8123/outputs/all"
    items = document["items"]
    assert [item["title"] for item in items] == ALL_TITLES
    for item in items:
        assert isinstance(item["id"], str) and item["id"]
        assert "content_html" in item or "content_text" in item
        assert item["_aggregator"]["source"]["title"] == SOURCE_OF[item["title"]]
    dates = [item["date_published"] for item in items]
    assert dates == sorted(dates, reverse=True)


def test_one_entry_has_one_id_in_every_format(world):
    atom = {e.title: e.id for e in world.read("all", "atom").entries}
    rss = {e.title: e.id for e in world.read("all", "rss").entries}
    jsonfeed = {item["title"]: item["id"] for item in world.read("all", "json")["items"]}

    assert atom == rss == jsonfeed


def test_generator_names_the_software_and_version_and_no_invented_url(world):
    generator = world.read("all", "atom").feed.generator_detail

    assert generator.name == "aggregator"
    assert generator.get("href") is None  # no project URL is invented (issue 18)
    assert generator.get("version") == __version__


def test_rss_channel_link_is_the_output_web_page(world):
    # RSS 2.0: the channel <link> is "the URL to the HTML website", not the feed itself.
    assert world.read("all", "rss").feed.link == "http://127.0.0.1:8123/outputs/all"


# -- stability -----------------------------------------------------------------------------------


def test_publishing_again_changes_nothing(world):
    before = world.snapshot()
    mtimes = {p.name: p.stat().st_mtime_ns for p in world.feeds.glob("*.*")}

    changed = world.publish()

    assert changed == []
    assert world.snapshot() == before
    assert {p.name: p.stat().st_mtime_ns for p in world.feeds.glob("*.*")} == mtimes


def test_ids_and_bytes_survive_a_repoll(world):
    before = world.snapshot()
    ids = [e.id for e in world.read("all", "atom").entries]

    results = world.poll()
    changed = world.publish()

    assert {r.status for r in results} == {"not-modified"}
    assert changed == []
    assert world.snapshot() == before
    assert [e.id for e in world.read("all", "atom").entries] == ids


def test_ids_stable_when_an_entry_changes(feed_server, write_config):
    path = write_config(
        sources=[{"name": "ferry", "url": feed_server.serve_feed("/f.rss", "poll/changed-v1.rss")}]
    )
    world = World(path, feed_server)
    world.poll()
    world.publish()
    before = {e.id: e.title for e in world.read("all", "atom").entries}

    feed_server.serve_feed("/f.rss", "poll/changed-v2.rss")
    world.poll()
    changed = world.publish()

    after = {e.id: e.title for e in world.read("all", "atom").entries}
    assert sorted(after) == sorted(before)
    assert sorted(after.values()) == ["Ticket office hours", "Winter timetable (corrected)"]
    assert {p.name for p in changed} == {"all.atom", "all.rss", "all.json"}


# -- selection and limits ------------------------------------------------------------------------


def test_output_selects_by_tags(world):
    titles = [e.title for e in world.read("land", "atom").entries]

    assert titles == [
        t for t in ALL_TITLES if SOURCE_OF[t] in ("Mill Street Notes", "Orchard Diary")
    ]
    assert [item["title"] for item in world.read("land", "json")["items"]] == titles


def test_output_selects_by_source_and_format(world):
    titles = [e.title for e in world.read("picked", "atom").entries]

    assert titles == ["Lamp replaced", "Storm watch"]
    assert not (world.feeds / "picked.rss").exists()
    assert not (world.feeds / "picked.json").exists()


def test_limit_keeps_the_newest(feed_server, write_config):
    path = write_config(
        sources=[
            {"name": "tides", "url": feed_server.serve_feed("/t.rss", "poll/six-entries.rss")}
        ],
        outputs=[{"name": "short", "limit": 2}],
    )
    world = World(path, feed_server)
    world.poll()
    world.publish()

    expected = ["Tide table, day 6", "Tide table, day 5"]
    assert [e.title for e in world.read("short", "atom").entries] == expected
    assert [e.title for e in world.read("short", "rss").entries] == expected
    assert [i["title"] for i in world.read("short", "json")["items"]] == expected


def test_output_with_no_entries_is_still_valid(write_config):
    path = write_config(sources=[{"name": "idle", "url": "http://127.0.0.1:9/never.rss"}])
    world = World(path, None)

    world.publish()

    assert world.read("all", "atom").entries == []
    assert world.read("all", "rss").entries == []
    assert world.read("all", "json")["items"] == []


def test_control_characters_do_not_break_publishing(feed_server, write_config):
    # One ill-formed entry must not stop a whole output from being published.
    path = write_config(
        sources=[
            {"name": "mill", "url": feed_server.serve_feed("/m.rss", "formats/rss2.rss")},
            {
                "name": "wire",
                "url": feed_server.serve_feed("/w.rss", "poll/control-characters.rss"),
            },
        ]
    )
    world = World(path, feed_server)
    world.poll()

    world.publish()

    for ext in ("atom", "rss"):
        entries = world.read("all", ext).entries
        assert len(entries) == 4
        bell = next(e for e in entries if e.title.startswith("Bell"))
        assert "\x07" not in bell.title
    assert len(world.read("all", "json")["items"]) == 4


# -- the CLI -------------------------------------------------------------------------------------


def test_cli_publish_writes_files_once(feed_server, write_config):
    path = write_config(
        sources=[
            {
                "name": "mill",
                "url": feed_server.serve_feed("/m.rss", "formats/rss2.rss"),
                "comments": False,  # about the feed files: no latest-comments feeds
            }
        ]
    )

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "aggregator", "--config", str(path), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert run("poll").returncode == 0
    first = run("publish")
    second = run("publish")

    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1] == "3 file(s) changed"
    assert second.stdout.splitlines()[-1] == "0 file(s) changed"
    feeds = path.parent / "var" / "public" / "feeds"
    assert sorted(p.name for p in feeds.iterdir()) == ["all.atom", "all.json", "all.rss"]
    assert len(feedparser.parse((feeds / "all.atom").read_bytes()).entries) == 3


# -- where the time goes -------------------------------------------------------------------------


def test_stage_times_exclude_nested_stages_and_add_up() -> None:
    ticks = iter([0.0, 1.0, 3.0, 6.0, 10.0, 15.0])  # a clock read at every switch
    times = StageTimes(clock=lambda: next(ticks))
    with times.stage("outer"):  # 0
        with times.stage("inner"):  # 1: outer had 1
            pass  # 3: inner had 2
        with times.stage("inner"):  # 6: outer had 3 more
            pass  # 10: inner had 4 more
    # 15: outer had 5 more
    assert times.seconds == {"outer": 9.0, "inner": 6.0}


def test_publish_records_its_stages(world) -> None:
    with Storage(world.config.database) as storage:
        publisher = Publisher(world.config, storage)
        publisher.publish()
    assert {"feed: select", "feed: atom", "feed: rss", "feed: json"} <= set(publisher.times.seconds)
    assert all(seconds >= 0 for seconds in publisher.times.seconds.values())


# -- a long-lived publisher ----------------------------------------------------------------------

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def _post(n: int, title: str | None = None) -> EntryData:
    title = title or f"Post {n}"
    return EntryData(
        key=f"post-{n}",
        title=title,
        link=f"https://blog.example.org/{n}/",
        content=f"<p>Body of post {n}</p>",
        published_at=NOW - timedelta(hours=10 - n),
        comments_feed_url=f"https://blog.example.org/{n}/feed/",
        content_hash=title,
    )


@pytest.mark.parametrize("killfile", [[], ["Bob"]])
def test_a_long_lived_publisher_writes_what_a_new_one_would(
    tmp_path: Path, killfile: list[str]
) -> None:
    """The daemon keeps one Publisher, which skips documents whose inputs did not change: after
    every kind of change its files must be those a new Publisher writes from scratch. With a
    killfile, threads are read and filtered one by one; without, they are summed up in SQL."""
    path = make_config_file(
        tmp_path,
        sources=[{"name": "blog", "url": "https://blog.example.org/feed/", "comments": True}],
        outputs=[{"name": "all", "limit": 2, "pages": 3, "killfile": killfile}],
    )
    config = load_config(path)
    fresh = config.model_copy(update={"public_dir": tmp_path / "fresh"})
    storage = Storage(config.database)
    storage.sync_sources([("blog", "https://blog.example.org/feed/")], NOW)
    publisher = Publisher(config, storage, clock=lambda: NOW)

    def store(*entries: EntryData) -> None:
        with storage.transaction():
            storage.store_entries(storage.get_source("blog"), entries, NOW)

    def comment(n: int, key: str, text: str, author: str = "Ann") -> None:
        entry = storage.find_entry(f"https://blog.example.org/{n}/")
        data = CommentData(
            key=key, content=text, author=author, published_at=NOW, content_hash=text
        )
        with storage.transaction():
            storage.store_comments(entry.id, entry.public_id, [data], NOW)

    def publish() -> set[str]:
        changed = publisher.publish()
        Publisher(fresh, storage, clock=lambda: NOW, fragment_bytes=0).publish()  # whole
        ours, theirs = (
            {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
            for root in (config.public_dir, fresh.public_dir)
        )
        assert ours == theirs
        feeds = config.public_dir / "feeds" / "all"
        return {str(p.relative_to(feeds)) if feeds in p.parents else p.name for p in changed}

    def thread(n: int) -> set[str]:
        public_id = storage.find_entry(f"https://blog.example.org/{n}/").public_id
        return {f"{public_id}/comments.{ext}" for ext in ("atom", "rss", "json")}

    pages = {n: {f"page/{n}.{ext}" for ext in ("atom", "rss", "json")} for n in (2, 3)}
    latest = {f"comments.{ext}" for ext in ("atom", "rss", "json")}
    store(*(_post(n) for n in range(1, 8)))  # newest first: 7 6 | 5 4 | 3 2 (1 is too old)
    comment(6, "c-1", "First on six")
    assert "all.atom" in publish()
    assert publish() == set()

    comment(4, "c-1", "A reply on page two")
    assert publish() == pages[2] | thread(4) | latest

    comment(6, "c-2", "Bob on page one", author="Bob")
    shown = {"all.atom", "all.rss", "all.json"} | thread(6) | latest
    assert publish() == (set() if killfile else shown)

    (config.public_dir / "feeds" / "all" / "page" / "3.rss").unlink()
    assert publish() == {"page/3.rss"}

    store(_post(3, "Post 3, retitled"))
    assert publish() == pages[3] | thread(3)

    store(_post(9))  # a new entry at the top moves every page by one
    assert {"all.atom", "all.rss", "all.json"} | pages[2] | pages[3] | thread(9) <= publish()
    storage.close()


@given(st.uuids())
def test_urn_is_the_uuid_urn_of_a_public_id(value: uuid.UUID) -> None:
    for written in (value.hex, value.hex.upper(), str(value)):  # stored, and other spellings
        assert urn(written) == value.urn
