"""Issue 15, item 4: a story that dedupe folds from copies in two sources publishes one thread,
merged from both, each comment labelled with its source and counted once: in the entry (with
``inline_comments``), its count, its comment feed and its web page.

Two simulated WordPress blogs (:mod:`blogsim`) on 127.0.0.1 carry the same story (same title,
same day, so dedupe folds them); a real Poller, SQLite file, Publisher and web app.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import feedparser
import httpx
from blogsim import START, Blog
from factories import Clock
from feedcheck import check_atom
from support import serve

from aggregator.config.schema import AppConfig
from aggregator.poll.poller import Poller
from aggregator.publish.publisher import Publisher
from aggregator.serve.server import create_app
from aggregator.storage import Storage

H = timedelta(hours=1)

CONFIG = """
defaults:
  comments: true
sources:
  - name: one
    title: Blog One
    url: {one}
  - name: two
    title: Blog Two
    url: {two}
outputs:
  - name: all
    inline_comments: all
"""


def test_copies_of_one_story_publish_one_merged_thread(
    blogs: Callable[..., Blog], write_yaml_config: Callable[[str], AppConfig], clock: Clock
) -> None:
    one = blogs("/one", "wordpress")
    two = blogs("/two", "wordpress")
    story1 = one.add_post("story", "The Same Story", START - 30 * H)
    story2 = two.add_post("story", "The Same Story", START - 29 * H)
    one.comment(story1, "Alice", "Seen on one.", START - 20 * H)
    one.comment(story1, "Bob", "Bob was here.", START - 18 * H)
    two.comment(story2, "Carol", "Seen on two.", START - 19 * H)
    two.comment(story2, "Bob", "Bob was here.", START - 17 * H)  # the same comment, mirrored
    config = write_yaml_config(
        CONFIG.format(one=one.origin + "/one/feed/atom/", two=two.origin + "/two/feed/atom/")
    )
    with Poller(config, clock=clock, manual=True) as poller:
        poller.poll_many(list(config.sources))
    with Storage(config.database) as storage:
        Publisher(config, storage).publish()
        kept = next(e for e in storage.list_entries(["one"], 10) if e.title == "The Same Story")

    atom = (config.public_dir / "feeds" / "all.atom").read_bytes()
    assert check_atom(atom, "https://feeds.example.org/feeds/all.atom") == []
    (entry,) = feedparser.parse(atom).entries
    html = entry.content[0].value
    assert "3 comments" in html
    assert "From Blog One" in html and "Seen on one." in html
    assert "From Blog Two" in html and "Seen on two." in html
    assert html.count("Bob was here.") == 1
    assert entry.get("thr_total") == "3"

    thread = feedparser.parse(
        (config.public_dir / "feeds" / "all" / kept.public_id / "comments.atom").read_bytes()
    )
    assert sorted(e.author for e in thread.entries) == ["Alice", "Bob", "Carol"]
    assert any("From Blog Two" in e.content[0].value for e in thread.entries)

    with serve(create_app(config)) as base:
        page = httpx.get(f"{base}/outputs/all/{kept.public_id}", timeout=10)
    assert page.status_code == 200
    assert "Seen on two." in page.text and page.text.count("Bob was here.") == 1
