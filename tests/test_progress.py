"""Progress bars (issue 18): on a terminal for long runs of poll, publish and opml import;
never in a pipe or under systemd (``INVOCATION_ID`` / ``JOURNAL_STREAM``)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support import in_a_terminal

from aggregator.run.progress import show_progress


@pytest.mark.parametrize(
    ("terminal", "environ", "items", "shown"),
    [
        (True, {}, 11, True),
        (True, {}, 10, False),  # a short run: no bar
        (False, {}, 500, False),  # a pipe or a file
        (True, {"INVOCATION_ID": "0123abcd"}, 500, False),  # systemd
        (True, {"JOURNAL_STREAM": "8:12345"}, 500, False),
        (True, {"INVOCATION_ID": ""}, 500, True),  # set but empty: not systemd's
    ],
)
def test_when_a_bar_is_shown(terminal, environ, items, shown):
    assert show_progress(terminal, environ, items) is shown


def _opml(tmp_path, count):
    outlines = "".join(
        f'<outline type="rss" text="Blog {n}" xmlUrl="https://b{n}.example.org/feed"/>'
        for n in range(count)
    )
    path = tmp_path / "subs.opml"
    path.write_text(f'<?xml version="1.0"?><opml version="2.0"><body>{outlines}</body></opml>')
    return path


def test_opml_import_shows_progress_on_a_terminal_only(write_config, tmp_path):
    config = write_config(sources=[])
    opml = _opml(tmp_path, 150)
    command = [sys.executable, "-m", "aggregator", "--config", str(config), "opml", "import"]

    shown = in_a_terminal([*command, "--dry-run", str(opml)])
    service = in_a_terminal([*command, "--dry-run", str(opml)], env={"INVOCATION_ID": "x"})
    piped = subprocess.run(
        [*command, str(opml)], capture_output=True, text=True, timeout=60, check=True
    )

    assert "importing" in shown and "100%" in shown
    assert "would add 150 source(s)" in shown
    assert "importing" not in service and "would add 150 source(s)" in service
    assert "importing" not in piped.stderr + piped.stdout
    assert "added 150 source(s)" in piped.stdout


def test_publish_and_poll_show_progress_on_a_terminal(write_config, tmp_path):
    feeds = []
    for n in range(12):
        feed = tmp_path / f"f{n}.rss"
        feed.write_text(
            f"<rss version='2.0'><channel><title>F{n}</title><link>https://f{n}.example.org/</link>"
            f"<item><title>Post {n}</title><link>https://f{n}.example.org/1</link></item>"
            "</channel></rss>"
        )
        feeds.append({"name": f"f{n}", "url": feed.name})
    config = write_config(sources=feeds, outputs=[{"name": "all"}, {"name": "again"}])
    base = [sys.executable, "-m", "aggregator", "--config", str(config)]

    polled = in_a_terminal([*base, "poll"])
    published = in_a_terminal([*base, "publish"])
    quiet = in_a_terminal([*base, "publish"], env={"JOURNAL_STREAM": "8:1"})

    assert "polling" in polled and "f11: 1 new" in polled
    # Two outputs, three formats, each with its latest-comments feed (comments are followed by
    # default): twelve files.
    assert "publishing" in published and "12 file(s) changed" in published
    assert "publishing" not in quiet and "0 file(s) changed" in quiet
