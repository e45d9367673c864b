"""What an operator relies on besides polling: sd_notify, log formats, the database lock,
the metrics text, the 0003 migration, and the ``status`` and ``poll --due`` commands."""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from scripted_server import Answer, ScriptedServer, rss
from sqlite_utils import Database

from aggregator.cli import main
from aggregator.errors import LockedError
from aggregator.models import PollResult
from aggregator.run.logs import JournalFormatter, JsonFormatter
from aggregator.run.sdnotify import notify
from aggregator.serve.metrics import Metrics, SourceGauges
from aggregator.storage import Storage
from aggregator.storage.functions import register_functions
from aggregator.storage.lock import DatabaseLock
from aggregator.storage.schema import migrations


def test_notify_sends_one_datagram_to_the_socket_systemd_names(tmp_path, monkeypatch) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        listener.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert notify("READY=1", "STATUS=polling 3 sources")
        assert listener.recv(1024) == b"READY=1\nSTATUS=polling 3 sources"


def test_notify_does_nothing_outside_systemd_or_when_nobody_listens(tmp_path, monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not notify("READY=1")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody.sock"))
    assert not notify("READY=1")


def _record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("aggregator.poll.poller", level, __file__, 1, message, (), None)


def test_json_log_lines_are_one_object_each() -> None:
    line = JsonFormatter().format(_record(logging.WARNING, 'moa: HTTP 503 "busy"'))
    document = json.loads(line)
    assert document["level"] == "warning" and document["logger"] == "aggregator.poll.poller"
    assert document["message"] == 'moa: HTTP 503 "busy"' and document["ts"].endswith("+00:00")


def test_journald_lines_carry_the_syslog_priority() -> None:
    formatter = JournalFormatter("%(levelname)s %(name)s: %(message)s")
    assert formatter.format(_record(logging.ERROR, "x")) == "<3>ERROR aggregator.poll.poller: x"
    assert formatter.format(_record(logging.INFO, "a\nb")).splitlines() == [
        "<6>INFO aggregator.poll.poller: a",
        "<6>b",
    ]


def test_a_second_lock_on_the_same_database_is_refused_and_names_the_holder(tmp_path) -> None:
    database = tmp_path / "agg.db"
    with DatabaseLock(database), pytest.raises(LockedError, match=r"already running"):
        DatabaseLock(database).acquire()
    with DatabaseLock(database):  # released: free again
        pass


def test_metrics_render_in_prometheus_text_format() -> None:
    metrics = Metrics(
        sources=lambda: [SourceGauges("moa", 12, 340, 0, False, None, None)],
    )
    metrics.record(PollResult("moa", "new", new=3, http_status=200, new_comments=5), 0.2)
    metrics.record(PollResult("moa", "not-modified", http_status=304), 0.05)
    metrics.record(PollResult("moa", "error", http_status=503, error="busy"), 0.1)
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }
    assert samples[("aggregator_polls_total", (("result", "new"), ("source", "moa")))] == 1
    assert samples[("aggregator_poll_errors_total", (("kind", "503"), ("source", "moa")))] == 1
    assert samples[("aggregator_new_entries_total", (("source", "moa"),))] == 3
    assert samples[("aggregator_new_comments_total", (("source", "moa"),))] == 5
    assert samples[("aggregator_not_modified_ratio", ())] == 0.5
    assert samples[("aggregator_fetch_duration_seconds_count", ())] == 3
    assert samples[("aggregator_source_comments", (("source", "moa"),))] == 340


def test_migration_0003_upgrades_a_database_from_0001(tmp_path) -> None:
    path = tmp_path / "old.db"
    connection = sqlite3.connect(path)
    register_functions(connection)  # what Storage does for the full-text triggers of 0002
    db = Database(connection)
    migrations.apply(db, stop_before="0003_daemon")
    db.execute(
        "INSERT INTO sources (name, url, created_at, last_polled_at) "
        "VALUES ('moa', 'https://example.org/feed', '2024-01-01T00:00:00+00:00', "
        "'2024-03-01T00:00:00+00:00')"
    )
    db.conn.commit()
    db.close()
    with Storage(path) as storage:
        state = storage.get_source("moa")
        applied = [m.name for m in migrations.applied(storage.db)]
    assert "0003_daemon" in applied
    assert state.config_url == "https://example.org/feed"
    assert state.last_success_at is not None and state.hint_skip_hours == frozenset()


def test_migrations_from_empty(tmp_path) -> None:
    with Storage(tmp_path / "new.db") as storage:
        assert "config_url" in storage.db["sources"].columns_dict


def _config(tmp_path: Path, server: ScriptedServer) -> Path:
    path = tmp_path / "aggregator.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "database": str(tmp_path / "agg.db"),
                "public_dir": str(tmp_path / "public"),
                "sources": [
                    {"name": "ok", "url": server.url("/ok")},
                    {"name": "busy", "url": server.url("/busy")},
                ],
            }
        )
    )
    return path


def test_status_and_poll_due_from_the_command_line(tmp_path) -> None:
    with ScriptedServer() as server:
        server.script(
            "/ok", Answer(200, {"ETag": '"1"'}, rss(("a", server.clock() - timedelta(1))))
        )
        server.script("/busy", Answer(503, {"Retry-After": "7200"}))
        config = str(_config(tmp_path, server))
        runner = CliRunner()

        first = runner.invoke(main, ["-c", config, "poll"])
        assert first.exit_code == 1  # busy failed
        assert "ok: 1 new" in first.output and "busy: error: HTTP 503" in first.output

        again = runner.invoke(main, ["-c", config, "poll"])
        assert "busy: skipped: retry-after" in again.output and "--force" in again.output
        assert "ok: unchanged" in again.output or "ok: unchanged (304)" in again.output

        due = runner.invoke(main, ["-c", config, "poll", "--due"])
        assert due.output.strip() == "no source is due"

        status = runner.invoke(main, ["-c", config, "status", "--json"])
        rows = {row["name"]: row for row in json.loads(status.output)}
        assert (
            rows["busy"]["error_count"] == 1 and rows["busy"]["next_poll_reason"] == "retry-after"
        )
        assert rows["ok"]["last_status"] in (200, 304) and rows["ok"]["entry_count"] == 1
        assert rows["busy"]["notes"] == ["error: HTTP 503 Service Unavailable"]

        table = runner.invoke(main, ["-c", config, "status"])
        assert "retry-after" in table.output and "next poll" in table.output
    assert len(server.requests("/busy")) == 1
