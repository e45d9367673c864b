"""Comments behind APIs (issue 16): Hacker News, Reddit and Disqus simulated on 127.0.0.1
(tests/apisim.py), polled through the Poller, stored, published and read back."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import feedparser
import pytest
from apisim import ApiSim, disqus_post, hn_comment, reddit_comment
from click.testing import CliRunner
from discussion_helpers import poll_and_publish, stored_comments
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.cli import main
from aggregator.config.loading import load_config
from aggregator.errors import ConfigError
from aggregator.poll.poller import Poller
from aggregator.storage import Storage

KEY = "sekrit-disqus-key-123"
T0 = 1_700_000_000


def _feed(origin: str, prefix: str) -> str:
    items = "".join(
        f"<item><title>Post {n}</title><link>http://{prefix}.example/post-{n}</link>"
        f"<guid>{prefix}-{n}</guid><description>Body {n}</description></item>"
        for n in (1, 2)
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>' + prefix + "</title>"
        f"<link>http://{prefix}.example/</link>{items}</channel></rss>"
    )


@pytest.fixture
def sim(httpserver: HTTPServer) -> ApiSim:
    api = ApiSim()
    origin = httpserver.url_for("/").rstrip("/")

    def dispatch(request: Request) -> Response:
        if request.path in ("/blog/feed.xml", "/dblog/feed.xml"):
            return Response(
                _feed(origin, request.path.split("/")[1]),
                200,
                {"Content-Type": "application/rss+xml"},
            )
        return api.handle(request)

    httpserver.expect_request(re.compile(r"^/")).respond_with_handler(dispatch)
    api.origin = origin  # type: ignore[attr-defined]
    _hacker_news(api)
    _reddit(api)
    _disqus(api)
    return api


def _hacker_news(api: ApiSim) -> None:
    api.hn_hits = [
        {
            "objectID": "8863",
            "title": "Post 1 is great",
            "url": "http://blog.example/post-1",
            "author": "dhouston",
            "points": 143,
            "num_comments": 3,
            "created_at_i": T0,
            "story_id": 8863,
            "_tags": ["story", "author_dhouston", "story_8863"],
        },
        # A fuzzy search hit for another page: must not be taken.
        {
            "objectID": "9999",
            "title": "Other",
            "url": "http://blog.example/post-1/other",
            "author": "x",
            "points": 1,
            "num_comments": 0,
            "created_at_i": T0,
            "story_id": 9999,
        },
    ]
    api.hn_items[8863] = {
        "id": 8863,
        "created_at_i": T0,
        "type": "story",
        "author": "dhouston",
        "title": "Post 1 is great",
        "url": "http://blog.example/post-1",
        "text": None,
        "points": 143,
        "parent_id": None,
        "story_id": 8863,
        "children": [
            hn_comment(
                9001,
                8863,
                "alice",
                "<p>First! <script>alert(1)</script></p>",
                T0 + 60,
                [
                    hn_comment(9002, 9001, "bob", "<p>Reply to alice</p>", T0 + 120),
                ],
            ),
            hn_comment(
                9003,
                8863,
                None,
                None,
                T0 + 180,
                [  # deleted, with a reply
                    hn_comment(9004, 9003, "carol", "<p>Orphan reply</p>", T0 + 240),
                ],
            ),
            hn_comment(9005, 8863, None, None, T0 + 300),  # deleted, alone
        ],
    }


def _reddit(api: ApiSim) -> None:
    api.reddit_posts = [
        {
            "id": "abc123",
            "name": "t3_abc123",
            "subreddit": "programming",
            "title": "Post 2",
            "url": "http://blog.example/post-2",
            "author": "poster",
            "score": 57,
            "num_comments": 2,
            "created_utc": T0 + 10.0,
            "permalink": "/r/programming/comments/abc123/post_2/",
        },
    ]
    api.reddit_comments["abc123"] = [
        reddit_comment(
            "c1",
            "t3_abc123",
            "dan",
            "Nice post",
            T0 + 100,
            [
                reddit_comment("c2", "t1_c1", "erin", "Agreed", T0 + 200),
            ],
        ),
        reddit_comment("c3", "t3_abc123", "[deleted]", "[deleted]", T0 + 300),
        {
            "kind": "more",
            "data": {"count": 4, "children": ["c9"], "id": "c9", "parent_id": "t3_abc123"},
        },
    ]


def _disqus(api: ApiSim) -> None:
    api.disqus_threads["link:http://dblog.example/post-1"] = [
        disqus_post(101, None, "Frank", "<p>Hello from Disqus</p>", "2023-11-14T22:20:00"),
        disqus_post(102, 101, "Grace", "<p>Hi Frank</p>", "2023-11-14T22:25:00", edited=True),
        disqus_post(103, None, "Heidi", "<p>gone</p>", "2023-11-14T22:30:00", deleted=True),
        disqus_post(104, 102, "Ivan", "<p>third level</p>", "2023-11-14T22:35:00"),
    ]


@pytest.fixture
def config_path(tmp_path: Path, sim: ApiSim, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DISQUS_KEY", KEY)
    origin = sim.origin  # type: ignore[attr-defined]
    path = tmp_path / "aggregator.yaml"
    path.write_text(
        f"""database: {tmp_path}/var/aggregator.db
public_dir: {tmp_path}/var/public
defaults:
  timeout: 5s
sources:
  - name: blog
    url: {origin}/blog/feed.xml
    discussions:
      - type: hackernews
        base_url: {origin}/hn/api/v1
        requests_per_minute: 600
      - type: reddit
        base_url: {origin}/reddit
        requests_per_minute: 600
  - name: dblog
    url: {origin}/dblog/feed.xml
    comment_system:
      type: disqus
      forum: exampleblog
      api_key: ${{DISQUS_KEY}}
      base_url: {origin}/disqus/api/3.0
      requests_per_minute: 600
outputs:
  - name: all
    formats: [atom, rss, json]
""",
        encoding="utf-8",
    )
    return path


_poll = poll_and_publish


_comments = stored_comments


def test_blog_discussed_on_hn_and_reddit_and_a_disqus_blog(
    config_path: Path, sim: ApiSim, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    results = _poll(config_path)
    assert all(r.ok for r in results), [r.describe() for r in results]
    rows = {row["key"]: row for row in _comments(config_path)}
    # Hacker News: a root node labelled by site, replies below it, deleted ones handled.
    root = rows["@hn:8863"]
    assert "on Hacker News: 143 points" in root["content"]
    assert root["entry_link"] == "http://blog.example/post-1"
    assert rows["@hn:9001"]["parent_key"] == "@hn:8863"
    assert rows["@hn:9002"]["parent_key"] == "@hn:9001"
    assert rows["@hn:9001"]["author"] == "alice"
    assert "<script" not in rows["@hn:9001"]["content"]
    assert rows["@hn:9003"]["gone_at"] is not None  # deleted, kept for its reply
    assert rows["@hn:9004"]["parent_key"] == "@hn:9003"
    assert "@hn:9005" not in rows and "@hn:9999" not in rows
    assert rows["@hn:9002"]["published_at"].startswith("2023-11-14T22:15:20")
    # Reddit.
    assert "on Reddit: 57 points, 2 comments" in rows["@reddit:abc123"]["content"]
    assert rows["@reddit:t1_c1"]["parent_key"] == "@reddit:abc123"
    assert rows["@reddit:t1_c2"]["parent_key"] == "@reddit:t1_c1"
    assert "@reddit:t1_c3" not in rows
    assert rows["@reddit:t1_c1"]["entry_link"] == "http://blog.example/post-2"
    # Disqus: the blog's own comments, all pages (2 a page), threaded, the deleted one left out.
    assert rows["@disqus:101"]["parent_key"] is None
    assert rows["@disqus:104"]["parent_key"] == "@disqus:102"
    assert rows["@disqus:102"]["author"] == "Grace"
    assert "@disqus:103" not in rows
    assert len(sim.requests("disqus")) == 2 + 1  # two pages of post-1, one 400 for post-2
    # Each comment stored once.
    keys = [row["key"] for row in _comments(config_path)]
    assert len(keys) == len(set(keys))
    # Republished: JSON Feed counts, Atom rel="related", the thread's own feed.
    config = load_config(config_path)
    feeds = config.public_dir / "feeds"
    document = json.loads((feeds / "all.json").read_text())
    by_url = {item["url"]: item for item in document["items"]}
    sites = by_url["http://blog.example/post-1"]["_aggregator"]["discussions"]
    assert sites == [
        {
            "site": "hackernews",
            "label": "Hacker News",
            "url": "https://news.ycombinator.com/item?id=8863",
            "score": 143,
            "comments": 3,
            "score_label": "points",
            "text": "Hacker News: 143 points, 3 comments",
        }
    ]
    atom = feedparser.parse((feeds / "all.atom").read_bytes())
    post2 = next(
        e for e in atom.entries if any(x.href == "http://blog.example/post-2" for x in e.links)
    )
    related = [link for link in post2.links if link.rel == "related"]
    assert related[0].href == "https://www.reddit.com/r/programming/comments/abc123/post_2/"
    assert "57 points" in related[0].title
    # No key anywhere in the logs, nor in the requests' errors.
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("aggregator")]
    assert ours and not [line for line in ours if KEY in line]


def test_the_entry_page_names_the_discussions(config_path: Path, sim: ApiSim) -> None:
    from starlette.testclient import TestClient

    from aggregator.serve.server import create_app

    _poll(config_path)
    config = load_config(config_path)
    with Storage(config.database) as storage:
        entry = next(
            e for e in storage.list_entries(None, 10) if e.link == "http://blog.example/post-1"
        )
    client = TestClient(create_app(config))
    page = client.get(f"/outputs/all/{entry.public_id}")
    assert page.status_code == 200
    assert "Hacker News: 143 points, 3 comments" in page.text
    assert "news.ycombinator.com/item?id=8863" in page.text


def test_429_with_retry_after_stops_requests_to_that_host(config_path: Path, sim: ApiSim) -> None:
    sim.fail["hn"] = [(429, {"Retry-After": "120"})]
    # Reddit on another host name (the budget is per API host, and all of sim is one host).
    origin = sim.origin  # type: ignore[attr-defined]
    text = config_path.read_text().replace(
        f"base_url: {origin}/reddit", f"base_url: {origin.replace('127.0.0.1', 'localhost')}/reddit"
    )
    config_path.write_text(text)
    config = load_config(config_path)
    with Poller(config, manual=True) as poller:
        poller.poll_many(config.sources)
        first = len(sim.requests("hn"))
        poller.poll_many(config.sources)  # the same Poller: its API client remembers
        assert len(sim.requests("hn")) == first == 1
        assert len(sim.requests("reddit")) >= 2  # other hosts are not held
    assert not any(k.startswith("@hn:") for k in (r["key"] for r in _comments(config_path)))


def test_responses_cached_with_validators_and_edits_and_deletions(
    config_path: Path, sim: ApiSim
) -> None:
    sim.etag["/api/v1/items/8863"] = '"v1"'
    config = load_config(config_path)
    with Poller(config, manual=True) as poller:
        poller.poll_many(config.sources)
        poller.poll_many(config.sources)
        items = sim.requests("hn", "/items/")
        assert items[-1].headers.get("If-None-Match") == '"v1"'
        assert items[-1].status == 304
        # Edited, and one deleted: a new version of the item.
        story = sim.hn_items[8863]
        story["children"][0]["text"] = "<p>First! (edited)</p>"
        story["children"][0]["children"][0].update(author=None, text=None)
        sim.etag["/api/v1/items/8863"] = '"v2"'
        poller.poll_many(config.sources)
    rows = {row["key"]: row for row in _comments(config_path)}
    assert "(edited)" in rows["@hn:9001"]["content"]
    assert rows["@hn:9002"]["gone_at"] is not None


def test_requests_are_spaced_by_the_providers_rate(config_path: Path, sim: ApiSim) -> None:
    text = config_path.read_text().replace(
        "requests_per_minute: 600\n      - type: reddit",
        "requests_per_minute: 120\n      - type: reddit",
    )
    config_path.write_text(text)
    sim.limits["hn"] = 2  # the simulated API allows 2 a minute... but spacing is what we test
    sim.limits["hn"] = 10**6
    _poll(config_path)
    times = [r.at for r in sim.requests("hn")]
    assert len(times) >= 3  # search page 0, page 1 (nbPages 2), the item
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 0.45, gaps
    assert not [r for r in sim.log if r.status == 429]


def test_no_key_in_status_check_or_config_errors(
    config_path: Path, sim: ApiSim, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sim.disqus_key = "another-key"  # ours is refused: an error is recorded and shown
    _poll(config_path)
    runner = CliRunner()
    for args in (["check"], ["status"], ["status", "--json"]):
        out = runner.invoke(main, ["--config", str(config_path), *args])
        assert KEY not in out.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "sources:\n  - name: a\n    url: http://a.example/feed\n"
        "    comment_system: {type: disqus, forum: f, api_key: '${NOT_SET_ANYWHERE}'}\n"
        "    discussions: [hackernews, slashdot]\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_config(bad)
    text = str(raised.value)
    assert (
        f"{bad}:4: sources[0].comment_system: disqus: api_key: environment variable "
        "NOT_SET_ANYWHERE is not set" in text
    )
    assert f"{bad}:5: sources[0].discussions: unknown discussion provider 'slashdot'" in text


def test_migration_0010_from_the_schema_before_it(tmp_path: Path) -> None:
    from sqlite_utils import Database

    from aggregator.storage.schema import migrations

    path = tmp_path / "old.db"
    with Storage(path) as storage:
        pass
    db = Database(path)
    db.execute("DROP TABLE discussions")
    db.execute("DROP TABLE discussion_lookups")
    db.execute("ALTER TABLE entries DROP COLUMN discussions")
    db.execute("DELETE FROM _sqlite_migrations WHERE name = '0010_discussions'")
    db.conn.commit()
    db.close()
    with Storage(path) as storage:
        assert "0010_discussions" in [m.name for m in migrations.applied(storage.db)]
        assert storage.list_discussions([1]) == {}
        assert "discussions" in storage.db["entries"].columns_dict
