"""Simulated comment APIs on 127.0.0.1, answering with the shapes their public documentation
gives (fixtures written by hand from the documented schemas, issue 16):

* Hacker News (Algolia): ``/search`` (``hits``, ``nbPages``, ``page``) and ``/items/{id}``
  (nested ``children``; deleted items have neither ``author`` nor ``text``);
* Reddit: ``/api/info.json`` (a ``Listing`` of ``t3``) and ``/comments/{id}.json`` (two
  Listings; ``t1`` with ``replies``; ``more`` stubs; ``[deleted]``);
* Reddit ``/api/morechildren`` (``json.data.things``: flat ``t1`` things with ``parent_id``);
* Lobsters: ``/stories/url/all.json?url=`` (a list of stories) and ``/s/{short_id}.json``
  (the story and its flat ``comments`` with ``parent_comment``, ``is_deleted``);
* Bluesky (AppView XRPC): ``app.bsky.feed.searchPosts`` (``posts``, ``cursor``) and
  ``app.bsky.feed.getPostThread`` (``thread``: nested ``replies``, ``#notFoundPost``,
  ``#blockedPost``; 400 ``NotFound`` for an unknown post);
* Disqus: ``/threads/listPosts.json`` (``code``, ``cursor`` with ``hasNext``/``next``,
  ``response`` posts with ``parent``, ``isDeleted``), 400 code 2 for an unknown thread.

Every request is logged; each API refuses with 429 and ``Retry-After`` more requests a
minute than its ``limit``; ``fail`` queues statuses to answer next.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from werkzeug import Request, Response


@dataclass
class Logged:
    api: str
    path: str
    args: dict[str, str]
    at: float
    status: int
    headers: dict[str, str]


@dataclass
class ApiSim:
    """Every simulated API behind one dispatch function (``handle``)."""

    limits: dict[str, int] = field(
        default_factory=lambda: {
            "hn": 600,
            "reddit": 600,
            "disqus": 600,
            "lobsters": 600,
            "bsky": 600,
        }
    )
    log: list[Logged] = field(default_factory=list)
    fail: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    hn_items: dict[int, dict[str, Any]] = field(default_factory=dict)
    hn_hits: list[dict[str, Any]] = field(default_factory=list)
    hn_page_size: int = 1
    reddit_posts: list[dict[str, Any]] = field(default_factory=list)
    reddit_comments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    reddit_more: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> flat t1 thing
    lobsters_stories: list[dict[str, Any]] = field(default_factory=list)
    bsky_posts: list[dict[str, Any]] = field(default_factory=list)
    bsky_threads: dict[str, dict[str, Any]] = field(default_factory=dict)
    bsky_page_size: int = 1
    disqus_threads: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    disqus_key: str = "sekrit-disqus-key-123"
    disqus_page_size: int = 2
    etag: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def requests(self, api: str, path_part: str = "") -> list[Logged]:
        return [r for r in self.log if r.api == api and path_part in r.path]

    def handle(self, request: Request) -> Response:
        api, _, rest = request.path.lstrip("/").partition("/")
        args = {k: v for k, v in request.args.items()}
        now = time.monotonic()
        with self._lock:
            recent = [r for r in self.log if r.api == api and now - r.at < 60 and r.status != 429]
            queued = self.fail.get(api) or []
            if queued:
                status, headers = queued.pop(0)
                response = Response(json.dumps({"error": status}), status, headers)
            elif len(recent) >= self.limits.get(api, 10**6):
                response = Response("{}", 429, {"Retry-After": "60"})
            else:
                response = self._answer(api, "/" + rest, args, request)
            self.log.append(
                Logged(api, "/" + rest, args, now, response.status_code, dict(request.headers))
            )
        return response

    def _answer(self, api: str, path: str, args: dict[str, str], request: Request) -> Response:
        if api == "hn":
            return self._hn(path, args, request)
        if api == "reddit":
            return self._reddit(path, args)
        if api == "disqus":
            return self._disqus(path, args)
        if api == "lobsters":
            return self._lobsters(path, args, request)
        if api == "bsky":
            return self._bsky(path, args)
        return Response("not found", 404)

    # -- Lobsters ------------------------------------------------------------------------------
    def _lobsters(self, path: str, args: dict[str, str], request: Request) -> Response:
        if path == "/stories/url/all.json":
            if not args.get("url"):
                return _json({"error": "No URL"}, status=400)
            wanted = _bare(args["url"])
            return _json(
                [
                    {k: v for k, v in story.items() if k != "comments"}
                    for story in self.lobsters_stories
                    if _bare(story["url"]) == wanted
                ]
            )
        if path.startswith("/s/") and path.endswith(".json"):
            short_id = path[len("/s/") : -len(".json")]
            story = next((s for s in self.lobsters_stories if s["short_id"] == short_id), None)
            if story is None:
                return Response("<h1>Not found</h1>", 404, {"Content-Type": "text/html"})
            tag = self.etag.get(path)
            if tag and request.headers.get("If-None-Match") == tag:
                return Response(status=304, headers={"ETag": tag})
            return _json(story, {"ETag": tag} if tag else {})
        return Response("not found", 404)

    # -- Bluesky (AppView XRPC) -----------------------------------------------------------------
    def _bsky(self, path: str, args: dict[str, str]) -> Response:
        if path == "/xrpc/app.bsky.feed.searchPosts":
            if not args.get("q"):
                return _json(
                    {
                        "error": "InvalidRequest",
                        "message": 'Error: Params must have the property "q"',
                    },
                    status=400,
                )
            wanted = _bare(args.get("url") or args["q"])
            hits = [p for p in self.bsky_posts if wanted in json.dumps(p["record"])]
            start = int(args.get("cursor") or 0)
            size = min(int(args.get("limit", "25")), self.bsky_page_size)
            body: dict[str, Any] = {"posts": hits[start : start + size], "hitsTotal": len(hits)}
            if start + size < len(hits):
                body["cursor"] = str(start + size)
            return _json(body)
        if path == "/xrpc/app.bsky.feed.getPostThread":
            uri = args.get("uri", "")
            thread = self.bsky_threads.get(uri)
            if thread is None:
                return _json({"error": "NotFound", "message": f"Post not found: {uri}"}, status=400)
            return _json({"thread": thread})
        return _json(
            {"error": "MethodNotImplemented", "message": "Method Not Implemented"}, status=501
        )

    # -- Hacker News (Algolia) ---------------------------------------------------------------
    def _hn(self, path: str, args: dict[str, str], request: Request) -> Response:
        if path == "/api/v1/search":
            assert args.get("restrictSearchableAttributes") == "url"
            query = args.get("query", "")
            hits = [h for h in self.hn_hits if query.split("://")[-1] in (h.get("url") or "")]
            page = int(args.get("page", "0"))
            size = self.hn_page_size
            pages = max(1, -(-len(hits) // size))
            body = {
                "hits": hits[page * size : (page + 1) * size],
                "nbHits": len(hits),
                "page": page,
                "nbPages": pages,
                "hitsPerPage": size,
                "query": query,
            }
            return _json(body)
        if path.startswith("/api/v1/items/"):
            item = self.hn_items.get(int(path.rsplit("/", 1)[1]))
            if item is None:
                return Response('{"status":404,"error":"Not Found"}', 404)
            tag = self.etag.get(path)
            if tag and request.headers.get("If-None-Match") == tag:
                return Response(status=304, headers={"ETag": tag})
            return _json(item, {"ETag": tag} if tag else {})
        return Response("not found", 404)

    # -- Reddit --------------------------------------------------------------------------------
    def _reddit(self, path: str, args: dict[str, str]) -> Response:
        if path == "/api/info.json":
            url = args.get("url", "")
            children = [{"kind": "t3", "data": p} for p in self.reddit_posts if p["url"] == url]
            return _json(
                {
                    "kind": "Listing",
                    "data": {
                        "after": None,
                        "before": None,
                        "dist": len(children),
                        "children": children,
                    },
                },
                {"X-Ratelimit-Remaining": "99", "X-Ratelimit-Reset": "30", "X-Ratelimit-Used": "1"},
            )
        if path == "/api/morechildren":
            assert args.get("api_type") == "json" and args.get("link_id", "").startswith("t3_")
            things = [
                self.reddit_more[i]
                for i in args.get("children", "").split(",")
                if i in self.reddit_more
            ]
            return _json({"json": {"errors": [], "data": {"things": things}}})
        if path.startswith("/comments/") and path.endswith(".json"):
            ident = path[len("/comments/") : -len(".json")]
            post = next((p for p in self.reddit_posts if p["id"] == ident), None)
            if post is None:
                return Response('{"message": "Not Found", "error": 404}', 404)
            return _json(
                [
                    {
                        "kind": "Listing",
                        "data": {"after": None, "children": [{"kind": "t3", "data": post}]},
                    },
                    {
                        "kind": "Listing",
                        "data": {"after": None, "children": self.reddit_comments.get(ident, [])},
                    },
                ]
            )
        return Response("not found", 404)

    # -- Disqus --------------------------------------------------------------------------------
    def _disqus(self, path: str, args: dict[str, str]) -> Response:
        if path != "/api/3.0/threads/listPosts.json":
            return Response("not found", 404)
        if args.get("api_key") != self.disqus_key:
            return _json({"code": 5, "response": "Invalid API key"}, status=400)
        thread = args.get("thread", "")
        posts = self.disqus_threads.get(thread)
        if posts is None:
            return _json(
                {
                    "code": 2,
                    "response": f"Invalid argument, 'thread': Unable to find thread '{thread}'",
                },
                status=400,
            )
        ordered = posts if args.get("order") == "asc" else list(reversed(posts))
        start = int((args.get("cursor") or "0:0:0").split(":")[0])
        size = min(int(args.get("limit", "25")), self.disqus_page_size)
        page = ordered[start : start + size]
        more = start + size < len(ordered)
        cursor = {
            "prev": None,
            "hasNext": more,
            "next": f"{start + size}:0:0",
            "hasPrev": start > 0,
            "total": None,
            "id": f"{start}:0:0",
            "more": more,
        }
        return _json({"cursor": cursor, "code": 0, "response": page})


def _bare(url: str) -> str:
    """A URL as Lobsters compares them: without its scheme and ``www.``."""
    return url.split("://", 1)[-1].removeprefix("www.").rstrip("/")


def _json(body: Any, headers: dict[str, str] | None = None, status: int = 200) -> Response:
    return Response(
        json.dumps(body), status, {"Content-Type": "application/json", **(headers or {})}
    )


def hn_comment(
    ident: int,
    parent: int,
    author: str | None,
    text: str | None,
    at: int,
    children: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One Algolia ``items`` comment node (deleted: author and text None)."""
    return {
        "id": ident,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(at)),
        "created_at_i": at,
        "type": "comment",
        "author": author,
        "title": None,
        "url": None,
        "text": text,
        "points": None,
        "parent_id": parent,
        "story_id": 8863,
        "options": [],
        "children": children or [],
    }


def reddit_comment(
    ident: str,
    parent: str,
    author: str,
    body: str,
    at: float,
    replies: list[dict[str, Any]] | None = None,
    edited: float | bool = False,
) -> dict[str, Any]:
    """One ``t1`` thing as ``/comments/{id}.json?raw_json=1`` gives it."""
    return {
        "kind": "t1",
        "data": {
            "id": ident,
            "name": f"t1_{ident}",
            "parent_id": parent,
            "author": author,
            "body": body,
            "body_html": f'<div class="md"><p>{body}</p></div>',
            "created_utc": at,
            "edited": edited,
            "score": 3,
            "depth": 0,
            "permalink": f"/r/programming/comments/abc123/slug/{ident}/",
            "replies": {"kind": "Listing", "data": {"after": None, "children": replies}}
            if replies
            else "",
        },
    }


def disqus_post(
    ident: int,
    parent: int | None,
    name: str,
    message: str,
    created: str,
    deleted: bool = False,
    edited: bool = False,
) -> dict[str, Any]:
    """One post as ``threads/listPosts`` gives it."""
    return {
        "id": str(ident),
        "parent": parent,
        "thread": "4567",
        "forum": "exampleblog",
        "message": message,
        "raw_message": message,
        "createdAt": created,
        "author": {
            "name": name,
            "username": name.lower(),
            "profileUrl": f"https://disqus.com/by/{name.lower()}/",
            "isAnonymous": False,
        },
        "isDeleted": deleted,
        "isEdited": edited,
        "isApproved": True,
        "isSpam": False,
        "likes": 0,
        "dislikes": 0,
        "points": 0,
    }


def lobsters_comment(
    short_id: str,
    parent: str | None,
    user: str,
    html: str,
    created: str,
    depth: int = 0,
    deleted: bool = False,
) -> dict[str, Any]:
    """One entry of a Lobsters story's ``comments`` (``/s/{short_id}.json``)."""
    return {
        "short_id": short_id,
        "short_id_url": f"https://lobste.rs/c/{short_id}",
        "created_at": created,
        "last_edited_at": created,
        "is_deleted": deleted,
        "is_moderated": False,
        "score": 4,
        "flags": 0,
        "parent_comment": parent,
        "comment": "" if deleted else html,
        "comment_plain": "",
        "url": f"https://lobste.rs/c/{short_id}",
        "depth": depth,
        "commenting_user": user,
    }


def bsky_post(
    did: str,
    rkey: str,
    handle: str,
    text: str,
    created: str,
    *,
    likes: int = 0,
    replies: int = 0,
    link: str | None = None,
) -> dict[str, Any]:
    """An ``app.bsky.feed.defs#postView`` (``link``: an external embed in its record)."""
    record: dict[str, Any] = {
        "$type": "app.bsky.feed.post",
        "text": text,
        "createdAt": created,
        "langs": ["en"],
    }
    if link:
        record["embed"] = {
            "$type": "app.bsky.embed.external",
            "external": {"uri": link, "title": "A post", "description": ""},
        }
    return {
        "uri": f"at://{did}/app.bsky.feed.post/{rkey}",
        "cid": f"bafyrei{rkey}",
        "author": {"did": did, "handle": handle, "displayName": handle.split(".")[0].title()},
        "record": record,
        "replyCount": replies,
        "repostCount": 1,
        "likeCount": likes,
        "quoteCount": 0,
        "indexedAt": created,
        "labels": [],
    }


def bsky_node(post: dict[str, Any], replies: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An ``app.bsky.feed.defs#threadViewPost``."""
    return {"$type": "app.bsky.feed.defs#threadViewPost", "post": post, "replies": replies or []}
