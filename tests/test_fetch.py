"""Tests for aggregator.fetch.fetcher against a real HTTP server on 127.0.0.1 (no mocked client)."""

from __future__ import annotations

import gzip
import time
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from pathlib import Path

import pytest

from aggregator.errors import FetchError
from aggregator.fetch.fetcher import Fetcher
from aggregator.schedule.decide import PollOutcome
from aggregator.schedule.hints import parse_retry_after

FEEDS = Path(__file__).parent / "data" / "feeds"
RSS = (FEEDS / "formats" / "rss2.rss").read_bytes()


@pytest.fixture
def fetcher():
    with Fetcher(timeout=5) as client:
        yield client


# -- 200 and 304 ---------------------------------------------------------------------------------


def test_200_returns_body_and_validators(feed_server, fetcher):
    url = feed_server.serve_feed("/feed.rss", "formats/rss2.rss")
    route = feed_server.routes["/feed.rss"]

    result = fetcher.fetch(url)

    assert result.status == 200
    assert not result.not_modified
    assert result.content == RSS
    assert result.etag == route.etag
    assert result.last_modified == route.last_modified
    assert result.final_url == url
    assert result.permanent_redirect is None
    assert result.headers["content-type"] == "application/rss+xml"
    [request] = feed_server.requests_for("/feed.rss")
    assert "if-none-match" not in request.headers
    assert "if-modified-since" not in request.headers
    assert request.headers["user-agent"].startswith("aggregator/")
    assert "application/rss+xml" in request.headers["accept"]


def test_second_request_is_conditional_and_gets_304(feed_server, fetcher):
    url = feed_server.serve_feed("/feed.rss", "formats/rss2.rss")
    first = fetcher.fetch(url)

    second = fetcher.fetch(url, etag=first.etag, last_modified=first.last_modified)

    assert second.status == 304
    assert second.not_modified
    assert second.content is None
    _, conditional = feed_server.requests_for("/feed.rss")
    assert conditional.headers["if-none-match"] == first.etag
    assert conditional.headers["if-modified-since"] == first.last_modified


def test_validators_are_sent_verbatim(feed_server, fetcher):
    # A weak ETag and an odd but legal date must come back byte for byte (RFC 9110 13.1).
    etag = 'W/"5e1-abc;gzip"'
    last_modified = "Sun, 06 Nov 1994 08:49:37 GMT"
    url = feed_server.route(
        "/feed.rss", body=RSS, etag=etag, last_modified=last_modified, content_type="text/xml"
    )

    result = fetcher.fetch(url, etag=etag, last_modified=last_modified)

    assert result.status == 304
    [request] = feed_server.requests_for("/feed.rss")
    assert request.headers["if-none-match"] == etag
    assert request.headers["if-modified-since"] == last_modified


def test_last_modified_alone_gives_304(feed_server, fetcher):
    url = feed_server.serve_feed("/feed.rss", "formats/rss2.rss")
    last_modified = feed_server.routes["/feed.rss"].last_modified

    result = fetcher.fetch(url, last_modified=last_modified)

    assert result.status == 304
    [request] = feed_server.requests_for("/feed.rss")
    assert "if-none-match" not in request.headers


def test_changed_feed_gives_200_despite_old_validators(feed_server, fetcher):
    url = feed_server.serve_feed("/feed.rss", "formats/rss2.rss")
    first = fetcher.fetch(url)
    feed_server.serve_feed("/feed.rss", "formats/atom10.atom")

    second = fetcher.fetch(url, etag=first.etag, last_modified=first.last_modified)

    assert second.status == 200
    assert second.content == (FEEDS / "formats" / "atom10.atom").read_bytes()
    assert second.etag != first.etag


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 410, 500, 503])
def test_error_status_raises_with_status(feed_server, fetcher, status):
    url = feed_server.route("/feed.rss", status=status, body=b"no", content_type="text/plain")

    with pytest.raises(FetchError) as caught:
        fetcher.fetch(url)

    assert caught.value.status == status
    assert str(status) in str(caught.value)
    assert "retry-after" not in caught.value.headers


def test_429_carries_retry_after_to_the_scheduler(feed_server, fetcher):
    url = feed_server.route("/feed.rss", status=429, headers={"Retry-After": "120"})

    with pytest.raises(FetchError) as caught:
        fetcher.fetch(url)

    assert caught.value.status == 429
    assert caught.value.headers["retry-after"] == "120"
    # The scheduler reads it (one parser: hints.parse_retry_after).
    outcome = PollOutcome.from_error(caught.value)
    now = datetime.now(UTC)
    assert parse_retry_after(outcome.headers["retry-after"], now) == now + timedelta(seconds=120)


def test_retry_after_may_be_an_http_date(feed_server, fetcher):
    # RFC 9110 10.2.3: Retry-After = HTTP-date / delay-seconds.
    when = formatdate(time.time() + 600, usegmt=True)
    url = feed_server.route("/feed.rss", status=503, headers={"Retry-After": when})

    with pytest.raises(FetchError) as caught:
        fetcher.fetch(url)

    assert caught.value.status == 503
    now = datetime.now(UTC)
    retry_at = parse_retry_after(caught.value.headers["retry-after"], now)
    assert retry_at is not None
    assert 590 <= (retry_at - now).total_seconds() <= 601


def test_unreadable_retry_after_is_ignored(feed_server, fetcher):
    url = feed_server.route("/feed.rss", status=429, headers={"Retry-After": "soon"})

    with pytest.raises(FetchError) as caught:
        fetcher.fetch(url)

    assert parse_retry_after(caught.value.headers["retry-after"], datetime.now(UTC)) is None


# -- redirects -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 308])
def test_permanent_redirect_is_followed_and_reported(feed_server, fetcher, status):
    target = feed_server.serve_feed("/new.rss", "formats/rss2.rss")
    url = feed_server.redirect("/old.rss", "/new.rss", status=status)

    result = fetcher.fetch(url)

    assert result.status == 200
    assert result.content == RSS
    assert result.url == url
    assert result.final_url == target
    assert result.permanent_redirect == target


@pytest.mark.parametrize("status", [302, 303, 307])
def test_temporary_redirect_is_followed_not_reported(feed_server, fetcher, status):
    target = feed_server.serve_feed("/new.rss", "formats/rss2.rss")
    url = feed_server.redirect("/old.rss", target, status=status)

    result = fetcher.fetch(url)

    assert result.status == 200
    assert result.final_url == target
    assert result.permanent_redirect is None


def test_permanent_then_temporary_reports_only_the_permanent_hop(feed_server, fetcher):
    feed_server.serve_feed("/final.rss", "formats/rss2.rss")
    feed_server.redirect("/moved.rss", "/final.rss", status=302)
    url = feed_server.redirect("/old.rss", "/moved.rss", status=301)

    result = fetcher.fetch(url)

    assert result.content == RSS
    assert result.permanent_redirect == feed_server.url("/moved.rss")


def test_conditional_headers_follow_the_redirect(feed_server, fetcher):
    feed_server.serve_feed("/new.rss", "formats/rss2.rss")
    etag = feed_server.routes["/new.rss"].etag
    url = feed_server.redirect("/old.rss", "/new.rss")

    result = fetcher.fetch(url, etag=etag)

    assert result.status == 304
    [request] = feed_server.requests_for("/new.rss")
    assert request.headers["if-none-match"] == etag


def test_redirect_loop_is_an_error(feed_server, fetcher):
    url = feed_server.redirect("/a.rss", "/b.rss", status=302)
    feed_server.redirect("/b.rss", "/a.rss", status=302)

    with pytest.raises(FetchError, match="redirect loop"):
        fetcher.fetch(url)

    assert len(feed_server.requests) == 2


def test_too_many_redirects_is_an_error(feed_server, fetcher):
    for hop in range(7):
        feed_server.redirect(f"/{hop}", f"/{hop + 1}", status=302)
    feed_server.serve_feed("/7", "formats/rss2.rss")

    with pytest.raises(FetchError, match="redirects"):
        fetcher.fetch(feed_server.url("/0"))

    assert len(feed_server.requests) == 6  # the first request and five redirects


def test_five_redirects_are_allowed(feed_server, fetcher):
    for hop in range(5):
        feed_server.redirect(f"/{hop}", f"/{hop + 1}", status=302)
    feed_server.serve_feed("/5", "formats/rss2.rss")

    result = fetcher.fetch(feed_server.url("/0"))

    assert result.content == RSS


# -- size, encoding, time ------------------------------------------------------------------------


def test_oversized_body_is_refused_by_content_length(feed_server):
    url = feed_server.route("/big.rss", body=b"x" * 5000)

    with Fetcher(timeout=5, max_bytes=1000) as small, pytest.raises(FetchError) as caught:
        small.fetch(url)

    assert "limit" in str(caught.value)
    assert caught.value.status == 200


def test_oversized_body_without_length_is_refused(feed_server):
    url = feed_server.route("/big.rss", body=b"x" * 50_000, send_length=False)

    with Fetcher(timeout=5, max_bytes=1000) as small, pytest.raises(FetchError, match="limit"):
        small.fetch(url)


def test_body_at_the_limit_is_accepted(feed_server):
    url = feed_server.route("/exact.rss", body=b"x" * 1000, send_length=False)

    with Fetcher(timeout=5, max_bytes=1000) as small:
        assert small.fetch(url).content == b"x" * 1000


def test_gzip_body_is_decoded(feed_server, fetcher):
    url = feed_server.serve_feed("/feed.rss", "formats/rss2.rss", gzip=True)

    result = fetcher.fetch(url)

    assert result.content == RSS
    assert result.headers["content-encoding"] == "gzip"
    [request] = feed_server.requests_for("/feed.rss")
    assert "gzip" in request.headers["accept-encoding"]


def test_gzip_bomb_is_refused_by_decoded_size(feed_server):
    # 2 MB of zeros compress to about 2 KB: the limit must apply to what is decoded.
    bomb = b"\0" * 2_000_000
    assert len(gzip.compress(bomb)) < 10_000
    url = feed_server.route("/bomb.rss", body=bomb, gzip=True)

    with Fetcher(timeout=5, max_bytes=100_000) as small, pytest.raises(FetchError, match="limit"):
        small.fetch(url)


def test_slow_server_times_out(feed_server):
    url = feed_server.route("/slow.rss", body=RSS, delay=3)
    started = time.monotonic()

    with (
        Fetcher(timeout=0.3) as quick,
        pytest.raises(FetchError, match="timed out|took longer than"),
    ):
        quick.fetch(url)

    assert time.monotonic() - started < 2


def test_connection_refused(free_port):
    with Fetcher(timeout=2) as client, pytest.raises(FetchError) as caught:
        client.fetch(f"http://127.0.0.1:{free_port}/feed.rss")

    assert "cannot connect" in str(caught.value)
    assert "refused" in str(caught.value).lower()
    assert caught.value.status is None


def test_invalid_url_is_an_error(fetcher):
    with pytest.raises(FetchError):
        fetcher.fetch("http://[::1/feed")


# -- file URLs -----------------------------------------------------------------------------------


@pytest.fixture
def feed_file(tmp_path):
    root = tmp_path / "allowed"
    root.mkdir()
    path = root / "local.rss"
    path.write_bytes(RSS)
    return path


def test_file_url_inside_allowed_root(feed_file):
    with Fetcher(file_roots=[feed_file.parent]) as client:
        first = client.fetch(feed_file.as_uri())
        second = client.fetch(feed_file.as_uri(), etag=first.etag)

    assert first.status == 200
    assert first.content == RSS
    assert first.headers["content-type"] == "application/rss+xml"
    assert first.etag
    assert second.status == 304
    assert second.content is None


def test_changed_file_is_read_again(feed_file):
    with Fetcher(file_roots=[feed_file.parent]) as client:
        first = client.fetch(feed_file.as_uri())
        feed_file.write_bytes(RSS + b"\n<!-- edited -->\n")
        second = client.fetch(feed_file.as_uri(), etag=first.etag)

    assert second.status == 200
    assert second.content.endswith(b"<!-- edited -->\n")


def test_file_url_outside_allowed_roots_is_refused(feed_file, tmp_path):
    secret = tmp_path / "secret.rss"
    secret.write_bytes(RSS)

    with Fetcher(file_roots=[feed_file.parent]) as client, pytest.raises(FetchError) as caught:
        client.fetch(secret.as_uri())

    assert "outside" in str(caught.value)


def test_dot_dot_cannot_leave_the_allowed_root(feed_file, tmp_path):
    (tmp_path / "secret.rss").write_bytes(RSS)
    sneaky = f"file://{feed_file.parent}/../secret.rss"

    with (
        Fetcher(file_roots=[feed_file.parent]) as client,
        pytest.raises(FetchError, match="outside"),
    ):
        client.fetch(sneaky)


def test_symlink_cannot_leave_the_allowed_root(feed_file, tmp_path):
    secret = tmp_path / "secret.rss"
    secret.write_bytes(RSS)
    link = feed_file.parent / "link.rss"
    link.symlink_to(secret)

    with (
        Fetcher(file_roots=[feed_file.parent]) as client,
        pytest.raises(FetchError, match="outside"),
    ):
        client.fetch(link.as_uri())


def test_missing_file_is_a_404(feed_file):
    missing = feed_file.parent / "gone.rss"

    with Fetcher(file_roots=[feed_file.parent]) as client, pytest.raises(FetchError) as caught:
        client.fetch(missing.as_uri())

    assert caught.value.status == 404


def test_oversized_file_is_refused(feed_file):
    with (
        Fetcher(file_roots=[feed_file.parent], max_bytes=100) as client,
        pytest.raises(FetchError, match="limit"),
    ):
        client.fetch(feed_file.as_uri())


# -- other methods (issue 16: Commento's API reads with POST) ------------------------------------


@pytest.mark.parametrize(("status", "method"), [(303, "GET"), (302, "GET"), (307, "POST")])
def test_a_post_is_sent_with_its_body_and_redirects_as_http_says(httpserver, status, method):
    from werkzeug import Request, Response

    seen: list[tuple[str, str, bytes]] = []

    def handler(request: Request) -> Response:
        seen.append((request.method, request.path, request.get_data()))
        if request.path == "/list":
            return Response("", status, {"Location": "/answer"})
        return Response('{"ok": true}', 200, {"Content-Type": "application/json"})

    httpserver.expect_request("/list").respond_with_handler(handler)
    httpserver.expect_request("/answer").respond_with_handler(handler)
    with Fetcher(timeout=5) as fetcher:
        result = fetcher.fetch(
            httpserver.url_for("/list"),
            method="POST",
            body=b'{"path": "/x"}',
            headers={"Content-Type": "application/json"},
        )
    assert result.content == b'{"ok": true}'
    assert seen[0] == ("POST", "/list", b'{"path": "/x"}')
    # 307/308 repeat the request; 301-303 make it a GET without a body (RFC 9110, 15.4).
    assert seen[1] == (method, "/answer", b'{"path": "/x"}' if method == "POST" else b"")
