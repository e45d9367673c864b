"""The application functions SQLite calls from the schema's triggers: the visible text of
stored HTML for the full-text index, and whether to index a written row now or at the end of
the transaction.

Owns registering them on a connection; the triggers themselves are in
:mod:`aggregator.storage.schema`.
"""

from __future__ import annotations

import html
import re
import sqlite3
from collections.abc import Callable

_TAG = re.compile(r"<[^>]*>")
_HIDDEN = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


def index_text(markup: str | None) -> str:
    """The words of stored HTML, for the full-text index.

    Stored HTML was sanitized when it was stored (no scripts, styles or comments left), so
    replacing tags by spaces and decoding entities gives its visible words; this runs inside
    the write transaction for every entry and comment, where a full HTML parse costs 10 times
    as much for the same words.
    """
    if not markup:
        return ""
    if "<" not in markup and "&" not in markup:
        return markup
    if "<script" in markup or "<style" in markup:  # not from our sanitizer: drop their text
        markup = _HIDDEN.sub(" ", markup)
    return html.unescape(_TAG.sub(" ", markup))


def register_functions(
    connection: sqlite3.Connection, index_later: Callable[[], bool] | None = None
) -> None:
    """Application functions the schema's triggers call. Every connection that writes entries
    or comments needs them.

    ``aggregator_text()`` gives the visible text of stored HTML (the full-text index holds
    text, not markup). ``aggregator_index_later()`` tells the triggers of migration
    ``0004_search_queue`` to queue a written row for indexing at the end of the transaction
    instead of indexing it at once: :class:`Storage` answers yes inside :meth:`Storage.transaction`,
    which indexes the queue before it commits; by default the answer is no.
    """
    connection.create_function("aggregator_text", 1, index_text, deterministic=True)
    later = index_later or (lambda: False)
    connection.create_function("aggregator_index_later", 0, lambda: 1 if later() else 0)
