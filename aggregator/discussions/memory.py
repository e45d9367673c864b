"""What the comment APIs' client keeps across restarts (issue 16, politeness): responses with
their validators and the hosts that asked to wait, in the database (``0019_discussion_cache``).

:class:`StoredApiMemory` is handed to :class:`~aggregator.discussions.api.ApiClient`
(``memory=``). It decides nothing: the client asks it for a stored response before a request
(to send ``If-None-Match``/``If-Modified-Since`` and reuse the body on ``304``), tells it each
new response with a validator, and each block. A failure to remember is logged and otherwise
ignored: the memory saves requests, the threads do not depend on it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from aggregator.errors import StorageError

if TYPE_CHECKING:
    from aggregator.storage import Storage
    from aggregator.storage.api_cache import ApiResponseState

log = logging.getLogger("aggregator.discussions")

#: Bodies larger than this are not kept in the database (the in-memory cache may keep them).
MAX_STORED_BODY = 1024 * 1024
# The write lock is never held while a provider is called (DiscussionFollower), so it is free
# soon; should a caller break that rule, the response is not remembered rather than deadlocking.
LOCK_WAIT = 30.0


class ApiMemory(Protocol):
    """Where an :class:`~aggregator.discussions.api.ApiClient` keeps responses and blocks."""

    def load(self, url: str) -> ApiResponseState | None:
        """The stored response of ``url``, if any."""

    def save(self, url: str, body: bytes, etag: str | None, last_modified: str | None) -> None:
        """Keep a response with its validators."""

    def blocks(self) -> dict[str, datetime]:
        """API hosts that asked to wait, with the time they may be asked again (some may
        be over: the client compares with its own clock)."""

    def block(self, host: str, until: datetime) -> None:
        """Remember that ``host`` is not to be asked before ``until``."""


class StoredApiMemory:
    """An :class:`ApiMemory` in the aggregator's database. Thread-safe (each thread uses its
    own connection through ``storage``; writes take ``write_lock``)."""

    def __init__(
        self,
        storage: Callable[[], Storage],
        write_lock: threading.Lock,
        clock: Callable[[], datetime],
    ):
        self._storage = storage
        self._write_lock = write_lock
        self._clock = clock

    def load(self, url: str) -> ApiResponseState | None:
        try:
            return self._storage().get_api_response(url_hash(url))
        except StorageError as error:
            log.warning("API response cache: %s", error)
            return None

    def save(self, url: str, body: bytes, etag: str | None, last_modified: str | None) -> None:
        if len(body) > MAX_STORED_BODY:
            return
        self._write(
            lambda storage: storage.put_api_response(
                url_hash(url), body, etag, last_modified, self._clock()
            )
        )

    def blocks(self) -> dict[str, datetime]:
        try:
            return self._storage().list_api_blocks()
        except StorageError as error:
            log.warning("API blocks: %s", error)
            return {}

    def block(self, host: str, until: datetime) -> None:
        self._write(lambda storage: storage.put_api_block(host, until, self._clock()))

    def _write(self, action: Callable[[Storage], None]) -> None:
        if not self._write_lock.acquire(timeout=LOCK_WAIT):
            log.warning("API response cache: the database stayed busy; not remembered")
            return
        try:
            storage = self._storage()
            with storage.transaction():
                action(storage)
        except StorageError as error:
            log.warning("API response cache: %s", error)
        finally:
            self._write_lock.release()


def url_hash(url: str) -> str:
    """The key a response is stored under: its URL's SHA-256 (the URL may hold a key)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()
