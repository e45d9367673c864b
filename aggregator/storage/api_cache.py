"""Storage of what the comment APIs' client remembers (issue 16, migration
``0019_discussion_cache``): responses with their validators, and hosts that asked to wait.

Responses are keyed by a hash of their URL, never the URL itself (a query may carry an API
key). The table is kept small: past :data:`MAX_RESPONSES` rows the oldest go.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aggregator.storage.rows import format_time, parse_time

if TYPE_CHECKING:
    import sqlite3

#: Responses kept at most (the newest); a thread's page is asked for again past that.
MAX_RESPONSES = 5000


@dataclass(frozen=True)
class ApiResponseState:
    """A stored API response: its body and the validators to ask for a newer one with."""

    body: bytes
    etag: str | None
    last_modified: str | None
    stored_at: datetime


class ApiCacheQueries:
    """The ``api_responses`` and ``api_blocks`` half of :class:`~aggregator.storage.Storage`."""

    def _rows(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> list[dict[str, Any]]:  # pragma: no cover - provided by Storage
        raise NotImplementedError

    def _execute(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> sqlite3.Cursor:  # pragma: no cover - provided by Storage
        raise NotImplementedError

    def get_api_response(self, url_hash: str) -> ApiResponseState | None:
        """The stored response of the URL with this hash, if any."""
        rows = self._rows(
            "SELECT body, etag, last_modified, stored_at FROM api_responses WHERE url_hash = ?",
            (url_hash,),
        )
        if not rows:
            return None
        row = rows[0]
        return ApiResponseState(
            body=bytes(row["body"]),
            etag=row["etag"],
            last_modified=row["last_modified"],
            stored_at=parse_time(row["stored_at"]),  # type: ignore[arg-type]
        )

    def put_api_response(
        self,
        url_hash: str,
        body: bytes,
        etag: str | None,
        last_modified: str | None,
        now: datetime,
    ) -> None:
        """Keep a response with its validators (replacing the URL's older one); call in a
        transaction. The oldest rows past :data:`MAX_RESPONSES` are dropped."""
        self._execute(
            "INSERT INTO api_responses (url_hash, etag, last_modified, body, stored_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (url_hash) DO UPDATE SET etag = excluded.etag, "
            "last_modified = excluded.last_modified, body = excluded.body, "
            "stored_at = excluded.stored_at",
            (url_hash, etag, last_modified, body, format_time(now)),
        )
        self._execute(
            "DELETE FROM api_responses WHERE url_hash IN (SELECT url_hash FROM api_responses "
            "ORDER BY stored_at DESC LIMIT -1 OFFSET ?)",
            (MAX_RESPONSES,),
        )

    def list_api_blocks(self) -> dict[str, datetime]:
        """API hosts that asked not to be asked before a time, with that time (the caller
        compares it with its clock: a block that is over means nothing)."""
        found: dict[str, datetime] = {}
        for row in self._rows("SELECT host, blocked_until FROM api_blocks"):
            until = parse_time(row["blocked_until"])
            if until is not None:
                found[row["host"]] = until
        return found

    def put_api_block(self, host: str, until: datetime, now: datetime) -> None:
        """Remember that ``host`` is not to be asked before ``until`` (a later time wins);
        forget the blocks that ended a day before ``now``. Call in a transaction."""
        self._execute(
            "INSERT INTO api_blocks (host, blocked_until) VALUES (?, ?) ON CONFLICT (host) "
            "DO UPDATE SET blocked_until = max(blocked_until, excluded.blocked_until)",
            (host, format_time(until)),
        )
        ended = format_time(now - timedelta(days=1))
        self._execute("DELETE FROM api_blocks WHERE blocked_until <= ?", (ended,))
