"""Alerts (issue 15, item 5) against a webhook receiver on 127.0.0.1: payloads, the HMAC
signature, retries after 500s, one call per batch, no duplicates across a restart; Apprise's
``json://`` plugin to the same receiver; ``aggregator notify test``; the config checks."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator.alerts import AlertDispatcher
from aggregator.cli import main
from aggregator.config.schema import AppConfig
from aggregator.errors import ConfigError
from aggregator.models import CommentData, EntryData
from aggregator.storage import Storage

NOW = datetime.now(UTC)


class Receiver:
    """Records POSTs; answers the statuses in ``statuses`` first, then 200."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.changed:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.requests.append((dict(self.headers), body))
                    receiver.changed.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 15.0) -> list[tuple[dict[str, str], bytes]]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.requests) >= count, timeout), (
                f"expected {count} request(s), got {len(self.requests)}"
            )
            return list(self.requests)

    def payloads(self) -> list[dict]:
        return [json.loads(body) for _, body in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    served = Receiver()
    yield served
    served.server.shutdown()


def config_with(write_yaml_config: Callable[[str], AppConfig], notify: str) -> AppConfig:
    return write_yaml_config(
        """
        sources:
          - name: blog
            url: https://blog.example.org/feed/
            comments: true
          - name: other
            url: https://other.example.org/feed/
        outputs:
          - name: all
          - name: python
            include: [{title: python}]
        notify:
        """
        + notify
    )


def add_entry(storage: Storage, source: str, key: str, title: str) -> tuple[int, str]:
    with storage.transaction():
        storage.store_entries(
            storage.get_source(source),
            [
                EntryData(
                    key=key,
                    title=title,
                    link=f"https://{source}.example.org/{key}",
                    content_hash=key,
                )
            ],
            NOW,
        )
    entry = storage.find_entry(f"https://{source}.example.org/{key}")
    return entry.id, entry.public_id


def add_comments(storage: Storage, entry: tuple[int, str], comments: list[CommentData]) -> None:
    with storage.transaction():
        storage.store_comments(entry[0], entry[1], comments, NOW)


def comment(key: str, author: str, text: str, parent: str | None = None) -> CommentData:
    return CommentData(
        key=key,
        author=author,
        content=f"<p>{text}</p>",
        content_hash=text,
        parent_key=parent,
        link=f"https://blog.example.org/c/{key}",
        published_at=NOW,
    )


def open_storage(config: AppConfig) -> Storage:
    storage = Storage(config.database)
    storage.sync_sources([(s.name, s.url) for s in config.sources], NOW)
    return storage


def test_webhook_batches_signs_and_never_repeats_across_a_restart(
    write_yaml_config: Callable[[str], AppConfig], receiver: Receiver
) -> None:
    config = config_with(
        write_yaml_config,
        f"""
          - name: hook
            webhook: {receiver.url}
            secret: s3cret
            min_interval: 0s
            new_comments: {{watch: {{output: python}}}}
        """,
    )
    storage = open_storage(config)
    watched = add_entry(storage, "blog", "p1", "Python tips")
    other = add_entry(storage, "blog", "p2", "Cooking")
    old = [comment("old", "Ann", "before the alert existed")]
    add_comments(storage, watched, old)

    dispatcher = AlertDispatcher(config)
    dispatcher.start()  # the mark starts here: the old comment is not news
    add_comments(
        storage, watched, [*old, comment("c1", "Bob", "first"), comment("c2", "Cy", "second", "c1")]
    )
    add_comments(storage, other, [comment("x1", "Dee", "not watched")])
    dispatcher.poke()
    ((headers, body),) = receiver.wait_for(1)
    payload = json.loads(body)
    assert payload["notify"] == "hook" and payload["event"] == "new_comments"
    assert [item["text"] for item in payload["items"]] == ["first", "second"]
    assert payload["items"][1]["in_reply_to"]["author"] == "Bob"
    assert payload["items"][0]["entry"]["title"] == "Python tips"
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Aggregator-Signature"] == expected
    assert headers["Content-Type"] == "application/json"

    # Nothing new: a poke sends nothing.
    dispatcher.poke()
    dispatcher.stop()
    # A restart (new dispatcher, same database) sends nothing again; a new comment, once.
    dispatcher = AlertDispatcher(config)
    dispatcher.start()
    dispatcher.poke()
    add_comments(storage, watched, [*old, comment("c3", "Eve", "third")])
    dispatcher.poke()
    receiver.wait_for(2)
    dispatcher.poke()
    time.sleep(0.5)  # a duplicate would arrive within this (the send above took far less)
    dispatcher.stop()
    assert [[i["text"] for i in p["items"]] for p in receiver.payloads()] == [
        ["first", "second"],
        ["third"],
    ]
    storage.close()


def test_webhook_retries_after_500s_and_a_failing_target_does_not_block_poke(
    write_yaml_config: Callable[[str], AppConfig], receiver: Receiver
) -> None:
    config = config_with(
        write_yaml_config,
        f"""
          - name: hook
            webhook: {receiver.url}
            min_interval: 0s
            backoff: 0.2s
            retries: 3
            new_entries: {{sources: [other], include: [{{title: release}}]}}
        """,
    )
    storage = open_storage(config)
    dispatcher = AlertDispatcher(config)
    dispatcher.start()
    receiver.statuses = [500, 503]
    add_entry(storage, "other", "e1", "Release 2.0")
    add_entry(storage, "other", "e2", "Holiday photos")
    add_entry(storage, "blog", "e3", "Release of the blog")
    started = time.monotonic()
    dispatcher.poke()
    assert time.monotonic() - started < 0.1  # the poll thread never waits for a target
    requests = receiver.wait_for(3)
    bodies = [json.loads(body) for _, body in requests]
    assert all(b["items"] == bodies[0]["items"] for b in bodies)
    assert [i["title"] for i in bodies[0]["items"]] == ["Release 2.0"]
    # The retried batch keeps its delivery id.
    assert len({headers["X-Aggregator-Delivery"] for headers, _ in requests}) == 1
    dispatcher.poke()
    time.sleep(0.5)
    dispatcher.stop()
    assert len(receiver.requests) == 3
    assert storage.alert_mark("hook")[2] is not None
    storage.close()


def test_authors_and_replies_in_aggregator_poll_then_notify_test(
    write_yaml_config: Callable[[str], AppConfig], receiver: Receiver, tmp_path: Path
) -> None:
    config = config_with(
        write_yaml_config,
        f"""
          - name: me
            webhook: {receiver.url}
            min_interval: 0s
            new_comments: {{authors: [ann], replies_to: [Ann]}}
        """,
    )
    storage = open_storage(config)
    entry = add_entry(storage, "blog", "p1", "Anything")
    dispatcher = AlertDispatcher(config)
    dispatcher.start_marks(storage)
    add_comments(
        storage,
        entry,
        [
            comment("a", "Ann", "mine"),
            comment("b", "Bob", "reply to Ann", "a"),
            comment("c", "Cy", "unrelated"),
        ],
    )
    dispatcher.run_now(storage)  # what `aggregator poll` does after its polls
    dispatcher.webhooks.close()
    texts = [i["text"] for i in receiver.wait_for(1) and receiver.payloads()[0]["items"]]
    assert texts == ["mine", "reply to Ann"]
    storage.close()

    result = CliRunner().invoke(main, ["--config", str(config.config_path), "notify", "test", "me"])
    assert result.exit_code == 0, result.output
    assert receiver.wait_for(2) and receiver.payloads()[1]["event"] == "test"
    missing = CliRunner().invoke(
        main, ["--config", str(config.config_path), "notify", "test", "nope"]
    )
    assert missing.exit_code != 0 and "no notify item named 'nope'" in missing.output


def test_apprise_json_target(
    write_yaml_config: Callable[[str], AppConfig], receiver: Receiver
) -> None:
    port = receiver.server.server_address[1]
    config = config_with(
        write_yaml_config,
        f"""
          - name: chat
            apprise: json://127.0.0.1:{port}/hook
            min_interval: 0s
            new_comments: {{sources: [blog]}}
        """,
    )
    storage = open_storage(config)
    entry = add_entry(storage, "blog", "p1", "A post")
    dispatcher = AlertDispatcher(config)
    dispatcher.start()
    add_comments(storage, entry, [comment("a", "Ann", "hello there")])
    dispatcher.poke()
    receiver.wait_for(1)
    dispatcher.stop()
    sent = receiver.payloads()[0]
    assert "1 new comment" in sent["title"]
    assert "Ann on A post: hello there" in sent["message"]
    storage.close()


@pytest.mark.parametrize(
    ("notify", "message"),
    [
        ("- name: x\n    new_comments: {}\n", "exactly one target"),
        ("- name: x\n    webhook: http://a.example/\n", "exactly one condition"),
        ("- name: x\n    webhook: ftp://a.example/\n    new_entries: {}\n", "not an http(s) URL"),
        (
            "- name: x\n    webhook: http://a.example/\n    new_comments: {watch: {output: nope}}\n",
            "no output named 'nope'",
        ),
        (
            "- name: x\n    apprise: json://a/\n    secret: s\n    new_entries: {}\n",
            "secret signs webhook",
        ),
    ],
)
def test_config_mistakes_are_one_line_each(
    write_yaml_config: Callable[[str], AppConfig], notify: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        write_yaml_config("sources: []\noutputs: []\nnotify:\n  " + notify)
    assert any(
        message in problem and "aggregator.yaml:" in problem for problem in caught.value.problems
    ), caught.value.problems


def test_min_interval_spaces_batches(
    write_yaml_config: Callable[[str], AppConfig], receiver: Receiver
) -> None:
    config = config_with(
        write_yaml_config,
        f"""
          - name: hook
            webhook: {receiver.url}
            min_interval: 1s
            new_comments: {{}}
        """,
    )
    storage = open_storage(config)
    entry = add_entry(storage, "blog", "p1", "A post")
    dispatcher = AlertDispatcher(config)
    dispatcher.start()
    add_comments(storage, entry, [comment("a", "Ann", "one")])
    dispatcher.poke()
    receiver.wait_for(1)
    first = time.monotonic()
    add_comments(storage, entry, [comment("a", "Ann", "one"), comment("b", "Bob", "two")])
    dispatcher.poke()
    add_comments(
        storage,
        entry,
        [comment("a", "Ann", "one"), comment("b", "Bob", "two"), comment("c", "Cy", "three")],
    )
    dispatcher.poke()
    receiver.wait_for(2)
    assert time.monotonic() - first >= 0.9
    dispatcher.stop()
    assert [[i["text"] for i in p["items"]] for p in receiver.payloads()] == [
        ["one"],
        ["two", "three"],
    ]
    storage.close()
