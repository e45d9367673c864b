"""Poll sources: the :class:`Poller` runs polls, side by side, and what follows each one.

It owns the threads' database connections, the write lock, the fetcher and parser, a clean
stop and reloads, and after each poll the source's full text (:mod:`aggregator.poll.fulltexts`)
and comment threads. One poll of one source, state -> fetch -> parse -> decide -> store in one
transaction, is :mod:`aggregator.poll.pipeline`'s; content a WebSub hub pushed,
:mod:`aggregator.poll.pushed`'s. It does not decide *when* a source is due:
:mod:`aggregator.schedule.decide` does, from what each poll found, and the pipeline records the
resulting plan (next poll time and reason, error streak, pending redirect, retirement) with the
poll's other writes. A failing source becomes a :class:`PollResult` with an error and never
stops the others.
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
from typing import TYPE_CHECKING

from aggregator.comments.follower import CommentFollower
from aggregator.config.schema import AppConfig
from aggregator.config.sources import SourceConfig
from aggregator.errors import AggregatorError, NotFoundError, StoppedError
from aggregator.fetch.fetcher import Fetcher
from aggregator.fulltext.reader import FullTextReader
from aggregator.models import PollResult, SourceState
from aggregator.parse.sandbox import Parser, SandboxParser
from aggregator.poll.fulltexts import read_full_texts
from aggregator.poll.pipeline import PollTools, poll_feed, record_error
from aggregator.poll.pushed import pushed_error, store_pushed
from aggregator.poll.resources import Clock, make_fetcher, same_limits, uses_search, utc_now
from aggregator.schedule.policy import skip_reason
from aggregator.select.rules import RuleBook
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
        tools = self._tools()
        try:
            result = poll_feed(tools, source, state, started)
        except StoppedError:
            return PollResult(source.name, "skipped", note="aggregator is stopping")
        except AggregatorError as error:
            result = record_error(tools, source, state, error, started)
        except Exception as error:  # a bug must not take the other sources down with it
            log.exception("unexpected error while polling %s", source.name)
            result = record_error(tools, source, state, error, started)
        self._count(result, time.monotonic() - began)
        if not result.ok:
            return result
        result = self._read_full_texts(tools, source, state, result)
        return self.poll_comments(source, result) if comments else result

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

    # -- pushed content (WebSub) -------------------------------------------------------------------
    def store_pushed(
        self, source: SourceConfig, content: bytes, headers: Mapping[str, str]
    ) -> PollResult:
        """Store the feed document a WebSub hub pushed for ``source``, as a poll stores a
        fetched one: parsed in the sandbox, screened by the rules, one transaction
        (:mod:`aggregator.poll.pushed`).

        Changes nothing of the source's schedule nor its validators (the next fallback poll
        still fetches the feed itself). Never raises for the document's own faults: a
        :class:`PollResult` with the error.
        """
        with self._working():
            now = self.clock()
            try:
                state = self._state(source)
            except AggregatorError as error:
                return pushed_error(source, error)
            tools = self._tools()
            result = store_pushed(tools, source, state, content, headers, now)
            if not result.ok:
                return result
            self._count(result, None)
            # Rewrite rules and full text apply to pushed entries as to polled ones.
            return self._read_full_texts(tools, source, state, result)

    def _read_full_texts(
        self, tools: PollTools, source: SourceConfig, state: SourceState, result: PollResult
    ) -> PollResult:
        """Fetch the articles of the source's new entries (``full_text``); never fails the poll."""
        if self.stopping.is_set():
            return result
        return read_full_texts(self.full_texts, tools, source, state, result)

    def _tools(self) -> PollTools:
        """What a poll starting now works with (a reload changes the next poll's)."""
        return PollTools(
            config=self.config,
            rules=self.rules,
            storage=self.storage,
            fetcher=self.fetcher,
            parser=self.parser,
            write_lock=self.write_lock,
            clock=self.clock,
            rng=self.rng,
        )

    def _count(self, result: PollResult, seconds: float | None) -> None:
        if self.metrics is not None:
            self.metrics.record(result, seconds)
