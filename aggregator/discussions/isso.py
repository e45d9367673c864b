"""Isso through its JSON API (https://isso-comments.de/docs/reference/server-api/).

``GET /?uri=PATH&limit=N&nested_limit=N`` returns a thread (``uri`` is the post's path, what
the embed sends by default): ``{"id": null, "total_replies", "hidden_replies", "replies":
[...]}``, each top-level comment with its own ``replies``, ``total_replies`` and
``hidden_replies``. Comments carry ``id``, ``parent``, ``mode`` (1 accepted, 2 waiting for
moderation, 4 deleted but kept for its replies), ``author``, ``website``, ``created`` and
``modified`` (Unix seconds) and ``text`` (HTML). Isso nests one level: a reply to a reply names
the top-level comment as its parent. What ``hidden_replies`` leaves out is read with
``after=CREATED`` (comments created later), for the thread and, with ``parent=ID``, for one
comment's replies. A ``uri`` Isso does not know is a 404: no comments yet.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from aggregator.discussions.base import (
    DELETED,
    MAX_COMMENTS,
    Provider,
    ThreadData,
    ThreadRef,
    as_int,
    entry_url,
    from_timestamp,
    make_comment,
)
from aggregator.errors import FetchError, ParseError
from aggregator.models import CommentData, ThreadState
from aggregator.parse.sanitize import clean_html, clean_url, plain_text

PAGE_SIZE = 100
MAX_PAGES = 50
# Comments whose hidden replies are asked for, per thread read (each costs requests).
MAX_REPLY_READS = 20
ACCEPTED, PENDING, DELETED_MODE = 1, 2, 4


class Isso(Provider):
    name = "isso"
    label = "Isso"
    prefix = "isso"
    kinds = frozenset({"comments"})
    default_base_url = None  # self-hosted: base_url is required
    # Isso publishes no limit; one request a second is polite to a small self-hosted server.
    requests_per_minute = 60.0

    def find(self, entry: ThreadState) -> list[ThreadRef]:
        """No request: Isso names a thread by the post's path (``data-isso-id`` aside)."""
        url = entry_url(entry)
        if not url:
            return []
        return [ThreadRef(ref=urlsplit(url).path or "/", url=url)]

    def fetch_thread(self, ref: ThreadRef) -> ThreadData:
        top, complete = self._read(ref.ref, None)
        if top is None:
            return ThreadData(ref, (), complete=False)
        comments: list[CommentData] = []
        gone: list[str] = []
        reply_reads = 0
        for item in top:
            replies = item.get("replies") if isinstance(item.get("replies"), list) else []
            assert isinstance(replies, list)
            if as_int(item.get("hidden_replies")):
                if reply_reads < MAX_REPLY_READS:
                    reply_reads += 1
                    replies, read_all = self._more(ref.ref, item, replies)
                    complete = complete and read_all
                else:
                    complete = False
            self._add(ref, item, None, bool(replies), comments, gone)
            for reply in replies:
                if isinstance(reply, dict):
                    self._add(ref, reply, item.get("id"), False, comments, gone)
            if len(comments) >= MAX_COMMENTS:
                break
        complete = complete and len(comments) < MAX_COMMENTS
        return ThreadData(
            ref, tuple(comments[:MAX_COMMENTS]), gone_keys=tuple(gone), complete=complete
        )

    def _read(self, uri: str, parent: int | None) -> tuple[list[dict[str, Any]] | None, bool]:
        """Every comment at one level (the thread's top level, or one comment's replies), all
        pages (``None`` when Isso does not know the thread), and whether every page was read."""
        found: list[dict[str, Any]] = []
        after: float | None = None
        for _ in range(MAX_PAGES):
            params: dict[str, object] = {"uri": uri, "limit": PAGE_SIZE}
            if parent is None:
                params["nested_limit"] = PAGE_SIZE
            else:
                params["parent"] = parent
            if after is not None:
                params["after"] = repr(after)
            try:
                answer = self.get("/", params)
            except FetchError as error:
                if error.status == 404 and not found and parent is None:
                    return None, False
                raise
            if not isinstance(answer, dict) or not isinstance(answer.get("replies"), list):
                raise ParseError("Isso API /: no list of replies in the answer")
            page = [item for item in answer["replies"] if isinstance(item, dict)]
            found += page
            times = [t for t in (_created(item) for item in page) if t is not None]
            if not as_int(answer.get("hidden_replies")):
                return found, True
            if not times or len(found) > MAX_COMMENTS:
                break
            after = max(times)
        return found, False

    def _more(self, uri: str, item: dict[str, Any], replies: list[Any]) -> tuple[list[Any], bool]:
        """A comment's replies when ``nested_limit`` left some out, and whether all were read."""
        ident = as_int(item.get("id"))
        if ident is None:
            return replies, False
        more, complete = self._read(uri, ident)
        seen = {r.get("id") for r in replies if isinstance(r, dict)}
        return [*replies, *(r for r in more or [] if r.get("id") not in seen)], complete

    def _add(
        self,
        ref: ThreadRef,
        item: dict[str, Any],
        parent: object,
        has_replies: bool,
        comments: list[CommentData],
        gone: list[str],
    ) -> None:
        ident = as_int(item.get("id"))
        if ident is None:
            return
        mode = as_int(item.get("mode"))
        if mode == PENDING:
            return  # not public yet
        key = self.key(ident)
        if mode == DELETED_MODE:
            gone.append(key)
            if not has_replies:
                return
            content, author, website = DELETED, None, None
        else:
            content = clean_html(str(item.get("text") or ""), ref.url)
            author = plain_text(item.get("author")) or None
            website = clean_url(item.get("website"))
        parent_id = as_int(item.get("parent")) if item.get("parent") is not None else None
        if parent_id is None and parent is not None:
            parent_id = as_int(parent)
        comments.append(
            make_comment(
                key,
                content,
                author=author,
                author_url=website,
                published_at=from_timestamp(item.get("created")),
                link=f"{ref.url}#isso-{ident}" if ref.url else None,
                parent_key=self.key(parent_id) if parent_id is not None else None,
            )
        )


def _created(item: dict[str, Any]) -> float | None:
    value = item.get("created")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
