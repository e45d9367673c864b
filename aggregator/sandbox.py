"""Parse untrusted documents in a worker process with a memory cap and a time limit (pebble).

feedparser is pure Python and keeps the whole document as objects: a 10 MB feed of 300,000
tiny entries takes over a minute and ~400 MB, and it holds the GIL all along, which would stall
the scheduler and the HTTP server. So the daemon parses in a separate process:

* the worker's address space is capped (:data:`MEMORY_LIMIT`); a document that needs more
  fails with a clear :class:`~aggregator.errors.ParseError` while the daemon's own memory does
  not move;
* a parse that runs longer than the time limit is killed, and the worker replaced;
* a worker that dies (a crash in a C extension) costs that one document only.

:class:`InProcessParser` offers the same calls without a worker, for tests and tools that
parse a handful of known files. Nothing here decides what a parse means: the functions are
those of :mod:`aggregator.parse` and :mod:`aggregator.pages`.
"""

from __future__ import annotations

import multiprocessing
import resource
import threading
from collections.abc import Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from typing import Any, Protocol

from pebble import ProcessExpired, ProcessPool

from aggregator import pages, parse
from aggregator.decoding import format_size
from aggregator.errors import ParseError
from aggregator.models import CommentData, FeedData
from aggregator.pages import PageSelectors

#: The worker's address space at most: Python and its libraries take about 40 MB of it.
MEMORY_LIMIT = 192 * 1024 * 1024
#: One document's parse at most, in seconds (a 10,000-entry feed takes about 10).
PARSE_TIMEOUT = 60.0
WORKERS = 2


class Parser(Protocol):
    """What the pipeline needs from a parser, wherever it runs."""

    def parse_feed(
        self, content: bytes, headers: Mapping[str, str], url: str, *, now: datetime
    ) -> FeedData: ...

    def parse_comments(
        self, content: bytes, headers: Mapping[str, str], url: str, *, now: datetime
    ) -> tuple[CommentData, ...]: ...

    def extract_comments(
        self, html: bytes, page_url: str, selectors: PageSelectors, timezone: str | None
    ) -> list[CommentData]: ...

    def close(self) -> None: ...


class InProcessParser:
    """Parses in the calling thread: no limits beyond those of the parse functions."""

    def parse_feed(
        self, content: bytes, headers: Mapping[str, str], url: str, *, now: datetime
    ) -> FeedData:
        return parse.parse_feed(content, headers, url, now=now)

    def parse_comments(
        self, content: bytes, headers: Mapping[str, str], url: str, *, now: datetime
    ) -> tuple[CommentData, ...]:
        return parse.parse_comments(content, headers, url, now=now)

    def extract_comments(
        self, html: bytes, page_url: str, selectors: PageSelectors, timezone: str | None
    ) -> list[CommentData]:
        return pages.extract_comments(html, page_url, selectors, timezone=timezone)

    def close(self) -> None:
        pass


class SandboxParser:
    """Parses in worker processes with :data:`MEMORY_LIMIT` and a time limit each.

    The pool starts on first use and restarts itself if it breaks; :meth:`close` stops it.
    Safe to share between threads.
    """

    def __init__(
        self,
        *,
        workers: int = WORKERS,
        memory_limit: int = MEMORY_LIMIT,
        timeout: float = PARSE_TIMEOUT,
    ):
        self.workers = workers
        self.memory_limit = memory_limit
        self.timeout = timeout
        self._pool: ProcessPool | None = None
        self._lock = threading.Lock()

    def parse_feed(
        self, content: bytes, headers: Mapping[str, str], url: str, *, now: datetime
    ) -> FeedData:
        result: FeedData = self._run(_parse_feed, content, dict(headers), url, now)
        return result

    def parse_comments(
        self, content: bytes, headers: Mapping[str, str], url: str, *, now: datetime
    ) -> tuple[CommentData, ...]:
        result: tuple[CommentData, ...] = self._run(
            _parse_comments, content, dict(headers), url, now
        )
        return result

    def extract_comments(
        self, html: bytes, page_url: str, selectors: PageSelectors, timezone: str | None
    ) -> list[CommentData]:
        result: list[CommentData] = self._run(
            _extract_comments, html, page_url, selectors, timezone
        )
        return result

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()
            pool.join(timeout=5)

    def __enter__(self) -> SandboxParser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get_pool(self) -> ProcessPool:
        with self._lock:
            if self._pool is None or not self._pool.active:
                self._pool = ProcessPool(
                    max_workers=self.workers,
                    initializer=_start_worker,
                    initargs=(self.memory_limit,),
                    # A fresh interpreter: forking a daemon with live threads is unsafe.
                    context=multiprocessing.get_context("spawn"),
                )
            return self._pool

    def _run(self, function: Any, *args: Any) -> Any:
        future = self._get_pool().schedule(function, args=args, timeout=self.timeout)
        try:
            return future.result()
        except FutureTimeout:
            raise ParseError(f"parsing took longer than {self.timeout:g}s") from None
        except ProcessExpired as error:
            raise ParseError(
                f"the parser process died (exit code {error.exitcode}); "
                f"the document may need more than {format_size(self.memory_limit)}"
            ) from None
        except MemoryError:
            raise ParseError(
                f"the document needs more than {format_size(self.memory_limit)} to parse"
            ) from None


def _start_worker(limit: int) -> None:
    """Load everything a parse needs, then cap the address space.

    This module's imports already loaded feedparser, nh3 and selectolax; expat is loaded by
    feedparser only at its first parse, and a C extension that cannot be mapped under the cap
    would fail every parse with a misleading "no parsers found".
    """
    import xml.sax.expatreader  # noqa: F401

    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


# Module-level so that the worker process can import them by name.
def _parse_feed(content: bytes, headers: dict[str, str], url: str, now: datetime) -> FeedData:
    return parse.parse_feed(content, headers, url, now=now)


def _parse_comments(
    content: bytes, headers: dict[str, str], url: str, now: datetime
) -> tuple[CommentData, ...]:
    return parse.parse_comments(content, headers, url, now=now)


def _extract_comments(
    html: bytes, page_url: str, selectors: PageSelectors, timezone: str | None
) -> list[CommentData]:
    return pages.extract_comments(html, page_url, selectors, timezone=timezone)
