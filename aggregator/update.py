"""Poll sources: state -> fetch -> parse -> store, one source at a time, errors as results.

This is the pipeline; it does not decide *when* a source is due (that is the scheduler's and
:mod:`aggregator.decide`'s job). A failing source becomes a :class:`PollResult` with an error
and never stops the others. All writes of one poll of one source are one transaction.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime

from aggregator.comments import CommentFollower
from aggregator.config import AppConfig, SourceConfig
from aggregator.errors import AggregatorError, FetchError, ParseError
from aggregator.fetch import Fetcher, body_hash, file_roots_for, file_url_path
from aggregator.models import PollResult
from aggregator.sandbox import Parser, SandboxParser
from aggregator.storage import Storage

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock; tests inject their own."""
    return datetime.now(UTC)


class Poller:
    """Polls configured sources into the database.

    One :class:`Poller` may be used from several threads: each thread gets its own database
    connection, and writes are serialized by a lock so that SQLite never reports "locked".
    """

    def __init__(
        self,
        config: AppConfig,
        *,
        clock: Clock = utc_now,
        fetcher: Fetcher | None = None,
        parser: Parser | None = None,
        manual: bool = False,
    ):
        self.config = config
        self.manual = manual
        self.clock = clock
        self._own_fetcher = fetcher is None
        self.fetcher = fetcher or make_fetcher(config)
        self._own_parser = parser is None
        # Untrusted documents are parsed in a worker process with memory and time limits.
        self.parser: Parser = parser or SandboxParser()
        self._local = threading.local()
        self.write_lock = threading.Lock()
        # Weak: a connection dies with the thread that opened it (the comment readers' pools
        # come and go), so connections and their page caches never pile up in the daemon.
        self._storages: weakref.WeakSet[Storage] = weakref.WeakSet()
        self._storages_lock = threading.Lock()
        self.follower = CommentFollower(
            config,
            storage=lambda: self.storage,
            fetcher=self.fetcher,
            parser=self.parser,
            clock=clock,
            write_lock=self.write_lock,
        )

    def close(self) -> None:
        if self._own_fetcher:
            self.fetcher.close()
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

    @property
    def storage(self) -> Storage:
        """This thread's connection to the database."""
        storage = getattr(self._local, "storage", None)
        if storage is None:
            storage = Storage(self.config.database)
            self._local.storage = storage
            with self._storages_lock:
                self._storages.add(storage)
        return storage

    def sync_sources(self) -> None:
        """Create database rows for configured sources (and update changed URLs)."""
        self.storage.sync_sources(((s.name, s.url) for s in self.config.sources), self.clock())

    def poll_many(
        self,
        sources: Sequence[SourceConfig],
        *,
        workers: int = 8,
        on_result: Callable[[PollResult], None] | None = None,
    ) -> list[PollResult]:
        """Poll several sources concurrently; results come back in the order given."""
        self.sync_sources()
        results: list[PollResult] = []
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(sources) or 1))) as pool:
            for result in pool.map(self.poll_source, sources):
                results.append(result)
                if on_result:
                    on_result(result)
        return results

    def poll_source(self, source: SourceConfig, *, comments: bool = True) -> PollResult:
        """Fetch, parse and store one source, then (with ``comments``) follow its threads.

        Never raises for a source's own failure.
        """
        started = self.clock()
        try:
            result = self._poll(source, started)
        except AggregatorError as error:
            return self._record_error(source, error, started)
        except Exception as error:  # a bug must not take the other sources down with it
            log.exception("unexpected error while polling %s", source.name)
            return self._record_error(source, error, started)
        return self.poll_comments(source, result) if comments else result

    def poll_comments(self, source: SourceConfig, result: PollResult) -> PollResult:
        """Follow the source's comment threads and add the count of new comments to ``result``.

        A manual poll reads every followed thread now; the daemon reads only those due.
        """
        if not self.config.comments_for(source):
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
        return replace(result, new_comments=comments.new, warning=warning)

    def _poll(self, source: SourceConfig, now: datetime) -> PollResult:
        storage = self.storage
        state = storage.get_source(source.name)
        result = self.fetcher.fetch(state.url, etag=state.etag, last_modified=state.last_modified)
        if result.not_modified:
            with self.write_lock, storage.transaction():
                storage.update_source(
                    state.id, last_polled_at=now, last_status=304, last_error=None, error_count=0
                )
            return PollResult(source.name, "not-modified", http_status=304)
        content = result.content or b""
        digest = body_hash(content)
        if digest == state.body_hash:
            # A 200 whose body did not change counts as unchanged: no parse, no write but state.
            with self.write_lock, storage.transaction():
                storage.update_source(
                    state.id,
                    etag=result.etag,
                    last_modified=result.last_modified,
                    last_polled_at=now,
                    last_status=result.status,
                    last_error=None,
                    error_count=0,
                )
            return PollResult(source.name, "unchanged", http_status=result.status)
        feed = self.parser.parse_feed(content, result.headers, result.final_url, now=now)
        with self.write_lock, storage.transaction():
            stored = storage.store_entries(state, feed.entries, now)
            storage.update_source(
                state.id,
                title=source.title or feed.title,
                link=feed.link,
                etag=result.etag,
                last_modified=result.last_modified,
                body_hash=digest,
                last_polled_at=now,
                last_status=result.status,
                last_error=None,
                error_count=0,
            )
        if feed.warning:
            log.warning("%s: %s", source.name, feed.warning)
        status = "new" if stored.new else "updated" if stored.updated else "unchanged"
        return PollResult(
            source.name,
            status,
            new=stored.new,
            updated=stored.updated,
            http_status=result.status,
            warning=feed.warning,
        )

    def _record_error(self, source: SourceConfig, error: Exception, now: datetime) -> PollResult:
        message = str(error) if isinstance(error, AggregatorError) else f"internal error: {error!r}"
        status = error.status if isinstance(error, FetchError) else None
        if isinstance(error, ParseError):
            message = f"cannot parse feed: {message}"
        try:
            storage = self.storage
            state = storage.get_source(source.name)
            with self.write_lock, storage.transaction():
                storage.update_source(
                    state.id,
                    last_polled_at=now,
                    last_status=status,
                    last_error=message,
                    error_count=state.error_count + 1,
                )
        except AggregatorError as storage_error:
            message = f"{message} (and could not record it: {storage_error})"
        log.warning("%s: %s", source.name, message)
        return PollResult(source.name, "error", http_status=status, error=message)


def make_fetcher(config: AppConfig) -> Fetcher:
    """A fetcher set up from the config's defaults."""
    roots = list(file_roots_for(config.config_path.parent)) if config.config_path else []
    # A file source configured elsewhere is the operator's choice: its folder may be read too.
    roots += [
        file_url_path(url).parent
        for source in config.sources
        for url in (source.url, source.comments_url)
        if url and url.startswith("file:")
    ]
    return Fetcher(
        user_agent=config.defaults.user_agent,
        timeout=config.defaults.timeout.total_seconds(),
        max_bytes=config.defaults.max_body_size,
        file_roots=roots,
        allow_private_networks=config.allow_private_networks,
    )


def select_sources(config: AppConfig, names: Iterable[str]) -> list[SourceConfig]:
    """The configured sources called ``names`` (all when empty); unknown names raise."""
    wanted = list(names)
    if not wanted:
        return list(config.sources)
    known = {source.name: source for source in config.sources}
    missing = [name for name in wanted if name not in known]
    if missing:
        from aggregator.errors import NotFoundError

        raise NotFoundError(f"no source named {', '.join(repr(m) for m in missing)} in the config")
    return [known[name] for name in wanted]
