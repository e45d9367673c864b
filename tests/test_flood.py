"""Flood control end to end: a source that publishes its whole archive at once.

Real feeds served on 127.0.0.1, a real database, a real publish, the output read back with
feedparser. One source brings 1,000 entries in one poll; two calm sources a few each.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import feedparser
import yaml

from aggregator.config.loading import load_config
from aggregator.storage import Storage
from tests.support import poll_and_publish, serve_folder

NOW = datetime.now(UTC).replace(microsecond=0)


def _rss(name: str, items: list[tuple[str, datetime | None]]) -> str:
    body = "".join(
        f"<item><title>{title}</title><link>https://{name}.example/{index}</link>"
        f"<guid>https://{name}.example/{index}</guid>"
        + (f"<pubDate>{format_datetime(when)}</pubDate>" if when else "")
        + "</item>"
        for index, (title, when) in enumerate(items)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title>'
        f"<link>https://{name}.example/</link><description>d</description>{body}</channel></rss>"
    )


def _world(tmp_path: Path, flood_dated: bool) -> Path:
    site = tmp_path / "site"
    site.mkdir(parents=True)
    for name in ("calm1", "calm2"):
        items = [(f"{name} post {i}", NOW - timedelta(days=2, hours=i)) for i in range(4)]
        (site / f"{name}.rss").write_text(_rss(name, items))
    # The archive: 1,000 entries, either dated in the last day (newer than every calm post)
    # or undated (so each takes the time of the poll).
    flood = [
        (f"flood post {i}", NOW - timedelta(minutes=i + 1) if flood_dated else None)
        for i in range(1000)
    ]
    (site / "flood.rss").write_text(_rss("flood", flood))
    return site


def _run(tmp_path: Path, flood_dated: bool, output: dict[str, object]) -> list[str]:
    site = _world(tmp_path, flood_dated)
    with serve_folder(site) as origin:
        config = {
            "database": str(tmp_path / "db.sqlite"),
            "public_dir": str(tmp_path / "public"),
            "defaults": {"comments": False},
            "sources": [
                {"name": name, "url": f"{origin}/{name}.rss"}
                for name in ("calm1", "calm2", "flood")
            ],
            "outputs": [{"name": "all", "limit": 20, "pages": 3, **output}],
        }
        path = tmp_path / "aggregator.yaml"
        path.write_text(yaml.safe_dump(config))
        poll_and_publish(path)
    parsed = feedparser.parse((tmp_path / "public" / "feeds" / "all.atom").read_bytes())
    assert not parsed.bozo, parsed.bozo_exception
    return [entry.title for entry in parsed.entries]


def _calm(titles: list[str]) -> list[str]:
    return [title for title in titles if title.startswith("calm")]


def test_without_flood_control_the_archive_buries_the_others(tmp_path: Path) -> None:
    titles = _run(tmp_path, True, {})
    assert titles and all(title.startswith("flood") for title in titles)


def test_per_source_limit_keeps_the_others_on_the_first_page(tmp_path: Path) -> None:
    titles = _run(tmp_path, True, {"per_source_limit": 4})
    assert len([t for t in titles if t.startswith("flood")]) == 4
    assert sorted(_calm(titles)) == sorted(f"calm{s} post {i}" for s in (1, 2) for i in range(4))
    # The newest four of the flood, in date order, lead.
    assert titles[:4] == [f"flood post {i}" for i in range(4)]


def test_new_source_limit_caps_an_undated_archive(tmp_path: Path) -> None:
    titles = _run(tmp_path, False, {"new_source_limit": 5})
    flood = [t for t in titles if t.startswith("flood")]
    # The first five of the document (a feed lists its newest first), in document order.
    assert flood == [f"flood post {i}" for i in range(5)]
    assert len(_calm(titles)) == 8
    # Every entry is still stored and searchable.
    config = load_config(tmp_path / "aggregator.yaml")
    with Storage(config.database) as storage:
        assert storage.count("entries") == 1008
