"""A WebSub hub simulation on 127.0.0.1 for the subscriber's tests (issue 17, item 8).

It serves feeds that announce it (in the document, or in HTTP ``Link`` headers), accepts
subscription requests at ``/hub`` (``/old-hub`` answers 307 to ``/hub``), verifies each one
against the subscriber's callback from a thread of its own, as a real hub does after its 202,
and pushes signed content to verified callbacks.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlencode, urlsplit

from quiet_server import QuietServer


@dataclass
class HubSubscription:
    """What the hub knows of one callback."""

    callback: str
    topic: str
    secret: str
    mode: str
    requested_lease: int
    verified: bool = False
    answers: list[tuple[int, str, str]] = field(default_factory=list)  # (status, sent, got)


@dataclass
class _Feed:
    body: bytes
    link_header: str | None = None


class WebSubHub:
    """The hub and the feeds it serves. ``lease`` is the lease it grants (seconds)."""

    def __init__(self) -> None:
        self.lease = 864_000
        self.requests: list[dict[str, str]] = []
        self.subscriptions: dict[str, HubSubscription] = {}
        self.feeds: dict[str, _Feed] = {}
        self._changed = threading.Condition()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                feed = hub.feeds.get(self.path)
                if feed is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/atom+xml")
                if feed.link_header:
                    self.send_header("Link", feed.link_header)
                self.send_header("Content-Length", str(len(feed.body)))
                self.end_headers()
                self.wfile.write(feed.body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                if self.path == "/old-hub":
                    self.send_response(307)
                    self.send_header("Location", "/hub")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path != "/hub":
                    self.send_error(404)
                    return
                form = {key: values[0] for key, values in parse_qs(body).items()}
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                hub._request(form)

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- feeds -------------------------------------------------------------------------------------
    def serve_feed(self, path: str, body: bytes, link_header: str | None = None) -> str:
        """Serve ``body`` at ``path``; its URL."""
        self.feeds[path] = _Feed(body, link_header)
        return self.url + path

    # -- subscriptions -----------------------------------------------------------------------------
    def _request(self, form: dict[str, str]) -> None:
        with self._changed:
            self.requests.append(form)
            self._changed.notify_all()
        callback = form.get("hub.callback", "")
        sub = HubSubscription(
            callback=callback,
            topic=form.get("hub.topic", ""),
            secret=form.get("hub.secret", ""),
            mode=form.get("hub.mode", ""),
            requested_lease=int(form.get("hub.lease_seconds") or 0),
        )
        # Verified after the 202, as hubs do (WebSub 5.3: asynchronous verification).
        threading.Thread(target=self._verify, args=(sub,), daemon=True).start()

    def _verify(self, sub: HubSubscription) -> None:
        status, sent, got = self.verify(sub.callback, sub.mode, sub.topic)
        with self._changed:
            known = self.subscriptions.get(sub.callback)
            if known is not None and sub.mode == "subscribe":
                sub.answers = known.answers
            sub.answers.append((status, sent, got))
            sub.verified = status == 200 and got == sent
            if sub.mode == "unsubscribe" and sub.verified:
                self.subscriptions.pop(sub.callback, None)
            elif sub.mode == "subscribe":
                self.subscriptions[sub.callback] = sub
            self._changed.notify_all()

    def verify(
        self, callback: str, mode: str, topic: str, *, lease: int | None = None
    ) -> tuple[int, str, str]:
        """One verification GET: (status, challenge sent, body received)."""
        challenge = secrets.token_urlsafe(16)
        query = {"hub.mode": mode, "hub.topic": topic, "hub.challenge": challenge}
        if mode == "subscribe":
            query["hub.lease_seconds"] = str(lease or self.lease)
        separator = "&" if urlsplit(callback).query else "?"
        try:
            with urllib.request.urlopen(
                callback + separator + urlencode(query), timeout=10
            ) as response:
                return response.status, challenge, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, challenge, error.read().decode()

    def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``condition()`` holds (checked whenever the hub hears something)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("the hub never saw what the test waited for")
                self._changed.wait(left)

    # -- pushing -----------------------------------------------------------------------------------
    def push(
        self,
        callback: str,
        body: bytes,
        *,
        method: str | None = "sha256",
        secret: str | None = None,
        signature: str | None = None,
    ) -> int:
        """POST ``body`` to ``callback``, signed with the subscription's secret (or ``secret``;
        ``method=None`` sends no signature, ``signature`` sends that header as is)."""
        headers = {"Content-Type": "application/atom+xml"}
        if signature is not None:
            headers["X-Hub-Signature"] = signature
        elif method is not None:
            key = secret if secret is not None else self.subscriptions[callback].secret
            digest = hmac.new(key.encode(), body, getattr(hashlib, method)).hexdigest()
            headers["X-Hub-Signature"] = f"{method}={digest}"
        request = urllib.request.Request(callback, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)


def atom_feed(entries: list[str], *, hub: str | None = None, self_url: str | None = None) -> bytes:
    """An Atom feed with one entry per id in ``entries``, naming ``hub`` and ``self_url``."""
    links = ""
    if hub:
        links += f'<link rel="hub" href="{hub}"/>'
    if self_url:
        links += f'<link rel="self" href="{self_url}"/>'
    items = "".join(
        f"<entry><id>urn:{key}</id><title>Entry {key}</title>"
        f'<link href="http://example.org/{key}"/>'
        f"<updated>2024-01-0{1 + i % 9}T00:00:00Z</updated><content>Text {key}</content></entry>"
        for i, key in enumerate(entries)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>Pushed</title>{links}<id>urn:feed</id><updated>2024-01-09T00:00:00Z</updated>"
        f"{items}</feed>"
    ).encode()
