"""Self-hosted comment systems behind APIs (issue 16, section 1): Discourse, Isso, Remark42 and
Commento simulated on 127.0.0.1 (tests/selfhostedsim.py), each a blog whose source sets
``comment_system:``, polled through the Poller, stored, published and read back."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from pathlib import Path

import feedparser
import pytest
from discussion_helpers import keys_with, poll_and_publish, stored_comments
from pytest_httpserver import HTTPServer
from selfhostedsim import (
    SelfHostedSim,
    commento_comment,
    discourse_post,
    isso_comment,
    remark_comment,
)
from werkzeug import Request, Response

from aggregator.config.loading import load_config
from aggregator.discussions import discourse, isso
from aggregator.errors import ConfigError
from aggregator.parse.sandbox import InProcessParser
from aggregator.poll.poller import Poller

KEY = "sekrit-discourse-key-456"
T0 = 1_700_000_000.25
BLOGS = ("forum", "forumkey", "issoblog", "remarkblog", "commentoblog")


def _feed(origin: str, blog: str) -> str:
    items = "".join(
        f"<item><title>{blog} post {n}</title><link>{origin}/{blog}/post-{n}</link>"
        f"<guid>{blog}-{n}</guid><description>Body {n}</description></item>"
        for n in (1, 2)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{blog}</title>'
        f"<link>{origin}/{blog}/</link>{items}</channel></rss>"
    )


def _post_page(origin: str, blog: str, number: str) -> str:
    """A post's page; the Discourse blog's embeds the topic of its first post by id."""
    embed = ""
    if blog == "forum":
        topic = "topicId: 501," if number == "1" else ""
        embed = (
            "<div id='discourse-comments'></div><script type='text/javascript'>"
            f"DiscourseEmbed = {{ discourseUrl: '{origin}/discourse/', {topic}"
            f" discourseEmbedUrl: '{origin}/forum/post-{number}' }};</script>"
        )
    return f"<html><body><article><p>Post {number}</p></article>{embed}</body></html>"


@pytest.fixture
def sim(httpserver: HTTPServer) -> SelfHostedSim:
    api = SelfHostedSim()
    origin = httpserver.url_for("/").rstrip("/")

    def dispatch(request: Request) -> Response:
        match = re.fullmatch(r"/(\w+)/(feed\.xml|post-(\d))", request.path)
        if match and match.group(1) in BLOGS:
            if match.group(3):
                page = _post_page(origin, match.group(1), match.group(3))
                return Response(page, 200, {"Content-Type": "text/html"})
            return Response(
                _feed(origin, match.group(1)), 200, {"Content-Type": "application/rss+xml"}
            )
        return api.handle(request)

    httpserver.expect_request(re.compile(r"^/")).respond_with_handler(dispatch)
    api.origin = origin  # type: ignore[attr-defined]
    _discourse(api, origin)
    _isso(api)
    _remark42(api, origin)
    _commento(api)
    return api


def _discourse(api: SelfHostedSim, origin: str) -> None:
    api.discourse_topics[501] = {"title": "Forum post 1", "slug": "forum-post-1"}
    api.discourse_posts[501] = [
        discourse_post(1001, 1, "system", "<p>The post itself</p>", "2023-11-14T22:00:00.000Z"),
        discourse_post(1002, 2, "alice", "<p>Great post</p>", "2023-11-14T22:10:00.000Z"),
        discourse_post(
            1003,
            3,
            "bob",
            "<p>Agreed</p>",
            "2023-11-14T22:20:00.000Z",
            reply_to=2,
            edited="2023-11-14T23:00:00.000Z",
        ),
        discourse_post(1004, 4, "carol", "<p>gone</p>", "2023-11-14T22:30:00.000Z", deleted=True),
        discourse_post(1005, 5, "dave", "<p>To carol</p>", "2023-11-14T22:40:00.000Z", reply_to=4),
        discourse_post(1006, 6, "eve", "<p>spam</p>", "2023-11-14T22:50:00.000Z", hidden=True),
        discourse_post(1007, 7, "system", "", "2023-11-14T22:55:00.000Z", post_type=3),
        discourse_post(
            # A forum in a subfolder writes its links with it.
            1008,
            8,
            "frank",
            '<p>Hi <script>alert(1)</script><a href="/discourse/u/alice">@alice</a></p>',
            "2023-11-14T23:10:00.000Z",
            reply_to=1,
        ),
    ]
    api.discourse_topics[502] = {"title": "Keyed post", "slug": "keyed-post"}
    api.discourse_posts[502] = [
        discourse_post(2001, 1, "system", "<p>The post</p>", "2023-11-14T22:00:00.000Z"),
        discourse_post(2002, 2, "grace", "<p>Found by key</p>", "2023-11-14T22:05:00.000Z"),
    ]
    api.discourse_embeds[f"{origin}/forumkey/post-1"] = 502


def _isso(api: SelfHostedSim) -> None:
    api.isso_threads["/issoblog/post-1"] = [
        isso_comment(1, None, "alice", "<p>First</p>", T0 + 10, website="https://alice.example/"),
        isso_comment(2, 1, "bob", "<p>Reply 1</p>", T0 + 20),
        isso_comment(3, None, None, "", T0 + 30, mode=4),  # deleted, with a reply
        isso_comment(4, 3, "dave", "<p>To the deleted</p>", T0 + 40),
        isso_comment(5, None, "pending", "<p>waiting</p>", T0 + 50, mode=2),
        isso_comment(6, None, None, "", T0 + 60, mode=4),  # deleted, alone
        isso_comment(7, None, "carol", '<p onclick="x()">Later</p>', T0 + 70, modified=T0 + 99),
        isso_comment(8, 7, "erin", "<p>Reply 7</p>", T0 + 80),
        isso_comment(9, 1, "fay", "<p>Reply 2</p>", T0 + 90),
        isso_comment(10, 1, "gus", "<p>Reply 3</p>", T0 + 100),
    ]


def _remark42(api: SelfHostedSim, origin: str) -> None:
    url = f"{origin}/remarkblog/post-1"
    api.remark_threads[("blog", url)] = [
        remark_comment("r1", "", "Ann", "<p>Top</p>", "2023-11-14T22:13:20Z", url=url),
        remark_comment(
            "r2",
            "r1",
            "Ben",
            "<p>Edited reply</p>",
            "2023-11-14T22:20:00-06:00",
            url=url,
            edited="2023-11-15T01:00:00Z",
        ),
        remark_comment("r3", "", "Cat", "", "2023-11-14T22:30:00Z", url=url, deleted=True),
        remark_comment(
            "r4", "r3", "Dan", "<p>Under a deleted one</p>", "2023-11-14T22:40:00Z", url=url
        ),
        remark_comment("r5", "", "Eve", "", "2023-11-14T22:50:00Z", url=url, deleted=True),
    ]


def _commento(api: SelfHostedSim) -> None:
    api.commento_domains.add("blog.example")
    api.commento_people["hex-a"] = {
        "commenterHex": "hex-a",
        "name": "Alice",
        "link": "https://alice.example/",
        "photo": "undefined",
        "provider": "commento",
        "joinDate": "2023-01-01T00:00:00Z",
        "isModerator": False,
    }
    api.commento_people["hex-b"] = {
        "commenterHex": "hex-b",
        "name": "Bert",
        "link": "undefined",
        "photo": "undefined",
        "provider": "google",
        "joinDate": "2023-01-01T00:00:00Z",
        "isModerator": True,
    }
    # Listed in no thread order, as Commento does.
    api.commento_threads[("blog.example", "/commentoblog/post-1")] = [
        commento_comment("c3", "c1", "anonymous", "<p>Anon reply</p>", "2023-11-14T22:30:00Z"),
        commento_comment("c4", "root", "hex-b", "<p>Second</p>", "2023-11-14T22:40:00Z"),
        commento_comment("c1", "root", "hex-a", "<p>First</p>", "2023-11-14T22:10:00Z"),
        commento_comment("c2", "root", "hex-b", "", "2023-11-14T22:20:00Z", deleted=True),
    ]


@pytest.fixture
def config_path(tmp_path: Path, sim: SelfHostedSim, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DISCOURSE_KEY", KEY)
    # Small pages, so that each system's paging is exercised by a few comments.
    monkeypatch.setattr(isso, "PAGE_SIZE", 2)
    monkeypatch.setattr(discourse, "CHUNK", 2)
    origin = sim.origin  # type: ignore[attr-defined]
    path = tmp_path / "aggregator.yaml"
    path.write_text(
        f"""database: {tmp_path}/var/aggregator.db
public_dir: {tmp_path}/var/public
defaults:
  timeout: 5s
sources:
  - name: forum
    url: {origin}/forum/feed.xml
    comment_system: {{type: discourse, base_url: {origin}/discourse, requests_per_minute: 6000}}
  - name: forumkey
    url: {origin}/forumkey/feed.xml
    comment_system:
      type: discourse
      base_url: {origin}/discourse
      api_key: ${{DISCOURSE_KEY}}
      api_username: system
      requests_per_minute: 6000
  - name: issoblog
    url: {origin}/issoblog/feed.xml
    comment_system:
      type: isso
      base_url: {origin.replace("127.0.0.1", "localhost")}/isso
      requests_per_minute: 6000
  - name: remarkblog
    url: {origin}/remarkblog/feed.xml
    comment_system: {{type: remark42, base_url: {origin}/remark42, site: blog,
                      requests_per_minute: 6000}}
  - name: commentoblog
    url: {origin}/commentoblog/feed.xml
    comment_system: {{type: commento, base_url: {origin}/commento, domain: blog.example,
                      requests_per_minute: 6000}}
outputs:
  - name: all
    formats: [atom, json]
""",
        encoding="utf-8",
    )
    return path


def _poll(path: Path, poller: Poller | None = None) -> list:
    """Poll every source (feeds parsed in this process: the sandbox is not under test here)."""
    if poller is not None:
        return poller.poll_many(load_config(path).sources)
    return poll_and_publish(path, InProcessParser())


_rows = stored_comments


_keys = keys_with


def test_each_system_stored_once_in_thread_order_and_republished(
    config_path: Path, sim: SelfHostedSim, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    results = _poll(config_path)
    # forum's post 2 embeds Discourse by URL only: without a key, its topic cannot be found.
    assert all(r.ok for r in results), [r.describe() for r in results]
    assert [r.source for r in results if r.warning] == ["forum"]
    db = sqlite3.connect(load_config(config_path).database)
    (error,) = [
        e for (e,) in db.execute("SELECT error FROM discussion_lookups WHERE error IS NOT NULL")
    ]
    assert error.startswith("the post page embeds Discourse by its URL, not a topicId: set api_key")
    rows = _rows(config_path)
    by_key = {row["key"]: row for row in rows}
    assert len(by_key) == len(rows)  # each comment stored once
    origin = sim.origin  # type: ignore[attr-defined]

    # Discourse (the topic id read from the post page): the first post is the blog post;
    # hidden posts and small actions are left out, a deleted post kept for its reply.
    assert _keys(rows, "@discourse:10") == [
        "@discourse:1002",
        "@discourse:1003",
        "@discourse:1004",
        "@discourse:1005",
        "@discourse:1008",
    ]
    assert by_key["@discourse:1003"]["parent_key"] == "@discourse:1002"
    assert by_key["@discourse:1005"]["parent_key"] == "@discourse:1004"
    assert by_key["@discourse:1008"]["parent_key"] is None  # a reply to the post itself
    assert by_key["@discourse:1004"]["gone_at"] is not None
    assert "gone" not in by_key["@discourse:1004"]["content"]
    assert by_key["@discourse:1002"]["author"] == "Alice"
    assert by_key["@discourse:1002"]["author_url"] == f"{origin}/discourse/u/alice"
    assert by_key["@discourse:1002"]["published_at"].startswith("2023-11-14T22:10:00")
    assert by_key["@discourse:1002"]["link"] == f"{origin}/discourse/t/forum-post-1/501/2"
    frank = by_key["@discourse:1008"]["content"]
    assert "<script" not in frank and f'href="{origin}/discourse/u/alice"' in frank
    assert by_key["@discourse:1002"]["entry_link"] == f"{origin}/forum/post-1"
    posts_requests = sim.requests("discourse", "/posts.json")
    assert [len(r.args["post_ids[]"]) for r in posts_requests] == [2, 2, 1]
    # The keyed blog found its topic through /embed/info, with the key in a header only.
    assert _keys(rows, "@discourse:20") == ["@discourse:2002"]
    info = sim.requests("discourse", "/embed/info")
    assert info and all(r.headers.get("Api-Key") == KEY for r in info)
    assert all(r.headers.get("Api-Username") == "system" for r in info)
    assert all(KEY not in str(r.args) for r in sim.log)

    # Isso: every page of the thread and of a comment's replies (limit 2), pending left out.
    assert _keys(rows, "@isso:") == [
        "@isso:1",
        "@isso:2",
        "@isso:9",
        "@isso:10",
        "@isso:3",
        "@isso:4",
        "@isso:7",
        "@isso:8",
    ]
    assert by_key["@isso:9"]["parent_key"] == "@isso:1"
    assert by_key["@isso:4"]["parent_key"] == "@isso:3"
    assert by_key["@isso:3"]["gone_at"] is not None
    assert by_key["@isso:1"]["author_url"] == "https://alice.example/"
    assert by_key["@isso:1"]["link"] == f"{origin}/issoblog/post-1#isso-1"
    assert "onclick" not in by_key["@isso:7"]["content"]
    assert by_key["@isso:2"]["published_at"].startswith("2023-11-14T22:13:40")
    assert any("after" in r.args for r in sim.requests("isso"))
    assert any(r.args.get("parent") == ["1"] for r in sim.requests("isso"))

    # Remark42: the tree, the deleted comment kept for its reply, the lone one left out.
    assert _keys(rows, "@remark42:") == [
        "@remark42:r1",
        "@remark42:r2",
        "@remark42:r3",
        "@remark42:r4",
    ]
    assert by_key["@remark42:r2"]["parent_key"] == "@remark42:r1"
    assert by_key["@remark42:r2"]["author"] == "Ben"
    assert by_key["@remark42:r2"]["published_at"].startswith("2023-11-15T04:20:00")
    assert by_key["@remark42:r3"]["gone_at"] is not None

    # Commento: POSTed, put in thread order, names through commenters, anonymous named so.
    assert _keys(rows, "@commento:") == ["@commento:c1", "@commento:c3", "@commento:c4"]
    assert by_key["@commento:c3"]["parent_key"] == "@commento:c1"
    assert by_key["@commento:c3"]["author"] == "Anonymous"
    assert by_key["@commento:c1"]["author_url"] == "https://alice.example/"
    assert by_key["@commento:c4"]["author_url"] is None
    listed = sim.requests("commento")
    assert listed and all(r.method == "POST" for r in listed)

    # Republished: each thread's own comment feed, read back.
    config = load_config(config_path)
    for key, count in (("@discourse:1002", 5), ("@isso:1", 8), ("@commento:c1", 3)):
        feed = config.public_dir / "feeds" / "all" / by_key[key]["entry_public_id"]
        parsed = feedparser.parse((feed / "comments.atom").read_bytes())
        assert len(parsed.entries) == count, key
        assert all(e.get("author") for e in parsed.entries if "deleted" not in e.summary)
    # No key in any log line.
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("aggregator")]
    assert lines and not [line for line in lines if KEY in line]


def test_edits_and_deletions_on_the_next_poll(config_path: Path, sim: SelfHostedSim) -> None:
    config = load_config(config_path)
    with Poller(config, manual=True, parser=InProcessParser()) as poller:
        _poll(config_path, poller)
        origin = sim.origin  # type: ignore[attr-defined]
        thread = sim.remark_threads[("blog", f"{origin}/remarkblog/post-1")]
        thread[0].update(text="<p>Top, edited</p>", edit={"time": "2023-11-16T00:00:00Z"})
        sim.commento_threads[("blog.example", "/commentoblog/post-1")][1].update(deleted=True)
        # Isso removes a deleted comment nobody replied to; Discourse shows a reader without
        # a key no deleted post: both are simply missing from the next complete listing.
        del sim.isso_threads["/issoblog/post-1"][1]
        sim.discourse_posts[501][1]["cooked"] = "<p>Great post (edited)</p>"
        del sim.discourse_posts[501][7]
        # A listing that lost every comment marks none gone (more likely an error).
        del sim.discourse_posts[502][1:]
        _poll(config_path, poller)
    by_key = {row["key"]: row for row in _rows(config_path)}
    assert "edited" in by_key["@remark42:r1"]["content"]
    assert "(edited)" in by_key["@discourse:1002"]["content"]
    assert by_key["@commento:c4"]["gone_at"] is not None
    assert by_key["@isso:2"]["gone_at"] is not None
    assert by_key["@discourse:1008"]["gone_at"] is not None
    assert by_key["@discourse:2002"]["gone_at"] is None
    gone = sorted(k for k, row in by_key.items() if row["gone_at"])
    assert gone == sorted(
        ["@discourse:1004", "@discourse:1008", "@isso:2", "@isso:3", "@remark42:r3", "@commento:c4"]
    )


def test_429_and_errors_stop_one_system_only(config_path: Path, sim: SelfHostedSim) -> None:
    sim.fail["isso"] = [(429, {"Retry-After": "120"})]
    sim.fail["discourse"] = [(500, {})]  # the first topic read fails, the other reads go on
    sim.commento_domains.clear()  # success: false
    config = load_config(config_path)
    with Poller(config, manual=True, parser=InProcessParser()) as poller:
        results = {r.source: r for r in _poll(config_path, poller)}
        asked = len(sim.requests("isso"))
        _poll(config_path, poller)
        assert len(sim.requests("isso")) == asked == 1  # Retry-After honoured
    assert "failed" in (results["commentoblog"].warning or "")
    rows = _rows(config_path)
    assert not _keys(rows, "@isso:") and not _keys(rows, "@commento:")
    assert _keys(rows, "@remark42:")  # another system, untouched
    assert _keys(rows, "@discourse:")  # one Discourse request failed, the other topic read
    db = sqlite3.connect(config.database)
    errors = [e for (e,) in db.execute("SELECT error FROM discussions WHERE error IS NOT NULL")]
    assert any("not registered with Commento" in e for e in errors), errors


def test_settings_are_checked_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "sources:\n  - name: a\n    url: http://a.example/feed\n"
        "    comment_system: {type: remark42, base_url: 'http://r.example'}\n"
        "  - name: b\n    url: http://b.example/feed\n"
        "    comment_system: {type: isso}\n"
        "  - name: c\n    url: http://c.example/feed\n"
        "    comment_system: {type: commento, forum: x}\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_config(bad)
    text = str(raised.value)
    assert f"{bad}:4: sources[0].comment_system: remark42: site must be set" in text
    assert f"{bad}:7: sources[1].comment_system: isso: base_url must be set" in text
    assert f"{bad}:10: sources[2].comment_system: commento: unknown key(s) forum" in text


HOSTILE_BODIES = {
    "not JSON": b"<html>Bad gateway</html>",
    "a list": b"[1, 2, 3]",
    "wrong types": json.dumps(
        {
            "replies": [{"id": "x", "replies": "no"}, "str", {"id": 5, "mode": "1"}],
            "comments": {"a": 1},
            "post_stream": {"posts": [{"id": True}], "stream": ["1", None]},
            "success": True,
        }
    ).encode(),
    "deep": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("system", ["discourse", "isso", "remark42", "commento"])
def test_a_hostile_answer_is_one_error_or_an_empty_thread(
    httpserver: HTTPServer, system: str
) -> None:
    from aggregator.discussions.api import ApiClient
    from aggregator.discussions.base import ThreadRef
    from aggregator.discussions.registry import PROVIDERS, parse_settings
    from aggregator.errors import AggregatorError
    from aggregator.fetch.fetcher import Fetcher

    answer = {"body": b""}
    httpserver.expect_request(re.compile(r"^/")).respond_with_handler(
        lambda request: Response(answer["body"], 200, {"Content-Type": "application/json"})
    )
    extra = {"remark42": {"site": "s"}, "commento": {"domain": "d"}}.get(system, {})
    settings = parse_settings(
        {
            "type": system,
            "base_url": httpserver.url_for("/api"),
            "requests_per_minute": 6000,
            **extra,
        },
        "comments",
    )
    ref = ThreadRef("7" if system == "discourse" else "/post", "http://blog.example/post")
    with Fetcher(timeout=5) as fetcher:
        provider = PROVIDERS[system](settings, ApiClient(lambda: fetcher))
        for name, body in HOSTILE_BODIES.items():
            answer["body"] = body
            try:
                data = provider.fetch_thread(ref)
            except AggregatorError as error:
                assert "\n" not in str(error) and len(str(error)) < 400, name
            else:
                assert all(c.key.startswith(f"@{system}:") for c in data.comments), name
