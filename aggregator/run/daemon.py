"""The daemon's lifecycle: lock, start the scheduler and the HTTP server, reload, stop cleanly.

``Daemon.run`` runs in the foreground (as systemd expects) and returns an exit code:

- it first takes ``<database>.lock``, so two daemons never write one database;
- SIGTERM and SIGINT stop it: no new poll or request starts, running polls get a few seconds
  to finish their transaction, and whatever is still running then is abandoned (every write
  is one transaction, so the database stays consistent);
- SIGHUP reloads the configuration file: sources added, removed or changed, outputs
  re-rendered; a broken file is refused with one log line and the running configuration stays;
- under systemd it reports READY=1, RELOADING=1 and STOPPING=1 (``Type=notify``).

The HTTP server runs on its own thread; the main thread only waits for signals.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from aggregator.alerts import AlertDispatcher
from aggregator.config.loading import load_config
from aggregator.config.outputs import OutputConfig
from aggregator.config.schema import AppConfig
from aggregator.config.sources import SourceConfig
from aggregator.errors import AggregatorError, ConfigError, LockedError, StorageError
from aggregator.models import PollResult
from aggregator.poll.poller import Poller
from aggregator.publish.publisher import Publisher
from aggregator.publish.websub import notify_changes
from aggregator.run.logs import setup_logging
from aggregator.run.memory import tune_malloc
from aggregator.run.sdnotify import notify, reloading
from aggregator.schedule.policy import is_file_source
from aggregator.schedule.scheduler import PollScheduler
from aggregator.serve import httpserver
from aggregator.serve.httpserver import Server
from aggregator.serve.metrics import Metrics
from aggregator.serve.server import create_app
from aggregator.storage import Storage
from aggregator.storage.lock import DatabaseLock

__all__ = ["Daemon", "setup_logging"]

log = logging.getLogger("aggregator")

STOP_GRACE_SECONDS = 5.0
# How long the publisher waits after a poll changed an output, so that polls finishing together
# cost one render.
PUBLISH_DELAY_SECONDS = 0.3
# The first prune waits this long after start (the start is busy enough), then daily.
PRUNE_FIRST_DELAY_SECONDS = 600.0


SERVER_START_SECONDS = 10.0
# Keys that a reload cannot change under a running daemon (the lock, the open server socket).
RESTART_ONLY = ("database", "public_dir", "server")


def make_server(config: AppConfig) -> Server:
    """The guarded HTTP server for ``aggregator serve``, which exits with status 0 on SIGTERM
    or Ctrl-C."""
    return httpserver.make_server(create_app(config), config.server)


class Daemon:
    """Poller, scheduler, publisher and server in one process."""

    def __init__(
        self,
        config: AppConfig,
        *,
        config_path: str | os.PathLike[str] | None = None,
        loaded: AppConfig | None = None,
    ):
        """``config`` is what runs; ``loaded`` is the file as read, before command-line
        overrides (``--port``), so that a reload only warns about what the file changed."""
        self.config = config
        self.config_path = Path(config_path) if config_path else config.config_path
        self._loaded = loaded or config
        self.metrics = Metrics()
        self.poller = Poller(config, metrics=self.metrics)
        self._publish_lock = threading.Lock()
        self.scheduler = PollScheduler(config, self.poller, self._after_poll, rng=random.Random())
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._server: Server | None = None
        # One publisher for the daemon's life: it remembers what it wrote, so an output whose
        # inputs did not change is not rendered again. Each thread uses its own connection.
        self.publisher = Publisher(config, lambda: self.poller.storage)
        # Outputs waiting to be re-rendered, by name: polls only mark them, and one publisher
        # thread renders them, so that a poll never waits for rendering (polls stay on time)
        # and a burst of polls costs one render per output.
        self._dirty: set[str] = set()
        self._dirty_lock = threading.Lock()
        self._publish_wanted = threading.Event()
        self._publisher_thread: threading.Thread | None = None
        # Alerts run on their own threads: a poll only pokes them (issue 15).
        self.alerts = AlertDispatcher(config)

    # -- publishing ------------------------------------------------------------------------------
    def publish(self, outputs: Sequence[OutputConfig] | None = None) -> None:
        """Render outputs (all by default); a failure is logged, never fatal."""
        with self._publish_lock:
            try:
                changed = self.publisher.publish(outputs)
            except AggregatorError as error:
                log.error("publish failed: %s", error)
                return
            for path in changed:
                log.info("published %s", _shown(path, self.config.public_dir))
            if log.isEnabledFor(logging.DEBUG):
                stages = sorted(self.publisher.times.seconds.items(), key=lambda item: -item[1])
                log.debug(
                    "publish took %.0f ms: %s",
                    1000 * sum(seconds for _, seconds in stages),
                    ", ".join(f"{name} {1000 * seconds:.0f} ms" for name, seconds in stages[:4]),
                )
            notify_changes(self.config, changed)

    def apply_config(self, config: AppConfig) -> None:
        """Publish with a reloaded configuration: every output is re-rendered where the new
        configuration changes it (its rules, shape, sources or killfiles), and only there."""
        with self._publish_lock:
            self.config = config
            self.publisher.configure(config)
        self.publish()

    def _after_poll(self, source: SourceConfig, result: PollResult) -> None:
        if result.ok:  # errors were logged by the poller, with the next poll time
            log.info("%s", result.describe())
        # New or updated entries, and new or edited comments, change the outputs that
        # include the source; nothing else re-renders them.
        if result.changed:
            self.alerts.poke()  # after the poll's store: alerts read what it committed
            outputs = self.config.outputs_for(source.name)
            if self._publisher_thread is None:  # not running as a daemon: render at once
                self.publish(outputs)
                return
            with self._dirty_lock:
                self._dirty.update(output.name for output in outputs)
            self._publish_wanted.set()

    def _publish_loop(self) -> None:
        """Render the outputs that polls marked, a short while after the first mark."""
        while not self._stop.is_set():
            if not self._publish_wanted.wait(0.5):
                continue
            time.sleep(PUBLISH_DELAY_SECONDS)  # let a burst of polls finish first
            self._publish_wanted.clear()
            with self._dirty_lock:
                names, self._dirty = self._dirty, set()
            outputs = [output for output in self.config.outputs if output.name in names]
            if outputs and not self._stop.is_set():
                try:
                    self.publish(outputs)
                except Exception:  # a bug must not end publishing for good
                    log.exception("publishing failed")

    # -- retention -------------------------------------------------------------------------------
    def prune(self) -> None:
        """Apply the retention rules once (issue 17); a failure is logged, never fatal."""
        from aggregator.run.prune import prune

        with self._publish_lock:  # outputs are not chosen while rows go
            try:
                with Storage(self.config.database) as storage:
                    report = prune(self.config, storage, datetime.now(UTC))
            except AggregatorError as error:
                log.error("prune failed: %s", error)
                return
        if report.entries or report.comments:
            log.info(
                "pruned %d entries, %d comments; database %d -> %d bytes",
                report.entries,
                report.comments,
                report.bytes_before,
                report.bytes_after,
            )

    def _prune_loop(self) -> None:
        """Prune a while after start, then once every :data:`PRUNE_INTERVAL`."""
        from aggregator.run.prune import PRUNE_INTERVAL

        delay = PRUNE_FIRST_DELAY_SECONDS
        while not self._stop.wait(delay):
            try:
                self.prune()
            except Exception:  # a bug must not end pruning for good
                log.exception("pruning failed")
            delay = PRUNE_INTERVAL.total_seconds()

    # -- lifecycle -------------------------------------------------------------------------------
    def run(self) -> int:
        """Run until SIGINT or SIGTERM; return the process exit code."""
        tune_malloc()
        # A crash in a C extension leaves the Python stacks of every thread in the log.
        if not faulthandler.is_enabled():
            faulthandler.enable()
        lock = DatabaseLock(self.config.database)
        try:
            lock.acquire()  # LockedError: another daemon has this database
        except LockedError:
            raise
        except StorageError as error:
            # The database's folder is unusable (a file in its way, read-only, full): no daemon
            # can write there, so there is nothing to guard; serve what was published.
            log.error("database: %s", error)
        try:
            return self._run_locked()
        finally:
            lock.release()

    def _run_locked(self) -> int:
        # A database that cannot be opened or written (read-only file, full disk) is logged,
        # and the daemon goes on serving the feeds it published before; polls then fail one by
        # one with the same clear error in the log.
        try:
            with Storage(self.config.database):
                pass  # create the database and apply migrations before anything else
            self.poller.sync_sources()
        except AggregatorError as error:
            log.error("database: %s; serving the feeds already published", error)
        self._warn_about_floors(self.config)
        try:
            self.alerts.start()
        except AggregatorError as error:
            log.error("alerts: %s", error)
        self.publish()
        self._install_signal_handlers()
        self._publisher_thread = threading.Thread(
            target=self._publish_loop, name="publisher", daemon=True
        )
        self._publisher_thread.start()
        threading.Thread(target=self._prune_loop, name="prune", daemon=True).start()
        self.scheduler.start()
        self._server = httpserver.make_server(
            create_app(lambda: self.config, metrics=self.metrics, expect_polling=True),
            self.config.server,
        )
        server_thread = threading.Thread(target=self._serve, name="http", daemon=True)
        server_thread.start()
        if not self._wait_for_server(server_thread):
            log.error(
                "cannot serve on %s:%s (see above); stopping",
                self.config.server.host,
                self.config.server.port,
            )
            self.stop()
            return 1
        for output in self.config.outputs:
            for fmt in output.formats:
                log.info("subscribe: %s", self.publisher.links(output).feed(fmt))
        notify("READY=1", f"STATUS=polling {len(self.config.sources)} sources")
        log.info(
            "running: %d sources, %d outputs", len(self.config.sources), len(self.config.outputs)
        )
        while not self._stop.is_set():
            if self._reload.wait(0.2):
                self._reload.clear()
                self.reload()
            if not server_thread.is_alive() and not self._stop.is_set():
                log.error("the HTTP server stopped unexpectedly; stopping")
                self._stop.set()
        self.stop()
        server_thread.join(STOP_GRACE_SECONDS)
        return 0

    def _serve(self) -> None:
        assert self._server is not None
        # uvicorn exits when it cannot bind; the main thread notices and reports it.
        with contextlib.suppress(SystemExit):
            self._server.run()

    def _wait_for_server(self, thread: threading.Thread) -> bool:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while time.monotonic() < deadline:
            if self._server is not None and self._server.started:
                return True
            if not thread.is_alive() or self._stop.is_set():
                return False
            time.sleep(0.05)
        return False

    def _install_signal_handlers(self) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            if self._stop.is_set() and signum == signal.SIGINT:
                log.warning("second interrupt: exiting at once")
                os._exit(1)
            log.info("%s received: stopping", signal.Signals(signum).name)
            self._stop.set()

        def hangup(signum: int, frame: FrameType | None) -> None:
            self._reload.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, hangup)

    def request_stop(self) -> None:
        """Ask :meth:`run` to stop (what SIGTERM does)."""
        self._stop.set()

    def request_reload(self) -> None:
        """Ask :meth:`run` to reload the configuration (what SIGHUP does)."""
        self._reload.set()

    def reload(self) -> bool:
        """Re-read the configuration file and apply it; keep the running one if it is broken."""
        if self.config_path is None:
            log.error("reload refused: the configuration did not come from a file")
            return False
        reloading()
        try:
            try:
                new = load_config(self.config_path)
            except ConfigError as error:
                log.error(
                    "reload refused, keeping the running configuration: %s",
                    "; ".join(error.problems),
                )
                return False
            new = self._keep_restart_only(new)
            old_names = {s.name for s in self.config.sources}
            new_names = {s.name for s in new.sources}
            changed = {
                s.name
                for s in new.sources
                if s.name in old_names and s != self.config.source(s.name)
            }
            self.config = new
            self.poller.reconfigure(new)
            try:
                url_changed = frozenset(self.poller.sync_sources())
            except AggregatorError as error:
                log.error("reload: cannot record the sources: %s", error)
                url_changed = frozenset()
            self.scheduler.apply_config(new, url_changed)
            try:
                self.alerts.reconfigure(new)
            except AggregatorError as error:
                log.error("reload: alerts: %s", error)
            self._warn_about_floors(new)
            self.apply_config(new)
            log.info(
                "reloaded %s: %d sources (%d added, %d removed, %d changed), %d outputs",
                self.config_path,
                len(new.sources),
                len(new_names - old_names),
                len(old_names - new_names),
                len(changed),
                len(new.outputs),
            )
            return True
        finally:
            notify("READY=1", f"STATUS=polling {len(self.config.sources)} sources")

    def _keep_restart_only(self, new: AppConfig) -> AppConfig:
        for key in RESTART_ONLY:
            if getattr(new, key) != getattr(self._loaded, key):
                log.warning("reload: %s changed; it takes effect at the next restart", key)
        self._loaded = new
        return new.model_copy(update={key: getattr(self.config, key) for key in RESTART_ONLY})

    def _warn_about_floors(self, config: AppConfig) -> None:
        floor = config.defaults.interval_floor
        for source in config.sources:
            interval = config.interval_for(source)
            if interval < floor and not is_file_source(source):
                log.warning(
                    "%s: interval %s is below interval_floor %s: polled every %s instead",
                    source.name,
                    interval,
                    floor,
                    floor,
                )

    def stop(self) -> None:
        """Stop scheduling and requests, give running polls a moment, then stop serving."""
        notify("STOPPING=1")
        log.info("stopping")
        self._stop.set()  # the publisher thread ends after its current publish
        self.scheduler.shutdown()
        self.poller.stop()
        if self._server is not None:
            self._server.should_exit = True
        if not self.poller.wait_idle(STOP_GRACE_SECONDS):
            # A request is still waiting for its answer. Every write is one transaction, so
            # leaving now cannot corrupt the database: that poll never committed, and the next
            # start finds it still due. (A normal exit would wait for the worker threads.)
            log.warning("a poll is still running after %.0fs; exiting anyway", STOP_GRACE_SECONDS)
            notify("STOPPING=1")
            logging.shutdown()
            os._exit(0)
        self.alerts.stop(STOP_GRACE_SECONDS)
        if self._publisher_thread is not None:
            # A publish in progress finishes (it notices the stop before the next one): the
            # interpreter must not shut down under a thread still inside lxml or SQLite.
            self._publisher_thread.join(STOP_GRACE_SECONDS)
        self.poller.close()
        log.info("stopped")


def _shown(path: Path, public_dir: Path) -> str:
    """A published file as the log names it: its path under ``public_dir`` (each output's
    comment feeds share a file name), or the whole path when it lies elsewhere."""
    try:
        return str(path.relative_to(public_dir))
    except ValueError:
        return str(path)
