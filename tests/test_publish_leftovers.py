"""Temporary files left in ``public_dir`` by a publish killed mid-write (issue 12, item 12).

``write_atomic`` writes ``.all.atom.XXXXXXXX`` and renames it over ``all.atom``; a ``kill -9``
in between leaves the temporary file for good. The next publish (``aggregator publish``) and the
daemon's start remove them, keep every real file, and keep a temporary file that another
publish is still writing (it holds a ``flock`` on it).
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
from pathlib import Path

import feedparser
from click.testing import CliRunner
from test_daemon_lifecycle import Daemon, Setup, wait_for_entries

from aggregator.cli import main
from aggregator.publish.files import is_temporary_name

# A child that publishes for real, but stalls (then is killed) right after writing the first
# temporary file, before renaming it: what a kill -9 during a publish leaves behind.
_STALLING_PUBLISH = """
import os, sys, time
real_fsync = os.fsync
def stall(fd):
    real_fsync(fd)
    print("written", flush=True)
    time.sleep(600)
os.fsync = stall
from aggregator.cli import main
main(["-c", sys.argv[1], "publish"])
"""


def temporary_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob(".*") if p.is_file())


def write_config(tmp_path: Path) -> Path:
    (tmp_path / "blog.rss").write_text(
        '<rss version="2.0"><channel><title>Blog</title><link>http://blog.test/</link>'
        "<item><title>One</title><guid>b-1</guid><link>http://blog.test/1</link></item>"
        "</channel></rss>"
    )
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        f"database: {tmp_path / 'a.db'}\npublic_dir: {tmp_path / 'public'}\n"
        "sources:\n  - name: blog\n    url: blog.rss\noutputs:\n  - name: all\n"
    )
    return config


def test_temporary_names_are_recognised_and_nothing_else() -> None:
    suffixes = (".atom", ".rss", ".json")
    for name in (".all.json.k3x_9a0q", ".comments.atom.abcdefgh", ".2.rss.0123_789"):
        assert is_temporary_name(name, suffixes), name
    for name in (
        "all.json",
        ".all.json",
        ".htaccess",
        ".all.json.old",
        ".all.json.ABCDEFGH",
        ".notes.txt.abcdefgh",
        "..json.abcdefgh",
        ".all.json.abcdefghi",
    ):
        assert not is_temporary_name(name, suffixes), name


def test_a_publish_killed_mid_write_leaves_nothing_after_the_next_publish(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    runner = CliRunner()
    assert runner.invoke(main, ["-c", str(config), "poll"]).exit_code == 0
    feeds = tmp_path / "public" / "feeds"
    child = subprocess.Popen(
        [sys.executable, "-c", _STALLING_PUBLISH, str(config)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "written"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    leftovers = temporary_files(feeds)
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".all."), leftovers
    # Other hidden or foreign files in the folder are not the publisher's to remove.
    (feeds / ".all.json.old").write_text("kept")
    (feeds / "notes.txt").write_text("kept")

    result = runner.invoke(main, ["-c", str(config), "publish"])

    assert result.exit_code == 0, result.output
    assert temporary_files(feeds) == [feeds / ".all.json.old"]
    assert (feeds / "notes.txt").read_text() == "kept"
    for extension in ("atom", "rss", "json"):
        assert (feeds / f"all.{extension}").exists()
    assert feedparser.parse((feeds / "all.atom").read_bytes()).entries[0].title == "One"


def test_the_daemon_start_removes_leftovers_but_not_a_file_being_written(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    setup.write([{"name": "blog"}])
    feeds = tmp_path / "public" / "feeds"
    (feeds / "all" / "some-entry").mkdir(parents=True)
    leftovers = [
        feeds / ".all.json.k3x_9a0q",
        feeds / ".all.atom.zz00aa11",
        feeds / "all" / "page" / ".2.rss.0123_789",
        feeds / "all" / "some-entry" / ".comments.atom.abcdefgh",
    ]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"<feed>half a fe")
    # A publish of another process at work on its temporary file: it holds the flock.
    busy = feeds / ".all.rss.busy0000"
    busy.write_bytes(b"<rss>")
    held = os.open(busy, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)
    daemon = Daemon(setup)
    try:
        daemon.wait_for("removed 4 temporary file(s) left by an interrupted publish")
        daemon.wait_for("running:")
        assert wait_for_entries(setup, 2)
        assert not [path for path in leftovers if path.exists()]
        assert busy.exists(), "a file another writer holds is kept"
    finally:
        os.close(held)
        assert daemon.stop() == 0
    assert (feeds / "all.atom").exists() and (feeds / "all.json").exists()
