"""What changed in a thread (issue 15, item 3): earlier versions of comments kept through
edits, disappearances and a kill -9; the comment-changes feeds read back with feedparser; and
``aggregator comments --history``."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
from click.testing import CliRunner

from aggregator.cli import main
from aggregator.config.schema import AppConfig
from aggregator.models import CommentData, EntryData
from aggregator.publish.changefeed import mark_difference, terminal_difference
from aggregator.publish.publisher import Publisher
from aggregator.storage import Storage

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
CONFIG = """
sources:
  - name: blog
    url: https://blog.example.org/feed/
    comments: true
outputs:
  - name: all
    comment_changes: true
  - name: plain
"""


def comment(key: str, text: str, author: str = "Ann") -> CommentData:
    return CommentData(
        key=key,
        content=text,
        author=author,
        link=f"https://blog.example.org/post-1/#{key}",
        content_hash=f"hash of {text}",
        published_at=NOW - H,
    )


def store_entry(storage: Storage) -> tuple[int, str]:
    entry = EntryData(
        key="post-1",
        guid="post-1",
        title="A post",
        link="https://blog.example.org/post-1/",
        content_hash="same",
    )
    with storage.transaction():
        storage.store_entries(storage.get_source("blog"), [entry], NOW)
    stored = storage.find_entry("post-1")
    return stored.id, stored.public_id


def read(storage: Storage, entry: tuple[int, str], comments: list[CommentData], at: datetime):
    """One complete read of the thread: store it, and mark what it lacks as gone."""
    with storage.transaction():
        storage.store_comments(entry[0], entry[1], comments, at)
        storage.mark_comments_gone(entry[0], [c.key for c in comments], at)


def test_edits_and_disappearances_are_kept_and_published(
    write_yaml_config: Callable[[str], AppConfig],
) -> None:
    config = write_yaml_config(CONFIG)
    with Storage(config.database) as storage:
        storage.sync_sources([("blog", "https://blog.example.org/feed/")], NOW)
        entry = store_entry(storage)
        read(
            storage,
            entry,
            [comment("c1", "<p>I like cats a lot</p>"), comment("c2", "<p>Me too</p>", "Bob")],
            NOW,
        )
        assert storage.list_entry_revisions(entry[0]) == []
        # The same text again (a feed read without number or parent) is no revision.
        read(
            storage,
            entry,
            [comment("c1", "<p>I like cats a lot</p>"), comment("c2", "<p>Me too</p>", "Bob")],
            NOW + H,
        )
        assert storage.list_entry_revisions(entry[0]) == []
        read(
            storage,
            entry,
            [comment("c1", "<p>I like dogs a lot</p>"), comment("c2", "<p>Me too</p>", "Bob")],
            NOW + 2 * H,
        )
        read(storage, entry, [comment("c1", "<p>I like dogs a lot</p>")], NOW + 3 * H)
        revisions = storage.list_entry_revisions(entry[0])
    assert [(r.kind, r.author) for r in revisions] == [("gone", "Bob"), ("edit", "Ann")]
    assert revisions[1].old_content == "<p>I like cats a lot</p>"
    assert revisions[1].new_content == "<p>I like dogs a lot</p>"
    assert revisions[0].old_content == "<p>Me too</p>"
    assert revisions[0].recorded_at == NOW + 3 * H

    with Storage(config.database) as storage:
        changed = Publisher(config, storage).publish()
    folder = config.public_dir / "feeds"
    assert folder / "all" / "comment-changes.atom" in changed
    assert not (folder / "plain" / "comment-changes.atom").exists()  # off by default
    for ext in ("atom", "rss"):  # feedparser 6 reads no JSON Feed: that one is read below
        data = (folder / "all" / f"comment-changes.{ext}").read_bytes()
        parsed = feedparser.parse(data)
        assert not parsed.bozo, (ext, parsed.get("bozo_exception"))
        titles = [item.title for item in parsed.entries]
        assert titles == [
            "Bob's comment on A post vanished",
            "Ann edited a comment on A post",
        ], ext
        edit = parsed.entries[1]
        body = edit.content[0].value if "content" in edit else edit.summary
        assert "<del>cats</del><ins>dogs</ins>" in body, ext
        assert edit.link == "https://blog.example.org/post-1/#c1"
        gone = parsed.entries[0]
        gone_body = gone.content[0].value if "content" in gone else gone.summary
        assert "Me too" in gone_body and "2026-03-10 15:00 UTC" in gone_body
    items = json.loads((folder / "all" / "comment-changes.json").read_bytes())["items"]
    assert [item["_aggregator"]["kind"] for item in items] == ["gone", "edit"]
    assert "<del>cats</del><ins>dogs</ins>" in items[1]["content_html"]
    assert items[1]["url"] == "https://blog.example.org/post-1/#c1"

    result = CliRunner().invoke(
        main, ["--config", str(config.config_path), "comments", "post-1", "--history"]
    )
    assert result.exit_code == 0, result.output
    assert "2 change(s)" in result.output
    assert "Bob: vanished" in result.output and "last text: Me too" in result.output
    assert "before: I like cats a lot" in result.output
    assert "diff:   I like [-cats-]{+dogs+} a lot" in result.output
    # Without --history, the thread as before.
    plain = CliRunner().invoke(main, ["--config", str(config.config_path), "comments", "post-1"])
    assert "I like dogs a lot" in plain.output and "[-cats-]" not in plain.output


def test_changes_feed_is_bounded_and_newest_first(
    write_yaml_config: Callable[[str], AppConfig],
) -> None:
    config = write_yaml_config(
        CONFIG.replace("comment_changes: true", "comment_changes: true\n    limit: 5")
    )
    with Storage(config.database) as storage:
        storage.sync_sources([("blog", "https://blog.example.org/feed/")], NOW)
        entry = store_entry(storage)
        for n in range(12):
            read(storage, entry, [comment("c1", f"version {n}")], NOW + n * H)
    with Storage(config.database) as storage:
        Publisher(config, storage).publish()
    parsed = feedparser.parse((config.public_dir / "feeds/all/comment-changes.atom").read_bytes())
    assert len(parsed.entries) == 5
    bodies = [item.content[0].value for item in parsed.entries]
    assert "<ins>11</ins>" in bodies[0] and "<ins>7</ins>" in bodies[4]


def test_difference_marks() -> None:
    assert (
        mark_difference("<p>a b c</p>", "<p>a x c d</p>")
        == "a <del>b</del><ins>x</ins> c<ins> d</ins>"
    )
    assert (
        mark_difference("<p>x &lt; y</p>", "<p>x &lt; z</p>") == "x &lt; <del>y</del><ins>z</ins>"
    )
    assert terminal_difference("one two", "one three") == "one [-two-]{+three+}"


WRITER = textwrap.dedent(
    """
    import sys
    import time
    from datetime import UTC, datetime, timedelta
    from aggregator.models import CommentData, EntryData
    from aggregator.storage import Storage

    now = datetime(2026, 3, 10, tzinfo=UTC)
    with Storage(sys.argv[1]) as storage:
        storage.sync_sources([("blog", "https://blog.example.org/feed/")], now)
        with storage.transaction():
            storage.store_entries(storage.get_source("blog"), [EntryData(key="p", title="p", link="https://blog.example.org/p", content_hash="h")], now)
        entry = storage.find_entry("https://blog.example.org/p")
        n = time.time_ns()  # versions grow across restarts
        count = 0
        while True:
            n += 1
            count += 1
            comments = [
                CommentData(key=f"k{i}", content=f"text {i} v{n}" + " padding" * 200,
                            content_hash=f"{i}-{n}")
                for i in range(40)
            ]
            with storage.transaction():
                storage.store_comments(entry.id, entry.public_id, comments, now + timedelta(seconds=count))
            print(count, flush=True)
    """
)


def test_revisions_survive_kill_9(tmp_path: Path) -> None:
    database = tmp_path / "aggregator.db"
    script = tmp_path / "writer.py"
    script.write_text(WRITER, encoding="utf-8")
    for round_ in range(3):
        process = subprocess.Popen(
            [sys.executable, str(script), str(database)], stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        # Wait for some committed edits (a condition, not a fixed sleep), then kill mid-write.
        deadline = time.monotonic() + 60
        committed = 0
        while committed < 5 + 3 * round_ and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
            if line:
                committed = int(line)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert committed >= 5
        with sqlite3.connect(database) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            for comment_id, content in db.execute("SELECT id, content FROM comments"):
                chain = db.execute(
                    "SELECT old_content, new_content FROM comment_revisions "
                    "WHERE comment_id = ? ORDER BY id",
                    (comment_id,),
                ).fetchall()
                # Every version but the first is the new text of one revision, each revision
                # starts where the previous ended, and the last ends at the stored text.
                assert chain, comment_id
                assert chain[-1][1] == content
                for before, after in zip(chain, chain[1:], strict=False):
                    assert before[1] == after[0]
                versions = [int(old.split(" ")[2][1:]) for old, _ in chain]
                assert versions == sorted(set(versions))
        db.close()
