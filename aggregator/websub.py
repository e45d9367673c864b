"""WebSub publisher: tell the configured hub which published feeds changed.

With ``server.websub_hub`` set, every document names the hub (``rel="hub"``, see
:mod:`aggregator.publish`), and after a publish that changed files the hub receives one
``POST hub.mode=publish&hub.url=<feed URL>`` per changed feed (W3C WebSub section 4 leaves the
ping to the hub; this form is the one PubSubHubbub hubs accept). The hub then fetches the feed
and pushes it to subscribers.

Does not: subscribe to anything, serve as a hub, or retry. A hub that is down is logged and
costs one timeout per changed feed; the next change pings again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from aggregator.config import AppConfig

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

    def __init__(
        self,
        hub: str,
        *,
        user_agent: str,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ):
        self.hub = hub
        self._client = httpx.Client(
            headers={"User-Agent": user_agent},
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            transport=transport,
        )

    def __enter__(self) -> HubNotifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

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
                response = self._client.post(self.hub, data={"hub.mode": "publish", "hub.url": url})
            except httpx.HTTPError as error:
                unreachable = f"cannot reach the hub: {error or type(error).__name__}"
                result.failed[url] = unreachable
                continue
            if 200 <= response.status_code < 300:
                result.notified.append(url)
            else:
                result.failed[url] = f"the hub answered HTTP {response.status_code}"
        for url, reason in result.failed.items():
            log.warning("websub: %s: %s", url, reason)
        return result


def notify_changes(
    config: AppConfig, changed: Iterable[Path], transport: httpx.BaseTransport | None = None
) -> NotifyResult:
    """Ping the configured hub about the changed feeds; nothing when no hub is configured."""
    hub = config.server.websub_hub
    urls = topic_urls(config, changed)
    if not hub or not urls:
        return NotifyResult()
    with HubNotifier(
        hub,
        user_agent=config.defaults.user_agent,
        timeout=min(config.defaults.timeout.total_seconds(), 10.0),
        transport=transport,
    ) as notifier:
        result = notifier.notify(urls)
    if result.notified:
        log.info("websub: told %s about %d feed(s)", hub, len(result.notified))
    return result
