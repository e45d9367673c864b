"""One poll of many sources, good and hostile, through the real pipeline: fetch (127.0.0.1),
parse (sandbox worker), store (SQLite in tmp_path), comments (SSRF rules). Every source ends
as a result or one clear error, good sources are stored, and storage failures are clear."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hostile_server import (
    BILLION_LAUGHS,
    XXE,
    HostileServer,
    gzip_bomb,
    item,
    redirect,
    rss,
    static,
    status,
    trickle_body,
)

from aggregator.config.outputs import OutputConfig
from aggregator.config.schema import AppConfig
from aggregator.config.sources import DefaultsConfig, SourceConfig
from aggregator.parse.sandbox import SandboxParser
from aggregator.poll.poller import Poller


def with_comments(base: str, links: list[str]) -> bytes:
    return rss(
        "".join(
            item(
                n,
                extra=f"<wfw:commentRss>{link}</wfw:commentRss><slash:comments>2</slash:comments>",
            )
            for n, link in enumerate(links)
        )
    )


def comment_feed(n: int) -> bytes:
    return rss(item(100 + n) + item(200 + n), title=f"Comments {n}")


def ten_thousand() -> bytes:
    return rss("".join(item(n) for n in range(10_000)))


@pytest.fixture(scope="module")
def parser() -> Iterator[SandboxParser]:
    with SandboxParser(timeout=30) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[HostileServer, HostileServer]]:
    with HostileServer({"/secret": static(b"internal")}) as other, HostileServer() as server:
        base = server.base
        page = (
            b'<html><head><link rel="alternate" type="application/atom+xml" href="/feed/">'
            b"</head><body>blog</body></html>"
        )
        server.cases.update(
            {
                "/good.rss": static(
                    with_comments(base, [f"{base}/comments/{n}.rss" for n in range(3)])
                ),
                **{f"/comments/{n}.rss": static(comment_feed(n)) for n in range(3)},
                "/ssrf.rss": static(
                    with_comments(
                        base,
                        [
                            f"http://127.0.0.1:{other.port}/secret",
                            f"http://localhost:{server.port}/comments/0.rss",
                            "http://169.254.169.254/latest/meta-data/iam",
                            "file:///etc/passwd",
                            f"http://[::ffff:127.0.0.1]:{other.port}/secret",
                            f"http://0.0.0.0:{other.port}/secret",
                        ],
                    )
                ),
                "/10k.rss": static(ten_thousand()),
                "/page.html": static(page, content_type="text/html"),
                "/trickle.rss": trickle_body(0.05),
                "/bomb.rss": static(
                    gzip_bomb(32 * 1024 * 1024), headers={"Content-Encoding": "gzip"}
                ),
                "/error.rss": status(500, "Internal Server Error"),
                "/laughs.rss": static(BILLION_LAUGHS),
                "/xxe.rss": static(XXE.replace(b"{port}", str(other.port).encode())),
                "/loop.rss": redirect("/loop.rss"),
                "/elsewhere.rss": redirect(f"http://127.0.0.1:{other.port}/secret"),
                "/empty.rss": static(b""),
                "/garbage.rss": static(b"\x00\xff" * 1000, content_type="application/rss+xml"),
            }
        )
        yield server, other


def make_config(tmp_path: Path, server: HostileServer, names: list[str]) -> AppConfig:
    return AppConfig(
        database=tmp_path / "aggregator.db",
        public_dir=tmp_path / "public",
        defaults=DefaultsConfig(timeout=timedelta(seconds=2), comments=True),
        sources=tuple(
            SourceConfig(name=name.replace(".", "-"), url=server.url(f"/{name}")) for name in names
        ),
        outputs=(OutputConfig(name="all"),),
    )


EXPECTED_ERRORS = {
    "page.html": "this is an HTML page, not a feed; it links to a feed at http://127.0.0.1:",
    "trickle.rss": "took longer than the 2s limit",
    "bomb.rss": "decoded body is larger than the 4 MB limit",
    "error.rss": "HTTP 500 Internal Server Error",
    "loop.rss": "redirect loop at",
    "elsewhere.rss": "127.0.0.1 is a loopback address",
    "empty.rss": "empty response (HTTP 200, no body)",
    "garbage.rss": "cannot parse feed: not a feed",
}


def test_a_poll_of_good_and_hostile_sources(
    tmp_path: Path, servers: tuple[HostileServer, HostileServer], parser: SandboxParser
) -> None:
    server, other = servers
    names = ["good.rss", "ssrf.rss", "10k.rss", "laughs.rss", "xxe.rss", *EXPECTED_ERRORS]
    config = make_config(tmp_path, server, names)
    config = config.model_copy(
        update={"defaults": config.defaults.model_copy(update={"max_body_size": 4 << 20})}
    )
    with Poller(config, parser=parser, manual=True) as poller:
        assert poller.fetcher.max_bytes == 4 << 20
        results = {r.source: r for r in poller.poll_many(config.sources)}
        storage = poller.storage
        for name, expected in EXPECTED_ERRORS.items():
            result = results[name.replace(".", "-")]
            assert result.status == "error", name
            assert expected in (result.error or ""), f"{name}: {result.error}"
            assert "\n" not in (result.error or "")
            state = storage.get_source(name.replace(".", "-"))
            assert state.last_error == result.error and state.error_count == 1

        good = results["good-rss"]
        assert (good.status, good.new, good.new_comments) == ("new", 3, 6)
        assert results["10k-rss"].new == 10_000
        for name in ("laughs-rss", "xxe-rss"):
            assert results[name].ok and "DOCTYPE declarations removed" in results[name].warning

        # Comment links found in a feed never reach another local service or the metadata one.
        ssrf = results["ssrf-rss"]
        assert ssrf.ok and ssrf.new == 6
        threads = storage._rows(
            "SELECT comments_feed_url, comments_error FROM entries e JOIN sources s "
            "ON s.id = e.source_id WHERE s.name = 'ssrf-rss' ORDER BY e.id"
        )
        errors = [row["comments_error"] or "" for row in threads]
        assert all("refused" in error for error in errors), errors
        assert "169.254.169.254 is a cloud metadata address" in " ".join(errors)
        assert "refused to read file:" in " ".join(errors)
        assert other.seen == [], "nothing was sent to the other local service"


def test_a_read_only_database_gives_a_clear_error_per_source(
    tmp_path: Path, servers: tuple[HostileServer, HostileServer], parser: SandboxParser
) -> None:
    server, _ = servers
    config = make_config(tmp_path, server, ["good.rss"])
    with Poller(config, parser=parser) as poller:
        poller.sync_sources()
        # As root, file modes do not stop writes; SQLite's own read-only switch does the same.
        poller.storage.db.execute("PRAGMA query_only = ON")
        result = poller.poll_source(config.sources[0])
    assert result.status == "error"
    assert "attempt to write a readonly database" in (result.error or "")
    assert "\n" not in (result.error or "")


def test_a_full_disk_loses_nothing_and_the_next_poll_stores_everything(
    tmp_path: Path, servers: tuple[HostileServer, HostileServer], parser: SandboxParser
) -> None:
    server, _ = servers
    config = make_config(tmp_path, server, ["10k.rss"])
    with Poller(config, parser=parser) as poller:
        poller.sync_sources()
        storage = poller.storage
        pages = storage.db.execute("PRAGMA page_count").fetchone()[0]
        storage.db.execute(f"PRAGMA max_page_count = {pages + 20}")  # room for a few entries
        result = poller.poll_source(config.sources[0], comments=False)
        assert result.status == "error"
        assert "database or disk is full" in (result.error or "")
        assert storage.count("entries") == 0, "a poll is one transaction: all or nothing"
        storage.db.execute("PRAGMA max_page_count = 1073741823")
        result = poller.poll_source(config.sources[0], comments=False)
        assert result.new == 10_000
    with sqlite3.connect(tmp_path / "aggregator.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
