"""Remark42 through its public API (https://remark42.com/docs/contributing/api/).

``GET /api/v1/find?site=SITE&url=POST_URL&format=tree&sort=+time`` returns every comment of a
post: ``{"comments": [{"comment": {...}, "replies": [...]}], "info": {"url", "count", ...}}``
(``format=plain``: the comments as one list, or ``{"comments": [...]}``). A comment has
``id``, ``pid`` (its parent, empty at the top), ``text`` (HTML), ``user`` (``name``, ``id``),
``time`` (RFC 3339), ``edit`` (``time``, ``summary``) once edited, and ``delete``. The
thread is the post's URL as the embed sends it (``url`` in ``remark_config``, by default the
page's address without its query). One request reads a whole thread; the API has no paging.
"""

from __future__ import annotations

from typing import Any

from aggregator.discussions.base import (
    DELETED,
    MAX_COMMENTS,
    Provider,
    ThreadData,
    ThreadRef,
    entry_url,
    from_iso,
    make_comment,
)
from aggregator.errors import ParseError
from aggregator.models import CommentData, ThreadState
from aggregator.parse.sanitize import clean_html, plain_text


class Remark42(Provider):
    name = "remark42"
    label = "Remark42"
    prefix = "remark42"
    kinds = frozenset({"comments"})
    default_base_url = None  # self-hosted: base_url is required
    # Remark42's default limiter allows 10 requests a second per address; one a second here.
    requests_per_minute = 60.0
    options = frozenset({"site"})
    required = frozenset({"site"})

    def find(self, entry: ThreadState) -> list[ThreadRef]:
        """No request: Remark42 names a thread by the post's URL."""
        url = entry_url(entry)
        return [ThreadRef(ref=url, url=url)] if url else []

    def fetch_thread(self, ref: ThreadRef) -> ThreadData:
        path = "/api/v1/find"
        answer = self.get(
            path,
            {
                "site": self.settings.options.get("site", ""),
                "url": ref.ref,
                "format": "tree",
                "sort": "+time",
            },
        )
        if isinstance(answer, dict):
            nodes = answer.get("comments")
            nodes = [] if nodes is None else nodes  # a post without comments: null
        else:
            nodes = answer
        if not isinstance(nodes, list):
            raise ParseError(f"Remark42 API {path}: no list of comments in the answer")
        flat = list(_walk(nodes))
        has_replies = {str(c.get("pid")) for c, _ in flat if c.get("pid")}
        comments: list[CommentData] = []
        gone: list[str] = []
        for item, tree_parent in flat[:MAX_COMMENTS]:
            ident = item.get("id")
            if not isinstance(ident, str) or not ident:
                continue
            key = self.key(ident)
            parent = item.get("pid") or tree_parent
            user = item.get("user") if isinstance(item.get("user"), dict) else {}
            assert isinstance(user, dict)
            if item.get("delete"):
                gone.append(key)
                if ident not in has_replies:
                    continue
                content, author = DELETED, None
            else:
                content = clean_html(str(item.get("text") or ""), ref.url)
                author = plain_text(user.get("name")) or None
            comments.append(
                make_comment(
                    key,
                    content,
                    author=author,
                    published_at=from_iso(item.get("time")),
                    link=f"{ref.url}#remark42__comment-{ident}" if ref.url else None,
                    parent_key=self.key(parent) if isinstance(parent, str) and parent else None,
                )
            )
        return ThreadData(
            ref, tuple(comments), gone_keys=tuple(gone), complete=len(flat) < MAX_COMMENTS
        )


def _walk(nodes: list[Any]) -> Any:
    """``(comment, parent id)`` in thread order, from a tree (``{"comment", "replies"}``
    nodes) or a plain list (comments themselves); depth-first, without recursion."""
    stack: list[tuple[Any, str | None]] = [(node, None) for node in reversed(nodes)]
    seen = 0
    while stack and seen < MAX_COMMENTS:
        node, parent = stack.pop()
        if not isinstance(node, dict):
            continue
        comment = node.get("comment") if isinstance(node.get("comment"), dict) else node
        assert isinstance(comment, dict)
        seen += 1
        yield comment, parent
        replies = node.get("replies") if comment is not node else None
        if isinstance(replies, list):
            ident = comment.get("id") if isinstance(comment.get("id"), str) else None
            stack.extend((child, ident) for child in reversed(replies))
