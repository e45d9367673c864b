"""WebSub subscriber (issue 17, item 8): a hub simulation on 127.0.0.1 subscribes our real
server (starlette under uvicorn), verifies, renews, pushes signed content and unsubscribes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from conftest import make_config_file
from support import free_port, serve
from websub_hub import WebSubHub, atom_feed

from aggregator.cli import main
from aggregator.config.loading import load_config
from aggregator.config.schema import AppConfig
from aggregator.config.server import is_public_url
from aggregator.config.sources import SourceConfig
from aggregator.models import PollResult, Subscription
from aggregator.parse.sandbox import InProcessParser
from aggregator.poll.poller import Poller
from aggregator.poll.subscriber import Subscriber
from aggregator.poll.websub import (
    Action,
    decide_upkeep,
    hub_link,
    mentions_hub,
    signature_ok,
    wants_websub,
)
from aggregator.run.daemon import Daemon
from aggregator.schedule.scheduler import PollScheduler
from aggregator.secret import Secret
from aggregator.serve.server import create_app
from aggregator.storage import Storage
from aggregator.storage.rows import format_time

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Setup:
    """A hub, our server serving the subscriber's callback, and a poller."""

    def __init__(self, folder: Path, hub: WebSubHub, port: int):
        self.hub = hub
        self.folder = folder
        self.port = port
        # Announced in the document, with its own self URL (the topic).
        self.topic = "http://127.0.0.1:1/canonical/pushed.atom"
        self.feed_url = hub.serve_feed(
            "/pushed.atom", atom_feed(["a", "b"], hub=hub.url + "/hub", self_url=self.topic)
        )
        # Announced in HTTP Link headers only, at a hub address that answers 307.
        self.moved_url = hub.serve_feed(
            "/moved.atom",
            atom_feed(["m"]),
            link_header=f'<{hub.url}/old-hub>; rel="hub", <{hub.url}/moved.atom>; rel="self"',
        )
        self.sources = [
            {"name": "pushed", "url": self.feed_url, "websub": True},
            {"name": "moved", "url": self.moved_url, "websub": True},
        ]
        self.config = self.write(self.sources)
        self.pushes: list[tuple[str, PollResult]] = []
        self.poller = Poller(self.config, rng=None)
        self.subscriber = Subscriber(
            self.config, self.poller, on_push=lambda s, r: self.pushes.append((s.name, r))
        )

    def write(self, sources: list[dict[str, object]]) -> AppConfig:
        path = make_config_file(
            self.folder,
            sources=sources,
            allow_private_networks=True,
            server={"port": self.port, "base_url": f"http://127.0.0.1:{self.port}"},
            defaults={
                "timeout": "5s",
                "interval": "1h",
                "adaptive": False,
                "comments": False,
                "max_body_size": "64KB",
            },
        )
        return load_config(path)

    def sub(self, name: str) -> Subscription | None:
        return self.poller.storage.subscription_of(name)

    def callback(self, name: str) -> str:
        sub = self.sub(name)
        assert sub is not None
        return f"http://127.0.0.1:{self.port}/websub/{sub.callback_id}"

    def source(self, name: str) -> SourceConfig:
        return self.config.source(name)

    def entry_keys(self) -> set[str]:
        with Storage(self.config.database) as storage:
            return {row[0] for row in storage.db.execute("SELECT key FROM entries").fetchall()}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    hub = WebSubHub()
    port = free_port()
    built = Setup(tmp_path_factory.mktemp("websub"), hub, port)
    app = create_app(lambda: built.subscriber.config, websub=built.subscriber)
    try:
        with serve(app, port):
            yield built
    finally:
        built.subscriber.close()
        built.poller.close()
        hub.close()


def _about(wait: timedelta, expected: timedelta) -> bool:
    """Stored times keep whole seconds."""
    return abs(wait - expected) < timedelta(seconds=1)


def _verified(setup: Setup, name: str) -> bool:
    sub = setup.sub(name)
    return sub is not None and sub.expires_at is not None


def test_a_source_announcing_a_hub_is_subscribed_and_verified(setup: Setup) -> None:
    old = setup.sub("pushed")  # left by another test: start afresh
    if old is not None:
        with setup.poller.write_lock, setup.poller.storage.transaction():
            setup.poller.storage.delete_subscription(old.id)
    before = setup.poller.poll_source(setup.source("pushed"), force=True)
    polled_at = setup.poller.storage.get_source("pushed").last_polled_at
    assert before.ok and before.next_poll_at is not None and polled_at is not None
    assert _about(before.next_poll_at - polled_at, timedelta(hours=1))  # no subscription yet
    sub = setup.sub("pushed")
    assert sub is not None and sub.hub == setup.hub.url + "/hub" and sub.topic == setup.topic
    assert sub.requested_at is None  # found by the poll, asked by the upkeep

    done = setup.subscriber.upkeep()
    assert ("pushed", Action.SUBSCRIBE) in done
    callback = setup.callback("pushed")
    setup.hub.wait_for(lambda: callback in setup.hub.subscriptions)
    request = next(r for r in setup.hub.requests if r["hub.callback"] == callback)
    assert request["hub.mode"] == "subscribe" and request["hub.topic"] == setup.topic
    assert request["hub.lease_seconds"] == str(10 * 86400)
    assert len(request["hub.secret"]) >= 32
    hub_sub = setup.hub.subscriptions[callback]
    assert hub_sub.verified, hub_sub.answers  # the challenge came back as sent
    live = setup.sub("pushed")
    assert live is not None and live.live(datetime.now(UTC))
    assert live.lease_seconds == setup.hub.lease
    # Asked once: the next upkeep has nothing to do.
    assert ("pushed", Action.SUBSCRIBE) not in setup.subscriber.upkeep()

    # Anything but the topic and mode asked for is 404, and nothing is recorded.
    assert setup.hub.verify(callback, "subscribe", "http://127.0.0.1:1/other")[0] == 404
    assert setup.hub.verify(callback, "unsubscribe", setup.topic)[0] == 404
    assert setup.hub.verify(callback + "x", "subscribe", setup.topic)[0] == 404
    assert setup.hub.verify(callback, "subscribe", setup.topic, lease=-1)[0] == 404
    assert setup.sub("pushed") == live


def test_polls_are_the_fallback_at_a_lower_rate_while_live(setup: Setup) -> None:
    _subscribed(setup)
    result = setup.poller.poll_source(setup.source("pushed"), force=True)
    state = setup.poller.storage.get_source("pushed")
    assert state.last_polled_at is not None and result.next_poll_at is not None
    assert _about(result.next_poll_at - state.last_polled_at, timedelta(hours=4))  # 1h × 4
    assert state.next_poll_reason == "websub"


def test_a_signed_push_is_stored_and_a_bad_or_missing_signature_is_not(setup: Setup) -> None:
    _subscribed(setup)
    callback = setup.callback("pushed")
    pushes = len(setup.pushes)
    for method in ("sha1", "sha256", "sha384", "sha512"):
        body = atom_feed([f"push-{method}"])
        assert setup.hub.push(callback, body, method=method) == 200
        assert f"urn:push-{method}" in setup.entry_keys()
    assert [name for name, _ in setup.pushes[pushes:]] == ["pushed"] * 4
    assert all(result.new == 1 for _, result in setup.pushes[pushes:])

    bad = atom_feed(["forged"])
    assert setup.hub.push(callback, bad, secret="not the secret") == 202
    assert setup.hub.push(callback, bad, method=None) == 202
    assert setup.hub.push(callback, bad, signature="sha256=") == 202
    assert setup.hub.push(callback, bad, signature="md5=00") == 202
    assert setup.hub.push(callback, b"x" * (64 * 1024 + 1), method="sha256") == 413
    assert "urn:forged" not in setup.entry_keys()
    assert len(setup.pushes) == pushes + 4  # nothing published for the rejected ones
    # Hostile content with a right signature goes through the same parser: an error, no row.
    assert setup.hub.push(callback, b"<html>not a feed", method="sha256") == 200
    assert setup.pushes[-1][1].status == "error"


def test_a_lease_is_renewed_before_it_ends(setup: Setup) -> None:
    _subscribed(setup)
    live = setup.sub("pushed")
    assert live is not None and live.expires_at is not None
    callback = setup.callback("pushed")
    asked = sum(1 for r in setup.hub.requests if r["hub.callback"] == callback)
    # Not yet due: two days before the end of a 10-day lease (renewed a day before).
    assert ("pushed", Action.SUBSCRIBE) not in setup.subscriber.upkeep(
        live.expires_at - timedelta(days=2)
    )
    setup.hub.lease = 20 * 86400  # the hub grants a longer lease this time
    try:
        renew_at = live.expires_at - timedelta(hours=12)
        assert ("pushed", Action.SUBSCRIBE) in setup.subscriber.upkeep(renew_at)
        setup.hub.wait_for(
            lambda: (
                len(setup.hub.subscriptions[callback].answers) >= 2
                and setup.hub.subscriptions[callback].verified
            )
        )
    finally:
        setup.hub.lease = 864_000
    renewed = setup.sub("pushed")
    assert renewed is not None and renewed.expires_at is not None
    assert renewed.lease_seconds == 20 * 86400
    assert renewed.expires_at > live.expires_at
    assert renewed.callback_id == live.callback_id and renewed.secret == live.secret
    assert sum(1 for r in setup.hub.requests if r["hub.callback"] == callback) == asked + 1


def test_link_headers_and_a_hub_that_redirects_307(setup: Setup) -> None:
    setup.poller.poll_source(setup.source("moved"), force=True)
    sub = setup.sub("moved")
    assert sub is not None and sub.hub == setup.hub.url + "/old-hub"
    assert sub.topic == setup.moved_url
    setup.subscriber.upkeep()
    callback = setup.callback("moved")
    setup.hub.wait_for(lambda: callback in setup.hub.subscriptions)
    assert setup.hub.subscriptions[callback].verified
    setup.hub.wait_for(lambda: _verified(setup, "moved"))


def test_a_removed_source_is_unsubscribed(setup: Setup) -> None:
    _subscribed(setup)
    callback = setup.callback("pushed")
    old = setup.subscriber.config
    setup.subscriber.reconfigure(setup.write([s for s in setup.sources if s["name"] != "pushed"]))
    try:
        assert ("pushed", Action.UNSUBSCRIBE) in setup.subscriber.upkeep()
        setup.hub.wait_for(lambda: callback not in setup.hub.subscriptions)
        unsubscribe = [r for r in setup.hub.requests if r["hub.callback"] == callback][-1]
        assert unsubscribe["hub.mode"] == "unsubscribe" and "hub.secret" not in unsubscribe
        assert setup.sub("pushed") is None  # forgotten once the hub verified it
        # Its old callback is gone: a push there stores nothing.
        assert setup.hub.push(callback, atom_feed(["late"]), secret="x") == 404
        assert "urn:late" not in setup.entry_keys()
    finally:
        setup.subscriber.reconfigure(old)
        setup.poller.reconfigure(old)


def _subscribed(setup: Setup) -> None:
    """Where the other tests start from, so that each one runs alone too."""
    if not _verified(setup, "pushed"):
        setup.poller.poll_source(setup.source("pushed"), force=True)
        setup.subscriber.upkeep()
        setup.hub.wait_for(lambda: _verified(setup, "pushed"))


# -- the daemon's job and the pure decisions -----------------------------------------------------


def test_the_upkeep_runs_as_a_scheduler_job(tmp_path: Path) -> None:
    config = load_config(make_config_file(tmp_path))
    ran = threading.Event()
    with Poller(config) as poller:
        scheduler = PollScheduler(config, poller, lambda source, result: None)
        scheduler.start()
        try:
            scheduler.add_periodic(
                "websub_upkeep", ran.set, timedelta(minutes=1), first_in=timedelta(0)
            )
            assert ran.wait(10)
        finally:
            scheduler.shutdown()


@pytest.mark.parametrize(
    ("url", "public"),
    [
        ("https://feeds.example.org", True),
        ("http://93.184.216.34:8080", True),
        ("http://127.0.0.1:8080", False),
        ("http://localhost:8080", False),
        ("http://192.168.1.10", False),
        ("http://[::1]:8080", False),
        ("http://[fd00::1]", False),
        ("http://nas.local", False),
        ("http://intranet", False),
        (None, False),
    ],
)
def test_only_a_public_base_url_subscribes_by_default(url: str | None, public: bool) -> None:
    assert is_public_url(url) is public
    server = {"base_url": url} if url else {}
    config = AppConfig.model_validate(
        {"server": server, "sources": [{"name": "a", "url": "https://blog.example/feed"}]}
    )
    assert wants_websub(config, config.sources[0]) is public
    off = config.model_copy(
        update={"defaults": config.defaults.model_copy(update={"websub": False})}
    )
    assert wants_websub(off, config.sources[0]) is False


def test_signature_methods() -> None:
    import hashlib
    import hmac

    body = b"<feed/>"
    for method in ("sha1", "sha256", "sha384", "sha512"):
        digest = hmac.new(b"k", body, getattr(hashlib, method)).hexdigest()
        assert signature_ok(f"{method}={digest}", body, "k")
        assert not signature_ok(f"{method}={digest}", body + b" ", "k")
        assert not signature_ok(f"{method}={digest}", body, "other")
    assert not signature_ok(None, body, "k")
    assert not signature_ok("md5=" + hashlib.md5(body).hexdigest(), body, "k")


def _sub(**values: object) -> Subscription:
    base: dict[str, object] = {
        "id": 1,
        "source_name": "a",
        "callback_id": "c" * 20,
        "hub": "https://hub.example/",
        "topic": "https://blog.example/feed",
        "secret": Secret("s"),
        "mode": "subscribe",
    }
    return Subscription(**{**base, **values})  # type: ignore[arg-type]


def test_upkeep_decisions() -> None:
    day = timedelta(days=1)
    assert decide_upkeep(_sub(), True, NOW) is Action.SUBSCRIBE
    assert decide_upkeep(_sub(), False, NOW) is Action.FORGET  # never asked: nobody to tell
    asked = _sub(requested_at=NOW)
    assert decide_upkeep(asked, True, NOW + timedelta(minutes=5)) is Action.NOTHING
    assert decide_upkeep(asked, True, NOW + timedelta(hours=2)) is Action.SUBSCRIBE
    live = _sub(requested_at=NOW, expires_at=NOW + 10 * day, lease_seconds=864_000)
    assert decide_upkeep(live, True, NOW + 8 * day) is Action.NOTHING
    assert decide_upkeep(live, True, NOW + 9.5 * day) is Action.SUBSCRIBE
    assert decide_upkeep(live, False, NOW + day) is Action.UNSUBSCRIBE
    assert decide_upkeep(live, False, NOW + 11 * day) is Action.FORGET
    failed = _sub(requested_at=NOW, retry_at=NOW + timedelta(minutes=5), error_count=1)
    assert decide_upkeep(failed, True, NOW + timedelta(minutes=1)) is Action.NOTHING
    assert decide_upkeep(failed, True, NOW + timedelta(minutes=6)) is Action.SUBSCRIBE
    leaving = _sub(mode="unsubscribe", requested_at=NOW)
    assert decide_upkeep(leaving, False, NOW + timedelta(hours=1)) is Action.NOTHING
    assert decide_upkeep(leaving, False, NOW + 2 * day) is Action.FORGET


def test_link_header_wins_over_the_document() -> None:
    from aggregator.models import FeedData

    feed = FeedData(title=None, link=None, entries=(), hubs=("https://doc-hub/",))
    headers = {"Link": '<https://hdr-hub/>; rel="hub", </feed>; rel=self'}
    link = hub_link(feed, headers, "https://blog.example/rss")
    assert link is not None and (link.hub, link.topic) == (
        "https://hdr-hub/",
        "https://blog.example/feed",
    )
    link = hub_link(feed, {}, "https://blog.example/rss")
    assert link is not None and (link.hub, link.topic) == (
        "https://doc-hub/",
        "https://blog.example/rss",
    )
    assert hub_link(FeedData(title=None, link=None, entries=()), {}, "https://b/") is None


def test_an_unchanged_feed_is_read_again_for_a_hub_not_recorded(setup: Setup) -> None:
    """A subscription forgotten (or WebSub newly on) is found again without a new post."""
    _subscribed(setup)
    with setup.poller.write_lock, setup.poller.storage.transaction():
        sub = setup.sub("pushed")
        assert sub is not None
        setup.poller.storage.delete_subscription(sub.id)
    result = setup.poller.poll_source(setup.source("pushed"), force=True)
    assert result.ok and setup.sub("pushed") is not None
    _subscribed(setup)


def test_the_daemon_publishes_what_a_hub_pushes(tmp_path: Path) -> None:
    hub = WebSubHub()
    port = free_port()
    try:
        url = hub.serve_feed("/feed.atom", atom_feed(["first"], hub=hub.url + "/hub"))
        path = make_config_file(
            tmp_path,
            sources=[{"name": "blog", "url": url, "websub": True}],
            allow_private_networks=True,
            server={"port": port, "base_url": f"http://127.0.0.1:{port}"},
            defaults={"timeout": "5s", "comments": False},
        )
        daemon = Daemon(load_config(path))
        # The sandbox is the other tests' (it costs a worker process to start).
        daemon.poller.parser = InProcessParser()
        app = create_app(lambda: daemon.config, websub=daemon.subscriber)
        with serve(app, port):
            daemon.poller.poll_source(daemon.config.source("blog"), force=True)
            daemon.subscriber.upkeep()
            callback_id = daemon.poller.storage.subscription_of("blog")
            assert callback_id is not None
            callback = f"http://127.0.0.1:{port}/websub/{callback_id.callback_id}"
            hub.wait_for(lambda: callback in hub.subscriptions)
            pushed = atom_feed(["first", "pushed-entry"], hub=hub.url + "/hub")
            assert hub.push(callback, pushed) == 200
            published = (daemon.config.public_dir / "feeds" / "all.atom").read_text()
            assert "Entry pushed-entry" in published
    finally:
        hub.close()
        daemon.subscriber.close()
        daemon.poller.close()


def test_a_cheap_test_for_a_hub_before_parsing_an_unchanged_body() -> None:
    assert mentions_hub(b'<link rel="hub" href="https://h/"/>', {})
    assert mentions_hub(b"<atom:link rel='hub' href='https://h/'/>", {})
    assert mentions_hub(b'{"hubs": [{"type": "WebSub", "url": "https://h/"}]}', {})
    assert mentions_hub(b"<rss/>", {"Link": '<https://h/>; rel="hub"'})
    assert not mentions_hub(b"<a href='https://github.com/hub'>hub</a>", {})


def test_a_hub_that_cannot_be_reached_is_retried_later(tmp_path: Path) -> None:
    path = make_config_file(
        tmp_path,
        sources=[{"name": "blog", "url": "http://127.0.0.1:9/feed", "websub": True}],
        allow_private_networks=True,
    )
    config = load_config(path)
    with Poller(config, parser=InProcessParser()) as poller:
        subscriber = Subscriber(config, poller)
        try:
            with poller.storage.transaction():
                poller.storage.want_subscription(
                    "blog", f"http://127.0.0.1:{free_port()}/hub", "http://t/", NOW
                )
            assert subscriber.upkeep(NOW) == [("blog", Action.SUBSCRIBE)]
            sub = poller.storage.subscription_of("blog")
            assert sub is not None and sub.error_count == 1 and sub.last_error
            assert sub.retry_at == NOW + timedelta(minutes=5) and sub.expires_at is None
            assert subscriber.upkeep(NOW + timedelta(minutes=1)) == []
            assert subscriber.upkeep(NOW + timedelta(minutes=6)) == [("blog", Action.SUBSCRIBE)]
            sub = poller.storage.subscription_of("blog")
            assert sub is not None and sub.error_count == 2
            assert sub.retry_at == NOW + timedelta(minutes=16)  # 6 + 10: the delay doubles
        finally:
            subscriber.close()


@pytest.mark.parametrize("fast", [True, False])
def test_feeds_name_their_hub_and_self_url(fast: bool) -> None:
    from aggregator.parse.feed import parse_feed

    rss = (
        b'<?xml version="1.0"?><rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">'
        b"<channel><title>T</title><link>https://b.example/</link>"
        b'<atom:link rel="hub" href="https://hub.example/"/>'
        b'<atom:link rel="self" href="https://b.example/rss"/>'
        b"<item><guid>a</guid><title>A</title></item></channel></rss>"
    )
    atom = atom_feed(["a"], hub="/hub", self_url="https://b.example/atom")
    jsonfeed = (
        b'{"version": "https://jsonfeed.org/version/1.1", "title": "J", "feed_url": '
        b'"https://b.example/feed.json", "hubs": [{"type": "WebSub", "url": "https://hub.example/"}],'
        b' "items": [{"id": "1", "content_text": "a"}]}'
    )
    url = "https://b.example/feed"
    for document, self_url, hub in [
        (rss, "https://b.example/rss", "https://hub.example/"),
        (atom, "https://b.example/atom", "https://b.example/hub"),
        (jsonfeed, "https://b.example/feed.json", "https://hub.example/"),
    ]:
        feed = parse_feed(document, {}, url, fast=fast)
        assert (feed.hubs, feed.self_url) == ((hub,), self_url)
    assert parse_feed(atom_feed(["a"]), {}, url, fast=fast).hubs == ()


def test_a_feed_that_stops_naming_its_hub_is_unsubscribed(setup: Setup) -> None:
    setup.poller.poll_source(setup.source("moved"), force=True)
    setup.subscriber.upkeep()
    setup.hub.wait_for(lambda: _verified(setup, "moved"))
    callback = setup.callback("moved")
    served = setup.hub.feeds["/moved.atom"]
    setup.hub.serve_feed("/moved.atom", atom_feed(["m", "n"]))  # no Link header, no hub
    try:
        setup.poller.poll_source(setup.source("moved"), force=True)
        sub = setup.sub("moved")
        assert sub is not None and sub.mode == "unsubscribe" and not sub.live(NOW)
        assert ("moved", Action.UNSUBSCRIBE) in setup.subscriber.upkeep()
        setup.hub.wait_for(lambda: callback not in setup.hub.subscriptions)
        assert setup.sub("moved") is None
    finally:
        setup.hub.feeds["/moved.atom"] = served


# -- what the operator sees (issue 18) ------------------------------------------------------------


def _status_json(config: AppConfig) -> tuple[str, dict[str, dict[str, Any]]]:
    """``aggregator status --json`` run through the CLI: its text and its rows by name."""
    result = CliRunner().invoke(main, ["--config", str(config.config_path), "status", "--json"])
    assert result.exit_code == 0, result.output
    return result.output, {row["name"]: row for row in json.loads(result.output)}


def test_status_and_the_status_page_show_the_subscription_never_its_secret(setup: Setup) -> None:
    _subscribed(setup)
    live = setup.sub("pushed")
    assert live is not None and live.expires_at is not None
    text, rows = _status_json(setup.config)
    websub = rows["pushed"]["websub"]
    assert websub["state"] == "verified" and websub["hub"] == setup.hub.url + "/hub"
    assert websub["lease_ends_at"] == format_time(live.expires_at)
    assert websub["error_count"] == 0 and websub["last_error"] is None
    lease = live.expires_at.strftime("%Y-%m-%d %H:%M")
    note = f"WebSub: verified by {setup.hub.url}/hub, lease ends {lease}"
    assert note in rows["pushed"]["notes"]
    page = httpx.get(f"http://127.0.0.1:{setup.port}/status", timeout=10)
    assert page.status_code == 200 and note in page.text
    shown = [text, page.text]

    # The hub denies it: the operator sees it, and why.
    assert setup.hub.verify(setup.callback("pushed"), "denied", setup.topic)[0] == 200
    try:
        text, rows = _status_json(setup.config)
        websub = rows["pushed"]["websub"]
        assert websub["state"] == "denied" and websub["lease_ends_at"] is None
        note = f"WebSub: denied by {setup.hub.url}/hub: the hub denied it: no reason given"
        assert note in rows["pushed"]["notes"]
        page = httpx.get(f"http://127.0.0.1:{setup.port}/status", timeout=10)
        assert note in page.text
        shown += [text, page.text]
        for output in shown:  # neither the secret nor the callback that would take pushes
            assert live.secret.reveal() not in output and live.callback_id not in output
    finally:
        with setup.poller.write_lock, setup.poller.storage.transaction():
            setup.poller.storage.delete_subscription(live.id)
        _subscribed(setup)
