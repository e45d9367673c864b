"""Sending one batch to one target, with retries and backoff.

A webhook is POSTed through :mod:`aggregator.fetch.transport` (aiohttp on its own loop thread, the
configured-URL address rule applied to its host and to every connection, as for a source's
URL; no redirects followed). An Apprise URL goes through the Apprise library (its only
adapter); Apprise makes its own connections, which the address rules do not see.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable

from aggregator import __version__
from aggregator.config.notify import NotifyConfig
from aggregator.errors import AggregatorError, FetchError
from aggregator.fetch.addresses import Provenance, rule_for
from aggregator.fetch.transport import (
    LoopThread,
    default_ssl_context,
    make_session,
    post,
    system_resolver,
)

log = logging.getLogger("aggregator.alerts")
USER_AGENT = f"aggregator/{__version__} (alerts)"


class SendError(AggregatorError):
    """A batch could not be delivered after every retry."""


def _retryable(status: int) -> bool:
    return status >= 500 or status in (408, 429)


def with_retries(alert: NotifyConfig, attempt: Callable[[], None], stop: threading.Event) -> None:
    """Call ``attempt`` until it returns, at most ``1 + retries`` times, waiting ``backoff``,
    then twice as long each time; raises the last :class:`SendError`. A stop ends the waits."""
    delay = alert.backoff.total_seconds()
    for number in range(alert.retries + 1):
        try:
            attempt()
            return
        except _Retry as error:
            if number == alert.retries:
                raise SendError(f"notify {alert.name}: {error.reason}") from None
            log.warning("notify %s: %s; retrying in %.1fs", alert.name, error.reason, delay)
            if stop.wait(delay):
                raise SendError(f"notify {alert.name}: stopped while retrying") from None
            delay *= 2


class _Retry(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class WebhookSender:
    """POSTs JSON bodies to webhooks; one event loop and one session per address rule."""

    def __init__(self, *, allow_private_networks: bool = False):
        self.allow_private_networks = allow_private_networks
        self._loop = LoopThread("aggregator-alerts")
        self._sessions: dict[object, object] = {}
        self._ssl: ssl.SSLContext = default_ssl_context()

    def _session(self, rule: object) -> object:
        session = self._sessions.get(rule)
        if session is None:
            session = self._sessions[rule] = make_session(
                rule,  # type: ignore[arg-type]
                ssl_context=self._ssl,
                resolver=system_resolver,
                headers={"User-Agent": USER_AGENT},
                connect_timeout=10.0,
                max_connections=4,
            )
        return session

    def send_once(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        """One POST; the status, or :class:`FetchError`."""
        rule = rule_for(
            url, Provenance.config(url), allow_private_networks=self.allow_private_networks
        )

        async def run() -> int:
            return await post(self._session(rule), url, body, headers, timeout, rule)  # type: ignore[arg-type]

        try:
            return self._loop.run(run())
        except ValueError as error:
            raise FetchError(f"{url}: {error}") from None

    def send(
        self, alert: NotifyConfig, body: bytes, headers: dict[str, str], stop: threading.Event
    ) -> None:
        """Deliver ``body`` (2xx), retrying network errors, timeouts, 5xx, 408 and 429."""
        url = alert.webhook or ""

        def attempt() -> None:
            try:
                status = self.send_once(url, body, headers, alert.timeout.total_seconds())
            except FetchError as error:
                raise _Retry(str(error)) from None
            if 200 <= status < 300:
                return
            if _retryable(status):
                raise _Retry(f"{url} answered {status}")
            raise SendError(f"notify {alert.name}: {url} answered {status}")

        with_retries(alert, attempt, stop)

    def close(self) -> None:
        async def close_all() -> None:
            for session in self._sessions.values():
                await session.close()  # type: ignore[attr-defined]

        self._loop.close(close_all())


def send_apprise(alert: NotifyConfig, title: str, body: str, stop: threading.Event) -> None:
    """Deliver through Apprise, with the alert's retries and backoff."""
    import apprise

    def attempt() -> None:
        sender = apprise.Apprise()
        if not sender.add(alert.apprise or ""):
            raise SendError(f"notify {alert.name}: Apprise does not understand this URL")
        if not sender.notify(title=title, body=body):
            raise _Retry("Apprise could not deliver (see its log)")

    with_retries(alert, attempt, stop)
