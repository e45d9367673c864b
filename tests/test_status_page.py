"""The status page ``/status`` and ``aggregator status`` in a terminal (issue 18).

A real uvicorn on 127.0.0.1 (and, for the loopback rule, on every address, asked from this
machine's own non-loopback address), a real SQLite file, lxml to read the HTML back, headless
Chromium for what a person sees, and a pseudo-terminal for the CLI's table.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from lxml import html
from support import free_port, in_a_terminal, serve

from aggregator.config.loading import load_config
from aggregator.config.schema import AppConfig
from aggregator.poll.poller import Poller
from aggregator.serve.server import create_app
from aggregator.serve.status import full_text_status, source_state, status_table, websub_status
from aggregator.serve.status_page import (
    PAGE_SIZE,
    build_status_page,
    is_loopback_address,
    status_allowed,
)
from aggregator.storage import Storage

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NOW = datetime(2024, 5, 20, 12, 0, tzinfo=UTC)


# -- pure decisions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "public", "allowed"),
    [
        ("127.0.0.1", False, True),
        ("127.3.4.5", False, True),
        ("::1", False, True),
        ("::ffff:127.0.0.1", False, True),
        ("192.0.2.2", False, False),
        ("10.0.0.1", False, False),
        ("::ffff:10.0.0.1", False, False),
        ("fe80::1%eth0", False, False),
        ("", False, False),
        (None, False, False),
        ("localhost", False, False),  # a name is not an address: never believed
        ("192.0.2.2", True, True),
        (None, True, True),
    ],
)
def test_who_may_see_the_status_page(host, public, allowed):
    assert status_allowed(host, public) is allowed
    if not public:
        assert is_loopback_address(host) is allowed


def _row(**fields):
    base = {
        "retired_at": None,
        "error_count": 0,
        "last_error": None,
        "last_polled_at": "2024-05-20T11:00:00+00:00",
        "last_success_at": "2024-05-20T11:00:00+00:00",
        "next_poll_reason": "interval",
    }
    return base | fields


@pytest.mark.parametrize(
    ("fields", "state"),
    [
        ({}, "ok"),
        ({"last_polled_at": None, "last_success_at": None}, "new"),
        ({"retired_at": "2024-05-19T00:00:00+00:00", "error_count": 1}, "retired"),
        (
            {"error_count": 1, "last_error": "HTTP 500", "next_poll_reason": "backoff"},
            "backing off",
        ),
        (
            {"error_count": 9, "last_error": "HTTP 503", "next_poll_reason": "retry-after"},
            "backing off",
        ),
        ({"error_count": 3, "last_error": "HTTP 500", "next_poll_reason": "backoff"}, "failing"),
        ({"error_count": 1, "last_error": "x", "last_success_at": None}, "failing"),
        (
            {"error_count": 1, "last_error": "x", "last_success_at": "2024-05-01T00:00:00+00:00"},
            "failing",
        ),
    ],
)
def test_source_states(fields, state):
    assert source_state(_row(**fields), NOW, timedelta(days=2)) == state


def _item(name, *, notes=(), **fields):
    return {
        "name": name,
        "last_polled_at": "2024-05-20T11:00:00+00:00",
        "last_status": 200,
        "entry_count": 12,
        "comment_total": 340,
        "error_count": 0,
        "next_poll_at": "2024-05-20T12:00:00+00:00",
        "next_poll_reason": "interval",
        "notes": list(notes),
    } | fields


def test_the_table_puts_failing_and_retired_first_and_fits_the_width():
    data = [
        _item("alpha"),
        _item("gone", notes=["RETIRED 2024-05-01 (410 Gone): no more requests"]),
        _item("broken", error_count=5, notes=["error: " + "a very long error text " * 20]),
        _item("waiting", error_count=1),
    ]
    states = ["ok", "retired", "failing", "backing off"]
    for width in (60, 80, 120, 200):
        lines = status_table(data, states, width)
        assert all(len(line) <= width for line in lines), (width, lines)
        assert [line.split()[0] for line in lines] == [
            "source",
            "broken",
            "gone",
            "waiting",
            "alpha",
        ]
        assert "\u2026" in lines[1]  # the long error is cut, visibly
        assert lines[1].split()[1] == "failing"
    wide = status_table(data, states, 200)
    assert "next poll" in wide[0] and "entries" in wide[0] and "why" in wide[0]


def test_websub_states_as_status_shows_them():
    sub = {"hub": "https://hub.example/", "mode": "subscribe", "error_count": 0}
    later = "2024-06-01T00:00:00+00:00"
    assert websub_status(None, NOW) is None
    assert websub_status(sub, NOW)["state"] == "pending"
    assert websub_status(sub | {"expires_at": later}, NOW)["state"] == "verified"
    ended = websub_status(sub | {"expires_at": "2024-05-01T00:00:00+00:00"}, NOW)
    assert ended["state"] == "expired"
    failed = sub | {"error_count": 2, "last_error": "the hub answered HTTP 500"}
    assert websub_status(failed, NOW)["state"] == "error"
    # A renewal that failed while the lease still runs: the hub still pushes.
    assert websub_status(failed | {"expires_at": later}, NOW)["state"] == "verified"
    denied = sub | {"error_count": 1, "last_error": "the hub denied it: spam"}
    assert websub_status(denied, NOW)["state"] == "denied"
    assert websub_status(sub | {"mode": "unsubscribe"}, NOW)["state"] == "unsubscribing"
    assert "secret" not in websub_status(sub | {"secret": "s3cr3t"}, NOW)
    assert full_text_status(None, None) is None


# -- a real database, a real server ------------------------------------------------------------


@pytest.fixture
def site(feed_server, write_config, tmp_path) -> AppConfig:
    """One healthy source with entries, one failing one, polled for real."""
    path = write_config(
        sources=[
            {"name": "mill", "url": feed_server.serve_feed("/m.rss", "formats/rss2.rss")},
            {"name": "broken", "url": feed_server.route("/b.rss", status=500)},
        ]
    )
    config = load_config(path)
    with Poller(config, manual=True) as poller:
        poller.poll_many(list(config.sources))
    return config


def test_a_poll_is_logged_with_its_duration(site):
    with Storage(site.database) as storage:
        ids = [row["id"] for row in storage.list_source_states()]
        rows = storage.daily_activity(ids, datetime.now(UTC) - timedelta(days=1))
    polls = [row for row in rows if row["kind"] == "poll"]
    assert len(polls) == 2
    assert {row["status"] for row in polls} == {200, 500}
    assert all(row["value"] >= 0 for row in polls)
    entries = [row for row in rows if row["kind"] == "entries"]
    assert [row["value"] for row in entries] == [3]


def _page(base: str, query: str = "") -> tuple[httpx.Response, html.HtmlElement]:
    answer = httpx.get(f"{base}/status{query}", timeout=10)
    return answer, html.fromstring(answer.text)


def test_the_status_page_over_a_real_server(site):
    with serve(create_app(site)) as base:
        answer, page = _page(base)
        css = httpx.get(f"{base}/static/status.css", timeout=10)

    assert answer.status_code == 200
    assert "script-src" not in answer.headers["content-security-policy"]  # default-src 'none'
    assert "style-src 'self'" in answer.headers["content-security-policy"]
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    rows = page.cssselect("tr.source")
    assert [row.get("id") for row in rows] == ["source-broken", "source-mill"]  # failing first
    broken, mill = rows
    assert broken.cssselect(".badge")[0].text == "failing"
    assert mill.cssselect(".badge")[0].text == "ok"
    assert "HTTP 500" in page.cssselect("tr.notes")[0].text_content()
    assert [td.text for td in mill.cssselect("td.n")] == ["3", "0", "0"]
    assert [a.text for a in mill.cssselect(".links a")] == ["feed", "site"]
    assert mill.cssselect(".links a")[0].get("href") == site.sources[0].url
    # Two server-drawn charts per source: this poll's new entries today, and the poll itself.
    assert len(mill.cssselect("svg.chart")) == 2
    assert len(mill.cssselect("svg.chart rect.entries")) == 1
    assert len(broken.cssselect("svg.chart rect.poll.failed")) == 1
    totals = {li.text_content().split(None, 1)[1]: li.text_content().split()[0]
              for li in page.cssselect("ul.totals li")}  # fmt: skip
    assert totals["sources"] == "2" and totals["failing"] == "1" and totals["entries"] == "3"
    # CSP: no script at all, no inline style.
    assert not page.cssselect("script, style, [style]")
    assert not [attr for el in page.iter() for attr in el.attrib if attr.startswith("on")]


def test_the_status_page_is_the_same_data_as_status_json(site):
    result = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(site.config_path), "status", "--json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    data = {row["name"]: row for row in json.loads(result.stdout)}
    with Storage(site.database) as storage:
        page = build_status_page(storage, site, datetime.now(UTC))
    assert {view.item["name"]: view.item for view in page.sources} == data


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # a UDP connect sends nothing
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@pytest.mark.parametrize("public", [False, True])
def test_other_addresses_get_404_unless_public_status(site, public):
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to connect from")
    server_config = site.server.model_copy(update={"public_status": public})
    config = site.model_copy(update={"server": server_config})
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host="0.0.0.0", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.02)
    try:
        remote = httpx.get(f"http://{address}:{port}/status", timeout=10)
        local = httpx.get(f"http://127.0.0.1:{port}/status", timeout=10)
    finally:
        server.should_exit = True
        thread.join(10)
    assert local.status_code == 200
    assert remote.status_code == (200 if public else 404)
    if not public:
        assert "broken" not in remote.text and "HTTP 500" not in remote.text


# -- 10,000 sources --------------------------------------------------------------------------


def _many_sources(config: AppConfig, count: int) -> None:
    """``count`` sources, a fifth failing, with entries, comments and polls, inserted in bulk."""
    with Storage(config.database) as storage:
        db = storage.db
        with storage.transaction():
            db.conn.executemany(
                "INSERT INTO sources (name, url, created_at, last_polled_at, last_status, "
                "error_count, last_error, last_success_at, next_poll_reason) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        f"s{n:05d}", f"https://h{n}.example.org/feed", "2024-05-01T00:00:00+00:00",
                        "2024-05-20T11:00:00+00:00", 500 if n % 5 == 0 else 200,
                        4 if n % 5 == 0 else 0, "HTTP 500" if n % 5 == 0 else None,
                        None if n % 5 == 0 else "2024-05-20T11:00:00+00:00",
                        "backoff" if n % 5 == 0 else "interval",
                    )
                    for n in range(count)
                ],
            )  # fmt: skip
            db.execute(
                "INSERT INTO entries (source_id, key, public_id, first_seen_at, sort_at, "
                "changed_at, content_hash, comment_count) SELECT s.id, 'k' || d.value, "
                "lower(hex(randomblob(16))), '2024-05-' || printf('%02d', 1 + d.value) || "
                "'T10:00:00+00:00', '2024-05-01T00:00:00+00:00', '2024-05-01T00:00:00+00:00', "
                "'h', 1 FROM sources s, json_each('[1,5,9,14,18]') d"
            )
            db.execute(
                "INSERT INTO comments (entry_id, key, public_id, first_seen_at, sort_at, "
                "changed_at, content_hash) SELECT e.id, 'c', lower(hex(randomblob(16))), "
                "e.first_seen_at, e.first_seen_at, e.first_seen_at, 'h' FROM entries e"
            )
            db.execute(
                "INSERT INTO poll_log (source_id, polled_at, duration_ms, status) "
                "SELECT id, '2024-05-19T10:00:00+00:00', 120, 200 FROM sources"
            )
            # Every source subscribed by WebSub, and every entry's page read for its article.
            db.execute(
                "INSERT INTO websub_subscriptions (source_name, callback_id, hub, topic, secret, "
                "created_at, requested_at, verified_at, expires_at) SELECT name, 'cb' || id, "
                "'https://hub.example/', url, 'secret-' || id, '2024-05-01T00:00:00+00:00', "
                "'2024-05-01T00:00:00+00:00', '2024-05-01T00:00:00+00:00', "
                "'2024-06-01T00:00:00+00:00' FROM sources"
            )
            db.execute(
                "INSERT INTO full_texts (entry_id, status, error, attempts, checked_at) "
                "SELECT id, CASE WHEN id % 5 THEN 'ok' ELSE 'failed' END, "
                "CASE WHEN id % 5 THEN NULL ELSE 'HTTP 404' END, 1, first_seen_at FROM entries"
            )


def test_a_page_of_10000_sources_costs_the_same_few_queries(write_config):
    config = load_config(write_config(sources=[]))
    _many_sources(config, 10_000)
    counts = {}
    with Storage(config.database) as storage:
        statements: list[str] = []
        storage.db.conn.set_trace_callback(statements.append)
        for sort, number in (("state", 1), ("state", 37), ("name", 100), ("name", 1)):
            statements.clear()
            page = build_status_page(storage, config, NOW, page=number, sort=sort)
            counts[(sort, number)] = len(statements)
            assert len(page.sources) == PAGE_SIZE
            assert page.pages == 100 and page.total_sources == 10_000
        first = build_status_page(storage, config, NOW, page=1, sort="state")
        last = build_status_page(storage, config, NOW, page=100, sort="state")
    assert set(counts.values()) == {4}, counts  # states, rows, activity, totals
    assert first.counts == {"failing": 2000, "retired": 0, "backing off": 0, "new": 0, "ok": 8000}
    assert {view.state for view in first.sources} == {"failing"}
    assert {view.state for view in last.sources} == {"ok"}
    assert first.totals == {"entries": 50_000, "comments": 50_000}
    # The WebSub subscription and the full-text counts come with the page's rows: no query more.
    item = first.sources[0].item
    assert item["websub"]["state"] == "verified"
    assert item["full_text"]["ok"] + item["full_text"]["failed"] == 5
    assert item["full_text"]["last_error"] == "HTTP 404"
    assert 'rect class="entries"' in str(first.sources[0].activity_chart)


# -- what a person sees: Chromium, and a terminal ---------------------------------------------


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_the_status_page_in_chromium(site, tmp_path):
    shots = Path(os.environ.get("AGGREGATOR_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with serve(create_app(site)) as base:
        common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                  "--disable-background-networking", "--no-first-run",
                  f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip
        dom = subprocess.run(
            [*common, "--dump-dom", f"{base}/status"],
            capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert dom.returncode == 0, dom.stderr[-2000:]
        page = html.fromstring(dom.stdout)
        assert [row.get("id") for row in page.cssselect("tr.source")] == [
            "source-broken",
            "source-mill",
        ]
        assert len(page.cssselect("svg.chart")) == 4
        for label, size in (("desktop", "1280,900"), ("mobile", "390,1600")):
            path = shots / f"status-{label}.png"
            shot = subprocess.run(
                [*common, f"--window-size={size}", f"--screenshot={path}", f"{base}/status"],
                capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            assert shot.returncode == 0, shot.stderr[-2000:]
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_status_in_a_terminal_fits_its_width_and_puts_failing_first(site):
    command = [sys.executable, "-m", "aggregator", "--config", str(site.config_path), "status"]
    for columns in (70, 150):
        lines = in_a_terminal(command, columns).splitlines()
        assert lines[0].startswith("source"), lines
        assert [line.split()[0] for line in lines[1:3]] == ["broken", "mill"]
        assert all(len(line) <= columns for line in lines), lines
    piped = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    assert "error: HTTP 500 Internal Server Error" in piped.stdout  # a pipe: nothing cut
