"""The parse workers: lanes of one process each, their pools, and the fork server they come from.

Each lane is one ``multiprocessing`` worker behind a pipe, with one memory cap and one time
limit, restarted when it dies or overruns:

* the worker's address space is capped; a document that needs more fails with a clear
  :class:`~aggregator.errors.ParseError` while the daemon's own memory does not move;
* a job that runs longer than the time limit is killed, and the worker replaced;
* a worker that dies (a crash in a C extension) costs that one document only.

(pebble's process pool did this too, but a worker dying of its memory cap sometimes made the
pool's replacement worker crash on a vanished named semaphore; one worker per lane needs no
pool and no shared semaphore.) A :class:`Pool` is the lanes of one kind, a job taking whichever
is idle. Workers are forked from a fork server that has imported the parse modules once
(:data:`PRELOAD`): the :mod:`zygote <aggregator.parse.zygote>` forked from this process when the
first parser opens while the process has one thread (``aggregator poll``, the daemon), else
``multiprocessing``'s fork server, a fresh interpreter, started without the main script
(:func:`_without_main`).

A lane's memory limit is what a job may add to the worker's address space: the cap is set
above what the worker has mapped once it has started, so it means the same whichever server
the worker came from.

This module knows nothing of what a job does: :mod:`aggregator.parse.sandbox` chooses the lane
and sends it one of the job functions of :mod:`aggregator.parse.jobs`, which the worker imports
by name.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import queue
import resource
import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from aggregator.errors import AggregatorError, ParseError
from aggregator.fetch.decoding import format_size
from aggregator.parse.zygote import WorkerProcess, Zygote


def default_workers() -> int:
    """Parse workers for small documents: one per core the process may use, 2 to 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 2
    return max(2, min(4, cores))


#: Modules the fork server loads once, so that each worker forked from it starts parsing at
#: once instead of importing feedparser, lxml, nh3 and selectolax again (~0.3 CPU s a worker).
PRELOAD = [
    "aggregator.parse.workers",
    "aggregator.parse.jobs",
    "aggregator.parse.feed",
    "aggregator.parse.comment_feed",
    "aggregator.parse.links",
    "aggregator.parse.rewrite",
    "aggregator.comments.pages",
    "aggregator.comments.detect",
    "xml.sax.expatreader",
]
_open_parsers: set[int] = set()
_open_lock = threading.Lock()
_main_lock = threading.Lock()
_zygote: Zygote | None = None


def _context() -> Any:
    """Workers are forked from a fork server: forking the daemon itself, which has live
    threads, is unsafe; a fresh interpreter for each ("spawn") re-imports every parse module.
    The fork server is a fresh single-threaded interpreter that imports them once (:data:`PRELOAD`)
    and forks each worker from that state."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


@contextmanager
def _without_main() -> Iterator[None]:
    """Start a worker without the main module. multiprocessing has each new process run the
    parent's main script again (as ``__mp_main__``) unless it is a package's ``__main__``: for the
    ``aggregator`` console script that is the whole command line (click, the config models,
    aiohttp), about 0.3 CPU s a worker, and the workers need nothing from it (their loop is
    this module's, their jobs :mod:`aggregator.parse.jobs`'). So ``__main__`` is a bare module
    while a worker starts."""
    with _main_lock:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if main is not None:
                sys.modules["__main__"] = main


def parser_opened(parser: object) -> None:
    """Note ``parser`` as open: the fork server runs until the last open one closes. The first
    one starts the zygote, when this process has only one thread (:meth:`Zygote.start`)."""
    global _zygote
    with _open_lock:
        _open_parsers.add(id(parser))
        if _zygote is None:
            _zygote = Zygote.start(PRELOAD)


def zygote_running() -> bool:
    """Whether new workers come from the zygote (not from ``multiprocessing``'s fork server)."""
    zygote = _zygote
    return zygote is not None and zygote.alive()


def parser_closed(parser: object) -> None:
    """Forget ``parser``; when it was the last open one, stop the fork servers (and wait for
    them, so that their CPU time and their workers' are counted in this process's children)."""
    global _zygote
    with _open_lock:
        _open_parsers.discard(id(parser))
        if _open_parsers:
            return
        if _zygote is not None:
            _zygote.stop()
            _zygote = None
        server = multiprocessing.forkserver._forkserver
        stop = getattr(server, "_stop", None)  # private: there is no public way to stop it
        if stop is not None:
            stop()


class Pool:
    """Workers of one lane; a parse takes whichever is idle (waiting when none is)."""

    def __init__(self, lanes: list[Lane]):
        self._lanes = lanes
        self._idle: queue.SimpleQueue[Lane] = queue.SimpleQueue()
        for lane in lanes:
            self._idle.put(lane)

    def run(self, function: Any, *args: Any) -> Any:
        """``function(*args)`` in the first idle worker; its value, or its error raised."""
        lane = self._idle.get()
        try:
            return lane.run(function, *args)
        finally:
            self._idle.put(lane)

    def close(self) -> None:
        """Stop every worker of the pool."""
        for lane in self._lanes:
            lane.close()


#: How long a new worker may take to start (a fresh interpreter importing the parse modules).
WORKER_START_TIMEOUT = 60.0
_READY = "ready"


class Lane:
    """One worker process with one memory cap and one time limit, used by one parse at a time.

    The worker starts on first use and again after it died or was killed for overrunning.
    """

    def __init__(self, memory_limit: int, timeout: float, *, preload: str | None = None):
        self.memory_limit = memory_limit
        self.timeout = timeout
        self.preload = preload  # a module the worker imports before its memory is capped
        self._lock = threading.Lock()
        self._process: BaseProcess | WorkerProcess | None = None
        self._conn: Connection | None = None

    def close(self) -> None:
        """Stop the worker (it starts again on the next job)."""
        with self._lock:
            self._stop()

    def _start(self) -> Connection:
        ours, theirs = multiprocessing.Pipe()
        args = (self.memory_limit, self.preload)
        zygote = _zygote
        process: BaseProcess | WorkerProcess
        try:
            if zygote is not None and zygote.alive():
                process = zygote.spawn(_worker_main, theirs, args)
            else:
                spawned = _context().Process(
                    target=_worker_main, args=(theirs, *args), name="aggregator-parse"
                )
                spawned.daemon = True
                with _without_main():
                    spawned.start()
                process = spawned
        finally:
            theirs.close()  # the worker has its own copy
        self._process, self._conn = process, ours
        # The time limit is the parse's: a fresh interpreter's start and imports (seconds on a
        # loaded machine) must not count against it, so wait for the worker to say it is ready.
        try:
            ready = ours.poll(WORKER_START_TIMEOUT) and ours.recv() == _READY
        except (EOFError, OSError):
            ready = False
        if not ready:
            code = self._stop()
            raise ParseError(f"the parser process did not start (exit code {code})")
        return ours

    def _stop(self) -> int | None:
        """Stop the worker (killing it if need be); returns its exit code."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is None:
            return None
        if process.is_alive():
            process.kill()
        process.join(5)
        return process.exitcode

    def run(self, function: Any, *args: Any) -> Any:
        """``function(*args)`` in the worker, under its limits: its value, or its error raised
        (a :class:`ParseError` when the worker overran, ran out of memory or died)."""
        with self._lock:
            alive = self._process is not None and self._process.is_alive()
            conn = self._conn if alive and self._conn is not None else None
            if conn is None:
                self._stop()
                conn = self._start()
            try:
                conn.send((function, args))
                if not conn.poll(self.timeout):
                    self._stop()
                    raise ParseError(f"parsing took longer than {self.timeout:g}s")
                ok, value = conn.recv()
            except (EOFError, OSError):
                code = self._stop()
                raise ParseError(
                    f"the parser process died (exit code {code}); "
                    f"the document may need more than {format_size(self.memory_limit)}"
                ) from None
            if isinstance(value, MemoryError):
                self._stop()  # start afresh rather than with a fragmented heap
        if ok:
            return value
        if isinstance(value, MemoryError):
            raise ParseError(
                f"the document needs more than {format_size(self.memory_limit)} to parse"
            )
        raise value


def _worker_main(conn: Connection, limit: int, preload: str | None = None) -> None:
    """The worker's loop: say it is ready, then run each (function, args) received and send
    back (ok, value)."""
    _start_worker(limit, preload)
    try:
        conn.send(_READY)
    except (EOFError, OSError):
        return
    while True:
        try:
            function, args = conn.recv()
        except (EOFError, OSError):
            return  # the daemon is gone
        try:
            reply: tuple[bool, Any] = (True, function(*args))
        except MemoryError:
            reply = (False, MemoryError())
        except AggregatorError as error:
            reply = (False, error)
        except Exception as error:  # a bug in a parse must come back as a clear error
            reply = (False, ParseError(f"internal error while parsing: {error!r}"[:300]))
        try:
            conn.send(reply)
        except MemoryError:
            conn.send((False, MemoryError()))
        except (EOFError, OSError):
            return


def _start_worker(limit: int, preload: str | None = None) -> None:
    """Load everything a parse needs, then cap the address space.

    The fork server has loaded them already (:data:`PRELOAD`: feedparser, lxml, nh3,
    selectolax; expat, which feedparser loads only at its first parse), so this costs nothing
    then; but a C extension that cannot be mapped under the cap would fail every parse with a
    misleading "no parsers found", so they are loaded here whatever the server did. ``preload``
    names a module the worker's jobs need too (the extraction lane's trafilatura).
    """
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)

    if preload is not None:
        importlib.import_module(preload)

    # A worker that runs out of memory dies noisily; the daemon reports it in one line.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the worker's whole life
    cap = _address_space() + limit
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def _address_space() -> int:
    """Bytes of address space this process has mapped (``VmSize``); 0 where unknown, which
    makes a lane's limit an absolute cap."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0
