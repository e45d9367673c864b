"""Webmentions of a post, through webmention.io's API (https://github.com/aaronpk/webmention.io,
"API"); a token is optional.

``GET /api/mentions.jf2?target=URL&per-page=N&page=P&sort-dir=up`` lists the mentions of a
post as a JF2 feed (``{"type": "feed", "children": [...]}``), pages counted from 0; a page
shorter than ``per-page`` is the last. Each child has ``wm-id``, ``wm-property``,
``wm-received``, ``author`` (a card: ``name``, ``url``), ``url``, ``published`` and
``content`` (``html``, ``text``). ``in-reply-to`` and ``mention-of`` become comments (a reply
to another mention's URL hangs under it); ``like-of`` and ``repost-of`` are counted, not
stored (``ThreadRef.likes``, ``reposts``: shown with the entry). ``wm-private`` mentions are
never republished. A deleted mention is gone from the listing.

webmention.io publishes no rate limit; 60 requests a minute is asked of it at most.
"""

from __future__ import annotations

import html
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from aggregator.discussions.base import (
    MAX_COMMENTS,
    Provider,
    ThreadData,
    ThreadRef,
    as_int,
    entry_url,
    from_iso,
    make_comment,
)
from aggregator.errors import ParseError
from aggregator.models import CommentData, ThreadState
from aggregator.parse.sanitize import clean_html, clean_url, plain_text

PER_PAGE = 100
MAX_PAGES = 50
COMMENTS = frozenset({"in-reply-to", "mention-of"})


class Webmention(Provider):
    name = "webmention"
    label = "Webmention"
    prefix = "webmention"
    kinds = frozenset({"comments"})
    default_base_url = "https://webmention.io"
    requests_per_minute = 60.0
    options = frozenset({"token"})
    secret_options = frozenset({"token"})

    @classmethod
    def counts(
        cls,
        score: int | None,
        comments: int | None,
        likes: int | None = None,
        reposts: int | None = None,
    ) -> list[tuple[int | None, str]]:
        """ "2 replies, 5 likes, 1 repost"."""
        return [(comments, "replies"), (likes, "likes"), (reposts, "reposts")]

    def find(self, entry: ThreadState) -> list[ThreadRef]:
        """No request: the thread is the post's URL (the mentions' target)."""
        url = entry_url(entry)
        return [ThreadRef(ref=url, url=url)] if url else []

    def fetch_thread(self, ref: ThreadRef) -> ThreadData:
        path = "/api/mentions.jf2"
        mentions: list[dict[str, Any]] = []
        complete = False
        for page in range(MAX_PAGES):
            params: dict[str, object] = {
                "target": ref.ref,
                "per-page": PER_PAGE,
                "page": page,
                "sort-dir": "up",
            }
            token = self.settings.secret("token")
            if token:
                params["token"] = token
            answer = self.get(path, params)
            if not isinstance(answer, dict) or not isinstance(answer.get("children"), list):
                raise ParseError(f"Webmention API {path}: not a feed with children")
            children = [c for c in answer["children"] if isinstance(c, dict)]
            mentions += children
            if len(children) < PER_PAGE:
                complete = True
                break
            if len(mentions) >= MAX_COMMENTS:
                break
        likes = reposts = 0
        seen: set[int] = set()
        kept: list[dict[str, Any]] = []
        for mention in mentions:
            ident = as_int(mention.get("wm-id"))
            if ident is None or ident in seen or mention.get("wm-private"):
                continue
            seen.add(ident)
            kind = mention.get("wm-property")
            if kind == "like-of":
                likes += 1
            elif kind == "repost-of":
                reposts += 1
            elif kind in COMMENTS:
                kept.append(mention)
        comments = self._comments(kept[:MAX_COMMENTS])
        refreshed = ThreadRef(
            ref=ref.ref,
            url=ref.url,
            title=ref.title,
            comment_count=len(comments),
            likes=likes,
            reposts=reposts,
        )
        return ThreadData(refreshed, tuple(comments), complete=complete)

    def _comments(self, mentions: list[dict[str, Any]]) -> list[CommentData]:
        """Mentions in thread order: by time, each followed by the replies to it (a reply
        whose ``in-reply-to`` is another mention's URL)."""
        mentions.sort(key=lambda m: str(m.get("published") or m.get("wm-received") or ""))
        by_url: dict[tuple[str, str, str], str] = {}
        for mention in mentions:
            url = clean_url(mention.get("url"))
            if url:
                by_url.setdefault(_page_key(url), self.key(as_int(mention.get("wm-id"))))
        made: list[CommentData] = []
        for mention in mentions:
            key = self.key(as_int(mention.get("wm-id")))
            replied = mention.get("in-reply-to")
            targets = replied if isinstance(replied, list) else [replied]
            parents = [by_url.get(_page_key(t)) for t in targets[:10] if isinstance(t, str) and t]
            parent = next((p for p in parents if p and p != key), None)
            made.append(self._comment(mention, key, parent))
        children: dict[str | None, list[CommentData]] = {}
        for comment in made:
            children.setdefault(comment.parent_key, []).append(comment)
        ordered: list[CommentData] = []
        placed: set[str] = set()
        # Roots first; then any left over (replies in a cycle) as roots of their own.
        for start in [c for c in made if c.parent_key is None] + made:
            if start.key in placed:
                continue
            stack = [start]
            while stack:
                comment = stack.pop()
                if comment.key in placed:
                    continue
                placed.add(comment.key)
                if comment is start and comment.parent_key not in placed:
                    comment = replace(comment, parent_key=None)
                ordered.append(comment)
                stack.extend(reversed(children.get(comment.key, [])))
        return ordered

    def _comment(self, mention: dict[str, Any], key: str, parent: str | None) -> CommentData:
        author = mention.get("author") if isinstance(mention.get("author"), dict) else {}
        link = clean_url(mention.get("url")) or clean_url(mention.get("wm-source"))
        name = plain_text((author or {}).get("name")) or None
        content_field = mention.get("content")
        content = ""
        if isinstance(content_field, dict):
            if content_field.get("html"):
                content = clean_html(str(content_field["html"]), link)
            elif content_field.get("text"):
                content = f"<p>{html.escape(str(content_field['text']))}</p>"
        if not content:
            shown = html.escape(name or "someone")
            where = html.escape(link or "")
            content = (
                f'<p>{shown} mentioned this in <a href="{where}">{where}</a></p>'
                if link
                else f"<p>{shown} mentioned this</p>"
            )
        return make_comment(
            key,
            content,
            author=name,
            author_url=clean_url((author or {}).get("url")),
            published_at=from_iso(mention.get("published")) or from_iso(mention.get("wm-received")),
            link=link,
            parent_key=parent,
        )


def _page_key(url: str) -> tuple[str, str, str]:
    """A URL as :func:`~aggregator.discussions.base.same_page` compares it (host without
    ``www.``, path without a trailing slash, query), for lookups by URL."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return ("", url, "")
    host = (parts.hostname or "").lower().removeprefix("www.")
    return host, parts.path.rstrip("/") or "/", parts.query
