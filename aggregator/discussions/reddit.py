"""Reddit through its public JSON endpoints (https://www.reddit.com/dev/api).

``GET /api/info.json?url=URL`` lists the submissions of a URL (a ``Listing`` of ``t3``
things, paged by ``after``); ``GET /comments/{id}.json?raw_json=1`` returns the submission
and its comment tree (``t1`` things, ``replies`` nested; ``more`` stubs for what was left
out). Unauthenticated clients get about 10 requests a minute; ``X-Ratelimit-Remaining`` and
``X-Ratelimit-Reset`` are honoured by the API client. Deleted comments read ``[deleted]`` or
``[removed]``.
"""

from __future__ import annotations

from typing import Any

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
    same_page,
)
from aggregator.errors import ParseError
from aggregator.models import CommentData, ThreadState
from aggregator.parse.sanitize import clean_html, clean_url, plain_text

MAX_LISTING_PAGES = 3
_GONE = frozenset({"[deleted]", "[removed]"})


class Reddit(Provider):
    name = "reddit"
    label = "Reddit"
    prefix = "reddit"
    kinds = frozenset({"discussion"})
    default_base_url = "https://www.reddit.com"
    default_site_url = "https://www.reddit.com"
    requests_per_minute = 10.0

    def find(self, entry: ThreadState) -> list[ThreadRef]:
        url = entry_url(entry)
        if not url:
            return []
        refs: dict[str, ThreadRef] = {}
        after: str | None = None
        for _ in range(MAX_LISTING_PAGES):
            params: dict[str, object] = {"url": url, "raw_json": 1, "limit": 100}
            if after:
                params["after"] = after
            listing = _listing(self.get("/api/info.json", params), "/api/info.json")
            for thing in listing.get("children") or []:
                data = _thing(thing, "t3")
                if data is None or not same_page(data.get("url"), url):
                    continue
                ident = str(data.get("id") or "")
                if not ident.isalnum():
                    continue
                refs[ident] = ThreadRef(
                    ref=ident,
                    url=clean_url(str(data.get("permalink") or ""), self.site_url + "/"),
                    title=plain_text(data.get("title")) or None,
                    score=as_int(data.get("score")),
                    comment_count=as_int(data.get("num_comments")),
                )
            after = listing.get("after") if isinstance(listing.get("after"), str) else None
            if not after:
                break
        return list(refs.values())

    def fetch_thread(self, ref: ThreadRef) -> ThreadData:
        if not ref.ref.isalnum():
            raise ParseError(f"Reddit: bad thread id {ref.ref!r}")
        path = f"/comments/{ref.ref}.json"
        answer = self.get(path, {"raw_json": 1, "limit": 500})
        if not isinstance(answer, list) or len(answer) < 2:
            raise ParseError(f"Reddit API {path}: not a submission and its comments")
        posts = _listing(answer[0], path).get("children") or []
        post = _thing(posts[0], "t3") if posts else None
        if post is None:
            raise ParseError(f"Reddit API {path}: no submission")
        comments: list[CommentData] = []
        gone: list[str] = []
        complete = True
        stack: list[tuple[Any, str | None]] = [
            (t, None) for t in reversed(_listing(answer[1], path).get("children") or [])
        ]
        while stack and len(comments) < MAX_COMMENTS:
            thing, parent = stack.pop()
            if isinstance(thing, dict) and thing.get("kind") == "more":
                complete = False  # a stub for comments the listing left out
                continue
            data = _thing(thing, "t1")
            if data is None or not str(data.get("id") or "").isalnum():
                continue
            key = self.key(f"t1_{data['id']}")
            replies = data.get("replies")
            children = (
                _listing(replies, path).get("children") or [] if isinstance(replies, dict) else []
            )
            body = str(data.get("body") or "")
            author = str(data.get("author") or "")
            if body in _GONE or (author in _GONE and not body):
                gone.append(key)
                if not children:
                    continue
                content, name = DELETED, None
            else:
                content = clean_html(data.get("body_html") or body, self.site_url + "/")
                name = None if author in _GONE else plain_text(author) or None
            comments.append(
                make_comment(
                    key,
                    content,
                    author=name,
                    author_url=f"{self.site_url}/user/{name}" if name else None,
                    published_at=from_timestamp(data.get("created_utc")),
                    link=clean_url(str(data.get("permalink") or ""), self.site_url + "/"),
                    parent_key=parent,
                )
            )
            stack.extend((child, key) for child in reversed(children))
        refreshed = ThreadRef(
            ref=ref.ref,
            url=ref.url or clean_url(str(post.get("permalink") or ""), self.site_url + "/"),
            title=plain_text(post.get("title")) or ref.title,
            score=as_int(post.get("score")),
            comment_count=as_int(post.get("num_comments")),
        )
        return ThreadData(
            refreshed,
            tuple(comments),
            author=plain_text(post.get("author")) or None,
            created_at=from_timestamp(post.get("created_utc")),
            gone_keys=tuple(gone),
            complete=complete and len(comments) < MAX_COMMENTS,
        )


def _listing(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict) or value.get("kind") != "Listing":
        raise ParseError(f"Reddit API {path}: not a Listing")
    data = value.get("data")
    return data if isinstance(data, dict) else {}


def _thing(value: Any, kind: str) -> dict[str, Any] | None:
    if not isinstance(value, dict) or value.get("kind") != kind:
        return None
    data = value.get("data")
    return data if isinstance(data, dict) else None
