"""One poll of one source: fetch -> parse -> screen -> decide -> store, in one transaction.

The stage between the :class:`~aggregator.poll.poller.Poller` (threads, connections, stopping,
comments) and the modules that do each step: :mod:`aggregator.fetch.fetcher`, the parse sandbox,
:mod:`aggregator.select.rules`, :mod:`aggregator.schedule.decide` (through
:func:`~aggregator.poll.results.record_plan`) and :class:`~aggregator.storage.Storage`. What a
poll needs is handed in as :class:`PollTools`, taken from the poller when the poll starts.
Does not decide *when* a source is due, nor catch a source's failure: the poller does.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from aggregator.config.schema import AppConfig
from aggregator.config.sources import SourceConfig
from aggregator.errors import AggregatorError
from aggregator.fetch.addresses import Provenance
from aggregator.fetch.fetcher import Fetcher, body_hash
from aggregator.models import (
    EntryData,
    FeedData,
    FetchResult,
    PollResult,
    SourceState,
    SourceUpdate,
)
from aggregator.parse.rewrite import rules_mark
from aggregator.parse.sandbox import Parser
from aggregator.poll.hubs import fallback_factor, hub_unrecorded, note_hub
from aggregator.poll.resources import Clock
from aggregator.poll.results import (
    describe_error,
    error_outcome,
    error_result,
    poll_result,
    record_plan,
)
from aggregator.poll.websub import hub_link
from aggregator.schedule.base import SchedulePolicy
from aggregator.schedule.decide import Cadence, PollOutcome, PollPlan
from aggregator.schedule.policy import schedule_policy, stored_hints
from aggregator.select.rules import RuleBook, Screened, is_empty, screen_new_entries
from aggregator.storage import Storage

log = logging.getLogger("aggregator.poll.poller")  # the poll's own log, as results.py


@dataclass(frozen=True)
class PollTools:
    """What one poll works with: the configuration and rules it started under, this thread's
    database connection, the fetcher and parser, the lock that serializes writes, the clock and
    the jitter (``None`` for none)."""

    config: AppConfig
    rules: RuleBook
    storage: Storage
    fetcher: Fetcher
    parser: Parser
    write_lock: threading.Lock
    clock: Clock
    rng: random.Random | None


def poll_feed(
    tools: PollTools, source: SourceConfig, state: SourceState, now: datetime
) -> PollResult:
    """Fetch, parse, screen and store the source's feed and record when to poll it next.

    Raises the source's own failure (:class:`~aggregator.errors.AggregatorError`): the poller
    records it with :func:`record_error`.
    """
    config, storage = tools.config, tools.storage
    policy, adaptive = schedule_policy(config, source)
    rewrite = config.rewrite_for(source)
    # The stored body digest ends with the mark of the rules it was stored under: after a
    # rule changed, the same body is fetched (no validators), parsed and stored again.
    mark = rules_mark(rewrite)
    same_rules = state.body_hash is None or state.body_hash.partition("+")[2] == mark[1:]
    fetched = tools.fetcher.fetch(
        state.url,
        etag=state.etag if same_rules else None,
        last_modified=state.last_modified if same_rules else None,
        # An adopted redirect target is a found URL: only source.url has configured rights.
        provenance=Provenance.polled(source.url, state.url),
        request=config.request_for(source),
    )
    base: Cadence = {"interval": config.interval_for(source), "adaptive": adaptive}
    if fetched.not_modified:
        # A 304 repeats neither the body nor the feed's hints: use the stored ones.
        return _unchanged(
            tools, source, state, fetched, policy, base, now, "not-modified", SourceUpdate()
        )
    content = fetched.content or b""
    digest = body_hash(content) + mark
    if digest == state.body_hash and not hub_unrecorded(config, storage, source, fetched, content):
        # A 200 whose body did not change counts as unchanged: no parse, no write but state.
        return _unchanged(
            tools,
            source,
            state,
            fetched,
            policy,
            base,
            now,
            "unchanged",
            SourceUpdate(etag=fetched.etag, last_modified=fetched.last_modified),
        )
    feed = tools.parser.parse_feed(
        content, fetched.headers, fetched.final_url, now=now, rewrite=rewrite
    )
    screened = screen(tools, source, state, feed.entries, feed.title, now)
    hub = hub_link(feed, fetched.headers, fetched.final_url)
    with tools.write_lock, storage.transaction():
        stored = storage.store_entries(state, screened.kept, now)
        note_hub(config, storage, source, hub, now)
        outcome = _outcome(storage, fetched, state, feed, True, base)
        plan = record_plan(
            storage,
            policy,
            state,
            outcome,
            now,
            SourceUpdate(
                title=source.title or feed.title,
                link=feed.link,
                etag=fetched.etag,
                last_modified=fetched.last_modified,
                body_hash=digest,
                last_status=fetched.status,
                last_error=None,
                last_success_at=now,
                hint_ttl_minutes=feed.ttl_minutes,
                hint_update_period=feed.update_period_seconds,
                hint_skip_hours=feed.skip_hours,
                hint_skip_days=feed.skip_days,
            ),
            clock=tools.clock,
            rng=tools.rng,
            new_entries=stored.new,
            fallback_factor=fallback_factor(config, storage, source, now),
        )
    if feed.warning:
        log.warning("%s: %s", source.name, feed.warning)
    return poll_result(
        source,
        state,
        plan,
        stored.status,
        config.defaults.redirect_adopt_after,
        new=stored.new,
        updated=stored.updated,
        http_status=fetched.status,
        warning=feed.warning,
        skipped=len(screened.skipped),
        moved_threads=stored.moved_threads,
    )


def _unchanged(
    tools: PollTools,
    source: SourceConfig,
    state: SourceState,
    fetched: FetchResult,
    policy: SchedulePolicy,
    base: Cadence,
    now: datetime,
    status: str,
    update: SourceUpdate,
) -> PollResult:
    """Record a poll that brought nothing new (304, or the same body again)."""
    storage = tools.storage
    with tools.write_lock, storage.transaction():
        outcome = _outcome(storage, fetched, state, stored_hints(state), False, base)
        plan = record_plan(
            storage,
            policy,
            state,
            outcome,
            now,
            replace(update, last_status=fetched.status, last_error=None, last_success_at=now),
            clock=tools.clock,
            rng=tools.rng,
            fallback_factor=fallback_factor(tools.config, storage, source, now),
        )
    return poll_result(
        source,
        state,
        plan,
        status,
        tools.config.defaults.redirect_adopt_after,
        http_status=fetched.status,
    )


def _outcome(
    storage: Storage,
    fetched: FetchResult,
    state: SourceState,
    feed: FeedData,
    changed: bool,
    base: Cadence,
) -> PollOutcome:
    # Read inside the poll's transaction, after this poll's entries were stored.
    times = storage.recent_entry_times(state.id)
    return PollOutcome.from_fetch(
        fetched, body_changed=changed, feed=feed, entry_times=times, **base
    )


def screen(
    tools: PollTools,
    source: SourceConfig,
    state: SourceState,
    entries: Sequence[EntryData],
    feed_title: str | None,
    now: datetime,
) -> Screened:
    """Apply the defaults' and the source's rules to the new entries of a poll."""
    ruleset = tools.rules.for_storing(source.name)
    if is_empty(ruleset):
        return Screened(tuple(entries))
    screened = screen_new_entries(
        ruleset,
        entries,
        tools.storage.known_entry_keys(state.id, [entry.key for entry in entries]),
        source_name=source.name,
        source_title=source.title or feed_title or state.title,
        source_url=state.url,
        now=now,
    )
    for entry, verdict in screened.skipped:
        log.debug("%s: not stored: %r %s", source.name, entry.title, verdict.explain())
    return screened


def record_error(
    tools: PollTools, source: SourceConfig, state: SourceState, error: Exception, now: datetime
) -> PollResult:
    """Record a failed poll (its error, the backoff the schedule decides); the result says it."""
    message, status = describe_error(error)
    policy, adaptive = schedule_policy(tools.config, source)
    base: Cadence = {"interval": tools.config.interval_for(source), "adaptive": adaptive}
    outcome = error_outcome(error, message, base)
    plan: PollPlan | None = None
    try:
        storage = tools.storage
        with tools.write_lock, storage.transaction():
            plan = record_plan(
                storage,
                policy,
                state,
                outcome,
                now,
                SourceUpdate(last_status=status, last_error=message),
                clock=tools.clock,
                rng=tools.rng,
            )
    except AggregatorError as storage_error:
        message = f"{message} (and could not record it: {storage_error})"
    return error_result(source, message, status, plan)
