"""WebSub subscriptions (issue 17, item 8; table ``websub_subscriptions``, migration
``0018_websub``): what the poller found, what the upkeep asked of the hub, what the hub verified.

Reads and writes only; :mod:`aggregator.poll.websub` decides and :mod:`aggregator.poll.subscriber`
talks to hubs. The secret is stored as text and read back as a :class:`~aggregator.secret.Secret`.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aggregator.models import Subscription
from aggregator.secret import Secret
from aggregator.storage.rows import format_time, parse_time

if TYPE_CHECKING:
    from sqlite_utils import Database

_COLUMNS = (
    "id, source_name, callback_id, hub, topic, secret, mode, lease_seconds, requested_at, "
    "verified_at, expires_at, pushed_at, retry_at, error_count, last_error"
)
_TIMES = ("requested_at", "verified_at", "expires_at", "pushed_at", "retry_at")
#: Columns :meth:`WebSubQueries.update_subscription` may set.
_WRITABLE = frozenset({"mode", "lease_seconds", "error_count", "last_error", *_TIMES})


class WebSubQueries:
    """WebSub subscriptions' reads and writes; mixed into :class:`~aggregator.storage.Storage`."""

    db: Database

    def _rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        raise NotImplementedError  # provided by Storage

    def _execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        raise NotImplementedError  # provided by Storage

    def want_subscription(self, source_name: str, hub: str, topic: str, now: datetime) -> bool:
        """Record the hub and topic a source's feed announces; whether that is new.

        A new hub or topic starts a new subscription (a new callback and secret), which the
        next upkeep requests; the same ones leave the row as it is.
        """
        rows = self._rows(
            "SELECT hub, topic, mode FROM websub_subscriptions WHERE source_name = ?",
            [source_name],
        )
        if rows and (rows[0]["hub"], rows[0]["topic"], rows[0]["mode"]) == (
            hub,
            topic,
            "subscribe",
        ):
            return False
        self._execute("DELETE FROM websub_subscriptions WHERE source_name = ?", [source_name])
        self._execute(
            "INSERT INTO websub_subscriptions (source_name, callback_id, hub, topic, secret, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?)",
            [
                source_name,
                secrets.token_urlsafe(24),
                hub,
                topic,
                secrets.token_hex(32),
                format_time(now),
            ],
        )
        return True

    def drop_subscription(self, source_name: str) -> bool:
        """Mark a source's subscription for unsubscribing (its feed no longer names a hub);
        whether there was one to drop."""
        cursor = self._execute(
            "UPDATE websub_subscriptions SET mode = 'unsubscribe', requested_at = NULL, "
            "retry_at = NULL WHERE source_name = ? AND mode = 'subscribe'",
            [source_name],
        )
        return bool(cursor.rowcount)

    def list_subscriptions(self) -> list[Subscription]:
        """Every stored subscription, by source name."""
        rows = self._rows(f"SELECT {_COLUMNS} FROM websub_subscriptions ORDER BY source_name")
        return [_subscription(row) for row in rows]

    def subscription_by_callback(self, callback_id: str) -> Subscription | None:
        """The subscription whose callback URL ends in ``callback_id``, or ``None``."""
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM websub_subscriptions WHERE callback_id = ?", [callback_id]
        )
        return _subscription(rows[0]) if rows else None

    def subscription_of(self, source_name: str) -> Subscription | None:
        """The subscription of one source, or ``None``."""
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM websub_subscriptions WHERE source_name = ?", [source_name]
        )
        return _subscription(rows[0]) if rows else None

    def update_subscription(self, sub_id: int, **values: Any) -> None:
        """Set some of a subscription's columns (times as datetimes)."""
        unknown = set(values) - _WRITABLE
        if unknown:
            raise ValueError(f"not a writable column: {', '.join(sorted(unknown))}")
        if not values:
            return
        columns = ", ".join(f"{name} = ?" for name in values)
        params = [format_time(value) if name in _TIMES else value for name, value in values.items()]
        self._execute(f"UPDATE websub_subscriptions SET {columns} WHERE id = ?", [*params, sub_id])

    def delete_subscription(self, sub_id: int) -> None:
        """Forget a subscription."""
        self._execute("DELETE FROM websub_subscriptions WHERE id = ?", [sub_id])


def _subscription(row: dict[str, Any]) -> Subscription:
    return Subscription(
        id=row["id"],
        source_name=row["source_name"],
        callback_id=row["callback_id"],
        hub=row["hub"],
        topic=row["topic"],
        secret=Secret(row["secret"]),
        mode=row["mode"],
        lease_seconds=row["lease_seconds"],
        requested_at=parse_time(row["requested_at"]),
        verified_at=parse_time(row["verified_at"]),
        expires_at=parse_time(row["expires_at"]),
        pushed_at=parse_time(row["pushed_at"]),
        retry_at=parse_time(row["retry_at"]),
        error_count=row["error_count"],
        last_error=row["last_error"],
    )
