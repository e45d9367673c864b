"""Content a WebSub hub pushed: stored as a poll stores a fetched feed, schedule untouched.

Called through :meth:`aggregator.poll.poller.Poller.store_pushed` by the subscriber
(:mod:`aggregator.poll.subscriber`) once a push's signature was checked. The document is parsed
in the sandbox with the source's rewrite rules, screened by its rules and stored in one
transaction (:mod:`aggregator.poll.pipeline`); the poller then reads full text for it as after a
poll. Changes nothing of the source's schedule nor its validators: the next fallback poll still
fetches the feed itself.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from aggregator.config.sources import SourceConfig
from aggregator.errors import AggregatorError
from aggregator.models import PollResult, SourceState
from aggregator.poll.pipeline import PollTools, screen

log = logging.getLogger("aggregator.poll.poller")  # the poll's own log, as results.py


def pushed_error(source: SourceConfig, error: AggregatorError) -> PollResult:
    """The result of a push that could not be stored, logged in one line."""
    log.warning("%s: pushed content: %s", source.name, error)
    return PollResult(source.name, "error", error=f"pushed content: {error}")


def store_pushed(
    tools: PollTools,
    source: SourceConfig,
    state: SourceState,
    content: bytes,
    headers: Mapping[str, str],
    now: datetime,
) -> PollResult:
    """Parse, screen and store a pushed feed document for ``source``, in one transaction.

    Never raises for the document's own faults: a :class:`PollResult` with the error.
    """
    try:
        feed = tools.parser.parse_feed(
            content, headers, state.url, now=now, rewrite=tools.config.rewrite_for(source)
        )
        screened = screen(tools, source, state, feed.entries, feed.title, now)
        with tools.write_lock, tools.storage.transaction():
            stored = tools.storage.store_entries(state, screened.kept, now)
    except AggregatorError as error:
        return pushed_error(source, error)
    return PollResult(
        source.name,
        stored.status,
        new=stored.new,
        updated=stored.updated,
        warning=feed.warning,
        skipped=len(screened.skipped),
        moved_threads=stored.moved_threads,
        note="pushed by its WebSub hub",
    )
