"""Simulated self-hosted comment systems on 127.0.0.1, answering with the shapes their public
documentation gives (fixtures written by hand from the documented schemas, issue 16):

* Discourse (https://docs.discourse.org/): ``/t/{id}.json`` (``post_stream`` with the first
  ``first_posts`` posts and every id in ``stream``), ``/t/{id}/posts.json?post_ids[]=``,
  ``/embed/info?embed_url=`` (``Api-Key`` header; 403 without, 404 for an unknown page);
* Isso (https://isso-comments.de/docs/reference/server-api/): ``/?uri=`` with ``limit``,
  ``nested_limit``, ``after`` and ``parent``; ``total_replies``/``hidden_replies``; modes 1, 2
  and 4 (pending ones are not shown, as Isso does); 404 for an unknown thread;
* Remark42 (https://remark42.com/docs/contributing/api/): ``/api/v1/find`` with ``format=tree``
  (``{"comment", "replies"}`` nodes) or ``plain``; ``delete`` and ``edit``;
* Commento (``api/comment_list.go``): ``POST /api/comment/list`` with a JSON body; ``commenters``
  by hex, ``parentHex`` ``root``, ``deleted``; ``success: false`` for an unknown domain.

Paths start with the API's name (``/isso/...``). Every request is logged; each API answers 429
with ``Retry-After`` past ``limits`` requests a minute; ``fail`` queues statuses to answer next.
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
    args: dict[str, list[str]]
    at: float
    status: int
    headers: dict[str, str]
    body: bytes = b""
    method: str = "GET"


@dataclass
class SelfHostedSim:
    """Every simulated system behind one dispatch function (``handle``)."""

    limits: dict[str, int] = field(default_factory=dict)
    log: list[Logged] = field(default_factory=list)
    fail: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    # Discourse: topics by id, embeds by page URL, the key.
    discourse_topics: dict[int, dict[str, Any]] = field(default_factory=dict)
    discourse_posts: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    discourse_embeds: dict[str, int] = field(default_factory=dict)
    discourse_key: str = "sekrit-discourse-key-456"
    first_posts: int = 3
    # Isso: comments by uri.
    isso_threads: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Remark42: comments (flat, with pid) by (site, url).
    remark_threads: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    # Commento: comments and commenters by (domain, path).
    commento_domains: set[str] = field(default_factory=set)
    commento_threads: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    commento_people: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def requests(self, api: str, path_part: str = "") -> list[Logged]:
        return [r for r in self.log if r.api == api and path_part in r.path]

    def handle(self, request: Request) -> Response:
        api, _, rest = request.path.lstrip("/").partition("/")
        args = {k: request.args.getlist(k) for k in request.args}
        body = request.get_data()
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
                response = self._answer(api, "/" + rest, args, request, body)
            self.log.append(
                Logged(
                    api,
                    "/" + rest,
                    args,
                    now,
                    response.status_code,
                    dict(request.headers),
                    body,
                    request.method,
                )
            )
        return response

    def _answer(
        self, api: str, path: str, args: dict[str, list[str]], request: Request, body: bytes
    ) -> Response:
        one = {k: v[0] for k, v in args.items() if v}
        if api == "discourse":
            return self._discourse(path, args, request)
        if api == "isso":
            return self._isso(path, one)
        if api == "remark42":
            return self._remark42(path, one)
        if api == "commento":
            return self._commento(path, request, body)
        return Response("not found", 404)

    # -- Discourse -----------------------------------------------------------------------------
    def _discourse(self, path: str, args: dict[str, list[str]], request: Request) -> Response:
        if path == "/embed/info":
            if request.headers.get("Api-Key") != self.discourse_key:
                return _json(
                    {
                        "errors": ["You are not permitted to view the requested resource."],
                        "error_type": "invalid_access",
                    },
                    status=403,
                )
            topic = self.discourse_embeds.get((args.get("embed_url") or [""])[0])
            if topic is None:
                return _json({"errors": ["not found"], "error_type": "not_found"}, status=404)
            return _json(
                {
                    "id": 7,
                    "topic_id": topic,
                    "post_id": self.discourse_posts[topic][0]["id"],
                    "embed_url": args["embed_url"][0],
                    "topic_slug": self.discourse_topics[topic]["slug"],
                }
            )
        if not path.startswith("/t/"):
            return Response("not found", 404)
        rest = path[len("/t/") :]
        if rest.endswith("/posts.json"):
            topic_id = int(rest.split("/")[0])
            wanted = {int(i) for i in args.get("post_ids[]", [])}
            posts = [p for p in self.discourse_posts.get(topic_id, []) if p["id"] in wanted]
            return _json({"post_stream": {"posts": posts}, "id": topic_id})
        if rest.endswith(".json") and rest[: -len(".json")].isdigit():
            topic_id = int(rest[: -len(".json")])
            topic = self.discourse_topics.get(topic_id)
            if topic is None:
                return _json(
                    {
                        "errors": ["The requested URL or resource could not be found."],
                        "error_type": "not_found",
                    },
                    status=404,
                )
            posts = self.discourse_posts[topic_id]
            return _json(
                {
                    **topic,
                    "id": topic_id,
                    "posts_count": len(posts),
                    "post_stream": {
                        "posts": posts[: self.first_posts],
                        "stream": [p["id"] for p in posts],
                    },
                }
            )
        return Response("not found", 404)

    # -- Isso ------------------------------------------------------------------------------------
    def _isso(self, path: str, args: dict[str, str]) -> Response:
        if path != "/":
            return Response("not found", 404)
        uri = args.get("uri", "")
        if uri not in self.isso_threads:
            return Response("Not Found", 404)
        # Public reads show accepted and deleted comments (mode 1 | 4), never pending ones.
        shown = [c for c in self.isso_threads[uri] if c["mode"] in (1, 4)]
        after = float(args.get("after", "0") or 0)
        limit = int(args["limit"]) if "limit" in args else None
        nested = int(args["nested_limit"]) if "nested_limit" in args else None
        parent = int(args["parent"]) if "parent" in args else None

        def level(of: int | None) -> list[dict[str, Any]]:
            return sorted(
                (c for c in shown if c["parent"] == of and c["created"] > after),
                key=lambda c: c["id"],
            )

        def public(c: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in c.items() if k not in ("email",)}

        roots = level(parent)
        listed = roots if limit is None else roots[:limit]
        body: dict[str, Any] = {
            "id": parent,
            "total_replies": len(roots),
            "hidden_replies": len(roots) - len(listed),
            "replies": [],
            "config": {"reply-to-self": False, "require-email": False},
        }
        for comment in listed:
            item = public(comment)
            if parent is None:
                replies = level(comment["id"])
                kept = replies if nested is None else replies[:nested]
                item.update(
                    total_replies=len(replies),
                    hidden_replies=len(replies) - len(kept),
                    replies=[public(r) for r in kept],
                )
            body["replies"].append(item)
        return _json(body)

    # -- Remark42 --------------------------------------------------------------------------------
    def _remark42(self, path: str, args: dict[str, str]) -> Response:
        if path != "/api/v1/find":
            return Response("not found", 404)
        site, url = args.get("site", ""), args.get("url", "")
        if not any(s == site for s, _ in self.remark_threads):
            return _json(
                {"code": 0, "details": "can't find comments", "error": f"site {site} not found"},
                status=400,
            )
        comments = self.remark_threads.get((site, url), [])
        info = {"url": url, "count": len(comments), "read_only": False}
        if args.get("format") != "tree":
            return _json(comments)  # plain: the sorted list

        def node(comment: dict[str, Any]) -> dict[str, Any]:
            children = [c for c in comments if c["pid"] == comment["id"]]
            return {"comment": comment, "replies": [node(c) for c in children]}

        return _json({"comments": [node(c) for c in comments if not c["pid"]], "info": info})

    # -- Commento --------------------------------------------------------------------------------
    def _commento(self, path: str, request: Request, body: bytes) -> Response:
        if path != "/api/comment/list" or request.method != "POST":
            return Response("404 page not found", 404)
        try:
            asked = json.loads(body)
        except ValueError:
            return _json({"success": False, "message": "Invalid JSON request."})
        domain, page = asked.get("domain"), asked.get("path")
        if domain not in self.commento_domains:
            return _json(
                {"success": False, "message": "This domain is not registered with Commento."}
            )
        comments = self.commento_threads.get((domain, page), [])
        people = {
            c["commenterHex"]: self.commento_people[c["commenterHex"]]
            for c in comments
            if c["commenterHex"] in self.commento_people
        }
        return _json(
            {
                "success": True,
                "requireIdentification": False,
                "isModerator": False,
                "isFrozen": False,
                "attributes": {"isLocked": False, "stickyCommentHex": "none"},
                "comments": comments,
                "commenters": people,
                "configuredOauths": {"commento": True},
            }
        )


def _json(body: Any, headers: dict[str, str] | None = None, status: int = 200) -> Response:
    return Response(
        json.dumps(body), status, {"Content-Type": "application/json", **(headers or {})}
    )


def discourse_post(
    ident: int,
    number: int,
    username: str,
    cooked: str,
    created: str,
    *,
    reply_to: int | None = None,
    deleted: bool = False,
    hidden: bool = False,
    post_type: int = 1,
    edited: str | None = None,
) -> dict[str, Any]:
    """One post as ``/t/{id}.json`` gives it."""
    return {
        "id": ident,
        "name": username.title(),
        "username": username,
        "avatar_template": f"/user_avatar/forum.example/{username}/{{size}}/1_2.png",
        "created_at": created,
        "cooked": cooked,
        "post_number": number,
        "post_type": post_type,
        "updated_at": edited or created,
        "reply_count": 0,
        "reply_to_post_number": reply_to,
        "quote_count": 0,
        "incoming_link_count": 0,
        "reads": 3,
        "score": 0.4,
        "yours": False,
        "topic_id": 0,
        "topic_slug": "",
        "version": 2 if edited else 1,
        "deleted_at": "2023-11-15T10:00:00.000Z" if deleted else None,
        "user_deleted": False,
        "hidden": hidden,
        "wiki": False,
    }


def isso_comment(
    ident: int,
    parent: int | None,
    author: str | None,
    text: str,
    created: float,
    *,
    mode: int = 1,
    website: str | None = None,
    modified: float | None = None,
) -> dict[str, Any]:
    """One Isso comment (the JSON format of its server API)."""
    return {
        "id": ident,
        "parent": parent,
        "text": text,
        "mode": mode,
        "hash": "4505c1eeda98",
        "author": author,
        "website": website,
        "created": created,
        "modified": modified,
        "likes": 0,
        "dislikes": 0,
    }


def remark_comment(
    ident: str,
    pid: str,
    name: str,
    text: str,
    at: str,
    *,
    url: str,
    deleted: bool = False,
    edited: str | None = None,
) -> dict[str, Any]:
    """One Remark42 ``Comment``."""
    comment: dict[str, Any] = {
        "id": ident,
        "pid": pid,
        "text": "" if deleted else text,
        "orig": "" if deleted else text,
        "user": {
            "name": "" if deleted else name,
            "id": f"github_{name.lower()}",
            "picture": "",
            "admin": False,
            "block": False,
            "verified": False,
        },
        "locator": {"site": "blog", "url": url},
        "score": 0,
        "vote": 0,
        "time": at,
        "pin": False,
        "delete": deleted,
        "title": "Post",
    }
    if edited:
        comment["edit"] = {"time": edited, "summary": ""}
    return comment


def commento_comment(
    hex_id: str,
    parent: str,
    commenter: str,
    html: str,
    created: str,
    *,
    deleted: bool = False,
) -> dict[str, Any]:
    """One comment of Commento's ``comment/list``."""
    return {
        "commentHex": hex_id,
        "commenterHex": commenter,
        "markdown": "[deleted]" if deleted else html,
        "html": "[deleted]" if deleted else html,
        "parentHex": parent,
        "score": 0,
        "state": "approved",
        "creationDate": created,
        "direction": 0,
        "deleted": deleted,
    }
