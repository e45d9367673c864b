"""Poll sources: state -> fetch -> parse -> decide -> store, one source at a time.

This is the pipeline; it does not decide *when* a source is due: :mod:`aggregator.schedule.decide`
does, from what each poll found, and the pipeline records the resulting plan (next poll time
and reason, error streak, pending redirect, retirement) in the same transaction as the poll's
other writes. A failing source becomes a :class:`PollResult` with an error and never stops the
others. All writes of one poll of one source are one transaction.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from aggregator.comments.follower import CommentFollower
from aggregator.config.schema import AppConfig
from aggregator.config.sources import SourceConfig
from aggregator.errors import AggregatorError, NotFoundError, StoppedError
from aggregator.fetch.addresses import Provenance
from aggregator.fetch.fetcher import Fetcher, body_hash
from aggregator.fulltext.reader import FullTextReader
from aggregator.models import (
    EntryData,
    FeedData,
    FetchResult,
    PollResult,
    SourceState,
    SourceUpdate,
)
from aggregator.parse.rewrite import rules_mark
from aggregator.parse.sandbox import Parser, SandboxParser
from aggregator.poll.resources import Clock, make_fetcher, same_limits, uses_search, utc_now
from aggregator.poll.results import (
    describe_error,
    error_outcome,
    error_result,
    poll_result,
    record_plan,
)
from aggregator.poll.websub import HubLink, hub_link, mentions_hub, wants_websub
from aggregator.schedule.base import SchedulePolicy
from aggregator.schedule.decide import Cadence, PollOutcome, PollPlan
from aggregator.schedule.policy import schedule_policy, skip_reason, stored_hints
from aggregator.select.rules import RuleBook, Screened, is_empty, screen_new_entries
from aggregator.storage import Storage

if TYPE_CHECKING:
    from aggregator.serve.metrics import Metrics  # the daemon's; a poll by hand has none

log = logging.getLogger(__name__)

_SYSTEM_RANDOM = random.Random()


#: The page cache of each poll thread's connection. Up to 32 threads poll at once and each has
#: its own connection: at SQLite's default of 2 MB each, the caches were a fifth of a cold
#: poll's peak memory (199 MB -> 163 MB at 1,000 feeds), and polls were no faster for them.
POLL_CACHE_KIB = 512


class Poller:
    """Polls configured sources into the database.

    One :class:`Poller` may be used from several threads: each thread gets its own database
    connection, and writes are serialized by a lock so that SQLite never reports "locked".
    ``clock`` and ``rng`` (the jitter; ``None`` for none) are injected so that tests drive time.
    ``manual`` marks a poll by hand (``aggregator poll``): it reads every followed comment thread
    and names the sources it leaves alone because they are in a backoff window.
    """

    def __init__(
        self,
        config: AppConfig,
        *,
        clock: Clock = utc_now,
        fetcher: Fetcher | None = None,
        parser: Parser | None = None,
        manual: bool = False,
        rng: random.Random | None = _SYSTEM_RANDOM,
        metrics: Metrics | None = None,
    ):
        self.config = config
        self.rules = RuleBook.from_config(config)
        self.manual = manual
        self.clock = clock
        self.rng = rng
        self.metrics = metrics
        self.stopping = threading.Event()
        self._busy = 0  # polls and comment runs in progress, for a clean stop
        self._idle = threading.Condition()
        self._own_fetcher = fetcher is None
        self.fetcher = fetcher or make_fetcher(config)
        self._old_fetchers: list[Fetcher] = []
        self._own_parser = parser is None
        # Untrusted documents are parsed in a worker process with memory and time limits.
        self.parser: Parser = parser or SandboxParser()
        self._local = threading.local()
        self.write_lock = threading.Lock()
        # Weak: a connection dies with the thread that opened it (the comment readers' pools
        # come and go), so connections and their page caches never pile up in the daemon.
        self._storages: weakref.WeakSet[Storage] = weakref.WeakSet()
        self._storages_lock = threading.Lock()
        self.full_texts = FullTextReader(
            parser=self.parser, clock=clock, write_lock=self.write_lock
        )
        self.follower = CommentFollower(
            config,
            storage=lambda: self.storage,
            fetcher=self.fetcher,
            parser=self.parser,
            clock=clock,
            write_lock=self.write_lock,
            workers=config.defaults.max_concurrent_fetches,
        )

    def close(self) -> None:
        self.follower.close()
        if self._own_fetcher:
            for fetcher in [self.fetcher, *self._old_fetchers]:
                fetcher.close()
        if self._own_parser:
            self.parser.close()
        with self._storages_lock:
            for storage in list(self._storages):
                storage.close()
            self._storages.clear()

    def __enter__(self) -> Poller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stop(self) -> None:
        """Start no new poll or request; polls already running finish their transaction."""
        self.stopping.set()
        self.follower.discussions.api.stop()
        for fetcher in [self.fetcher, *self._old_fetchers]:
            fetcher.stop()

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for running polls to end; whether they all did."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    @contextmanager
    def _working(self) -> Iterator[None]:
        with self._idle:
            self._busy += 1
        try:
            yield
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def reconfigure(self, config: AppConfig) -> None:
        """Use a reloaded configuration from the next poll on (polls running keep theirs)."""
        self.config = config
        self.rules = RuleBook.from_config(config)
        self.follower.config = config
        with self._storages_lock:
            for storage in self._storages:
                storage.index_search = uses_search(config)
        if self._own_fetcher:
            old = self.fetcher
            self.fetcher = make_fetcher(config, limits=same_limits(old.limits, config))
            self.follower.fetcher = self.fetcher
            self._old_fetchers.append(old)  # closed with the poller: a poll may still use it

    @property
    def storage(self) -> Storage:
        """This thread's connection to the database."""
        storage = getattr(self._local, "storage", None)
        if storage is None:
            storage = Storage(
                self.config.database,
                cache_kib=POLL_CACHE_KIB,
                index_search=uses_search(self.config),
            )
            self._local.storage = storage
            with self._storages_lock:
                self._storages.add(storage)
        return storage

    def sync_sources(self) -> list[str]:
        """Create database rows for configured sources; return those whose URL was changed."""
        return self.storage.sync_sources(
            ((s.name, s.url) for s in self.config.sources), self.clock()
        )

    def due_sources(self, sources: Sequence[SourceConfig]) -> list[SourceConfig]:
        """The sources the schedule says are due now (never polled, or past their next poll),
        retired ones left out. What ``aggregator poll --due`` polls."""
        self.sync_sources()
        now = self.clock()
        due = []
        for source in sources:
            state = self.storage.get_source(source.name)
            if state.retired_at is None and (
                state.next_poll_at is None or state.next_poll_at <= now
            ):
                due.append(source)
        return due

    def poll_many(
        self,
        sources: Sequence[SourceConfig],
        *,
        workers: int | None = None,
        force: bool = False,
        on_result: Callable[[PollResult], None] | None = None,
    ) -> list[PollResult]:
        """Poll several sources concurrently; results come back in the order given.

        Requests still obey the fetcher's limits (in total, per host, per domain).
        """
        self.sync_sources()
        workers = workers or self.config.defaults.max_concurrent_fetches
        results: list[PollResult] = []
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(sources) or 1))) as pool:
            for result in pool.map(lambda s: self.poll_source(s, force=force), sources):
                results.append(result)
                if on_result:
                    on_result(result)
        return results

    def poll_source(
        self, source: SourceConfig, *, force: bool = False, comments: bool = True
    ) -> PollResult:
        """Fetch, parse and store one source, record when to poll it next, and (with
        ``comments``) follow its threads.

        Never raises for a source's own failure. A retired source, or (by hand, without
        ``force``) one in a backoff window, is skipped without a request.
        """
        with self._working():
            return self._poll_source(source, force, comments)

    def _poll_source(self, source: SourceConfig, force: bool, comments: bool) -> PollResult:
        if self.stopping.is_set():
            return PollResult(source.name, "skipped", note="aggregator is stopping")
        started = self.clock()
        try:
            state = self._state(source)
        except AggregatorError as error:
            result = PollResult(source.name, "error", error=str(error))
            log.warning("%s: %s", source.name, error)
            return result
        reason = None if force else skip_reason(state, started, manual=self.manual)
        if reason is not None:
            result = PollResult(
                source.name, "skipped", note=reason, next_poll_at=state.next_poll_at
            )
            self._count(result, None)
            return result
        began = time.monotonic()
        try:
            result = self._poll(source, state, started)
        except StoppedError:
            return PollResult(source.name, "skipped", note="aggregator is stopping")
        except AggregatorError as error:
            result = self._record_error(source, state, error, started)
        except Exception as error:  # a bug must not take the other sources down with it
            log.exception("unexpected error while polling %s", source.name)
            result = self._record_error(source, state, error, started)
        self._count(result, time.monotonic() - began)
        if not result.ok:
            return result
        result = self._read_full_texts(source, state, result)
        return self.poll_comments(source, result) if comments else result

    def _read_full_texts(
        self, source: SourceConfig, state: SourceState, result: PollResult
    ) -> PollResult:
        """Fetch the articles of the source's new entries (``full_text``); never fails the poll."""
        mode = self.config.full_text_for(source)
        if mode is False or self.stopping.is_set():
            return result
        run = self.full_texts.read(
            source,
            state.id,
            mode,
            storage=self.storage,
            fetcher=self.fetcher,
            request=self.config.request_for(source),
        )
        return replace(result, full_texts=run.stored) if run.stored else result

    def _state(self, source: SourceConfig) -> SourceState:
        """The source's stored state; a configured source without a row yet gets one."""
        try:
            return self.storage.get_source(source.name)
        except NotFoundError:
            self.storage.sync_sources([(source.name, source.url)], self.clock())
            return self.storage.get_source(source.name)

    def follow_comments(self, source: SourceConfig) -> PollResult:
        """The daemon's periodic run over a source's due comment threads.

        Threads live on the source's own servers, so a source that is retired or waiting out
        a Retry-After or backoff window has its threads left alone too.
        """
        with self._working():
            return self._follow_comments(source)

    def _follow_comments(self, source: SourceConfig) -> PollResult:
        result = PollResult(source.name, "unchanged")
        if self.stopping.is_set():
            return result
        try:
            state = self.storage.get_source(source.name)
        except AggregatorError as error:
            log.warning("%s: comments: %s", source.name, error)
            return result
        if skip_reason(state, self.clock(), manual=True) is not None:
            return result
        result = self.poll_comments(source, result)
        if self.metrics is not None:
            self.metrics.record_comments(source.name, result.new_comments)
        return result

    def poll_comments(self, source: SourceConfig, result: PollResult) -> PollResult:
        """Follow the source's comment threads and add the count of new comments to ``result``.

        A manual poll reads every followed thread now; the daemon reads only those due.
        """
        if not self.config.comments_for(source) or self.stopping.is_set():
            return result
        try:
            comments = self.follower.follow(source, force=self.manual)
        except AggregatorError as error:
            log.warning("%s: comments: %s", source.name, error)
            return result
        except Exception:
            log.exception("unexpected error while following comments of %s", source.name)
            return result
        warning = result.warning
        if comments.errors:
            note = f"{len(comments.errors)} comment thread(s) failed"
            warning = f"{warning}; {note}" if warning else note
        return replace(
            result,
            new_comments=comments.new,
            changed_comments=comments.updated + comments.gone,
            warning=warning,
        )

    # -- one poll --------------------------------------------------------------------------------
    def _poll(self, source: SourceConfig, state: SourceState, now: datetime) -> PollResult:
        storage = self.storage
        policy, adaptive = schedule_policy(self.config, source)
        rewrite = self.config.rewrite_for(source)
        # The stored body digest ends with the mark of the rules it was stored under: after a
        # rule changed, the same body is fetched (no validators), parsed and stored again.
        mark = rules_mark(rewrite)
        same_rules = state.body_hash is None or state.body_hash.partition("+")[2] == mark[1:]
        fetched = self.fetcher.fetch(
            state.url,
            etag=state.etag if same_rules else None,
            last_modified=state.last_modified if same_rules else None,
            # An adopted redirect target is a found URL: only source.url has configured rights.
            provenance=Provenance.polled(source.url, state.url),
            request=self.config.request_for(source),
        )
        base: Cadence = {"interval": self.config.interval_for(source), "adaptive": adaptive}
        if fetched.not_modified:
            # A 304 repeats neither the body nor the feed's hints: use the stored ones.
            return self._unchanged(
                source, state, fetched, policy, base, now, "not-modified", SourceUpdate()
            )
        content = fetched.content or b""
        digest = body_hash(content) + mark
        if digest == state.body_hash and not self._hub_unrecorded(source, fetched, content):
            # A 200 whose body did not change counts as unchanged: no parse, no write but state.
            return self._unchanged(
                source,
                state,
                fetched,
                policy,
                base,
                now,
                "unchanged",
                SourceUpdate(etag=fetched.etag, last_modified=fetched.last_modified),
            )
        feed = self.parser.parse_feed(
            content, fetched.headers, fetched.final_url, now=now, rewrite=rewrite
        )
        screened = self._screen(source, state, feed.entries, feed.title, now)
        hub = hub_link(feed, fetched.headers, fetched.final_url)
        with self.write_lock, storage.transaction():
            stored = storage.store_entries(state, screened.kept, now)
            self._note_hub(source, hub, now)
            outcome = self._outcome(fetched, state, feed, True, base)
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
                clock=self.clock,
                rng=self.rng,
                new_entries=stored.new,
                fallback_factor=self._fallback_factor(source, now),
            )
        if feed.warning:
            log.warning("%s: %s", source.name, feed.warning)
        status = "new" if stored.new else "updated" if stored.updated else "unchanged"
        return poll_result(
            source,
            state,
            plan,
            status,
            self.config.defaults.redirect_adopt_after,
            new=stored.new,
            updated=stored.updated,
            http_status=fetched.status,
            warning=feed.warning,
            skipped=len(screened.skipped),
            moved_threads=stored.moved_threads,
        )

    def _unchanged(
        self,
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
        with self.write_lock, self.storage.transaction():
            outcome = self._outcome(fetched, state, stored_hints(state), False, base)
            plan = record_plan(
                self.storage,
                policy,
                state,
                outcome,
                now,
                replace(update, last_status=fetched.status, last_error=None, last_success_at=now),
                clock=self.clock,
                rng=self.rng,
                fallback_factor=self._fallback_factor(source, now),
            )
        return poll_result(
            source,
            state,
            plan,
            status,
            self.config.defaults.redirect_adopt_after,
            http_status=fetched.status,
        )

    def _note_hub(self, source: SourceConfig, hub: HubLink | None, now: datetime) -> None:
        """Record the hub a parsed feed names (inside the poll's transaction), or that it
        names none any more: the upkeep then subscribes, or unsubscribes."""
        if not wants_websub(self.config, source):
            return
        if hub is None:
            if self.storage.drop_subscription(source.name):
                log.info("%s: no longer announces a WebSub hub", source.name)
        elif self.storage.want_subscription(source.name, hub.hub, hub.topic, now):
            log.info("%s: announces the WebSub hub %s", source.name, hub.hub)

    def _hub_unrecorded(self, source: SourceConfig, fetched: FetchResult, content: bytes) -> bool:
        """Whether an unchanged body must still be parsed for the WebSub hub it may name: the
        source wants WebSub, has no subscription recorded (new to WebSub, re-added, or one
        that was forgotten), and the response mentions a hub at all (a cheap test first)."""
        return (
            mentions_hub(content, fetched.headers)
            and wants_websub(self.config, source)
            and self.storage.subscription_of(source.name) is None
        )

    def _fallback_factor(self, source: SourceConfig, now: datetime) -> float:
        """How much further apart polls are: ``websub_fallback_factor`` while the source's
        hub has a live subscription verified (the hub pushes), else 1."""
        if not wants_websub(self.config, source):
            return 1.0
        sub = self.storage.subscription_of(source.name)
        return self.config.defaults.websub_fallback_factor if sub and sub.live(now) else 1.0

    # -- pushed content (WebSub) -------------------------------------------------------------------
    def store_pushed(
        self, source: SourceConfig, content: bytes, headers: Mapping[str, str]
    ) -> PollResult:
        """Store the feed document a WebSub hub pushed for ``source``, as a poll stores a
        fetched one: parsed in the sandbox, screened by the rules, one transaction.

        Changes nothing of the source's schedule nor its validators (the next fallback poll
        still fetches the feed itself). Never raises for the document's own faults: a
        :class:`PollResult` with the error.
        """
        with self._working():
            now = self.clock()
            try:
                state = self._state(source)
                feed = self.parser.parse_feed(
                    content, headers, state.url, now=now, rewrite=self.config.rewrite_for(source)
                )
                screened = self._screen(source, state, feed.entries, feed.title, now)
                with self.write_lock, self.storage.transaction():
                    stored = self.storage.store_entries(state, screened.kept, now)
            except AggregatorError as error:
                log.warning("%s: pushed content: %s", source.name, error)
                return PollResult(source.name, "error", error=f"pushed content: {error}")
            status = "new" if stored.new else "updated" if stored.updated else "unchanged"
            result = PollResult(
                source.name,
                status,
                new=stored.new,
                updated=stored.updated,
                warning=feed.warning,
                skipped=len(screened.skipped),
                moved_threads=stored.moved_threads,
                note="pushed by its WebSub hub",
            )
            self._count(result, None)
            # Rewrite rules and full text apply to pushed entries as to polled ones.
            return self._read_full_texts(source, state, result)

    def _outcome(
        self,
        fetched: FetchResult,
        state: SourceState,
        feed: FeedData,
        changed: bool,
        base: Cadence,
    ) -> PollOutcome:
        # Read inside the poll's transaction, after this poll's entries were stored.
        times = self.storage.recent_entry_times(state.id)
        return PollOutcome.from_fetch(
            fetched, body_changed=changed, feed=feed, entry_times=times, **base
        )

    def _screen(
        self,
        source: SourceConfig,
        state: SourceState,
        entries: Sequence[EntryData],
        feed_title: str | None,
        now: datetime,
    ) -> Screened:
        """Apply the defaults' and the source's rules to the new entries of a poll."""
        ruleset = self.rules.for_storing(source.name)
        if is_empty(ruleset):
            return Screened(tuple(entries))
        screened = screen_new_entries(
            ruleset,
            entries,
            self.storage.known_entry_keys(state.id, [entry.key for entry in entries]),
            source_name=source.name,
            source_title=source.title or feed_title or state.title,
            source_url=state.url,
            now=now,
        )
        for entry, verdict in screened.skipped:
            log.debug("%s: not stored: %r %s", source.name, entry.title, verdict.explain())
        return screened

    def _record_error(
        self, source: SourceConfig, state: SourceState, error: Exception, now: datetime
    ) -> PollResult:
        message, status = describe_error(error)
        policy, adaptive = schedule_policy(self.config, source)
        base: Cadence = {"interval": self.config.interval_for(source), "adaptive": adaptive}
        outcome = error_outcome(error, message, base)
        plan: PollPlan | None = None
        try:
            storage = self.storage
            with self.write_lock, storage.transaction():
                plan = record_plan(
                    storage,
                    policy,
                    state,
                    outcome,
                    now,
                    SourceUpdate(last_status=status, last_error=message),
                    clock=self.clock,
                    rng=self.rng,
                )
        except AggregatorError as storage_error:
            message = f"{message} (and could not record it: {storage_error})"
        return error_result(source, message, status, plan)

    def _count(self, result: PollResult, seconds: float | None) -> None:
        if self.metrics is not None:
            self.metrics.record(result, seconds)
