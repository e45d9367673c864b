"""Bluesky through the public AppView's XRPC API (https://docs.bsky.app/docs/api/;
``base_url`` for another AppView).

``GET /app.bsky.feed.searchPosts?q=URL&url=URL`` finds the posts linking a URL (``posts``:
post views, paged by ``cursor``); each is a thread. ``GET /app.bsky.feed.getPostThread?uri=
at://...&depth=N`` returns ``thread``: a ``#threadViewPost`` (``post`` and nested
``replies``), a ``#notFoundPost`` (deleted) or a ``#blockedPost``. A post view has ``uri``,
``author`` (``did``, ``handle``, ``displayName``), ``record`` (``text``, ``createdAt``,
``facets``, ``embed``), ``replyCount``, ``repostCount``, ``likeCount`` and ``indexedAt``.
The public AppView allows 3,000 requests per 5 minutes and IP. A thread's score is its likes.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote

from aggregator.discussions.base import (
    MAX_COMMENTS,
    Provider,
    ThreadData,
    ThreadRef,
    as_int,
    entry_url,
    from_iso,
    make_comment,
    same_page,
)
from aggregator.errors import FetchError, ParseError
from aggregator.models import CommentData, ThreadState
from aggregator.parse.sanitize import clean_html, clean_url, plain_text

MAX_SEARCH_PAGES = 3
THREAD_DEPTH = 1000  # the most getPostThread allows
_POST = "app.bsky.feed.defs#threadViewPost"
_NOT_FOUND = "app.bsky.feed.defs#notFoundPost"
_BLOCKED = "app.bsky.feed.defs#blockedPost"


class Bluesky(Provider):
    name = "bluesky"
    label = "Bluesky"
    prefix = "bsky"
    kinds = frozenset({"discussion"})
    default_base_url = "https://public.api.bsky.app/xrpc"
    default_site_url = "https://bsky.app"
    requests_per_minute = 3000 / 5
    score_label = "likes"

    def find(self, entry: ThreadState) -> list[ThreadRef]:
        url = entry_url(entry)
        if not url:
            return []
        refs: dict[str, ThreadRef] = {}
        cursor: str | None = None
        for _ in range(MAX_SEARCH_PAGES):
            params: dict[str, object] = {"q": url, "url": url, "limit": 100}
            if cursor:
                params["cursor"] = cursor
            data = self.get("/app.bsky.feed.searchPosts", params)
            if not isinstance(data, dict) or not isinstance(data.get("posts"), list):
                raise ParseError("Bluesky API app.bsky.feed.searchPosts: no posts list")
            for post in data["posts"]:
                if not isinstance(post, dict) or not _links_to(post, url):
                    continue
                uri = _at_uri(post.get("uri"))
                if uri is None:
                    continue
                refs[uri] = ThreadRef(
                    ref=uri,
                    url=self._page(post, uri),
                    title=_snippet(post),
                    score=as_int(post.get("likeCount")),
                    comment_count=as_int(post.get("replyCount")),
                )
            cursor = data.get("cursor") if isinstance(data.get("cursor"), str) else None
            if not cursor:
                break
        return list(refs.values())

    def fetch_thread(self, ref: ThreadRef) -> ThreadData:
        uri = _at_uri(ref.ref)
        if uri is None:
            raise ParseError(f"Bluesky: bad post URI {ref.ref!r}")
        data = self.get(
            "/app.bsky.feed.getPostThread",
            {"uri": uri, "depth": THREAD_DEPTH, "parentHeight": 0},
        )
        thread = data.get("thread") if isinstance(data, dict) else None
        if not isinstance(thread, dict):
            raise ParseError("Bluesky API app.bsky.feed.getPostThread: no thread")
        if thread.get("$type") == _NOT_FOUND or thread.get("notFound"):
            raise FetchError(f"Bluesky post {ref.url or uri}: deleted")
        if thread.get("$type") == _BLOCKED or thread.get("blocked"):
            raise FetchError(f"Bluesky post {ref.url or uri}: blocked")
        root = thread.get("post")
        if not isinstance(root, dict):
            raise ParseError("Bluesky API app.bsky.feed.getPostThread: no post in the thread")
        comments: list[CommentData] = []
        gone: list[str] = []
        stack: list[tuple[Any, str | None]] = [(r, None) for r in reversed(_replies(thread))]
        while stack and len(comments) < MAX_COMMENTS:
            node, parent = stack.pop()
            kind = node.get("$type")
            if kind == _NOT_FOUND or node.get("notFound"):
                found = _at_uri(node.get("uri"))
                if found:
                    gone.append(self.key(_short(found)))  # deleted: its replies are gone too
                continue
            post = node.get("post")
            if kind == _BLOCKED or node.get("blocked") or not isinstance(post, dict):
                continue
            reply_uri = _at_uri(post.get("uri"))
            if reply_uri is None:
                continue
            key = self.key(_short(reply_uri))
            record = _dict(post.get("record"))
            author = _dict(post.get("author"))
            handle = plain_text(author.get("handle")) or None
            comments.append(
                make_comment(
                    key,
                    _html(record.get("text")),
                    author=plain_text(author.get("displayName")) or handle,
                    author_url=clean_url(f"{self.site_url}/profile/{quote(handle)}")
                    if handle
                    else None,
                    published_at=from_iso(record.get("createdAt"))
                    or from_iso(post.get("indexedAt")),
                    link=self._page(post, reply_uri),
                    parent_key=parent,
                )
            )
            stack.extend((child, key) for child in reversed(_replies(node)))
        root_author = _dict(root.get("author"))
        root_record = _dict(root.get("record"))
        refreshed = ThreadRef(
            ref=uri,
            url=self._page(root, uri) or ref.url,
            title=_snippet(root) or ref.title,
            score=as_int(root.get("likeCount")),
            comment_count=as_int(root.get("replyCount")),
        )
        return ThreadData(
            refreshed,
            tuple(comments),
            author=plain_text(root_author.get("displayName"))
            or plain_text(root_author.get("handle"))
            or None,
            created_at=from_iso(root_record.get("createdAt")),
            gone_keys=tuple(gone),
            complete=len(comments) < MAX_COMMENTS,
        )

    def key(self, item_id: object) -> str:
        """A post's key: ``@bsky:`` and its AT URI without ``at://``."""
        return super().key(_short(str(item_id)))

    def _page(self, post: dict[str, Any], uri: str) -> str | None:
        """The post's page on the web app: ``/profile/{handle}/post/{rkey}``."""
        author = _dict(post.get("author"))
        who = plain_text(author.get("handle")) or uri.split("/")[2]
        rkey = uri.rsplit("/", 1)[-1]
        if not rkey.isalnum():
            return None
        return clean_url(f"{self.site_url}/profile/{quote(who, safe=':')}/post/{rkey}")


def _at_uri(value: object) -> str | None:
    """A post's AT URI (``at://did/app.bsky.feed.post/rkey``), checked, else ``None``."""
    if not isinstance(value, str) or not value.startswith("at://") or len(value) > 300:
        return None
    parts = value[len("at://") :].split("/")
    if len(parts) != 3 or parts[1] != "app.bsky.feed.post" or not parts[2].isalnum():
        return None
    if not parts[0] or any(c.isspace() or c in "?#<>\"'" for c in parts[0]):
        return None
    return value


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _short(uri: str) -> str:
    return uri.removeprefix("at://")


def _replies(node: dict[str, Any]) -> list[dict[str, Any]]:
    replies = node.get("replies")
    return [r for r in replies if isinstance(r, dict)] if isinstance(replies, list) else []


def _html(text: object) -> str:
    """A post's plain text as HTML paragraphs, sanitized."""
    if not isinstance(text, str) or not text:
        return ""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    markup = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)
    return clean_html(markup)


def _snippet(post: dict[str, Any]) -> str | None:
    record = _dict(post.get("record"))
    text = plain_text(record.get("text"))
    return (text[:80] + "\u2026" if len(text) > 80 else text) or None


def _links_to(post: dict[str, Any], url: str) -> bool:
    """Whether a post links ``url``: an external embed, a link facet, or its text (search
    is fuzzy, so each hit is checked)."""
    record = _dict(post.get("record"))
    found: list[object] = []
    for embed in (record.get("embed"), post.get("embed")):
        if isinstance(embed, dict):
            for holder in (embed, embed.get("media")):
                if isinstance(holder, dict) and isinstance(holder.get("external"), dict):
                    found.append(holder["external"].get("uri"))
    for facet in record.get("facets") or []:
        if isinstance(facet, dict):
            for feature in facet.get("features") or []:
                if isinstance(feature, dict):
                    found.append(feature.get("uri"))
    text = record.get("text")
    if isinstance(text, str):
        found.extend(word for word in text.split() if word.startswith(("http://", "https://")))
    return any(isinstance(link, str) and same_page(link, url) for link in found)
