"""What the tests of threads kept behind APIs share: poll and publish a config once, and read
back the comments stored (with their entry's link and public id)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from aggregator.config.loading import load_config
from aggregator.models import PollResult
from aggregator.parse.sandbox import Parser
from aggregator.poll.poller import Poller
from aggregator.publish.publisher import Publisher
from aggregator.storage import Storage


def poll_and_publish(path: Path, parser: Parser | None = None) -> list[PollResult]:
    """Poll every source of the config at ``path`` (by hand, as `aggregator poll` does), then
    publish its outputs."""
    config = load_config(path)
    with Poller(config, manual=True, parser=parser) as poller:
        results = poller.poll_many(config.sources)
        with Storage(config.database) as storage:
            Publisher(config, storage).publish()
    return results


def stored_comments(path: Path) -> list[sqlite3.Row]:
    """Every stored comment in storage order, with ``entry_link`` and ``entry_public_id``."""
    db = sqlite3.connect(load_config(path).database)
    db.row_factory = sqlite3.Row
    try:
        return db.execute(
            "SELECT c.*, e.link AS entry_link, e.public_id AS entry_public_id FROM comments c "
            "JOIN entries e ON e.id = c.entry_id ORDER BY c.id"
        ).fetchall()
    finally:
        db.close()


def keys_with(rows: list[sqlite3.Row], prefix: str) -> list[str]:
    """The keys of ``rows`` that start with ``prefix`` (one provider's comments), in order."""
    return [row["key"] for row in rows if row["key"].startswith(prefix)]
