"""Read the articles behind a source's entries (``full_text``): fetch each entry's page once,
extract its article in the sandbox, and store it beside the feed's own content.

The pipeline only: what to fetch is decided by :mod:`aggregator.fulltext.decide`, the page is
fetched by the project's :class:`~aggregator.fetch.fetcher.Fetcher` (the found-URL address
rules, the per-host and per-domain limits, the source's request options, a total deadline)
with a size cap of :data:`PAGE_MAX_BYTES`, the article is extracted by the parser's
extraction worker (memory and time capped, :mod:`aggregator.parse.sandbox`), and stored by
:mod:`aggregator.storage.fulltext`. A page that fails gives one warning line naming the source
and the URL; it never fails the poll. Only a transient failure is tried again, on a later poll.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from aggregator.config.sources import FullTextMode, SourceConfig
from aggregator.errors import AggregatorError, FetchError, ParseError, StoppedError
from aggregator.fetch.addresses import Provenance
from aggregator.fetch.describe import short_url
from aggregator.fetch.fetcher import Fetcher
from aggregator.fulltext.decide import (
    PAGES_PER_POLL,
    RECENT_ENTRIES,
    is_html,
    page_url,
    status_after_error,
    wants_page,
)
from aggregator.models import RequestOptions
from aggregator.parse.sandbox import Parser
from aggregator.storage import Storage
from aggregator.storage.fulltext import FullTextCandidate
from aggregator.terminal import safe_text

log = logging.getLogger(__name__)

#: An entry's page is fetched up to this size (or the configured ``max_body_size``, if smaller).
PAGE_MAX_BYTES = 2 * 1024 * 1024
#: No new page is started after this many seconds of one run: slow pages (each up to the fetch
#: timeout plus 20 s of extraction) must not hold a poll thread and the extraction worker for
#: minutes; the pages left wait for the next poll.
RUN_SECONDS = 60.0


@dataclass(frozen=True)
class FullTextRun:
    """What one run over a source's entries did: articles stored, pages that failed."""

    stored: int = 0
    failed: int = 0


class FullTextReader:
    """Fetches, extracts and stores the articles of one source's due entries at a time.

    ``write_lock`` is the poller's: every write is one short transaction under it. Safe to
    share between threads (it keeps no state of its own between runs).
    """

    def __init__(
        self,
        *,
        parser: Parser,
        clock: Callable[[], datetime],
        write_lock: threading.Lock,
    ):
        self.parser = parser
        self.clock = clock
        self.write_lock = write_lock

    def read(
        self,
        source: SourceConfig,
        source_id: int,
        mode: FullTextMode,
        *,
        storage: Storage,
        fetcher: Fetcher,
        request: RequestOptions | None = None,
    ) -> FullTextRun:
        """Consider the newest entries of a source not considered yet (and those to retry);
        fetch at most :data:`PAGES_PER_POLL` pages. Never raises: a failure of the database
        (or a bug) is one warning line, and the poll it follows stands."""
        if mode is False:
            return FullTextRun()
        try:
            return self._read(source, source_id, mode, storage, fetcher, request)
        except AggregatorError as error:
            log.warning("%s: full text: %s", source.name, safe_text(error))
        except Exception:  # a bug must not fail the poll it follows
            log.exception("unexpected error while reading full texts of %s", source.name)
        return FullTextRun()

    def _read(
        self,
        source: SourceConfig,
        source_id: int,
        mode: FullTextMode,
        storage: Storage,
        fetcher: Fetcher,
        request: RequestOptions | None,
    ) -> FullTextRun:
        candidates = storage.full_text_candidates(
            source_id, recent=RECENT_ENTRIES, include_skipped=mode is True
        )
        stored = failed = fetched = 0
        began = time.monotonic()
        for candidate in candidates:
            if fetched >= PAGES_PER_POLL or time.monotonic() - began > RUN_SECONDS:
                break
            url = page_url(candidate.link)
            if not wants_page(mode, candidate.content, candidate.summary):
                self._store(storage, candidate, "skipped", url=url)
                continue
            if url is None:
                self._store(storage, candidate, "failed", error="the entry links to no web page")
                continue
            fetched += 1
            try:
                article = self._article(source, url, fetcher, request)
            except StoppedError:
                break
            except AggregatorError as error:
                attempts = candidate.attempts + 1
                status = status_after_error(error, attempts)
                again = "; tried again on the next poll" if status == "retry" else ""
                log.warning(
                    "%s: full text of %s: %s%s",
                    source.name,
                    safe_text(short_url(url)),
                    safe_text(error),
                    again,
                )
                self._store(
                    storage, candidate, status, url=url, error=str(error), attempts=attempts
                )
                failed += 1
                continue
            self._store(storage, candidate, "ok", url=url, content=article)
            stored += 1
        return FullTextRun(stored=stored, failed=failed)

    def _article(
        self,
        source: SourceConfig,
        url: str,
        fetcher: Fetcher,
        request: RequestOptions | None,
    ) -> str:
        """The sanitized article of the page at ``url``; raises FetchError or ParseError."""
        fetched = fetcher.fetch(
            url,
            # A link in a feed is a found URL: public addresses only, unless on the source's origin.
            provenance=Provenance.found_in(source.url),
            request=request,
            max_bytes=PAGE_MAX_BYTES,
        )
        content_type = fetched.headers.get("content-type")
        if not is_html(content_type):
            raise FetchError(f"not a web page ({safe_text(content_type)})", status=fetched.status)
        article = self.parser.extract_article(fetched.content or b"", fetched.final_url)
        if article is None:
            raise ParseError("no article found in the page")
        return article

    def _store(
        self,
        storage: Storage,
        candidate: FullTextCandidate,
        status: str,
        *,
        url: str | None = None,
        content: str | None = None,
        error: str | None = None,
        attempts: int = 0,
    ) -> None:
        with self.write_lock, storage.transaction():
            storage.store_full_text(
                candidate.entry_id,
                status,
                self.clock(),
                url=url,
                content=content,
                error=error,
                attempts=attempts,
            )
