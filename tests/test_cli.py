"""Tests for the command line (aggregator.cli): documentation, status, serve, and error lines.

Commands that touch the network run against the local feed server; ``serve`` runs as a
subprocess on a free port.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import feedparser
import httpx
import pytest
from click.testing import CliRunner

from aggregator import __version__
from aggregator.cli import main


def run_cli(config_path: Path | None, *args: str, cwd: Path | None = None):
    config = ["--config", str(config_path)] if config_path else []
    return subprocess.run(
        [sys.executable, "-m", "aggregator", *config, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_is_documented_with_an_example(name):
    command = main.commands[name]

    assert command.help, f"{name} has no docstring"
    assert command.get_short_help_str().strip(), name
    assert "Example: aggregator" in command.help, f"{name} has no 'Example:' line"
    for parameter in command.params:
        if isinstance(parameter, click.Option):
            assert parameter.help, f"{name} {parameter.opts} has no help"


def test_version():
    result = CliRunner().invoke(main, ["--version"])

    assert result.exit_code == 0
    assert __version__ in result.output


def test_check_with_clirunner(write_config):
    path = write_config(sources=[{"name": "mill", "url": "http://127.0.0.1:9/a.rss"}])

    result = CliRunner().invoke(main, ["--config", str(path), "check"])

    assert result.exit_code == 0, result.output
    assert "ok (1 sources, 1 outputs; comment threads followed on 1 of 1 sources)" in result.output


def test_status_after_polls(feed_server, write_config):
    path = write_config(
        sources=[
            {"name": "mill", "url": feed_server.serve_feed("/m.rss", "formats/rss2.rss")},
            {"name": "broken", "url": feed_server.route("/b.rss", status=500)},
        ]
    )
    run_cli(path, "poll")

    table = run_cli(path, "status")
    as_json = run_cli(path, "status", "--json")

    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[0] == "source"
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"mill", "broken"}
    assert "HTTP 500" in rows["broken"]
    data = {row["name"]: row for row in json.loads(as_json.stdout)}
    assert data["mill"]["entry_count"] == 3
    assert data["mill"]["last_status"] == 200
    assert data["mill"]["last_error"] is None
    assert data["mill"]["configured"] is True
    assert data["broken"]["last_status"] == 500
    assert data["broken"]["error_count"] == 1
    assert "500" in data["broken"]["last_error"]


def test_status_before_any_poll(write_config):
    path = write_config(sources=[{"name": "mill", "url": "http://127.0.0.1:9/a.rss"}])

    result = run_cli(path, "status", "--json")

    assert result.returncode == 0, result.stderr
    assert isinstance(json.loads(result.stdout), list)


def test_serve_answers_and_stops_on_sigterm(feed_server, write_config, free_port, tmp_path):
    path = write_config(
        sources=[{"name": "mill", "url": feed_server.serve_feed("/m.rss", "formats/rss2.rss")}],
        server={"host": "127.0.0.1", "port": 9},  # overridden by --port below
    )
    assert run_cli(path, "poll").returncode == 0
    assert run_cli(path, "publish").returncode == 0
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aggregator",
            "--config",
            str(path),
            "serve",
            "--port",
            str(free_port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        response = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"http://127.0.0.1:{free_port}/feeds/all.atom", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert response is not None and response.status_code == 200
        assert len(feedparser.parse(response.content).entries) == 3

        process.send_signal(signal.SIGTERM)
        assert process.wait(5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        log.close()


def test_serve_on_a_busy_port_is_one_line(write_config, feed_server):
    busy = feed_server.port  # the feed server listens there
    path = write_config()

    result = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(path), "serve", "--port", str(busy)],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode != 0
    assert "address already in use" in result.stderr
    assert "Traceback" not in result.stderr
