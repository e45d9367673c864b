"""kill -9 at any moment of a poll leaves a database that opens, passes integrity_check and
holds every entry and comment committed before.

A real ``aggregator poll`` subprocess polls a local feed that grows at every request and is
sent slowly, so the kills land while fetching, parsing, storing entries or reading comment
threads. After each kill the database is checked, and what it held before must still be there.
"""

from __future__ import annotations

import itertools
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hostile_server import HostileServer, Request, item, rss, static

from aggregator.storage import Storage

# Repeated `aggregator poll` subprocesses killed with -9: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

# A poll left to finish is a hang, not slowness, after this long.
FINISH_SECONDS = 300


def growing_feed(server: HostileServer) -> object:
    requests = itertools.count()

    def case(request: Request) -> None:
        n = next(requests)
        links = [f"<wfw:commentRss>{server.base}/c/{i % 7}.rss</wfw:commentRss>" for i in range(7)]
        body = rss("".join(item(i, extra=links[i % 7]) for i in range(300 + 60 * n)))
        request.send(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        step = len(body) // 6 + 1
        for start in range(0, len(body), step):  # about 0.3 s on the wire
            if not request.send(body[start : start + step]):
                return
            time.sleep(0.05)

    return case


def snapshot(database: Path) -> tuple[set[str], set[str]]:
    """Entry and comment keys, after checking that the file is sound and opens.

    A kill can land after SQLite created the file but before the first migration committed
    (under load, a second after the start is still that early): the file then holds no
    ``entries`` table yet. It is opened the way the next process opens it, which applies the
    migrations still pending, so such a file counts as holding nothing, as it does.
    """
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    with Storage(database) as storage:
        entries = {row[0] for row in storage.db.execute("SELECT key FROM entries")}
        comments = {
            f"{row[0]}/{row[1]}" for row in storage.db.execute("SELECT entry_id, key FROM comments")
        }
    return entries, comments


def test_kill_9_during_polls_loses_nothing_committed(tmp_path: Path) -> None:
    rng = random.Random(7)
    with HostileServer() as server:
        server.cases["/feed.rss"] = growing_feed(server)  # type: ignore[assignment]
        for n in range(7):
            server.cases[f"/c/{n}.rss"] = static(rss(item(1000 + n) + item(2000 + n)))
        config = tmp_path / "aggregator.yaml"
        config.write_text(
            "database: var/aggregator.db\npublic_dir: var/public\n"
            "defaults:\n  timeout: 20s\n  comments: true\n"
            f"sources:\n  - name: growing\n    url: {server.url('/feed.rss')}\n"
            "outputs:\n  - name: all\n"
        )
        database = tmp_path / "var" / "aggregator.db"
        entries: set[str] = set()
        comments: set[str] = set()
        killed = finished = 0
        for round_ in range(8):
            # The last rounds run to the end, so that the last check sees a complete poll.
            if poll_killed_after(config, None if round_ >= 6 else rng.uniform(0.4, 2.5)):
                killed += 1
            else:
                finished += 1
            if not database.exists():
                continue
            now_entries, now_comments = snapshot(database)
            assert entries <= now_entries, f"round {round_}: committed entries were lost"
            assert comments <= now_comments, f"round {round_}: committed comments were lost"
            entries, comments = now_entries, now_comments
    assert killed >= 3 and finished >= 2
    assert len(entries) >= 300 and comments, "the complete polls stored entries and comments"


def poll_killed_after(config: Path, seconds: float | None) -> bool:
    """Run ``aggregator poll`` and kill -9 it if it is still running after ``seconds``
    (``None``: let it finish, however loaded the machine); whether it was killed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(config), "poll"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if seconds is None:
        try:
            process.wait(FINISH_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError(f"a poll did not finish in {FINISH_SECONDS} s") from None
        return False
    deadline = time.monotonic() + seconds
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    killed = process.poll() is None
    if killed:
        process.send_signal(signal.SIGKILL)
    process.wait(10)
    return killed


def comment_feed(post: int, comments: int) -> bytes:
    return rss(
        "".join(
            f"<item><title>Re: {post}</title><link>http://example.org/{post}#comment-{n}</link>"
            f"<guid>http://example.org/{post}#comment-{n}</guid>"
            f"<description>okapi {post} {n}</description></item>"
            for n in range(comments)
        )
    )


def slowly(body: bytes) -> object:
    # Up to 32 threads read at once: a full poll takes about 2.5 s, so most kills land mid-poll.
    def case(request: Request) -> None:
        time.sleep(0.5)
        request.respond(body)

    return case


def test_kill_9_while_storing_comment_batches_loses_nothing_committed(tmp_path: Path) -> None:
    """Comment threads are stored in batches (several threads per transaction, a savepoint
    each): a kill mid-batch loses that batch only, and what is committed stays consistent
    (every stored comment searchable, each thread's count and read time with its rows)."""
    rng = random.Random(11)
    posts, per_post = 150, 40
    with HostileServer() as server:
        links = [f"<wfw:commentRss>{server.base}/c/{n}.rss</wfw:commentRss>" for n in range(posts)]
        server.cases["/feed.rss"] = static(
            rss("".join(item(n, extra=links[n]) for n in range(posts)))
        )
        for n in range(posts):
            server.cases[f"/c/{n}.rss"] = slowly(comment_feed(n, per_post))  # type: ignore[assignment]
        config = tmp_path / "aggregator.yaml"
        config.write_text(
            "database: var/aggregator.db\npublic_dir: var/public\n"
            "defaults:\n  timeout: 20s\n  comments: true\n"
            f"sources:\n  - name: talky\n    url: {server.url('/feed.rss')}\n"
            "outputs:\n  - name: all\n"
        )
        database = tmp_path / "var" / "aggregator.db"
        comments: set[str] = set()
        killed = finished = 0
        for round_ in range(7):
            if poll_killed_after(config, None if round_ >= 5 else rng.uniform(0.5, 2.5)):
                killed += 1
            else:
                finished += 1
            if not database.exists():
                continue
            _, now_comments = snapshot(database)
            assert comments <= now_comments, f"round {round_}: committed comments were lost"
            comments = now_comments
            with sqlite3.connect(database) as db:
                # No output searches, so polls leave rows queued for the index: every committed
                # comment is indexed or queued, never neither.
                queued = db.execute(
                    "SELECT count(*) FROM search_queue WHERE kind = 'comment'"
                ).fetchone()[0]
                indexed = db.execute("SELECT count(*) FROM comments_fts").fetchone()[0]
                assert indexed + queued == len(comments), f"round {round_}: index out of step"
                for count, stored, polled in db.execute(
                    "SELECT e.comment_count, count(c.id), e.comments_polled_at FROM entries e "
                    "LEFT JOIN comments c ON c.entry_id = e.id GROUP BY e.id"
                ):
                    assert count == stored and (polled is not None) == (stored > 0)
            db.close()
    assert killed >= 3 and finished >= 1
    assert len(comments) == posts * per_post, "the complete polls stored every comment"
    with Storage(database) as storage:  # the first search indexes what the polls queued
        storage.ensure_search_index()
        db = storage.db
        assert db.execute("SELECT count(*) FROM search_queue").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM comments_fts").fetchone()[0] == len(comments)
