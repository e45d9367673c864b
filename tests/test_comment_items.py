"""Issue 15, item 2: outputs whose items are comments (``items: comments``), a person's
comments across two blogs (``comment_authors``) and the replies to them (``replies_to``).

Two simulated WordPress blogs (:mod:`blogsim`) on 127.0.0.1, a real Poller and SQLite file, the
real Publisher; the documents read back with feedparser and checked by ``feedcheck``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import timedelta

import feedparser
from blogsim import START, Blog
from factories import Clock
from feedcheck import check_atom, check_json_feed, check_rss

from aggregator.config.schema import AppConfig
from aggregator.poll.poller import Poller
from aggregator.publish.publisher import Publisher
from aggregator.storage import Storage

H = timedelta(hours=1)

CONFIG = """
defaults:
  comments: true
sources:
  - name: one
    url: {one}
  - name: two
    url: {two}
outputs:
  - name: talk
    items: comments
    limit: 2
    pages: 3
    killfile: ["Spammer"]
  - name: alice
    items: comments
    comment_authors: [alice]
  - name: answers
    items: comments
    replies_to: [Alice]
  - name: polite
    items: comments
    exclude: [{{content: "(?i)rude"}}]
"""


def parsed(config: AppConfig, name: str, fmt: str = "atom"):  # noqa: ANN201
    content = (config.public_dir / "feeds" / f"{name}.{fmt}").read_bytes()
    url = f"https://feeds.example.org/feeds/{name}.{fmt}"
    check = {"atom": check_atom, "rss": check_rss, "json": check_json_feed}[fmt]
    assert check(content, url) == []
    if fmt == "json":
        return json.loads(content)
    document = feedparser.parse(content)
    assert not document.bozo, document.get("bozo_exception")
    return document


def test_comment_outputs_across_two_blogs(
    blogs: Callable[..., Blog], write_yaml_config: Callable[[str], AppConfig], clock: Clock
) -> None:
    one = blogs("/one", "wordpress")
    two = blogs("/two", "wordpress")
    post1 = one.add_post("p1", "Post One", START - 100 * H)
    post2 = two.add_post("p2", "Post Two", START - 90 * H)
    a1 = one.comment(post1, "Alice", "Alice on one.\nMore lines.", START - 80 * H)
    one.comment(post1, "Bob", "Bob answers Alice.", START - 70 * H, parent=a1)
    one.comment(post1, "Spammer", "Buy.", START - 65 * H)
    a2 = two.comment(post2, "Alice", "Alice on two.", START - 60 * H)
    two.comment(post2, "Carol", "Carol answers, rude.", START - 50 * H, parent=a2)
    two.comment(post2, "Dan", "Dan on two.", START - 40 * H)
    config = write_yaml_config(
        CONFIG.format(one=one.origin + "/one/feed/atom/", two=two.origin + "/two/feed/atom/")
    )
    with Poller(config, clock=clock, manual=True) as poller:
        poller.poll_many(list(config.sources))
    with Storage(config.database) as storage:
        Publisher(config, storage).publish()

    talk = parsed(config, "talk")
    assert [e.title for e in talk.entries] == ["Dan on Post Two", "Carol on Post Two"]
    links = {link.rel: link.href for link in talk.feed.links}
    assert links["next"].endswith("/feeds/talk/page/2.atom")
    page2 = feedparser.parse((config.public_dir / "feeds/talk/page/2.atom").read_bytes())
    page3 = feedparser.parse((config.public_dir / "feeds/talk/page/3.atom").read_bytes())
    assert [e.title for e in page2.entries] == ["Alice on Post Two", "Bob on Post One"]
    assert [e.title for e in page3.entries] == ["Alice on Post One"]  # Spammer killfiled
    carol = talk.entries[1]
    assert carol.link == two.comment_url(post2, post2.comments[1])
    # The quoted first line of the comment it replies to, then the comment.
    assert "Alice wrote: Alice on two." in carol.content[0].value
    assert "Carol answers, rude." in carol.content[0].value
    # thr:in-reply-to: the parent comment; a top-level comment replies to the post.
    bob = page2.entries[1]
    assert "Alice wrote: Alice on one." in bob.content[0].value
    rss = parsed(config, "talk", "rss")
    assert rss.entries[0].title == "Dan on Post Two"
    json_feed = parsed(config, "talk", "json")
    assert json_feed["items"][0]["title"] == "Dan on Post Two"
    assert json_feed["next_url"].endswith("/feeds/talk/page/2.json")
    atom_bytes = (config.public_dir / "feeds/talk.atom").read_bytes()
    assert b"in-reply-to" in atom_bytes
    assert two.comment_url(post2, a2).encode() in atom_bytes  # Carol's parent, by permalink

    alice = parsed(config, "alice")
    assert [e.title for e in alice.entries] == ["Alice on Post Two", "Alice on Post One"]
    answers = parsed(config, "answers")
    assert [e.title for e in answers.entries] == ["Carol on Post Two", "Bob on Post One"]
    polite = parsed(config, "polite")
    assert "Carol on Post Two" not in [e.title for e in polite.entries]
    assert len(polite.entries) == 5

    # The person query reads an index, not every comment.
    with sqlite3.connect(config.database) as db:
        plan = " ".join(
            str(row)
            for row in db.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM comments c "
                "WHERE c.author COLLATE NOCASE IN ('alice') ORDER BY sort_at DESC"
            )
        )
    assert "comments_author_sort" in plan


def test_the_quote_is_the_first_line_of_the_parent() -> None:
    from aggregator.publish.commentitems import first_line

    assert first_line("<p>First <b>line</b>.</p><p>Second.</p>") == "First line."
    assert first_line("<p>" + "x" * 300 + "</p>", limit=10) == "xxxxxxxxx…"
    assert first_line(None) == ""
