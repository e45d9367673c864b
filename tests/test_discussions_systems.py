"""giscus, utterances, Mastodon (comment system and discussions) and webmention.io (issue 16),
simulated on 127.0.0.1 (tests/apisim_systems.py), polled through the Poller, stored,
published and read back."""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

import feedparser
import pytest
from apisim_systems import SystemsSim, gh_comment, issue_comment, mention, status
from discussion_helpers import keys_with, stored_comments
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.config.loading import load_config
from aggregator.errors import ConfigError
from aggregator.poll.poller import Poller
from aggregator.publish.publisher import Publisher
from aggregator.storage import Storage

GH = "ghp_sekrit-github-token-456"
WM = "wm-sekrit-token-789"
WPOST = "http://wblog.example/post-1"
RATE = 1200  # a minute, configured and enforced by the simulated APIs


def _rss(title: str, items: list[tuple[str, str, str]]) -> str:
    body = "".join(
        f"<item><title>{t}</title><link>{link}</link><guid>{link}</guid>"
        f"<description><![CDATA[{text}]]></description></item>"
        for t, link, text in items
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>http://{title}.example/</link>{body}</channel></rss>"
    )


def _pages(origin: str) -> dict[str, tuple[str, str]]:
    """Feeds and posts' pages of the four blogs, by path."""
    html = "text/html; charset=utf-8"
    rss = "application/rss+xml"
    return {
        "/gblog/feed.xml": (
            _rss(
                "gblog",
                [
                    ("Hello", "http://gblog.example/posts/hello.html", "Body"),
                    ("Other", "http://gblog.example/posts/other/", "Body"),
                ],
            ),
            rss,
        ),
        "/ublog/feed.xml": (_rss("ublog", [("Hi", f"{origin}/ublog/post-1", "Body")]), rss),
        "/ublog/post-1": (
            '<html><head><title>Hi | ublog</title><meta property="og:title" '
            'content="Hello utterances"></head><body>Hi</body></html>',
            html,
        ),
        "/mblog/feed.xml": (
            _rss(
                "mblog",
                [
                    (
                        "One",
                        f"{origin}/mblog/post-1",
                        '<p>Reply <a href="https://social.example/@blogger/1000">on '
                        "Mastodon</a></p>",
                    ),
                    ("Two", f"{origin}/mblog/post-2", "<p>No link here</p>"),
                ],
            ),
            rss,
        ),
        "/mblog/post-2": (
            '<html><body><div id="comments" data-toot-id="2000"></div></body></html>',
            html,
        ),
        "/wblog/feed.xml": (_rss("wblog", [("Mentioned", WPOST, "Body")]), rss),
    }


def _fixtures(sim: SystemsSim) -> None:
    t = "2023-11-14T22:{:02d}:00Z"
    sim.discussions[1] = {
        "title": "posts/hello",
        "url": "https://github.com/o/r/discussions/1",
        "category": "Comments",
        "comments": [
            gh_comment(
                "DC_1",
                "alice",
                "<p>First <script>x()</script></p>",
                t.format(1),
                [
                    gh_comment("DC_1a", "bob", "<p>Reply 1</p>", t.format(2)),
                    gh_comment("DC_1b", "carol", "<p>Reply 2</p>", t.format(3)),
                    gh_comment("DC_1c", "dan", "<p>Reply 3 (second page)</p>", t.format(4)),
                ],
            ),
            gh_comment("DC_2", "spammer", "<p>buy</p>", t.format(5), [], minimized=True),
            gh_comment(
                "DC_3",
                None,
                "<p>This comment has been deleted.</p>",
                t.format(6),
                [gh_comment("DC_3a", "erin", "<p>Under a deleted one</p>", t.format(7))],
                deleted=True,
            ),
            gh_comment("DC_4", "frank", "<p>Last</p>", t.format(8), []),
        ],
    }
    sim.discussions[2] = {  # another category: not this blog's
        "title": "posts/hello",
        "url": "https://github.com/o/r/discussions/2",
        "category": "General",
        "comments": [gh_comment("DC_9", "x", "<p>wrong</p>", t.format(1), [])],
    }
    sim.issues[8] = {"title": "Hello utterances again", "comments": []}
    sim.issues[7] = {
        "title": "Hello utterances",
        "comments": [
            issue_comment(501, "gina", "<p>Nice</p>", t.format(10)),
            issue_comment(502, "hank", "<p>Agreed <img src=x onerror=alert(1)></p>", t.format(11)),
            issue_comment(503, "ivy", "<p>Third, on page 2</p>", t.format(12)),
        ],
    }
    for s in (
        status("1000", None, "blogger", "<p>New post</p>", t.format(20), replies=3),
        status("1001", "1000", "alice", "<p>Great</p>", t.format(21)),
        status("1002", "1001", "bob", "<p>Indeed</p>", t.format(22)),
        status("1003", "1000", "eve", "<p>private</p>", t.format(23), visibility="direct"),
        status("1099", "1000", "zed", "<p>Soon deleted</p>", t.format(23)),
        status("1004", "1099", "carol", "<p>Reply to zed</p>", t.format(24)),
        status("2000", None, "blogger", "<p>Post two</p>", t.format(25)),
        status("2001", "2000", "dan", "<p>On two</p>", t.format(26)),
        status(
            "3000",
            None,
            "reader",
            f'<p>Read <a href="{WPOST}">this</a></p>',
            t.format(30),
            replies=2,
            boosts=4,
            favourites=9,
        ),
        status("3001", "3000", "erin", "<p>Yes</p>", t.format(31)),
        status("3002", "3001", "frank", "<p>No</p>", t.format(32)),
        status("3100", None, "other", f'<p><a href="{WPOST}/other">x</a></p>', t.format(33)),
    ):
        sim.statuses[s["id"]] = s
    sim.mentions[WPOST] = [
        mention(1, "in-reply-to", "Frank", WPOST, t.format(40), "Nice post"),
        mention(2, "like-of", "Gus", WPOST, t.format(41)),
        mention(
            3,
            "in-reply-to",
            "Grace",
            WPOST,
            t.format(42),
            "Replying to Frank",
            reply_to="https://frank.example/notes/1",
        ),
        mention(4, "like-of", "Hal", WPOST, t.format(43)),
        mention(5, "repost-of", "Ida", WPOST, t.format(44)),
        mention(6, "mention-of", "Jo", WPOST, t.format(45)),
        mention(7, "in-reply-to", "Kim", WPOST, t.format(46), "secret", private=True),
        mention(8, "like-of", "Lou", WPOST, t.format(47)),
        # Two replies to each other (hostile): both kept, one under the other.
        mention(9, "in-reply-to", "Max", WPOST, t.format(48), "A", reply_to=_note("Ned", 10)),
        mention(10, "in-reply-to", "Ned", WPOST, t.format(49), "B", reply_to=_note("Max", 9)),
    ]


def _note(name: str, ident: int) -> str:
    return f"https://{name.lower()}.example/notes/{ident}"


@pytest.fixture
def sim(httpserver: HTTPServer) -> SystemsSim:
    api = SystemsSim(origin=httpserver.url_for("/").rstrip("/"))
    pages = _pages(api.origin)
    api.served: list[str] = []  # type: ignore[misc]

    def dispatch(request: Request) -> Response:
        if request.path in pages:
            api.served.append(request.path)  # type: ignore[attr-defined]
            text, kind = pages[request.path]
            return Response(text, 200, {"Content-Type": kind})
        return api.handle(request)

    httpserver.expect_request(re.compile(r"^/")).respond_with_handler(dispatch)
    _fixtures(api)
    return api


@pytest.fixture
def config_path(tmp_path: Path, sim: SystemsSim, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GITHUB_TOKEN", GH)
    monkeypatch.setenv("WM_TOKEN", WM)
    origin = sim.origin
    path = tmp_path / "aggregator.yaml"
    path.write_text(
        f"""database: {tmp_path}/var/aggregator.db
public_dir: {tmp_path}/var/public
defaults:
  timeout: 5s
sources:
  - name: gblog
    url: {origin}/gblog/feed.xml
    comment_system:
      type: giscus
      repo: o/r
      category: Comments
      mapping: pathname
      token: ${{GITHUB_TOKEN}}
      base_url: {origin}/github
      requests_per_minute: {RATE}
  - name: ublog
    url: {origin}/ublog/feed.xml
    comment_system:
      type: utterances
      repo: o/r
      mapping: og:title
      base_url: {origin}/github
      requests_per_minute: {RATE}
  - name: mblog
    url: {origin}/mblog/feed.xml
    comment_system:
      type: mastodon
      base_url: {origin}/mastodon
      site_url: https://social.example
      requests_per_minute: {RATE}
  - name: wblog
    url: {origin}/wblog/feed.xml
    comment_system:
      type: webmention
      token: ${{WM_TOKEN}}
      base_url: {origin}/webmention
      requests_per_minute: {RATE}
    discussions:
      - type: mastodon
        base_url: {origin}/mastodon
        site_url: https://social.example
        requests_per_minute: {RATE}
outputs:
  - name: all
    formats: [atom, rss, json]
""",
        encoding="utf-8",
    )
    sim.limits = {"github": RATE, "mastodon": RATE, "webmention": RATE}
    return path


_comments = stored_comments


_keys = keys_with


def test_four_providers_polled_stored_in_thread_order_and_republished(
    config_path: Path,
    sim: SystemsSim,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr("aggregator.discussions.webmention.PER_PAGE", 2)  # pages of 2
    config = load_config(config_path)
    with Poller(config, manual=True) as poller:
        results = poller.poll_many(config.sources)
        assert all(r.ok for r in results), [r.describe() for r in results]
        rows = _comments(config_path)
        by_key = {r["key"]: r for r in rows}

        # giscus: comments, then each one's replies (the third from a second page of
        # replies), the minimized one left out, the deleted one kept for its reply.
        assert _keys(rows, "@giscus:") == [
            "@giscus:DC_1",
            "@giscus:DC_1a",
            "@giscus:DC_1b",
            "@giscus:DC_1c",
            "@giscus:DC_3",
            "@giscus:DC_3a",
            "@giscus:DC_4",
        ]
        assert by_key["@giscus:DC_1c"]["parent_key"] == "@giscus:DC_1"
        assert by_key["@giscus:DC_1"]["author"] == "alice"
        assert by_key["@giscus:DC_1"]["published_at"].startswith("2023-11-14T22:01:00")
        assert "<script" not in by_key["@giscus:DC_1"]["content"]
        assert by_key["@giscus:DC_3"]["gone_at"] is not None
        assert by_key["@giscus:DC_3a"]["parent_key"] == "@giscus:DC_3"
        assert by_key["@giscus:DC_1"]["entry_link"] == "http://gblog.example/posts/hello.html"
        graphql = sim.requests("github", "/graphql")
        assert all(r.headers.get("Authorization") == f"bearer {GH}" for r in graphql)
        searches = [json.loads(r.body)["variables"] for r in graphql if "search(" in r.body]
        assert {'repo:o/r category:"Comments" in:title posts/hello'} <= {
            v["query"] for v in searches
        }

        # utterances: the exact title's issue, every page by Link rel="next", no token sent.
        assert _keys(rows, "@utterances:") == [
            "@utterances:501",
            "@utterances:502",
            "@utterances:503",
        ]
        assert by_key["@utterances:502"]["author"] == "hank"
        assert "onerror" not in by_key["@utterances:502"]["content"]
        assert len(sim.requests("github", "/issues/7/comments")) == 2
        assert not sim.requests("github", "/issues/8/")
        assert not [r for r in sim.requests("github", "/search/") if "Authorization" in r.headers]

        # Mastodon as a comment system: the status linked from the entry (post-1) and the
        # one its page embeds (post-2); private replies left out.
        assert _keys(rows, "@mastodon:10") == [
            "@mastodon:1001",
            "@mastodon:1002",
            "@mastodon:1099",
            "@mastodon:1004",
        ]
        assert by_key["@mastodon:1001"]["parent_key"] is None
        assert by_key["@mastodon:1002"]["parent_key"] == "@mastodon:1001"
        assert by_key["@mastodon:1004"]["parent_key"] == "@mastodon:1099"
        assert by_key["@mastodon:1001"]["author"] == "Alice"
        assert by_key["@mastodon:2001"]["entry_link"].endswith("/mblog/post-2")
        assert "/mblog/post-2" in sim.served  # type: ignore[attr-defined]
        assert "/mblog/post-1" not in sim.served  # type: ignore[attr-defined]

        # Mastodon as a discussions site: a labelled sub-thread with its context below; the
        # fuzzy search hit for another page is not taken.
        root = by_key["@mastodon:3000"]
        assert "on Mastodon: 4 boosts, 2 replies" in root["content"]
        assert by_key["@mastodon:3001"]["parent_key"] == "@mastodon:3000"
        assert by_key["@mastodon:3002"]["parent_key"] == "@mastodon:3001"
        assert "@mastodon:3100" not in by_key

        # Webmentions: replies and mentions as comments (a reply to a reply under it), likes
        # and reposts counted, a private one never stored.
        assert _keys(rows, "@webmention:") == [
            "@webmention:1",
            "@webmention:3",
            "@webmention:6",
            "@webmention:9",
            "@webmention:10",
        ]
        assert by_key["@webmention:3"]["parent_key"] == "@webmention:1"
        assert by_key["@webmention:9"]["parent_key"] is None
        assert by_key["@webmention:10"]["parent_key"] == "@webmention:9"
        assert by_key["@webmention:1"]["author"] == "Frank"
        assert "mentioned this" in by_key["@webmention:6"]["content"]
        assert all(r.args.get("token") == WM for r in sim.requests("webmention"))
        # 10 mentions, 2 a page: pages 0..4 full, page 5 empty (the last).
        pages = [r.args["page"] for r in sim.requests("webmention")]
        assert pages == ["0", "1", "2", "3", "4", "5"]

        # Each comment stored once; nothing refused by a rate limit.
        keys = [r["key"] for r in rows]
        assert len(keys) == len(set(keys))
        assert not [r for r in sim.log if r.status in (403, 429)]

        # Edits and deletions on the next poll.
        sim.discussions[1]["comments"][0]["replies"][1]["bodyHTML"] = "<p>Reply 2 (edited)</p>"
        sim.discussions[1]["comments"][3]["deletedAt"] = "2023-11-16T00:00:00Z"
        sim.statuses["3001"].update(content="<p>Yes (edited)</p>", edited_at="2023-11-16T00:00:00Z")
        del sim.statuses["1099"]  # deleted: its reply is gone from the context with it
        del sim.mentions[WPOST][0]  # a deleted webmention
        poller.poll_many(config.sources)
    rows = _comments(config_path)
    by_key = {r["key"]: r for r in rows}
    assert "(edited)" in by_key["@giscus:DC_1b"]["content"]
    assert by_key["@giscus:DC_4"]["gone_at"] is not None
    assert "(edited)" in by_key["@mastodon:3001"]["content"]
    assert by_key["@mastodon:1099"]["gone_at"] and by_key["@mastodon:1004"]["gone_at"]
    assert by_key["@mastodon:1001"]["gone_at"] is None
    assert by_key["@webmention:1"]["gone_at"] is not None
    assert by_key["@webmention:3"]["gone_at"] is None
    assert len(rows) == len({r["key"] for r in rows})

    # Republished: JSON Feed counts (likes and reposts too), Atom rel="related", entry page.
    with Storage(config.database) as storage:
        Publisher(config, storage).publish()
        entry = next(e for e in storage.list_entries(None, 20) if e.link == WPOST)
    feeds = config.public_dir / "feeds"
    document = json.loads((feeds / "all.json").read_text())
    item = next(i for i in document["items"] if i["url"] == WPOST)
    sites = {s["site"]: s for s in item["_aggregator"]["discussions"]}
    assert sites["webmention"]["likes"] == 3 and sites["webmention"]["reposts"] == 1
    assert sites["webmention"]["text"] == "Webmention: 4 replies, 3 likes, 1 repost"
    assert sites["mastodon"]["text"] == "Mastodon: 4 boosts, 2 replies"
    assert sites["mastodon"]["url"] == "https://social.example/@reader/3000"
    atom = feedparser.parse((feeds / "all.atom").read_bytes())
    wentry = next(e for e in atom.entries if any(x.href == WPOST for x in e.links))
    assert "https://social.example/@reader/3000" in [
        x.href for x in wentry.links if x.rel == "related"
    ]
    from starlette.testclient import TestClient

    from aggregator.serve.server import create_app

    page = TestClient(create_app(config)).get(f"/outputs/all/{entry.public_id}")
    assert page.status_code == 200
    assert "Webmention: 4 replies, 3 likes, 1 repost" in page.text
    assert "Mastodon: 4 boosts, 2 replies" in page.text
    # No token in any log line.
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("aggregator")]
    assert ours and not [line for line in ours if GH in line or WM in line]


def test_github_403_rate_limit_and_mastodon_429_stop_their_hosts(
    config_path: Path, sim: SystemsSim, caplog: pytest.LogCaptureFixture
) -> None:
    # Mastodon on another host name (budgets are per API host; all of sim is one host), and
    # GitHub's turns half a second apart: a request waiting for its turn when the refusal
    # comes is not made.
    text = (
        config_path.read_text()
        .replace(
            f"base_url: {sim.origin}/mastodon",
            f"base_url: {sim.origin.replace('127.0.0.1', 'localhost')}/mastodon",
        )
        .replace(
            f"base_url: {sim.origin}/github\n      requests_per_minute: {RATE}",
            f"base_url: {sim.origin}/github\n      requests_per_minute: 120",
        )
    )
    assert text.count("requests_per_minute: 120\n") == 2
    config_path.write_text(text)
    reset = str(int(time.time()) + 600)
    sim.fail["github"] = [
        (
            403,
            {
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": reset,
                "Content-Type": "application/json",
            },
        )
    ]
    sim.fail["mastodon"] = [(429, {"Retry-After": "300"})]
    config = load_config(config_path)
    # (wblog's Mastodon search, on the other host; its webmention.io shares GitHub's.)
    sources = [s for s in config.sources if s.name in ("gblog", "ublog", "wblog")]
    with Poller(config, manual=True) as poller:
        poller.poll_many(sources)
        poller.poll_many(sources)  # the same API client remembers the holds
    # One request each, the refusal; then nothing until the reset, for every provider of
    # that host (giscus and utterances share GitHub's), the other host held apart.
    assert len(sim.requests("github")) == 1
    assert len(sim.requests("mastodon")) == 1
    rows = _comments(config_path)
    assert not _keys(rows, "@giscus:") and not _keys(rows, "@utterances:")
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("aggregator")]
    assert not [line for line in ours if GH in line or WM in line]


def test_a_refused_token_is_recorded_in_one_line_without_it(
    config_path: Path, sim: SystemsSim
) -> None:
    sim.github_token = "another-token"  # ours is refused: one line, no token in it
    config = load_config(config_path)
    gblog = [s for s in config.sources if s.name == "gblog"]
    with Poller(config, manual=True) as poller:
        results = poller.poll_many(gblog)
    # GraphQL's own rate limit: HTTP 200, an error of type RATE_LIMITED and the budget spent
    # in the headers. The host is left alone from then on.
    sim.github_token = GH
    sim.graphql_limited = True
    with Poller(config, manual=True) as poller:
        poller.poll_many(gblog)
        poller.poll_many(gblog)
    # Two entries asked about with the refused token, then one answer RATE_LIMITED: no more.
    assert [r.status for r in sim.requests("github")] == [401, 401, 200]
    errors = " ".join(e for r in results for e in r.describe().splitlines())
    assert GH not in errors
    with Storage(config.database) as storage:
        lookups = storage.db.execute("SELECT error FROM discussion_lookups").fetchall()
    assert lookups and all("401" in (e or "") for (e,) in lookups)
    assert not any(GH in (e or "") for (e,) in lookups)
    from click.testing import CliRunner

    from aggregator.cli import main

    for args in (["check"], ["status"], ["status", "--json"]):
        out = CliRunner().invoke(main, ["--config", str(config_path), *args])
        assert out.output.strip()
        assert GH not in out.output and WM not in out.output


@pytest.mark.parametrize(
    ("system", "message"),
    [
        ("{type: giscus, repo: o/r}", "giscus: token must be set"),
        ("{type: giscus, repo: nope, token: t}", "giscus: repo must be written owner/name"),
        ("{type: utterances, repo: o/r, mapping: weird}", "utterances: mapping 'weird'"),
        ("{type: webmention, forum: x}", "webmention: unknown key(s) forum"),
        ("{type: mastodon, token: '${NOT_SET_ANYWHERE}'}", "NOT_SET_ANYWHERE is not set"),
    ],
)
def test_config_errors_name_the_line(tmp_path: Path, system: str, message: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f"sources:\n  - name: a\n    url: http://a.example/feed\n    comment_system: {system}\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_config(bad)
    assert f"{bad}:4: sources[0].comment_system: " in str(raised.value)
    assert message in str(raised.value)


def test_mastodon_as_comment_system_and_discussion_of_one_source_is_refused(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "defaults:\n  discussions: [mastodon]\n"
        "sources:\n  - name: a\n    url: http://a.example/feed\n"
        "    comment_system: {type: mastodon}\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_config(bad)
    assert "sources[0].comment_system: mastodon is this source's comment system" in str(
        raised.value
    )


def test_migration_0020_from_the_schema_before_it(tmp_path: Path) -> None:
    from sqlite_utils import Database

    from aggregator.storage.schema import migrations

    path = tmp_path / "old.db"
    with Storage(path):
        pass
    db = Database(path)
    db.execute("ALTER TABLE discussions DROP COLUMN likes")
    db.execute("ALTER TABLE discussions DROP COLUMN reposts")
    db.execute("DELETE FROM _sqlite_migrations WHERE name = '0020_webmention_counts'")
    db.conn.commit()
    db.close()
    with Storage(path) as storage:
        assert "0020_webmention_counts" in [m.name for m in migrations.applied(storage.db)]
        assert {"likes", "reposts"} <= set(storage.db["discussions"].columns_dict)


class _Memory:
    """An :class:`~aggregator.discussions.memory.ApiMemory` kept in a dict (what the client
    asks it to keep is under test, not the database)."""

    def __init__(self) -> None:
        self.saved: dict[str, bytes] = {}

    def load(self, url: str) -> None:
        return None

    def save(self, url: str, body: bytes, etag: str | None, last_modified: str | None) -> None:
        self.saved[url] = body

    def blocks(self) -> dict:
        return {}

    def block(self, host: str, until: object) -> None:
        return None


def test_link_header_answered_from_the_cache_and_a_paged_answer_not_remembered(
    httpserver: HTTPServer,
) -> None:
    from aggregator.discussions.api import ApiClient
    from aggregator.discussions.registry import PROVIDERS, parse_settings
    from aggregator.fetch.fetcher import Fetcher

    link = f'<{httpserver.url_for("/page2")}>; rel="next"'

    def paged(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})  # GitHub sends no Link then
        return Response(
            "[1]", headers={"ETag": '"v1"', "Link": link}, content_type="application/json"
        )

    httpserver.expect_request("/page1").respond_with_handler(paged)
    httpserver.expect_request("/page2").respond_with_json([2], headers={"ETag": '"v2"'})
    settings = parse_settings(
        {
            "type": "utterances",
            "repo": "me/blog",
            "base_url": httpserver.url_for("/"),
            "requests_per_minute": 6000,
        },
        "comments",
    )
    memory = _Memory()
    with Fetcher(timeout=5) as fetcher:
        api = ApiClient(lambda: fetcher, memory=memory)
        provider = PROVIDERS["utterances"](settings, api)
        first = api.get_response(provider, httpserver.url_for("/page1"))
        again = api.get_response(provider, httpserver.url_for("/page1"))  # a 304
        last = api.get_response(provider, httpserver.url_for("/page2"))
    assert (first.data, again.data, last.data) == ([1], [1], [2])
    assert dict(first.headers) == {"link": link} and dict(again.headers) == {"link": link}
    assert last.headers == {}
    assert [r.headers.get("If-None-Match") for r, _ in httpserver.log] == [None, '"v1"', None]
    # The database keeps no headers: a page whose meaning is its Link is not remembered.
    assert list(memory.saved) == [httpserver.url_for("/page2")]
