"""The fetcher against a hostile HTTP server on 127.0.0.1: every case ends as a result or one
clear FetchError, within the deadline and the size cap, and the SSRF rules hold."""

from __future__ import annotations

import gzip
import http
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile_server import (
    HostileServer,
    Request,
    endless,
    garbage,
    good_feed,
    gzip_body,
    gzip_bomb,
    hang,
    huge_header,
    redirect,
    reset_mid_body,
    static,
    status,
    trickle_body,
    trickle_headers,
)

from aggregator.errors import BlockedAddressError, FetchError
from aggregator.fetch.addresses import Provenance
from aggregator.fetch.fetcher import Fetcher

TIMEOUT = 1.5
LIMIT = 1024 * 1024


def conditional(request: Request) -> None:
    if request.headers.get("if-none-match") == '"v1"':
        request.send(b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 0\r\n\r\n')
    else:
        request.respond(good_feed(), headers={"ETag": '"v1"'})


def chain(n: int) -> object:
    return redirect(f"/chain/{n + 1}")


def raw_redirect(location: str, code: int = 302) -> object:
    """A redirect whose Location is sent as UTF-8 bytes, as a hostile server may."""

    def case(request: Request) -> None:
        request.send(
            f"HTTP/1.1 {code} Moved\r\nLocation: {location}\r\n".encode()
            + b"Content-Length: 0\r\n\r\n"
        )

    return case


# Spellings of 127.0.0.1 that IDNA (UTS #46) maps onto the ASCII address (issue 12, item 1).
UNICODE_LOOPBACK = [
    "127\u30020\u30020\u30021",  # ideographic full stop
    "127\uff0e0\uff0e0\uff0e1",  # fullwidth full stop
    "127\uff610\uff610\uff611",  # halfwidth ideographic full stop
    "\uff11\uff12\uff17.\uff10.\uff10.\uff11",  # fullwidth digits
    "\u00b9\u00b2\u2077.\u2070.\u2070.\u00b9",  # superscript digits
    "\u2460\u2461\u2466.\u24ea.\u24ea.\u2460",  # circled digits
]
# Numeric forms inet_aton reads as 127.0.0.1 (item 2).
NUMERIC_LOOPBACK = ["2130706433", "0177.0.0.1", "127.1", "0x7f.1", "0x7f000001", "127.0.0.1."]


def cases(other_port: int) -> dict[str, object]:
    bomb = gzip_bomb(64 * 1024 * 1024)
    table: dict[str, object] = {
        "/ok": static(good_feed()),
        "/gzip": gzip_body(good_feed()),
        "/deflate": static(zlib.compress(good_feed()), headers={"Content-Encoding": "deflate"}),
        "/conditional": conditional,
        "/trickle-body": trickle_body(0.05),
        "/trickle-headers": trickle_headers(0.05),
        "/hang": hang,
        "/endless": endless,
        "/gzip-bomb": static(bomb, headers={"Content-Encoding": "gzip"}),
        "/double-gzip": static(gzip.compress(bomb), headers={"Content-Encoding": "gzip, gzip"}),
        "/brotli": static(b"\x1b\x00\x00", headers={"Content-Encoding": "br"}),
        "/bad-gzip": static(b"plain text", headers={"Content-Encoding": "gzip"}),
        "/empty": static(b""),
        "/no-content": static(b"", status="204 No Content"),
        "/reset": reset_mid_body,
        "/garbage": garbage,
        "/huge-header": huge_header,
        "/same-origin": redirect("/ok", 301),
        "/loop-a": redirect("/loop-b"),
        "/loop-b": redirect("/loop-a"),
        "/to-file": redirect("file:///etc/passwd"),
        "/to-javascript": redirect("javascript:alert(1)"),
        "/to-other-port": redirect(f"http://127.0.0.1:{other_port}/ok"),
        "/to-metadata": redirect("http://169.254.169.254/latest/meta-data/"),
        "/to-invalid": redirect("http://[::1"),
        "/to-unicode-loopback": raw_redirect(f"http://127\u30020\u30020\u30021:{other_port}/ok"),
        "/to-unicode-metadata": raw_redirect("http://169\uff0e254\uff0e169\uff0e254/latest/", 301),
        "/to-numeric-loopback": redirect(f"http://0x7f.1:{other_port}/ok", 308),
        "/no-location": static(b"moved", status="302 Found"),
        "/retry": static(b"busy", status="503 Service Unavailable", headers={"Retry-After": "120"}),
    }
    table.update({f"/chain/{n}": chain(n) for n in range(10)})
    table.update({f"/status/{code}": status(code) for code in range(400, 600)})
    # A declared length over the cap is refused before reading.
    table["/declared-huge"] = static(
        b"x", headers={"Content-Length": str(50 * 1024 * 1024)}, length=False
    )
    return table


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[HostileServer, HostileServer]]:
    with (
        HostileServer({"/ok": static(good_feed())}) as other,
        HostileServer(cases(other.port)) as server,  # type: ignore[arg-type]
    ):
        yield server, other


@pytest.fixture(scope="module")
def server(servers: tuple[HostileServer, HostileServer]) -> HostileServer:
    return servers[0]


@pytest.fixture(scope="module")
def fetcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fetcher]:
    root = tmp_path_factory.mktemp("files")
    with Fetcher(timeout=TIMEOUT, max_bytes=LIMIT, file_roots=[root]) as fetcher:
        yield fetcher


def fetch_error(fetcher: Fetcher, url: str, **kwargs: object) -> tuple[FetchError, float]:
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(url, **kwargs)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message and len(message) < 400, "one clear line"
    return caught.value, time.monotonic() - started


@pytest.mark.parametrize("path", ["/ok", "/gzip", "/deflate", "/same-origin"])
def test_good_answers_are_read(server: HostileServer, fetcher: Fetcher, path: str) -> None:
    result = fetcher.fetch(server.url(path))
    assert result.status == 200
    assert result.content == good_feed()


def test_a_permanent_redirect_on_the_same_origin_is_reported(
    server: HostileServer, fetcher: Fetcher
) -> None:
    result = fetcher.fetch(server.url("/same-origin"))
    assert result.final_url == server.url("/ok")
    assert result.permanent_redirect == server.url("/ok")


def test_conditional_get_sends_the_validators(server: HostileServer, fetcher: Fetcher) -> None:
    first = fetcher.fetch(server.url("/conditional"))
    second = fetcher.fetch(server.url("/conditional"), etag=first.etag)
    assert second.not_modified and second.content is None


@pytest.mark.parametrize("path", ["/trickle-body", "/trickle-headers", "/hang"])
def test_slow_servers_end_at_the_total_deadline(
    server: HostileServer, fetcher: Fetcher, path: str
) -> None:
    error, elapsed = fetch_error(fetcher, server.url(path))
    assert "took longer than the 1.5s limit" in str(error)
    assert elapsed < TIMEOUT + 0.5


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/endless", "body is larger than the 1 MB limit"),
        ("/declared-huge", "body of 50 MB is larger than the 1 MB limit"),
        ("/gzip-bomb", "decoded body is larger than the 1 MB limit"),
        ("/double-gzip", "decoded body is larger than the 1 MB limit"),
        ("/brotli", "unsupported Content-Encoding 'br'"),
        ("/bad-gzip", "invalid gzip data"),
        ("/empty", "empty response (HTTP 200, no body)"),
        ("/no-content", "empty response (HTTP 204, no body)"),
        ("/reset", "the server broke the HTTP protocol"),
        ("/garbage", "the server broke the HTTP protocol"),
        ("/huge-header", "the server broke the HTTP protocol"),
        ("/loop-a", "redirect loop at"),
        ("/chain/0", "more than 5 redirects"),
        ("/to-file", "refused to follow a redirect to a file: URL"),
        ("/to-javascript", "refused to follow a redirect to a javascript: URL"),
        ("/to-invalid", "redirect to an invalid URL 'http://[::1': Invalid IPv6 URL"),
        ("/no-location", "HTTP 302 Found"),
    ],
)
def test_each_misbehaviour_is_one_clear_error(
    server: HostileServer, fetcher: Fetcher, path: str, expected: str
) -> None:
    error, elapsed = fetch_error(fetcher, server.url(path))
    assert expected in str(error)
    assert elapsed < TIMEOUT + 0.5


@pytest.mark.parametrize("code", range(400, 600))
def test_every_error_status_is_one_clear_error(
    server: HostileServer, fetcher: Fetcher, code: int
) -> None:
    error, _ = fetch_error(fetcher, server.url(f"/status/{code}"))
    known = code in {status.value for status in http.HTTPStatus}
    reason = http.HTTPStatus(code).phrase if known else ""
    assert str(error).lower() == f"HTTP {code} {reason}".rstrip().lower()
    assert error.status == code


def test_retry_after_is_reported(server: HostileServer, fetcher: Fetcher) -> None:
    error, _ = fetch_error(fetcher, server.url("/retry"))
    assert error.status == 503 and error.headers["retry-after"] == "120"


def test_refused_connection(fetcher: Fetcher) -> None:
    with socket.socket() as probe:  # a port that nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error, _ = fetch_error(fetcher, f"http://127.0.0.1:{port}/feed")
    assert str(error) == "cannot connect: Connection refused"


def test_tls_failure_is_named() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def answer_in_plain_http() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            time.sleep(0.2)

    thread = threading.Thread(target=answer_in_plain_http, daemon=True)
    thread.start()
    try:
        with Fetcher(timeout=TIMEOUT) as fetcher:
            error, _ = fetch_error(fetcher, f"https://127.0.0.1:{listener.getsockname()[1]}/")
        assert str(error).startswith("TLS error:")
    finally:
        thread.join(2)
        listener.close()


def test_dns_failure_is_named() -> None:
    def resolver(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with Fetcher(timeout=TIMEOUT, resolver=resolver) as fetcher:
        error, _ = fetch_error(fetcher, "http://no-such-host.invalid/feed")
    assert str(error) == "cannot resolve host no-such-host.invalid: Name or service not known"


def test_unsupported_scheme(fetcher: Fetcher) -> None:
    error, _ = fetch_error(fetcher, "ftp://example.org/feed")
    assert "unsupported URL scheme" in str(error)


# -- SSRF -----------------------------------------------------------------------------------


def test_a_redirect_to_another_local_origin_is_refused(
    servers: tuple[HostileServer, HostileServer], fetcher: Fetcher
) -> None:
    server, other = servers
    before = len(other.seen)
    error, _ = fetch_error(fetcher, server.url("/to-other-port"))
    assert isinstance(error, BlockedAddressError)
    assert "127.0.0.1 is a loopback address" in str(error)
    assert len(other.seen) == before, "not a byte was sent there"


def test_a_redirect_to_cloud_metadata_is_refused(server: HostileServer, fetcher: Fetcher) -> None:
    error, _ = fetch_error(fetcher, server.url("/to-metadata"))
    assert isinstance(error, BlockedAddressError)
    assert "169.254.169.254 is a cloud metadata address" in str(error)


@pytest.mark.parametrize("host", UNICODE_LOOPBACK)
def test_unicode_spellings_of_an_ip_address_are_refused(
    servers: tuple[HostileServer, HostileServer], fetcher: Fetcher, host: str
) -> None:
    """Issue 12, item 1: aiohttp's IDNA turns the host into 127.0.0.1 without asking a
    resolver; the rule must judge that, not the spelling."""
    server, other = servers
    before = len(other.seen)
    provenance = Provenance.found_in(server.url("/feed.xml"))
    error, _ = fetch_error(fetcher, f"http://{host}:{other.port}/ok", provenance=provenance)
    assert isinstance(error, BlockedAddressError)
    assert "127.0.0.1" in str(error)
    assert len(other.seen) == before, "not a byte was sent there"


@pytest.mark.parametrize("path", ["/to-unicode-loopback", "/to-numeric-loopback"])
def test_a_redirect_to_a_disguised_ip_address_is_refused(
    servers: tuple[HostileServer, HostileServer], fetcher: Fetcher, path: str
) -> None:
    server, other = servers
    before = len(other.seen)
    error, _ = fetch_error(fetcher, server.url(path))
    assert isinstance(error, BlockedAddressError)
    assert "127.0.0.1" in str(error)
    assert len(other.seen) == before, "not a byte was sent there"


def test_a_redirect_to_disguised_cloud_metadata_is_refused(
    server: HostileServer, fetcher: Fetcher
) -> None:
    with Fetcher(timeout=TIMEOUT, allow_private_networks=False) as fresh:
        error, _ = fetch_error(fresh, server.url("/to-unicode-metadata"))
    assert isinstance(error, BlockedAddressError)
    assert "169.254.169.254" in str(error)


@pytest.mark.parametrize("host", NUMERIC_LOOPBACK)
def test_numeric_spellings_are_refused_even_when_configured(
    server: HostileServer, host: str
) -> None:
    """Issue 12, item 2: refused by our own code (not only by a recent aiohttp), whatever the
    URL's provenance and even with allow_private_networks: no feed is spelled that way."""
    before = len(server.seen)
    for private in (False, True):
        with Fetcher(timeout=TIMEOUT, allow_private_networks=private) as fresh:
            error, _ = fetch_error(fresh, f"http://{host}:{server.port}/ok")
        assert isinstance(error, BlockedAddressError)
        assert "127.0.0.1 in a non-standard form" in str(error)
    assert len(server.seen) == before


def test_the_connector_checks_the_address_it_connects_to(server: HostileServer) -> None:
    """The last line (issue 12): even with a resolver that checks nothing, a socket of a
    found-URL session never connects to a loopback address."""
    import asyncio

    import aiohttp

    from aggregator.fetch.addresses import FOUND
    from aggregator.fetch.transport import GuardedConnector

    async def attempt() -> None:
        connector = GuardedConnector(FOUND, resolver=aiohttp.ThreadedResolver())
        async with aiohttp.ClientSession(connector=connector) as session:
            await session.get(f"http://localhost:{server.port}/ok")

    before = len(server.seen)
    with pytest.raises(BlockedAddressError, match="loopback address"):
        asyncio.run(attempt())
    assert len(server.seen) == before, "no connection was made"


def test_found_urls_on_the_source_origin_are_fetched(
    server: HostileServer, fetcher: Fetcher
) -> None:
    provenance = Provenance.found_in(server.url("/feed.xml"))
    assert fetcher.fetch(server.url("/ok"), provenance=provenance).status == 200


def test_found_urls_elsewhere_may_not_reach_loopback(
    servers: tuple[HostileServer, HostileServer], fetcher: Fetcher
) -> None:
    server, other = servers
    provenance = Provenance.found_in(server.url("/feed.xml"))
    error, _ = fetch_error(fetcher, other.url("/ok"), provenance=provenance)
    assert isinstance(error, BlockedAddressError)
    provenance = Provenance.found_in("https://blog.example.org/feed")
    error, _ = fetch_error(fetcher, server.url("/ok"), provenance=provenance)
    assert isinstance(error, BlockedAddressError)


def test_allow_private_networks_lifts_the_rule(
    servers: tuple[HostileServer, HostileServer],
) -> None:
    server, other = servers
    with Fetcher(timeout=TIMEOUT, allow_private_networks=True) as fetcher:
        result = fetcher.fetch(server.url("/to-other-port"))
    assert result.final_url == other.url("/ok")


def test_the_checked_address_is_the_one_connected_to(server: HostileServer) -> None:
    """DNS rebinding: the name is resolved once, checked, and the socket connects to that
    address; a name that resolves to loopback is refused for a found URL."""
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"]

    with Fetcher(timeout=TIMEOUT, resolver=resolver) as fetcher:
        url = f"http://feeds.rebind.test:{server.port}/ok"
        assert fetcher.fetch(url).status == 200  # configured: loopback allowed
        assert calls == ["feeds.rebind.test"]
        provenance = Provenance.found_in("https://blog.example.org/feed")
        error, _ = fetch_error(fetcher, url.replace("feeds.", "comments."), provenance=provenance)
    assert str(error).startswith(
        "refused to connect: comments.rebind.test resolves to 127.0.0.1 is a loopback address"
    )
    assert calls == ["feeds.rebind.test", "comments.rebind.test"]


# -- files ----------------------------------------------------------------------------------


def test_file_urls_follow_the_folder_rules(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds"
    (feeds / "comments").mkdir(parents=True)
    (feeds / "feed.rss").write_bytes(good_feed())
    (feeds / "comments" / "one.rss").write_bytes(good_feed(1))
    (tmp_path / "secret.txt").write_text("secret")
    (feeds / "link.rss").symlink_to(tmp_path / "secret.txt")
    source = (feeds / "feed.rss").as_uri()
    with Fetcher(timeout=TIMEOUT, file_roots=[feeds]) as fetcher:
        assert fetcher.fetch(source).content == good_feed()
        found = Provenance.found_in(source)
        comment = (feeds / "comments" / "one.rss").as_uri()
        assert fetcher.fetch(comment, provenance=found).content == good_feed(1)
        for outside in [
            (tmp_path / "secret.txt").as_uri(),
            source.replace("feed.rss", "../secret.txt"),
            (feeds / "link.rss").as_uri(),
        ]:
            with pytest.raises(BlockedAddressError):
                fetcher.fetch(outside, provenance=found)
            with pytest.raises(BlockedAddressError):
                fetcher.fetch(outside)
        # A file URL found in an http source's feed is never read.
        with pytest.raises(BlockedAddressError, match="only inside its own file source"):
            fetcher.fetch(comment, provenance=Provenance.found_in("http://127.0.0.1:1/feed"))
