"""Podcasts: every enclosure and the iTunes / Podcasting 2.0 tags from source to output.

A podcast feed served on 127.0.0.1 is polled and published; the RSS is read back with
feedparser as a podcast app would, the JSON Feed as JSON.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import feedparser
import yaml
from lxml import etree

from aggregator.publish.render import duration_seconds
from tests.support import poll_and_publish, serve_folder

NOW = datetime.now(UTC).replace(microsecond=0)


def _podcast() -> str:
    def date(hours: int) -> str:
        return format_datetime(NOW - timedelta(hours=hours))

    return f"""<?xml version="1.0"?>
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"
     xmlns:podcast="https://podcastindex.org/namespace/1.0">
<channel><title>Pod</title><link>https://pod.example/</link><description>d</description>
<item><title>Ep 1</title><guid>ep1</guid><link>https://pod.example/1</link>
<pubDate>{date(2)}</pubDate>
<enclosure url="https://pod.example/1.mp3" length="1234" type="audio/mpeg"/>
<enclosure url="https://pod.example/1.ogg" length="999" type="audio/ogg"/>
<itunes:image href="https://pod.example/1.jpg"/>
<itunes:duration>01:02:03</itunes:duration>
<itunes:episode>7</itunes:episode>
<itunes:explicit>yes</itunes:explicit>
<podcast:transcript url="https://pod.example/1.vtt" type="text/vtt"/>
<podcast:chapters url="https://pod.example/1.json" type="application/json+chapters"/>
</item>
<item><title>Ep 2</title><guid>ep2</guid><link>https://pod.example/2</link>
<pubDate>{date(1)}</pubDate>
<enclosure url="https://pod.example/2.mp3" length="555" type="audio/mpeg"/>
<itunes:duration>125</itunes:duration>
<itunes:explicit>clean</itunes:explicit>
</item>
</channel></rss>"""


def _publish(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    (site / "pod.rss").write_text(_podcast())
    with serve_folder(site) as origin:
        config = {
            "database": str(tmp_path / "db.sqlite"),
            "public_dir": str(tmp_path / "public"),
            "defaults": {"comments": False},
            "sources": [{"name": "pod", "url": f"{origin}/pod.rss"}],
            "outputs": [{"name": "pods"}],
        }
        path = tmp_path / "aggregator.yaml"
        path.write_text(yaml.safe_dump(config))
        poll_and_publish(path)
    return tmp_path / "public" / "feeds"


def test_rss_keeps_every_enclosure_and_the_podcast_tags(tmp_path: Path) -> None:
    feeds = _publish(tmp_path)
    body = (feeds / "pods.rss").read_bytes()
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.bozo_exception
    episodes = {entry.title: entry for entry in parsed.entries}
    one, two = episodes["Ep 1"], episodes["Ep 2"]
    assert [(e.href, e.type, e.length) for e in one.enclosures] == [
        ("https://pod.example/1.mp3", "audio/mpeg", "1234"),
        ("https://pod.example/1.ogg", "audio/ogg", "999"),
    ]
    assert [e.href for e in two.enclosures] == ["https://pod.example/2.mp3"]
    assert one.itunes_duration == "01:02:03" and one.itunes_episode == "7"
    assert one.itunes_explicit is True and two.itunes_explicit is False
    assert one.image.href == "https://pod.example/1.jpg"
    assert one.podcast_transcript == {"url": "https://pod.example/1.vtt", "type": "text/vtt"}
    assert one.podcast_chapters["url"] == "https://pod.example/1.json"
    assert two.itunes_duration == "125" and "podcast_transcript" not in two
    # Valid RSS 2.0: one <enclosure> per item; the namespaces declared once, on the root.
    root = etree.fromstring(body)
    assert [len(item.findall("enclosure")) for item in root.iter("item")] == [1, 1]
    assert root.nsmap["itunes"] == "http://www.itunes.com/dtds/podcast-1.0.dtd"
    assert b"xmlns:itunes" not in body.split(b"<item>", 1)[1]


def test_atom_and_json_feed_carry_every_enclosure(tmp_path: Path) -> None:
    feeds = _publish(tmp_path)
    atom = feedparser.parse((feeds / "pods.atom").read_bytes())
    one = next(entry for entry in atom.entries if entry.title == "Ep 1")
    assert [e.href for e in one.enclosures] == [
        "https://pod.example/1.mp3",
        "https://pod.example/1.ogg",
    ]
    document = json.loads((feeds / "pods.json").read_bytes())
    item = next(item for item in document["items"] if item["title"] == "Ep 1")
    assert item["attachments"] == [
        {
            "url": "https://pod.example/1.mp3",
            "mime_type": "audio/mpeg",
            "size_in_bytes": 1234,
            "duration_in_seconds": 3723,
        },
        {
            "url": "https://pod.example/1.ogg",
            "mime_type": "audio/ogg",
            "size_in_bytes": 999,
            "duration_in_seconds": 3723,
        },
    ]
    assert item["image"] == "https://pod.example/1.jpg"
    assert item["_podcast"]["episode"] == "7"


def test_duration_seconds() -> None:
    assert duration_seconds("1:02:03") == 3723
    assert duration_seconds("62:03") == 3723
    assert duration_seconds("125") == 125
    assert duration_seconds("about an hour") is None
    assert duration_seconds(None) is None
