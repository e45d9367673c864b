"""Discussions on Lobsters and Bluesky, Reddit's ``more`` stubs, and the API memory that
outlives a restart (issue 16): simulated APIs on 127.0.0.1 (tests/apisim.py), polled by the
Poller into a real database, published, and read back with feedparser.

One world is polled once for the read-only tests (module scope); the last test restarts it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest
from apisim import ApiSim, bsky_node, bsky_post, lobsters_comment, reddit_comment
from werkzeug import Request, Response
from werkzeug.serving import make_server

from aggregator.config.loading import load_config
from aggregator.models import PollResult
from aggregator.poll.poller import Poller
from aggregator.publish.publisher import Publisher
from aggregator.storage import Storage

T0 = 1_700_000_000
POST1 = "http://blog.example/post-1"
POST2 = "http://blog.example/post-2"
ALICE = "did:plc:alice111"
BOB = "did:plc:bob222"


def _feed() -> str:
    items = "".join(
        f"<item><title>Post {n}</title><link>http://blog.example/post-{n}</link>"
        f"<guid>blog-{n}</guid><description>Body {n}</description></item>"
        for n in (1, 2)
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>blog</title>'
        f"<link>http://blog.example/</link>{items}</channel></rss>"
    )


def _lobsters(api: ApiSim) -> None:
    at = "2023-11-14T16:20:00.000-06:00"
    api.lobsters_stories = [
        {
            "short_id": "ab12cd",
            "short_id_url": "https://lobste.rs/s/ab12cd",
            "created_at": at,
            "title": "Post 1 on lobsters",
            "url": "https://www.blog.example/post-1",  # another form of the entry's URL
            "score": 25,
            "flags": 0,
            "comment_count": 3,
            "description": "",
            "comments_url": "https://lobste.rs/s/ab12cd/post_1_on_lobsters",
            "submitter_user": "sub",
            "user_is_author": False,
            "tags": ["programming"],
            "comments": [
                lobsters_comment(
                    "c1", None, "alice", "<p>Lobster one <script>x()</script></p>", at
                ),
                lobsters_comment("c2", "c1", "bob", "<p>Reply to alice</p>", at, depth=1),
                lobsters_comment("c3", None, "carol", "", at, deleted=True),
                lobsters_comment("c4", "c3", "dave", "<p>Under a deleted one</p>", at, depth=1),
                lobsters_comment("c5", None, "erin", "", at, deleted=True),  # deleted, alone
            ],
        },
        {  # the same search, another page: never taken
            "short_id": "zz99zz",
            "url": "https://blog.example/post-1/other",
            "score": 1,
            "comment_count": 0,
            "comments": [],
        },
    ]


def _bluesky(api: ApiSim) -> None:
    at = "2023-11-14T22:20:00.000Z"
    root = bsky_post(ALICE, "3kroot1", "alice.bsky.social", "Read this", at, likes=12,
                     replies=2, link=POST1)  # fmt: skip
    api.bsky_posts = [
        root,
        # Search is fuzzy: a post linking another page of the site is left out.
        bsky_post(BOB, "3kother", "bob.bsky.social", "other", at, link=f"{POST1}/other"),
        # Found, but its thread is gone: an error for that thread only.
        bsky_post(BOB, "3kgone1", "bob.bsky.social", "gone", at, link=POST1),
    ]
    reply = bsky_post(BOB, "3kreply1", "bob.bsky.social", "Nice\n\n<b>bold</b> claim", at)
    nested = bsky_post(ALICE, "3kreply2", "alice.bsky.social", "Thanks", at)
    api.bsky_threads[root["uri"]] = bsky_node(
        root,
        [
            bsky_node(reply, [bsky_node(nested)]),
            {
                "$type": "app.bsky.feed.defs#notFoundPost",
                "uri": f"at://{BOB}/app.bsky.feed.post/3kdeleted",
                "notFound": True,
            },
            {
                "$type": "app.bsky.feed.defs#blockedPost",
                "uri": f"at://{BOB}/app.bsky.feed.post/3kblocked",
                "blocked": True,
                "author": {"did": BOB, "viewer": {"blockedBy": True}},
            },
        ],
    )


def _reddit(api: ApiSim) -> None:
    api.reddit_posts = [
        {
            "id": "abc123",
            "name": "t3_abc123",
            "title": "Post 2",
            "url": POST2,
            "author": "poster",
            "score": 57,
            "num_comments": 5,
            "created_utc": T0 + 10.0,
            "permalink": "/r/programming/comments/abc123/post_2/",
        }
    ]
    nested_stub = {"kind": "more", "data": {"count": 1, "children": ["c12"], "parent_id": "t1_c1"}}
    api.reddit_comments["abc123"] = [
        reddit_comment(
            "c1",
            "t3_abc123",
            "dan",
            "First",
            T0 + 100,
            [reddit_comment("c2", "t1_c1", "erin", "Second", T0 + 200), nested_stub],
        ),  # fmt: skip
        {"kind": "more", "data": {"count": 2, "children": ["c9", "c10"], "parent_id": "t3_abc123"}},
        reddit_comment("c20", "t3_abc123", "zed", "Last top-level", T0 + 900),
    ]
    for ident, parent in (("c9", "t3_abc123"), ("c10", "t1_c9"), ("c12", "t1_c1")):
        thing = reddit_comment(ident, parent, f"user_{ident}", f"Loaded {ident}", T0 + 500)
        api.reddit_more[ident] = thing


@dataclass
class World:
    sim: ApiSim
    config_path: Path

    def poll(self) -> list[PollResult]:
        """Poll with a new Poller (a restart), checking that no provider is ever asked while
        the write lock is held (the API client takes it to remember responses)."""
        from aggregator.discussions.base import Provider

        config = load_config(self.config_path)
        held: list[bool] = []
        ask = Provider.get
        with Poller(config, manual=True) as poller, pytest.MonkeyPatch.context() as patch:

            def get(provider: Provider, *args: object, **kwargs: object) -> object:
                held.append(poller.write_lock.locked())
                return ask(provider, *args, **kwargs)  # type: ignore[arg-type]

            patch.setattr(Provider, "get", get)
            results = poller.poll_many(config.sources)
            assert all(r.ok for r in results), [r.describe() for r in results]
            with Storage(config.database) as storage:
                Publisher(config, storage).publish()
        assert held and not any(held)
        return results

    def rows(self, sql: str, *params: object) -> list[sqlite3.Row]:
        db = sqlite3.connect(load_config(self.config_path).database)
        db.row_factory = sqlite3.Row
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()

    def comments(self) -> dict[str, sqlite3.Row]:
        return {row["key"]: row for row in self.rows("SELECT * FROM comments ORDER BY id")}

    def feed(self, ext: str) -> bytes:
        return (load_config(self.config_path).public_dir / "feeds" / f"all.{ext}").read_bytes()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    sim = ApiSim()
    _lobsters(sim)
    _bluesky(sim)
    _reddit(sim)
    sim.etag["/s/ab12cd.json"] = '"story-v1"'

    def app(environ: dict, start_response):  # type: ignore[no-untyped-def]
        request = Request(environ)
        if request.path == "/blog/feed.xml":
            response = Response(_feed(), 200, {"Content-Type": "application/rss+xml"})
        else:
            response = sim.handle(request)
        return response(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    origin = f"http://127.0.0.1:{server.server_port}"
    other = f"http://localhost:{server.server_port}"  # another API host, with its own budget
    tmp = tmp_path_factory.mktemp("elsewhere")
    path = tmp / "aggregator.yaml"
    path.write_text(
        f"""database: {tmp}/var/aggregator.db
public_dir: {tmp}/var/public
defaults:
  timeout: 5s
sources:
  - name: blog
    url: {origin}/blog/feed.xml
    discussions:
      - {{type: lobsters, base_url: {other}/lobsters, requests_per_minute: 6000}}
      - {{type: bluesky, base_url: {origin}/bsky/xrpc, requests_per_minute: 6000}}
      - {{type: reddit, base_url: {origin}/reddit, requests_per_minute: 6000}}
outputs:
  - name: all
    formats: [atom, rss, json]
""",
        encoding="utf-8",
    )
    world = World(sim, path)
    world.poll()
    yield world
    server.shutdown()
    thread.join(5)


def test_a_lobsters_thread(world: World) -> None:
    rows = world.comments()
    root = rows["@lobsters:ab12cd"]
    assert "on Lobsters: 25 points, 3 comments" in root["content"]
    assert root["link"] == "https://lobste.rs/s/ab12cd/post_1_on_lobsters"
    assert rows["@lobsters:c1"]["parent_key"] == "@lobsters:ab12cd"
    assert rows["@lobsters:c1"]["author"] == "alice"
    assert "<script" not in rows["@lobsters:c1"]["content"]
    assert rows["@lobsters:c2"]["parent_key"] == "@lobsters:c1"
    assert rows["@lobsters:c3"]["gone_at"] is not None  # deleted, kept for its reply
    assert rows["@lobsters:c4"]["parent_key"] == "@lobsters:c3"
    assert rows["@lobsters:c2"]["published_at"].startswith("2023-11-14T22:20:00")
    assert "@lobsters:c5" not in rows and "@lobsters:zz99zz" not in rows
    assert not world.sim.requests("lobsters", "/s/zz99zz")


def test_a_bluesky_thread(world: World) -> None:
    rows = world.comments()
    root = rows[f"@bsky:{ALICE}/app.bsky.feed.post/3kroot1"]
    assert "on Bluesky: 12 likes, 2 comments" in root["content"]
    assert root["link"] == "https://bsky.app/profile/alice.bsky.social/post/3kroot1"
    reply = rows[f"@bsky:{BOB}/app.bsky.feed.post/3kreply1"]
    assert reply["parent_key"] == root["key"]
    assert reply["author"] == "Bob"
    assert "&lt;b&gt;bold" in reply["content"] and "<b>" not in reply["content"]
    assert rows[f"@bsky:{ALICE}/app.bsky.feed.post/3kreply2"]["parent_key"] == reply["key"]
    assert not [k for k in rows if "3kdeleted" in k or "3kblocked" in k or "3kother" in k]
    # Every search page was read (one post a page), the fuzzy hit left out.
    assert len(world.sim.requests("bsky", "searchPosts")) == 3 + 1  # post-1's pages, post-2
    # The vanished thread is an error of that thread alone.
    errors = world.rows("SELECT ref, error FROM discussions WHERE error IS NOT NULL")
    assert [row["ref"] for row in errors] == [f"at://{BOB}/app.bsky.feed.post/3kgone1"]


def test_reddit_more_stubs_are_filled(world: World) -> None:
    keys = [row["key"] for row in world.rows("SELECT key FROM comments ORDER BY id")]
    reddit = [k.removeprefix("@reddit:") for k in keys if k.startswith("@reddit:")]
    # In the site's order: each loaded comment where its stub was.
    assert reddit == ["abc123", "t1_c1", "t1_c2", "t1_c12", "t1_c9", "t1_c10", "t1_c20"]
    rows = world.comments()
    assert rows["@reddit:t1_c10"]["parent_key"] == "@reddit:t1_c9"
    assert rows["@reddit:t1_c12"]["parent_key"] == "@reddit:t1_c1"
    more = world.sim.requests("reddit", "/api/morechildren")
    assert len(more) == 1  # both stubs' ids in one request
    assert sorted(more[0].args["children"].split(",")) == ["c10", "c12", "c9"]


def test_every_output_names_the_discussions_with_their_counts(world: World) -> None:
    wanted = {
        "https://lobste.rs/s/ab12cd/post_1_on_lobsters": "Lobsters: 25 points, 3 comments",
        "https://bsky.app/profile/alice.bsky.social/post/3kroot1": "Bluesky: 12 likes, 2 comments",
    }
    for ext in ("atom", "rss"):
        parsed = feedparser.parse(world.feed(ext))
        entry = next(e for e in parsed.entries if e.link == POST1)
        related = {x.href: x.get("title") for x in entry.links if x.rel == "related"}
        assert wanted.items() <= related.items(), ext
    document = json.loads(world.feed("json"))
    item = next(i for i in document["items"] if i["url"] == POST1)
    sites = {s["url"]: s for s in item["_aggregator"]["discussions"]}
    bluesky = sites["https://bsky.app/profile/alice.bsky.social/post/3kroot1"]
    assert (bluesky["site"], bluesky["score"], bluesky["score_label"]) == ("bluesky", 12, "likes")
    lobsters = sites["https://lobste.rs/s/ab12cd/post_1_on_lobsters"]
    assert lobsters["text"] == "Lobsters: 25 points, 3 comments"


def test_provider_errors_and_429_are_one_line_and_remembered(world: World, tmp_path: Path) -> None:
    from aggregator.discussions.api import ApiClient
    from aggregator.discussions.base import ThreadRef
    from aggregator.discussions.bluesky import Bluesky
    from aggregator.discussions.lobsters import Lobsters
    from aggregator.discussions.memory import StoredApiMemory
    from aggregator.discussions.registry import parse_settings
    from aggregator.errors import FetchError, ParseError, RateLimitedError
    from aggregator.poll.resources import make_fetcher

    config = load_config(world.config_path)
    fetcher = make_fetcher(config)
    lock = threading.Lock()
    storage = Storage(tmp_path / "api.db")
    clock = lambda: datetime.now(UTC)  # noqa: E731

    def client() -> ApiClient:
        return ApiClient(lambda: fetcher, memory=StoredApiMemory(lambda: storage, lock, clock))

    items = {i["type"]: i for i in config.sources[0].discussions}
    api = client()
    lobsters = Lobsters(parse_settings(items["lobsters"], "discussion"), api)
    bluesky = Bluesky(parse_settings(items["bluesky"], "discussion"), api)
    sim = world.sim
    try:
        sim.fail["lobsters"] = [(500, {})]
        with pytest.raises(FetchError) as failed:
            lobsters.fetch_thread(ThreadRef("ab12cd"))
        assert "\n" not in str(failed.value) and "500" in str(failed.value)
        sim.lobsters_stories.append({"short_id": "bad1", "url": "x", "comments": "nope"})
        with pytest.raises(ParseError, match="not a story"):
            lobsters.fetch_thread(ThreadRef("bad1"))
        # Bluesky: a root post deleted since it was found.
        sim.bsky_threads["at://did:plc:x/app.bsky.feed.post/3kdel"] = {
            "$type": "app.bsky.feed.defs#notFoundPost",
            "uri": "at://did:plc:x/app.bsky.feed.post/3kdel",
            "notFound": True,
        }
        with pytest.raises(FetchError, match="deleted"):
            bluesky.fetch_thread(ThreadRef("at://did:plc:x/app.bsky.feed.post/3kdel"))
        # 429 with Retry-After: no request to that host until then, even after a restart.
        sim.fail["lobsters"] = [(429, {"Retry-After": "30"})]
        with pytest.raises(RateLimitedError):
            lobsters.fetch_thread(ThreadRef("ab12cd"))
        asked = len(sim.requests("lobsters"))
        for restarted in (api, client()):
            again = Lobsters(lobsters.settings, restarted)
            with pytest.raises(RateLimitedError, match="asked to wait until"):
                again.fetch_thread(ThreadRef("ab12cd"))
        assert len(sim.requests("lobsters")) == asked
        until = client().blocked_until(lobsters.base_url)
        assert until is not None and 20 < (until - clock()).total_seconds() <= 30
        bluesky.fetch_thread(ThreadRef(f"at://{ALICE}/app.bsky.feed.post/3kroot1"))  # other host
    finally:
        sim.fail.clear()
        sim.lobsters_stories.pop()
        del sim.bsky_threads["at://did:plc:x/app.bsky.feed.post/3kdel"]
        storage.close()
        fetcher.close()


def test_a_restart_asks_conditionally_and_keeps_a_hosts_block(world: World) -> None:
    sim = world.sim
    seen = len(sim.requests("lobsters", "/s/ab12cd"))
    assert sim.requests("lobsters", "/s/ab12cd")[0].status == 200
    before = world.comments()
    sim.fail["bsky"] = [(429, {"Retry-After": "120"})]
    results = world.poll()  # a new Poller: only the database remembers
    # Nothing changed: not even a deleted comment kept for its replies is written again.
    assert [(r.new_comments, r.changed_comments) for r in results] == [(0, 0)]
    stories = sim.requests("lobsters", "/s/ab12cd")[seen:]
    assert [r.status for r in stories] == [304]
    assert stories[-1].headers.get("If-None-Match") == '"story-v1"'
    after = world.comments()
    lobsters = [k for k in before if k.startswith("@lobsters:")]
    assert [after[k]["gone_at"] for k in lobsters] == [before[k]["gone_at"] for k in lobsters]
    assert [after[k]["content"] for k in lobsters] == [before[k]["content"] for k in lobsters]
    blocked = len(sim.requests("bsky"))
    assert sim.requests("bsky")[-1].status == 429
    assert world.rows("SELECT host FROM api_blocks")[0]["host"].startswith("http://127.0.0.1")
    world.poll()  # restarted again, within the two minutes asked for
    assert len(sim.requests("bsky")) == blocked
    assert len(sim.requests("lobsters", "/s/ab12cd")) == seen + 2  # other hosts are asked
    # No API key or URL is stored: responses are keyed by a hash.
    hashes = [row["url_hash"] for row in world.rows("SELECT url_hash FROM api_responses")]
    assert hashes and all(len(h) == 64 and "/" not in h for h in hashes)


def test_migration_0019_from_the_schema_before_it(tmp_path: Path) -> None:
    from sqlite_utils import Database

    from aggregator.storage.schema import migrations

    path = tmp_path / "old.db"
    with Storage(path):
        pass
    db = Database(path)
    db.execute("DROP TABLE api_responses")
    db.execute("DROP TABLE api_blocks")
    db.execute("DELETE FROM _sqlite_migrations WHERE name = '0019_discussion_cache'")
    db.conn.commit()
    db.close()
    with Storage(path) as storage:
        assert "0019_discussion_cache" in [m.name for m in migrations.applied(storage.db)]
        now = datetime.now(UTC)
        with storage.transaction():
            storage.put_api_response("h", b"{}", '"e"', None, now)
        assert storage.get_api_response("h").etag == '"e"'  # type: ignore[union-attr]
