"""APScheduler 3.x: one job per source, on its interval with jitter, never overlapping itself.

This is the only module that imports APScheduler. Each job polls its source through the shared
:class:`~aggregator.update.Poller`, records when it should run next, and republishes the outputs
that include the source when anything changed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from aggregator.config import AppConfig, SourceConfig
from aggregator.errors import AggregatorError
from aggregator.models import PollResult
from aggregator.update import Clock, Poller, utc_now

log = logging.getLogger(__name__)

# Polls mostly wait on the network, and each is bounded by the fetch deadline and the parse
# sandbox. One worker per source (at least 16, at most 64) keeps good sources on time even
# when every other source uses up its whole deadline.
MIN_CONCURRENT_POLLS = 16
MAX_CONCURRENT_POLLS = 64
# Comment rounds run in their own pool, so that slow comment threads never delay a poll.
MAX_CONCURRENT_COMMENT_ROUNDS = 4
# How often the daemon looks for comment threads that are due; each thread's own schedule
# (aggregator.decide.decide_next_comments_poll) says whether it is.
COMMENTS_CHECK_INTERVAL = timedelta(minutes=5)


def poll_workers(sources: int) -> int:
    """How many polls may run at once for a configuration with ``sources`` sources."""
    return max(MIN_CONCURRENT_POLLS, min(MAX_CONCURRENT_POLLS, sources + 4))


class PollScheduler:
    """Runs one APScheduler job per configured source."""

    def __init__(
        self,
        config: AppConfig,
        poller: Poller,
        on_result: Callable[[SourceConfig, PollResult], None],
        *,
        clock: Clock = utc_now,
    ):
        self.config = config
        self.poller = poller
        self.on_result = on_result
        self.clock = clock
        self._scheduler = BackgroundScheduler(
            executors={
                "default": ThreadPoolExecutor(poll_workers(len(config.sources))),
                "comments": ThreadPoolExecutor(MAX_CONCURRENT_COMMENT_ROUNDS),
            },
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone="UTC",
        )
        self._idle = threading.Event()

    def start(self) -> None:
        """Schedule every source; a source never polled (or overdue) runs at once."""
        now = self.clock()
        for source in self.config.sources:
            try:
                state = self.poller.storage.get_source(source.name)
                next_poll_at = state.next_poll_at
            except AggregatorError as error:  # an unreadable database: poll now, log why
                log.error("%s: cannot read its state: %s", source.name, error)
                next_poll_at = None
            first_run = next_poll_at if next_poll_at and next_poll_at > now else now
            interval = self.config.interval_for(source)
            self._scheduler.add_job(
                self._run,
                IntervalTrigger(
                    seconds=interval.total_seconds(),
                    jitter=min(interval.total_seconds() * 0.1, 300),
                    timezone="UTC",
                ),
                args=[source],
                id=f"poll:{source.name}",
                name=f"poll {source.name}",
                next_run_time=first_run,
                replace_existing=True,
            )
            if self.config.comments_for(source):
                self._scheduler.add_job(
                    self._run_comments,
                    IntervalTrigger(
                        seconds=COMMENTS_CHECK_INTERVAL.total_seconds(), jitter=30, timezone="UTC"
                    ),
                    args=[source],
                    id=f"comments:{source.name}",
                    name=f"comments {source.name}",
                    executor="comments",
                    replace_existing=True,
                )
        self._scheduler.start()

    def shutdown(self) -> None:
        """Stop scheduling; jobs already running are not waited for."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def _run_comments_now(self, source: SourceConfig) -> None:
        try:
            self._scheduler.modify_job(f"comments:{source.name}", next_run_time=self.clock())
        except Exception:  # the job is gone (shutting down): the next round reads them
            log.debug("%s: comments job not found", source.name)

    def _run_comments(self, source: SourceConfig) -> None:
        result = self.poller.poll_comments(source, PollResult(source.name, "unchanged"))
        if result.new_comments:
            self.on_result(source, result)

    def _run(self, source: SourceConfig) -> None:
        result = self.poller.poll_source(source, comments=False)
        if result.ok and (result.new or result.updated) and self.config.comments_for(source):
            # New posts: read their threads now, in the comments pool, not in this poll.
            self._run_comments_now(source)
        interval: timedelta = self.config.interval_for(source)
        try:
            storage = self.poller.storage
            state = storage.get_source(source.name)
            with self.poller.write_lock, storage.transaction():
                storage.update_source(state.id, next_poll_at=self.clock() + interval)
        except AggregatorError as error:  # the poll's own error says it already
            log.warning("%s: cannot record next poll time: %s", source.name, error)
        except Exception:  # recording the schedule must never kill the job
            log.exception("%s: cannot record next poll time", source.name)
        self.on_result(source, result)
