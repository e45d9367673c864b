"""Terminal control sequences from outside never reach a terminal or the database (issue 12,
item 11).

A real server on 127.0.0.1 answers ``503 \\x1b]0;PWNED\\x07\\x1b[2J`` (retitle the terminal,
clear the screen) and another ``503`` with an 8-bit CSI in its reason phrase. Real
``aggregator poll`` and ``status`` processes run against them; their output, their log (text
and JSON) and the stored error carry the status but no control character.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_server import HostileServer, status

from aggregator.terminal import safe_text

PWNED = "\x1b]0;PWNED\x07\x1b[2J"
C1_CSI = "\x9b31mRED\x9b0m"


def controls(text: str) -> list[str]:
    """The control characters in ``text`` other than tab and line feed."""
    return [c for c in text if (ord(c) < 32 and c not in "\t\n") or 0x7F <= ord(c) <= 0x9F]


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator", "-c", str(config), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="surrogateescape",
        timeout=60,
    )


@pytest.fixture
def config(tmp_path: Path) -> tuple[Path, HostileServer]:
    server = HostileServer(
        {"/pwned.rss": status(503, PWNED), "/c1.rss": status(503, C1_CSI)}
    ).start()
    path = tmp_path / "aggregator.yaml"
    path.write_text(
        f"database: {tmp_path / 'a.db'}\npublic_dir: {tmp_path / 'public'}\n"
        "sources:\n"
        f"  - name: pwned\n    url: {server.url('/pwned.rss')}\n"
        f"  - name: csi\n    url: {server.url('/c1.rss')}\n"
        "outputs:\n  - name: all\n"
    )
    yield path, server
    server.stop()


def test_a_hostile_reason_phrase_reaches_no_terminal_log_or_database(
    config: tuple[Path, HostileServer], tmp_path: Path
) -> None:
    path, server = config
    polled = run(path, "poll")
    assert polled.returncode == 1  # the sources failed
    assert server.seen.count("/pwned.rss") == 1, "the server was asked and answered"
    # poll's output and its log (stderr): the status is there, the escapes are not.
    assert "pwned: error: HTTP 503" in polled.stdout
    assert "csi: error: HTTP 503 \ufffd31mRED\ufffd0m" in polled.stdout
    assert "HTTP 503" in polled.stderr
    assert controls(polled.stdout) == [] and controls(polled.stderr) == []
    assert "PWNED" not in polled.stdout + polled.stderr

    with sqlite3.connect(tmp_path / "a.db") as db:
        stored = dict(db.execute("SELECT name, last_error FROM sources").fetchall())
    db.close()
    assert stored["pwned"].startswith("HTTP 503") and controls(stored["pwned"]) == []
    assert controls(stored["csi"]) == []

    shown = run(path, "status")
    assert "HTTP 503" in shown.stdout
    assert controls(shown.stdout) == [] and controls(shown.stderr) == []

    as_json = run(path, "--log-format", "json", "poll", "--force")
    messages = [json.loads(line)["message"] for line in as_json.stderr.splitlines()]
    assert any("HTTP 503" in message for message in messages), as_json.stderr
    assert all(controls(message) == [] for message in messages), messages
    assert controls(as_json.stderr) == []


def test_safe_text_removes_sequences_and_controls_and_keeps_text() -> None:
    assert safe_text("503 " + PWNED).strip() == "503"
    assert safe_text("a\x1b[31mred\x1b[0m!") == "ared!"
    assert safe_text("\x1b]8;;http://evil.test/\x1b\\click\x1b]8;;\x1b\\") == "click"
    assert controls(safe_text(C1_CSI + "\x00\x7f\u2028x")) == []
    assert safe_text("a\udc9bb") == "a\ufffdb"
    assert safe_text("one\ntwo\r\nthree") == "one two three"
    assert safe_text("one\ntwo\r\nthree\tx", newlines=True) == "one\ntwo\nthree\tx"
    assert safe_text("Zoë ☕ café — ünïcode") == "Zoë ☕ café — ünïcode"
    assert safe_text(None) == ""
