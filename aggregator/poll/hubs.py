"""A poll's WebSub glue: what a poll records of the hub its feed names, and what a live
subscription changes for the poll.

Three small steps of the pipeline (:mod:`aggregator.poll.pipeline`), each reading or writing the
source's ``websub_subscriptions`` row inside the poll's transaction: record the hub a parsed feed
announces (or that it announces none any more), tell whether an unchanged body must still be
parsed for its hub, and how much further apart polls are while a hub pushes. The decisions are
those of :mod:`aggregator.poll.websub`; subscribing is the upkeep's
(:mod:`aggregator.poll.subscriber`).
"""

from __future__ import annotations

import logging
from datetime import datetime

from aggregator.config.schema import AppConfig
from aggregator.config.sources import SourceConfig
from aggregator.models import FetchResult
from aggregator.poll.websub import HubLink, mentions_hub, wants_websub
from aggregator.storage import Storage

log = logging.getLogger("aggregator.poll.poller")  # the poll's own log, as results.py


def note_hub(
    config: AppConfig,
    storage: Storage,
    source: SourceConfig,
    hub: HubLink | None,
    now: datetime,
) -> None:
    """Record the hub a parsed feed names (inside the poll's transaction), or that it
    names none any more: the upkeep then subscribes, or unsubscribes."""
    if not wants_websub(config, source):
        return
    if hub is None:
        if storage.drop_subscription(source.name):
            log.info("%s: no longer announces a WebSub hub", source.name)
    elif storage.want_subscription(source.name, hub.hub, hub.topic, now):
        log.info("%s: announces the WebSub hub %s", source.name, hub.hub)


def hub_unrecorded(
    config: AppConfig,
    storage: Storage,
    source: SourceConfig,
    fetched: FetchResult,
    content: bytes,
) -> bool:
    """Whether an unchanged body must still be parsed for the WebSub hub it may name: the
    source wants WebSub, has no subscription recorded (new to WebSub, re-added, or one
    that was forgotten), and the response mentions a hub at all (a cheap test first)."""
    return (
        mentions_hub(content, fetched.headers)
        and wants_websub(config, source)
        and storage.subscription_of(source.name) is None
    )


def fallback_factor(
    config: AppConfig, storage: Storage, source: SourceConfig, now: datetime
) -> float:
    """How much further apart polls are: ``websub_fallback_factor`` while the source's
    hub has a live subscription verified (the hub pushes), else 1."""
    if not wants_websub(config, source):
        return 1.0
    sub = storage.subscription_of(source.name)
    return config.defaults.websub_fallback_factor if sub and sub.live(now) else 1.0
