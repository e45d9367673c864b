"""APScheduler 3.x: one job per source at the time its last poll decided, never overlapping.

This is the only module that imports APScheduler. Each source's job runs once, at the
``next_poll_at`` that :mod:`aggregator.schedule.decide` chose after the previous poll (stored in the
database, so a restart continues the schedule instead of polling everything at once), and is
then added again for the next time the new poll's plan names. A retired source gets no job.
Jobs run on a thread pool; the requests themselves are capped in total, per host and per
domain by the fetcher's :class:`~aggregator.fetch.limits.FetchLimits`.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from aggregator.config.schema import AppConfig
from aggregator.config.sources import SourceConfig
from aggregator.errors import AggregatorError
from aggregator.models import PollResult, SourceState
from aggregator.poll.poller import Poller
from aggregator.poll.resources import Clock, utc_now

log = logging.getLogger(__name__)

# Polls mostly wait on the network, and each is bounded by the fetch deadline and the parse
# sandbox. One worker per source (at least 16, at most 64) keeps good sources on time even
# when every other source uses up its whole deadline.
MIN_CONCURRENT_POLLS = 16
MAX_CONCURRENT_POLLS = 64
# Comment rounds run in their own pool, so that slow comment threads never delay a poll.
MAX_CONCURRENT_COMMENT_ROUNDS = 4
# How often the daemon looks for comment threads that are due; each thread's own schedule
# (aggregator.schedule.threads.decide_next_comments_poll) says whether it is.
COMMENTS_CHECK_INTERVAL = timedelta(minutes=5)
# Sources that are overdue when the daemon starts (or never polled) are spread out rather than
# all requested in the same second: a twentieth of a second apart on average (the request caps
# do the rest), over a minute at most.
STARTUP_SPREAD_EACH = timedelta(seconds=0.05)
STARTUP_SPREAD = timedelta(minutes=1)


def first_run_at(
    state: SourceState,
    now: datetime,
    *,
    spread: timedelta = STARTUP_SPREAD,
    rng: random.Random | None = None,
) -> datetime | None:
    """When a source's job should first run after a start or a reload; ``None`` if retired.

    A stored next poll in the future is kept as it is (it may be a Retry-After or a backoff
    window). An overdue or never-polled source is due now, spread over ``spread``.
    """
    if state.retired_at is not None:
        return None
    if state.next_poll_at is not None and state.next_poll_at > now:
        return state.next_poll_at
    offset = spread * rng.random() if rng is not None else timedelta(0)
    return now + offset


def poll_workers(sources: int) -> int:
    """How many polls may run at once for a configuration with ``sources`` sources."""
    return max(MIN_CONCURRENT_POLLS, min(MAX_CONCURRENT_POLLS, sources + 4))


class PollScheduler:
    """Runs one APScheduler job per configured source (and one comment-thread job per source
    whose comments are followed).

    ``on_result`` is called after every poll (from a worker thread). :meth:`apply_config`
    swaps in a reloaded configuration: jobs of removed sources go, new sources are scheduled,
    and changed ones keep their place in the schedule unless their URL changed.
    """

    def __init__(
        self,
        config: AppConfig,
        poller: Poller,
        on_result: Callable[[SourceConfig, PollResult], None],
        *,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
    ):
        self.config = config
        self.poller = poller
        self.on_result = on_result
        self.clock = clock
        self.rng = rng if rng is not None else random.Random()
        # Jobs waiting for a per-host slot hold a worker, so keep some workers spare for others.
        workers = max(4, config.defaults.max_concurrent_fetches * 2)
        self._scheduler = BackgroundScheduler(
            executors={
                "default": ThreadPoolExecutor(max(workers, poll_workers(len(config.sources)))),
                "comments": ThreadPoolExecutor(MAX_CONCURRENT_COMMENT_ROUNDS),
            },
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone="UTC",
        )
        self._lock = threading.RLock()
        self._stopped = False

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Schedule every configured source from its stored next poll time, and start."""
        with self._lock:
            now = self.clock()
            states = {}
            for source in self.config.sources:
                try:
                    states[source.name] = self.poller.storage.get_source(source.name)
                except AggregatorError as error:
                    log.error("%s: cannot read its schedule: %s", source.name, error)
            due = sum(
                1
                for state in states.values()
                if state.next_poll_at is None or state.next_poll_at <= now
            )
            spread = min(STARTUP_SPREAD, STARTUP_SPREAD_EACH * due)
            for source in self.config.sources:
                if source.name in states:
                    self._schedule_first(source, states[source.name], now, spread)
            self._scheduler.start()

    def shutdown(self) -> None:
        """Start no more jobs; jobs already running are not waited for here."""
        with self._lock:
            self._stopped = True
            if self._scheduler.running:
                self._scheduler.shutdown(wait=False)

    def apply_config(self, config: AppConfig, url_changed: frozenset[str] = frozenset()) -> None:
        """Switch to a reloaded configuration without losing anyone's place in the schedule.

        ``url_changed`` names sources whose configured URL changed (they are due at once).
        """
        with self._lock:
            old = {source.name: source for source in self.config.sources}
            self.config = config
            now = self.clock()
            for name in old.keys() - {s.name for s in config.sources}:
                self._remove(name)
                log.info("%s: removed from the config: no longer polled", name)
            for source in config.sources:
                if source.name not in old or source.name in url_changed:
                    try:
                        state = self.poller.storage.get_source(source.name)
                    except AggregatorError as error:
                        log.error("%s: cannot read its schedule: %s", source.name, error)
                        continue
                    self._schedule_first(source, state, now, timedelta(0))
                    continue
                if self.config.comments_for(source):
                    self._add_comments_job(source)
                else:
                    self._remove_job(f"comments:{source.name}")

    def scheduled(self) -> Mapping[str, datetime | None]:
        """Each source's next scheduled poll (``None`` while it runs or when retired)."""
        with self._lock:
            times: dict[str, datetime | None] = {}
            for source in self.config.sources:
                job = self._scheduler.get_job(f"poll:{source.name}")
                times[source.name] = job.next_run_time if job else None
            return times

    def add_periodic(
        self, job_id: str, func: Callable[[], object], every: timedelta, *, first_in: timedelta
    ) -> None:
        """Run ``func`` every ``every``, first after ``first_in``, in the comments pool (a
        short housekeeping job, such as ``websub_upkeep``); an exception is logged."""

        def run() -> None:
            try:
                func()
            except Exception:  # a bug must not end the job for good
                log.exception("%s failed", job_id)

        with self._lock:
            self._scheduler.add_job(
                run,
                IntervalTrigger(seconds=every.total_seconds(), timezone="UTC"),
                next_run_time=self.clock() + first_in,
                id=job_id,
                name=job_id,
                executor="comments",
                replace_existing=True,
            )

    # -- jobs ------------------------------------------------------------------------------------
    def _schedule_first(
        self, source: SourceConfig, state: SourceState, now: datetime, spread: timedelta
    ) -> None:
        at = first_run_at(state, now, spread=spread, rng=self.rng)
        if at is None:
            log.warning("%s: retired (410 Gone): not scheduled", source.name)
            self._remove(source.name)
            return
        self._schedule(source.name, at)
        if self.config.comments_for(source):
            self._add_comments_job(source)
        else:
            self._remove_job(f"comments:{source.name}")

    def _schedule(self, name: str, at: datetime) -> None:
        with self._lock:
            if self._stopped or name not in {s.name for s in self.config.sources}:
                return
            self._scheduler.add_job(
                self._run,
                DateTrigger(run_date=at, timezone="UTC"),
                args=[name],
                id=f"poll:{name}",
                name=f"poll {name}",
                replace_existing=True,
            )

    def _add_comments_job(self, source: SourceConfig) -> None:
        job_id = f"comments:{source.name}"
        if self._scheduler.get_job(job_id) is not None:
            return
        self._scheduler.add_job(
            self._run_comments,
            IntervalTrigger(
                seconds=COMMENTS_CHECK_INTERVAL.total_seconds(), jitter=30, timezone="UTC"
            ),
            args=[source.name],
            id=job_id,
            name=f"comments {source.name}",
            executor="comments",
            replace_existing=True,
        )

    def _run_comments_now(self, source: SourceConfig) -> None:
        try:
            self._scheduler.modify_job(f"comments:{source.name}", next_run_time=self.clock())
        except Exception:  # the job is gone (shutting down): the next round reads them
            log.debug("%s: comments job not found", source.name)

    def _remove(self, name: str) -> None:
        self._remove_job(f"poll:{name}")
        self._remove_job(f"comments:{name}")

    def _remove_job(self, job_id: str) -> None:
        if self._scheduler.get_job(job_id) is not None:
            self._scheduler.remove_job(job_id)

    def _current(self, name: str) -> SourceConfig | None:
        with self._lock:
            for source in self.config.sources:
                if source.name == name:
                    return source
        return None

    def _run(self, name: str) -> None:
        source = self._current(name)
        if source is None:
            return  # removed by a reload while this run was waiting
        # Threads are read in the comments pool, so that a slow blog's threads never hold up
        # another source's poll; new posts get theirs read at once.
        result = self.poller.poll_source(source, comments=False)
        if result.status == "skipped" and self.poller.stopping.is_set():
            return
        # A comment count that moved in the feed made its thread due: read it now, not at the
        # next comment round minutes later (issue 15); threads whose count did not move wait.
        moved = result.new or result.updated or result.moved_threads
        if result.ok and moved and self.config.comments_for(source):
            self._run_comments_now(source)
        try:
            self.on_result(source, result)
        finally:
            # Added after on_result, so that this run has ended before the next one can start
            # (max_instances=1 would otherwise drop a run due while publishing went on).
            if result.next_poll_at is not None:
                self._schedule(name, result.next_poll_at)
            elif result.status == "error" and not self._retired(name):
                # The error could not even be recorded (storage trouble): try again later.
                self._schedule(name, self.clock() + self.config.defaults.interval_floor)

    def _retired(self, name: str) -> bool:
        try:
            return self.poller.storage.get_source(name).retired_at is not None
        except AggregatorError:
            return False

    def _run_comments(self, name: str) -> None:
        source = self._current(name)
        if source is None:
            return
        result = self.poller.follow_comments(source)
        if result.new_comments or result.changed_comments:
            self.on_result(source, result)
