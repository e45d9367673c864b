"""Parse untrusted documents in a worker process with a memory cap and a time limit.

feedparser is pure Python and keeps the whole document as objects: a 10 MB feed of 300,000
tiny entries takes over a minute and ~400 MB, and it holds the GIL all along, which would stall
the scheduler and the HTTP server. So the daemon parses in a separate process:

* small and large documents have separate workers, so small feeds never queue behind big ones;
* the worker's address space is capped (:data:`MEMORY_LIMIT`); a document that needs more
  fails with a clear :class:`~aggregator.errors.ParseError` while the daemon's own memory does
  not move;
* a parse that runs longer than the time limit is killed, and the worker replaced;
* a worker that dies (a crash in a C extension) costs that one document only;
* articles are extracted from entries' pages (``full_text``, :mod:`aggregator.fulltext.extract`)
  in a lane of their own (:data:`EXTRACT_MEMORY_LIMIT`, :data:`EXTRACT_TIMEOUT`), started only
  when a source asks for full text, so trafilatura is never loaded otherwise.

Each lane is one ``multiprocessing`` worker behind a pipe, restarted when it dies or overruns.
(pebble's process pool did this too, but a worker dying of its memory cap sometimes made the
pool's replacement worker crash on a vanished named semaphore; one worker per lane needs no
pool and no shared semaphore.)

:class:`InProcessParser` offers the same calls without a worker, for tests and tools that
parse a handful of known files. Nothing here decides what a parse means: the functions are
those of :mod:`aggregator.parse.feed`, :mod:`aggregator.parse.comment_feed`,
:mod:`aggregator.comments.pages` and :mod:`aggregator.parse.links`.
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
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any, Protocol

from aggregator.comments.selectors import PageSelectors
from aggregator.errors import AggregatorError, ParseError
from aggregator.fetch.decoding import format_size
from aggregator.models import CommentData, CommentFeedData, FeedData, RewriteChange, RewriteRule

if TYPE_CHECKING:
    from aggregator.comments.detect import Detection

#: A worker's address space at most: Python and its libraries take about 40 MB of it.
MEMORY_LIMIT = 160 * 1024 * 1024
#: One document's parse at most, in seconds (a 10,000-entry feed takes about 5).
PARSE_TIMEOUT = 60.0
#: Documents up to this size have their own worker, with smaller limits.
SMALL_DOCUMENT = 512 * 1024
SMALL_MEMORY_LIMIT = 96 * 1024 * 1024
SMALL_TIMEOUT = 20.0
#: Extracting one article from a page (trafilatura) at most: its worker's memory and time.
EXTRACT_MEMORY_LIMIT = 192 * 1024 * 1024
EXTRACT_TIMEOUT = 20.0
#: What the extraction worker imports before its memory is capped.
_EXTRACT_MODULE = "aggregator.fulltext.extract"


class Parser(Protocol):
    """What the pipeline needs from a parser, wherever it runs.

    ``parse_feed``'s ``rewrite`` rules (:mod:`aggregator.parse.rewrite`) are applied where the
    feed is parsed, so a rule's work on hostile HTML has the parse's limits too.
    """

    def parse_feed(
        self,
        content: bytes,
        headers: Mapping[str, str],
        url: str,
        *,
        now: datetime,
        rewrite: Sequence[RewriteRule] = (),
    ) -> FeedData: ...

    def explain_rewrite(
        self,
        content: bytes,
        headers: Mapping[str, str],
        url: str,
        *,
        now: datetime,
        rewrite: Sequence[RewriteRule],
    ) -> tuple[RewriteChange, ...]: ...

    def parse_comments(
        self, content: bytes, headers: Mapping[str, str], url: str, *, now: datetime
    ) -> tuple[CommentData, ...]: ...

    def parse_comment_feed(
        self, content: bytes, headers: Mapping[str, str], url: str, *, now: datetime
    ) -> CommentFeedData: ...

    def extract_comments(
        self,
        html: bytes,
        page_url: str,
        selectors: PageSelectors,
        timezone: str | None,
        now: datetime | None = None,
    ) -> list[CommentData]: ...

    def read_page(
        self,
        html: bytes,
        page_url: str,
        selectors: PageSelectors,
        timezone: str | None,
        now: datetime | None = None,
    ) -> Detection: ...

    def alternate_feeds(self, html: bytes, page_url: str) -> list[str]: ...

    def extract_article(self, html: bytes, page_url: str) -> str | None: ...

    def close(self) -> None: ...


class InProcessParser:
    """Parses in the calling thread: no limits beyond those of the parse functions."""

    def parse_feed(
        self,
        content: bytes,
        headers: Mapping[str, str],
        url: str,
        *,
        now: datetime,
        rewrite: Sequence[RewriteRule] = (),
    ) -> FeedData:
        return _parse_feed(content, dict(headers), url, now, tuple(rewrite))

    def explain_rewrite(
        self,
        content: bytes,
        headers: Mapping[str, str],
        url: str,
        *,
        now: datetime,
        rewrite: Sequence[RewriteRule],
    ) -> tuple[RewriteChange, ...]:
        return _explain_rewrite(content, dict(headers), url, now, tuple(rewrite))

    def parse_comments(
        self, content: bytes, headers: Mapping[str, str], url: str, *, now: datetime
    ) -> tuple[CommentData, ...]:
        return _parse_comments(content, headers, url, now)

    def parse_comment_feed(
        self, content: bytes, headers: Mapping[str, str], url: str, *, now: datetime
    ) -> CommentFeedData:
        return _parse_comment_feed(content, headers, url, now)

    def extract_comments(
        self,
        html: bytes,
        page_url: str,
        selectors: PageSelectors,
        timezone: str | None,
        now: datetime | None = None,
    ) -> list[CommentData]:
        return _extract_comments(html, page_url, selectors, timezone, now)

    def read_page(
        self,
        html: bytes,
        page_url: str,
        selectors: PageSelectors,
        timezone: str | None,
        now: datetime | None = None,
    ) -> Detection:
        return _read_page(html, page_url, selectors, timezone, now)

    def alternate_feeds(self, html: bytes, page_url: str) -> list[str]:
        return _alternate_feeds(html, page_url)

    def extract_article(self, html: bytes, page_url: str) -> str | None:
        return _extract_article(html, page_url)

    def close(self) -> None:
        pass


class SandboxParser:
    """Parses in worker processes with a memory cap and a time limit each, in two lanes.

    Documents up to :data:`SMALL_DOCUMENT` bytes (nearly every feed and comment feed) have a
    worker of their own, so a good source's small feed never waits behind a hostile 10 MB one
    that takes its full minute. Larger documents go to the other lane, with
    :data:`MEMORY_LIMIT` and the full time limit. Each lane starts on first use and restarts
    itself if it breaks; :meth:`close` stops both. Safe to share between threads.
    """

    def __init__(
        self,
        *,
        memory_limit: int = MEMORY_LIMIT,
        timeout: float = PARSE_TIMEOUT,
        small_document: int = SMALL_DOCUMENT,
        small_workers: int | None = None,
        extract_memory_limit: int = EXTRACT_MEMORY_LIMIT,
    ):
        self.small_document = small_document
        # Nearly every document is small: one worker per core parses them side by side
        # (feedparser is pure Python, so threads alone would use one core).
        self._small = _Pool(
            [
                _Lane(min(memory_limit, SMALL_MEMORY_LIMIT), min(timeout, SMALL_TIMEOUT))
                for _ in range(small_workers or default_workers())
            ]
        )
        self._large = _Pool([_Lane(memory_limit, timeout)])
        self._extract = _Pool(
            [
                _Lane(
                    extract_memory_limit,
                    min(timeout, EXTRACT_TIMEOUT),
                    preload=_EXTRACT_MODULE,
                )
            ]
        )
        _opened(self)

    def parse_feed(
        self,
        content: bytes,
        headers: Mapping[str, str],
        url: str,
        *,
        now: datetime,
        rewrite: Sequence[RewriteRule] = (),
    ) -> FeedData:
        result: FeedData = self._lane(content).run(
            _parse_feed, content, dict(headers), url, now, tuple(rewrite)
        )
        return result

    def explain_rewrite(
        self,
        content: bytes,
        headers: Mapping[str, str],
        url: str,
        *,
        now: datetime,
        rewrite: Sequence[RewriteRule],
    ) -> tuple[RewriteChange, ...]:
        """What each rule of ``rewrite`` changes in the feed (``aggregator preview --explain``)."""
        result: tuple[RewriteChange, ...] = self._lane(content).run(
            _explain_rewrite, content, dict(headers), url, now, tuple(rewrite)
        )
        return result

    def parse_comments(
        self, content: bytes, headers: Mapping[str, str], url: str, *, now: datetime
    ) -> tuple[CommentData, ...]:
        result: tuple[CommentData, ...] = self._lane(content).run(
            _parse_comments, content, dict(headers), url, now
        )
        return result

    def parse_comment_feed(
        self, content: bytes, headers: Mapping[str, str], url: str, *, now: datetime
    ) -> CommentFeedData:
        result: CommentFeedData = self._lane(content).run(
            _parse_comment_feed, content, dict(headers), url, now
        )
        return result

    def extract_comments(
        self,
        html: bytes,
        page_url: str,
        selectors: PageSelectors,
        timezone: str | None,
        now: datetime | None = None,
    ) -> list[CommentData]:
        result: list[CommentData] = self._lane(html).run(
            _extract_comments, html, page_url, selectors, timezone, now
        )
        return result

    def read_page(
        self,
        html: bytes,
        page_url: str,
        selectors: PageSelectors,
        timezone: str | None,
        now: datetime | None = None,
    ) -> Detection:
        """A post page's comments, the detector that matched, the comment systems it loads by
        script and its other pages of comments (:class:`~aggregator.comments.detect.Detection`)."""
        result: Detection = self._lane(html).run(
            _read_page, html, page_url, selectors, timezone, now
        )
        return result

    def alternate_feeds(self, html: bytes, page_url: str) -> list[str]:
        """The feeds an HTML page links to (``aggregator add``), read in the sandbox."""
        result: list[str] = self._lane(html).run(_alternate_feeds, html, page_url)
        return result

    def extract_article(self, html: bytes, page_url: str) -> str | None:
        """The article of an entry's page as sanitized HTML, or ``None`` when none was found
        (:func:`aggregator.fulltext.extract.extract_article`), in the extraction worker."""
        result: str | None = self._extract.run(_extract_article, html, page_url)
        return result

    def close(self) -> None:
        self._small.close()
        self._large.close()
        self._extract.close()
        _closed(self)

    def __enter__(self) -> SandboxParser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _lane(self, content: bytes) -> _Pool:
        return self._small if len(content) <= self.small_document else self._large


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
    "aggregator.parse.sandbox",
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
    aiohttp), about 0.3 CPU s a worker, and the workers need nothing from it (their functions
    are this module's). So ``__main__`` is a bare module while a worker starts."""
    with _main_lock:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if main is not None:
                sys.modules["__main__"] = main


def _opened(parser: object) -> None:
    with _open_lock:
        _open_parsers.add(id(parser))


def _closed(parser: object) -> None:
    """Forget ``parser``; when it was the last open one, stop the fork server (and wait for it,
    so that its CPU time and its workers' are counted in this process's children)."""
    with _open_lock:
        _open_parsers.discard(id(parser))
        if _open_parsers:
            return
        server = multiprocessing.forkserver._forkserver
        stop = getattr(server, "_stop", None)  # private: there is no public way to stop it
        if stop is not None:
            stop()


class _Pool:
    """Workers of one lane; a parse takes whichever is idle (waiting when none is)."""

    def __init__(self, lanes: list[_Lane]):
        self._lanes = lanes
        self._idle: queue.SimpleQueue[_Lane] = queue.SimpleQueue()
        for lane in lanes:
            self._idle.put(lane)

    def run(self, function: Any, *args: Any) -> Any:
        lane = self._idle.get()
        try:
            return lane.run(function, *args)
        finally:
            self._idle.put(lane)

    def close(self) -> None:
        for lane in self._lanes:
            lane.close()


#: How long a new worker may take to start (a fresh interpreter importing the parse modules).
WORKER_START_TIMEOUT = 60.0
_READY = "ready"


class _Lane:
    """One worker process with one memory cap and one time limit, used by one parse at a time.

    The worker starts on first use and again after it died or was killed for overrunning.
    """

    def __init__(self, memory_limit: int, timeout: float, *, preload: str | None = None):
        self.memory_limit = memory_limit
        self.timeout = timeout
        self.preload = preload  # a module the worker imports before its memory is capped
        self._lock = threading.Lock()
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _start(self) -> Connection:
        context = _context()
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_worker_main,
            args=(theirs, self.memory_limit, self.preload),
            name="aggregator-parse",
        )
        process.daemon = True
        with _without_main():
            process.start()
        theirs.close()
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
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


# Module-level so that the worker process can import them by name.
# The parse modules are imported where they are used: the daemon and ``aggregator poll`` only
# send documents to workers, which have them preloaded (:data:`PRELOAD`).
def _parse_feed(
    content: bytes,
    headers: Mapping[str, str],
    url: str,
    now: datetime,
    rules: tuple[RewriteRule, ...] = (),
) -> FeedData:
    from aggregator.parse import feed as parse

    feed = parse.parse_feed(content, headers, url, now=now, rewrite=rules)
    # What the rules changed is for preview --explain; a poll need not carry it back.
    return replace(feed, rewrite_changes=()) if feed.rewrite_changes else feed


def _explain_rewrite(
    content: bytes,
    headers: Mapping[str, str],
    url: str,
    now: datetime,
    rules: tuple[RewriteRule, ...],
) -> tuple[RewriteChange, ...]:
    from aggregator.parse import feed as parse

    return parse.parse_feed(content, headers, url, now=now, rewrite=rules).rewrite_changes


def _parse_comments(
    content: bytes, headers: Mapping[str, str], url: str, now: datetime
) -> tuple[CommentData, ...]:
    from aggregator.parse import comment_feed

    return comment_feed.parse_comments(content, headers, url, now=now)


def _parse_comment_feed(
    content: bytes, headers: Mapping[str, str], url: str, now: datetime
) -> CommentFeedData:
    from aggregator.parse import comment_feed

    return comment_feed.parse_comment_feed(content, headers, url, now=now)


def _extract_comments(
    html: bytes,
    page_url: str,
    selectors: PageSelectors,
    timezone: str | None,
    now: datetime | None = None,
) -> list[CommentData]:
    from aggregator.comments import pages

    return pages.extract_comments(html, page_url, selectors, timezone=timezone, now=now)


def _read_page(
    html: bytes,
    page_url: str,
    selectors: PageSelectors,
    timezone: str | None,
    now: datetime | None = None,
) -> Detection:
    from aggregator.comments.detect import read_comments

    return read_comments(
        html, page_url, "auto" if selectors.detect else selectors, timezone, now=now
    )


def _alternate_feeds(html: bytes, page_url: str) -> list[str]:
    from aggregator.parse import links

    return links.alternate_feeds(html, page_url)


def _extract_article(html: bytes, page_url: str) -> str | None:
    # Imported here: trafilatura is loaded only where articles are extracted.
    from aggregator.fulltext.extract import extract_article

    return extract_article(html, page_url)
