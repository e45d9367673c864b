"""WebSub publisher: tell the configured hub which published feeds changed.

With ``server.websub_hub`` set, every document names the hub (``rel="hub"``, see
:mod:`aggregator.publish.publisher`), and after a publish that changed files the hub receives one
``POST hub.mode=publish&hub.url=<feed URL>`` per changed feed (W3C WebSub section 4 leaves the
ping to the hub; this form is the one PubSubHubbub hubs accept). The hub then fetches the feed
and pushes it to subscribers.

Does not: subscribe to anything, serve as a hub, or retry. A hub that is down is logged and
costs one timeout; the next change pings again. The pings go through aiohttp on a loop thread
of their own (:class:`aggregator.fetch.transport.LoopThread`), the project's one HTTP client; the hub
is the operator's choice, so no address rule applies to it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from aggregator.config.schema import AppConfig
from aggregator.fetch.transport import LoopThread, default_ssl_context

log = logging.getLogger(__name__)

FEED_SUFFIXES = {".atom", ".rss", ".json"}


@dataclass
class NotifyResult:
    """Which feed URLs the hub accepted, and why the others failed."""

    notified: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def topic_urls(config: AppConfig, paths: Iterable[Path]) -> list[str]:
    """The public URLs of published files under ``public_dir/feeds`` (in order, once each)."""
    feeds = config.public_dir / "feeds"
    urls: list[str] = []
    for path in paths:
        if path.suffix not in FEED_SUFFIXES:
            continue
        try:
            relative = path.relative_to(feeds).as_posix()
        except ValueError:
            continue
        url = f"{config.server.public_url}/feeds/{relative}"
        if url not in urls:
            urls.append(url)
    return urls


class HubNotifier:
    """Pings one WebSub hub. Use as a context manager, or call :meth:`close`."""

    def __init__(self, hub: str, *, user_agent: str, timeout: float = 10.0):
        self.hub = hub
        self._headers = {"User-Agent": user_agent}
        self._timeout = timeout
        self._loop = LoopThread("aggregator-websub")
        self._session: aiohttp.ClientSession | None = None  # made and used on the loop only

    def __enter__(self) -> HubNotifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection to the hub and stop the loop thread."""
        self._loop.close(self._close_session())

    async def _close_session(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _post(self, url: str) -> int:
        """POST one ping; the hub's HTTP status."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                connector=aiohttp.TCPConnector(ssl=default_ssl_context()),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )
        data = {"hub.mode": "publish", "hub.url": url}
        async with self._session.post(self.hub, data=data, allow_redirects=False) as response:
            await response.read()
            return response.status

    def notify(self, urls: Iterable[str]) -> NotifyResult:
        """POST one publish ping per URL; a 2xx answer counts as accepted. Never raises.

        Once the hub cannot be reached, the remaining URLs are counted as failed, unsent.
        """
        result = NotifyResult()
        unreachable: str | None = None
        for url in urls:
            if unreachable:
                # One timeout is enough: do not wait once per changed feed for a hub that is down.
                result.failed[url] = unreachable
                continue
            try:
                status = self._loop.run(self._post(url))
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                unreachable = f"cannot reach the hub: {error or type(error).__name__}"
                result.failed[url] = unreachable
                continue
            if 200 <= status < 300:
                result.notified.append(url)
            else:
                result.failed[url] = f"the hub answered HTTP {status}"
        for url, reason in result.failed.items():
            log.warning("websub: %s: %s", url, reason)
        return result


def notify_changes(config: AppConfig, changed: Iterable[Path]) -> NotifyResult:
    """Ping the configured hub about the changed feeds; nothing when no hub is configured."""
    hub = config.server.websub_hub
    urls = topic_urls(config, changed)
    if not hub or not urls:
        return NotifyResult()
    with HubNotifier(
        hub,
        user_agent=config.defaults.user_agent,
        timeout=min(config.defaults.timeout.total_seconds(), 10.0),
    ) as notifier:
        result = notifier.notify(urls)
    if result.notified:
        log.info("websub: told %s about %d feed(s)", hub, len(result.notified))
    return result
