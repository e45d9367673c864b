"""The daemon's lifecycle: logging, start the scheduler and the HTTP server, stop cleanly.

``run_daemon`` runs in the foreground (as systemd expects): it polls on schedule, republishes
what changed, and serves the outputs. SIGINT and SIGTERM stop it within a few seconds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
import time

import uvicorn

from aggregator.config import AppConfig, SourceConfig
from aggregator.errors import AggregatorError
from aggregator.models import PollResult
from aggregator.publish import Publisher
from aggregator.scheduler import PollScheduler
from aggregator.server import SERVER_LIMITS, create_app
from aggregator.storage import Storage
from aggregator.update import Poller

log = logging.getLogger("aggregator")

STOP_GRACE_SECONDS = 5.0


def tune_malloc() -> None:
    """Keep glibc from hoarding freed memory in a daemon of many threads and big buffers.

    Each thread gets its own malloc arena, and after a large buffer is freed glibc raises its
    mmap threshold so that the next ones come from those arenas and are never given back: with
    a 10 MB body per poll thread, RSS climbs by hundreds of MB. A fixed threshold keeps large
    buffers in mmap (returned on free) and two arenas bound the rest. No-op off glibc.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_mmap_threshold, m_arena_max = -3, -8  # from glibc's malloc.h
    mallopt(m_mmap_threshold, 128 * 1024)
    mallopt(m_arena_max, 2)


def setup_logging(level: str = "INFO") -> None:
    """Log to stderr in a journald-friendly form (no timestamps under systemd)."""
    under_journald = bool(os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"))
    fmt = (
        "%(levelname)s %(name)s: %(message)s"
        if under_journald
        else "%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr, force=True)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


class Daemon:
    """Poller, scheduler, publisher and server in one process."""

    def __init__(self, config: AppConfig):
        self.config = config
        self.poller = Poller(config)
        self._publish_lock = threading.Lock()
        self.scheduler = PollScheduler(config, self.poller, self._after_poll)

    def publish(self, outputs=None) -> None:  # type: ignore[no-untyped-def]
        with self._publish_lock:
            try:
                storage = self.poller.storage
                changed = Publisher(self.config, storage).publish(outputs)
            except AggregatorError as error:
                log.error("publish failed: %s", error)
                return
            for path in changed:
                log.info("published %s", path.name)

    def _after_poll(self, source: SourceConfig, result: PollResult) -> None:
        log.info("%s", result.describe())
        if result.ok and (result.new or result.updated or result.new_comments):
            self.publish(self.config.outputs_for(source.name))

    def run(self) -> None:
        """Run until SIGINT or SIGTERM.

        A database that cannot be opened or written (read-only file, full disk) is logged, and
        the daemon goes on serving the feeds it published before; polls then fail one by one
        with the same clear error in the log.
        """
        tune_malloc()
        try:
            with Storage(self.config.database):
                pass  # create the database and apply migrations before anything else
            self.poller.sync_sources()
        except AggregatorError as error:
            log.error("database: %s; serving the feeds already published", error)
        self.publish()
        self.scheduler.start()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(self.config),
                host=self.config.server.host,
                port=self.config.server.port,
                log_level="warning",
                access_log=False,
                lifespan="off",
                **SERVER_LIMITS,
            )
        )
        try:
            links = Publisher(self.config, self.poller.storage).links
            for output in self.config.outputs:
                for fmt in output.formats:
                    log.info("subscribe: %s", links(output).feed(fmt))
        except AggregatorError as error:
            log.error("database: %s", error)
        # uvicorn handles SIGINT/SIGTERM while it serves, then restores the previous handlers
        # and raises the signal again; with the default handler that would end the process
        # before the scheduler stops. This one only asks the server to stop.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: setattr(server, "should_exit", True))
        try:
            server.run()
        finally:
            self.stop()

    def stop(self) -> None:
        log.info("stopping")
        self.scheduler.shutdown()
        self.poller.fetcher.close()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for thread in threading.enumerate():
            if thread is not threading.current_thread() and not thread.daemon:
                thread.join(max(0.0, deadline - time.monotonic()))
        busy = [
            t
            for t in threading.enumerate()
            if t is not threading.current_thread() and not t.daemon and t.is_alive()
        ]
        if busy:
            # Every write is one transaction, so leaving now cannot corrupt the database.
            log.warning(
                "%d poll(s) still running after %.0fs; exiting anyway",
                len(busy),
                STOP_GRACE_SECONDS,
            )
            logging.shutdown()
            os._exit(0)
        log.info("stopped")
