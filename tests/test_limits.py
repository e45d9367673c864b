"""Request caps: in total, per host, and per registrable domain (FreshRSS #8925)."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from scripted_server import Answer, ScriptedServer

from aggregator.errors import StoppedError
from aggregator.fetch.fetcher import Fetcher
from aggregator.fetch.limits import FetchLimits, registrable_domain


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("a.tumblr.com", "tumblr.com"),
        ("tumblr.com", "tumblr.com"),
        ("www.bbc.co.uk", "bbc.co.uk"),
        ("someone.blogspot.com", "blogspot.com"),  # a private suffix: one operator's servers
        ("x.github.io", "github.io"),
        ("WWW.Example.ORG.", "example.org"),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("localhost", "localhost"),
    ],
)
def test_registrable_domain_works_offline_from_the_bundled_list(host: str, domain: str) -> None:
    assert registrable_domain(host) == domain


def _hammer(limits: FetchLimits, urls: list[str]) -> Counter[str]:
    """Run one thread per URL through the limiter; return the peak concurrency per key."""
    active: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    lock = threading.Lock()

    def work(url: str) -> None:
        host = url.split("/")[2]
        keys = (f"host:{host}", registrable_domain(host), "*")
        with limits.slot(url):
            with lock:
                for key in keys:
                    active[key] += 1
                    peak[key] = max(peak[key], active[key])
            time.sleep(0.03)
            with lock:
                for key in keys:
                    active[key] -= 1

    threads = [threading.Thread(target=work, args=(url,)) for url in urls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return peak


def test_feeds_on_one_domain_share_its_limit() -> None:
    urls = [f"https://blog{i}.tumblr.com/rss" for i in range(6)]
    peak = _hammer(FetchLimits(total=8, per_host=1, per_domain=2), urls)
    assert peak["tumblr.com"] == 2


def test_one_host_gets_one_request_at_a_time_and_the_total_is_capped() -> None:
    urls = [f"https://example{i % 3}.org/feed/{i}" for i in range(9)]
    urls += ["https://example0.org/other"] * 3
    peak = _hammer(FetchLimits(total=2, per_host=1, per_domain=1), urls)
    assert peak["host:example0.org"] == 1
    assert peak["*"] == 2


def test_a_stopped_limiter_refuses_waiting_and_new_requests() -> None:
    limits = FetchLimits(total=1, per_host=1, per_domain=1)
    errors: list[Exception] = []
    with limits.slot("https://example.org/a"):

        def wait() -> None:
            try:
                with limits.slot("https://example.org/b"):
                    pass
            except StoppedError as error:
                errors.append(error)

        waiter = threading.Thread(target=wait)
        waiter.start()
        limits.stop()
        waiter.join(2)
    assert len(errors) == 1
    with pytest.raises(StoppedError), limits.slot("https://other.org/"):
        pass


def _to_loopback(host: str, port: int) -> list[str]:
    """A resolver that sends every name to this machine (the test server)."""
    return ["127.0.0.1"]


def test_the_fetcher_sends_one_request_at_a_time_to_a_host() -> None:
    with ScriptedServer() as server:
        server.delay = 0.1
        server.script("/feed", Answer(200, {}, b"<rss/>"))
        limits = FetchLimits(total=8, per_host=1, per_domain=2)
        # A named host (resolved to the test server): loopback itself has only the total cap.
        url = server.url("/feed").replace("127.0.0.1", "feeds.example.net")
        with Fetcher(limits=limits, resolver=_to_loopback) as fetcher:
            threads = [threading.Thread(target=fetcher.fetch, args=(url,)) for _ in range(3)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert len(server.requests()) == 3
        assert server.max_active == 1


def test_a_server_on_this_machine_has_only_the_total_cap() -> None:
    limits = FetchLimits(total=8, per_host=1, per_domain=1)
    # No wait: a second and a third slot on loopback are free at once.
    with (
        limits.slot("http://127.0.0.1:8080/a"),
        limits.slot("http://127.0.0.1:8080/b"),
        limits.slot("http://localhost/c"),
    ):
        pass
