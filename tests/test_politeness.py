"""Politeness, end to end: a scripted server on 127.0.0.1, a real SQLite file, a driven clock.

The "daemon" here is a loop that moves the clock to each source's stored next poll and polls
it, as the scheduler would; the server's request log is then checked against every hint the
server gave (Cache-Control, <ttl>, Retry-After in seconds and as a date, backoff, the floor).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from factories import Clock
from scripted_server import Answer, ScriptedServer, http_date, rss

from aggregator.config.loading import load_config
from aggregator.config.schema import AppConfig
from aggregator.poll.poller import Poller
from aggregator.storage import Storage

M = timedelta(minutes=1)
H = timedelta(hours=1)
D = timedelta(days=1)


def write_config(tmp_path: Path, sources: list[dict], **defaults: object) -> AppConfig:
    path = tmp_path / "aggregator.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "database": str(tmp_path / "agg.db"),
                "public_dir": str(tmp_path / "public"),
                "defaults": {"comments": False, **defaults},
                "sources": sources,
            }
        )
    )
    return load_config(path)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(clock: Clock):
    with ScriptedServer(clock) as running:
        yield running


def state(config: AppConfig, name: str):
    with Storage(config.database) as storage:
        return storage.get_source(name)


def test_request_log_respects_every_hint_backoff_grows_and_recovers(tmp_path, clock, server):
    t0 = clock()
    feed = rss(("a", t0 - D), ("b", t0 - 2 * D), ttl=180)
    retry_date = lambda at: Answer(503, {"Retry-After": http_date(at + 2 * H)})  # noqa: E731
    server.script(
        "/feed",
        Answer(200, {"Cache-Control": "max-age=7200", "ETag": '"v1"'}, feed),  # ttl 3h wins
        Answer(304, {"ETag": '"v1"'}),  # stored <ttl> still applies
        Answer(429, {"Retry-After": "5400"}),
        retry_date,
        Answer(500),
        Answer(500),
        Answer(200, {"ETag": '"v2"'}, feed + b" "),  # recovers
        Answer(200, {}, feed + b"  "),
    )
    config = write_config(
        tmp_path, [{"name": "blog", "url": server.url("/feed"), "interval": "1h"}]
    )
    # What each answer allows, as the test reads the script (not as the code decides).
    allowed = [3 * H, 3 * H, 90 * M, 2 * H, 60 * M, 2 * H, 3 * H]
    errors_seen = []
    with Poller(config, clock=clock, rng=None) as poller:
        poller.sync_sources()
        source = config.sources[0]
        for _ in range(len(allowed) + 1):
            before = state(config, "blog")
            if before.next_poll_at is not None:
                # A poll by hand inside a Retry-After or backoff window is refused, and says why.
                if before.error_count:
                    clock.set(before.next_poll_at - M)
                    with Poller(config, clock=clock, rng=None, manual=True) as by_hand:
                        skipped = by_hand.poll_source(source)
                    assert skipped.status == "skipped"
                    assert ("retry-after" in skipped.note) or ("backoff" in skipped.note)
                clock.set(before.next_poll_at)
            poller.poll_source(source)
            errors_seen.append(state(config, "blog").error_count)

    log = server.requests("/feed")
    assert len(log) == len(allowed) + 1  # the refused polls by hand sent nothing
    for earlier, later, wait in zip(log, log[1:], allowed, strict=False):
        assert later.at - earlier.at >= wait, (earlier, later, wait)
    assert log[1].headers.get("If-None-Match") == '"v1"'  # conditional GET, validator verbatim
    assert errors_seen == [0, 0, 1, 2, 3, 4, 0, 0]  # backoff grows, then recovers
    final = state(config, "blog")
    assert final.next_poll_reason == "ttl"
    assert final.last_error is None


def test_a_permanent_redirect_is_adopted_after_consecutive_polls(tmp_path, clock, server):
    feed = rss(("a", clock() - D))
    server.script("/old", Answer(301, {"Location": "/new"}))
    server.script("/new", Answer(200, {}, feed))
    config = write_config(
        tmp_path,
        [{"name": "moved", "url": server.url("/old")}],
        redirect_adopt_after=3,
    )
    with Poller(config, clock=clock, rng=None) as poller:
        for expected in (1, 2):
            poller.poll_source(config.sources[0])
            now = state(config, "moved")
            assert now.url == server.url("/old")
            assert (now.redirect_url, now.redirect_count) == (server.url("/new"), expected)
            clock.set(now.next_poll_at)
        result = poller.poll_source(config.sources[0])
        adopted = state(config, "moved")
        assert adopted.url == server.url("/new")
        assert adopted.config_url == server.url("/old")
        assert "now polled at" in result.note
        clock.set(adopted.next_poll_at)
        poller.poll_source(config.sources[0])
        # A restart syncs the config again: the adopted URL stays.
        poller.sync_sources()
    assert state(config, "moved").url == server.url("/new")
    assert len(server.requests("/old")) == 3
    assert len(server.requests("/new")) == 4


def test_410_retires_a_source_and_nothing_requests_it_again(tmp_path, clock, server):
    server.script("/gone", Answer(410))
    config = write_config(tmp_path, [{"name": "gone", "url": server.url("/gone")}])
    with Poller(config, clock=clock, rng=None) as poller:
        result = poller.poll_source(config.sources[0])
        assert result.status == "error" and result.http_status == 410
        assert result.next_poll_at is None
        retired = state(config, "gone")
        assert retired.retired_at == clock()
        assert retired.next_poll_reason == "gone"
        clock.advance(30 * D)
        assert poller.due_sources(config.sources) == []
        again = poller.poll_source(config.sources[0])
        assert again.status == "skipped" and "retired" in again.note
    with Poller(config, clock=clock, rng=None, manual=True) as by_hand:
        assert by_hand.poll_source(config.sources[0]).status == "skipped"
    assert len(server.requests("/gone")) == 1


def test_changing_a_retired_sources_url_in_the_config_starts_it_again(tmp_path, clock, server):
    server.script("/gone", Answer(410))
    server.script("/back", Answer(200, {}, rss(("a", clock() - D))))
    config = write_config(tmp_path, [{"name": "s", "url": server.url("/gone")}])
    with Poller(config, clock=clock, rng=None) as poller:
        poller.poll_source(config.sources[0])
    config = write_config(tmp_path, [{"name": "s", "url": server.url("/back")}])
    with Poller(config, clock=clock, rng=None) as poller:
        assert poller.sync_sources() == ["s"]
        assert poller.due_sources(config.sources) == list(config.sources)
        assert poller.poll_source(config.sources[0]).status == "new"
    assert state(config, "s").retired_at is None


def test_a_bursty_blog_is_not_pushed_out_for_a_week(tmp_path, clock, server):
    burst_day = clock() - 10 * D
    items = [(f"p{i}", burst_day + i * 20 * M) for i in range(10)]
    server.script("/burst", Answer(200, {}, rss(*items)))
    config = write_config(tmp_path, [{"name": "burst", "url": server.url("/burst")}])
    with Poller(config, clock=clock, rng=None) as poller:
        result = poller.poll_source(config.sources[0])
    assert result.next_poll_at - clock() <= D
    assert state(config, "burst").next_poll_reason == "adaptive"


def test_an_active_blog_is_polled_more_often_but_never_below_the_floor(tmp_path, clock, server):
    items = [(f"p{i}", clock() - i * 5 * M) for i in range(10)]
    server.script("/busy", Answer(200, {}, rss(*items)))
    config = write_config(
        tmp_path, [{"name": "busy", "url": server.url("/busy")}], interval_floor="20m"
    )
    with Poller(config, clock=clock, rng=None) as poller:
        result = poller.poll_source(config.sources[0])
    assert result.next_poll_at - clock() == 20 * M


def test_skip_hours_move_the_next_poll_out_of_them(tmp_path, clock, server):
    now = clock()  # 12:00 UTC on a Wednesday
    skip = "<skipHours>" + "".join(f"<hour>{h}</hour>" for h in range(12, 18)) + "</skipHours>"
    server.script("/skip", Answer(200, {}, rss(("a", now - D), extra=skip)))
    config = write_config(tmp_path, [{"name": "s", "url": server.url("/skip")}])
    with Poller(config, clock=clock, rng=None) as poller:
        result = poller.poll_source(config.sources[0])
        assert result.next_poll_at == now.replace(hour=18)
        stored = state(config, "s")
        assert stored.hint_skip_hours == frozenset(range(12, 18))
        assert stored.next_poll_reason == "skip"


def test_a_poll_by_hand_names_each_source_it_leaves_alone(tmp_path, clock, server):
    server.script("/busy", Answer(429, {"Retry-After": "3600"}))
    server.script("/ok", Answer(200, {}, rss(("a", clock() - D))))
    config = write_config(
        tmp_path,
        [{"name": "busy", "url": server.url("/busy")}, {"name": "ok", "url": server.url("/ok")}],
    )
    with Poller(config, clock=clock, rng=None) as poller:
        poller.poll_many(config.sources)
    clock.advance(10 * M)
    with Poller(config, clock=clock, rng=None, manual=True) as by_hand:
        results = {r.source: r for r in by_hand.poll_many(config.sources)}
        assert results["busy"].status == "skipped"
        assert "retry-after" in results["busy"].note
        assert results["busy"].describe().startswith("busy: skipped: retry-after")
        assert results["ok"].status == "not-modified" or results["ok"].ok
        forced = by_hand.poll_many(config.sources[:1], force=True)
        assert forced[0].status == "error"
    assert len(server.requests("/busy")) == 2
    assert len(server.requests("/ok")) == 2
