"""Simulated GitHub, Mastodon and webmention.io APIs on 127.0.0.1, answering with the shapes
their public documentation gives (fixtures written by hand from the documented schemas,
issue 16):

* GitHub GraphQL (``POST /github/graphql``, a bearer token required): ``search(type:
  DISCUSSION)`` nodes; ``repository.discussion(number)`` with ``comments`` and each comment's
  ``replies`` as connections (``nodes``, ``pageInfo { hasNextPage endCursor }``), comments
  ``isMinimized`` or with ``deletedAt``; ``node(id)`` for later pages of replies; an unknown
  discussion is ``errors: [{type: NOT_FOUND}]`` with ``discussion: null``;
* GitHub REST: ``/github/search/issues`` (``total_count``, ``items``), and
  ``/github/repos/{o}/{r}/issues/{n}/comments`` paged by ``per_page``/``page`` with a ``Link``
  header (``rel="next"``, ``rel="last"``); ``X-RateLimit-Remaining``/``X-RateLimit-Reset`` on
  every answer and 403 "API rate limit exceeded" with ``X-RateLimit-Remaining: 0`` past the
  limit;
* Mastodon: ``/mastodon/api/v2/search`` (``accounts``, ``statuses``, ``hashtags``),
  ``/mastodon/api/v1/statuses/{id}`` and ``.../context`` (``ancestors``, ``descendants``);
  a deleted status is 404 ``{"error": "Record not found"}``; 429 past the limit with
  ``X-RateLimit-Reset`` and ``Retry-After``;
* webmention.io: ``/webmention/api/mentions.jf2`` (``type: feed``, ``children`` with
  ``wm-id``, ``wm-property``, ``wm-received``, ``author``, ``content``), paged by ``per-page``
  and ``page`` (from 0), a page shorter than ``per-page`` the last.

Every request is logged; ``limits`` caps each API's requests a minute; ``fail`` queues
(status, headers) answers.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from werkzeug import Request, Response


@dataclass
class Logged:
    api: str
    path: str
    args: dict[str, str]
    at: float
    status: int
    headers: dict[str, str]
    body: str = ""


@dataclass
class SystemsSim:
    """GitHub (REST and GraphQL), Mastodon and webmention.io behind ``handle``."""

    origin: str = ""
    limits: dict[str, int] = field(
        default_factory=lambda: {"github": 600, "mastodon": 600, "webmention": 600}
    )
    log: list[Logged] = field(default_factory=list)
    fail: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    github_token: str = "ghp_sekrit-github-token-456"
    webmention_token: str = "wm-sekrit-token-789"
    page_size: int = 2
    graphql_limited: bool = False  # answer GraphQL with its RATE_LIMITED error
    # number -> {"title", "url", "category", "comments": [comment (with "replies")]}
    discussions: dict[int, dict[str, Any]] = field(default_factory=dict)
    # number -> {"title", "comments": [REST comment]}
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    mentions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def requests(self, api: str, path_part: str = "") -> list[Logged]:
        return [r for r in self.log if r.api == api and path_part in r.path]

    def handle(self, request: Request) -> Response:
        api, _, rest = request.path.lstrip("/").partition("/")
        args = dict(request.args.items())
        body = request.get_data(as_text=True)
        now = time.monotonic()
        with self._lock:
            recent = [r for r in self.log if r.api == api and now - r.at < 60 and r.status < 400]
            queued = self.fail.get(api) or []
            limit = self.limits.get(api, 10**6)
            if queued:
                status, headers = queued.pop(0)
                response = Response(json.dumps({"message": f"error {status}"}), status, headers)
            elif len(recent) >= limit:
                response = self._refuse(api)
            else:
                response = self._answer(api, "/" + rest, args, request, body)
                if api == "github" and "X-RateLimit-Remaining" not in response.headers:
                    response.headers["X-RateLimit-Limit"] = str(limit)
                    response.headers["X-RateLimit-Remaining"] = str(limit - len(recent) - 1)
                    response.headers["X-RateLimit-Reset"] = str(int(time.time()) + 60)
            self.log.append(
                Logged(
                    api, "/" + rest, args, now, response.status_code, dict(request.headers), body
                )
            )
        return response

    def _refuse(self, api: str) -> Response:
        if api == "github":  # the primary rate limit: 403 with the budget spent
            return Response(
                json.dumps(
                    {
                        "message": "API rate limit exceeded for 127.0.0.1.",
                        "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                    }
                ),
                403,
                {
                    "Content-Type": "application/json",
                    "X-RateLimit-Limit": "60",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(int(time.time()) + 120),
                },
            )
        reset = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + 120))
        return Response(
            json.dumps({"error": "Too many requests"}),
            429,
            {"Retry-After": "120", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
        )

    def _answer(
        self, api: str, path: str, args: dict[str, str], request: Request, body: str
    ) -> Response:
        if api == "github":
            return self._github(path, args, request, body)
        if api == "mastodon":
            return self._mastodon(path, args)
        if api == "webmention":
            return self._webmention(path, args)
        return Response("not found", 404)

    # -- GitHub ---------------------------------------------------------------------------------
    def _github(self, path: str, args: dict[str, str], request: Request, body: str) -> Response:
        auth = request.headers.get("Authorization", "")
        if path == "/graphql":
            if request.method != "POST":
                return Response("", 405)
            if auth.lower() != f"bearer {self.github_token}":
                return _json(
                    {
                        "message": "Bad credentials",
                        "documentation_url": "https://docs.github.com/graphql",
                    },
                    status=401,
                )
            if self.graphql_limited:
                return _json(
                    {
                        "errors": [
                            {
                                "type": "RATE_LIMITED",
                                "message": "API rate limit exceeded for user ID 1.",
                            }
                        ]
                    },
                    {
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": str(int(time.time()) + 600),
                    },
                )
            payload = json.loads(body)
            return _json(self._graphql(payload["query"], payload.get("variables") or {}))
        if auth and auth != f"Bearer {self.github_token}":
            return _json({"message": "Bad credentials"}, status=401)
        if path == "/search/issues":
            query = args.get("q", "")
            match = re.match(r'^"(.*)" type:issue in:title repo:(\S+)$', query)
            assert match, query
            term = match.group(1).lower()
            items = [
                _issue(number, issue)
                for number, issue in sorted(self.issues.items())
                if term in issue["title"].lower()
            ]
            return _json({"total_count": len(items), "incomplete_results": False, "items": items})
        found = re.match(r"^/repos/([^/]+)/([^/]+)/issues/(\d+)/comments$", path)
        if found:
            issue = self.issues.get(int(found.group(3)))
            if issue is None:
                return _json({"message": "Not Found"}, status=404)
            assert "html" in request.headers.get("Accept", "")
            size = min(int(args.get("per_page", "30")), self.page_size)
            page = int(args.get("page", "1"))
            comments = issue["comments"]
            last = max(1, -(-len(comments) // size))
            base = f"{self.origin}/github{path}"
            links = []
            if page < last:
                links.append(f'<{base}?per_page={size}&page={page + 1}>; rel="next"')
            links.append(f'<{base}?per_page={size}&page={last}>; rel="last"')
            return _json(comments[(page - 1) * size : page * size], {"Link": ", ".join(links)})
        return _json({"message": "Not Found"}, status=404)

    def _graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        first = int(re.search(r"first: (\d+)", query).group(1))  # type: ignore[union-attr]
        size = min(first, self.page_size)
        if "search(" in query:
            text = variables["query"]
            term = text.split(" in:title ", 1)[1]
            category = re.search(r'category:"([^"]+)"', text)
            nodes = [
                {
                    "number": n,
                    "title": d["title"],
                    "url": d["url"],
                    "comments": {"totalCount": len(d["comments"])},
                }
                for n, d in sorted(self.discussions.items())
                if term.lower() in d["title"].lower()
                and (category is None or d["category"] == category.group(1))
            ]
            return {"data": {"search": {"discussionCount": len(nodes), "nodes": nodes}}}
        if "node(id:" in query:
            for discussion in self.discussions.values():
                for comment in discussion["comments"]:
                    if comment["id"] == variables["id"]:
                        replies = _page(comment["replies"], variables.get("after"), size)
                        return {"data": {"node": {"replies": replies}}}
            return {"data": {"node": None}}
        discussion = self.discussions.get(int(variables["number"]))
        if discussion is None:
            return {
                "data": {"repository": {"discussion": None}},
                "errors": [
                    {
                        "type": "NOT_FOUND",
                        "path": ["repository", "discussion"],
                        "message": "Could not resolve to a Discussion with the number of "
                        f"{variables['number']}.",
                    }
                ],
            }
        comments = _page(discussion["comments"], variables.get("after"), size)
        comments["nodes"] = [
            {**c, "replies": _page(c["replies"], None, size)} for c in comments["nodes"]
        ]
        return {
            "data": {
                "repository": {
                    "discussion": {
                        "number": int(variables["number"]),
                        "url": discussion["url"],
                        "title": discussion["title"],
                        "createdAt": "2023-11-14T22:00:00Z",
                        "upvoteCount": 4,
                        "author": {"login": "blogger"},
                        "comments": comments,
                    }
                }
            }
        }

    # -- Mastodon -------------------------------------------------------------------------------
    def _mastodon(self, path: str, args: dict[str, str]) -> Response:
        if path == "/api/v2/search":
            assert args.get("type") == "statuses" and args.get("resolve") == "false"
            query = args.get("q", "")
            statuses = [
                s
                for s in self.statuses.values()
                if query in s["content"]
                or (s.get("card") or {}).get("url") == query
                or query.split("://")[-1] in s["content"]
            ]
            return _json({"accounts": [], "statuses": statuses, "hashtags": []})
        found = re.match(r"^/api/v1/statuses/(\d+)(/context)?$", path)
        if found:
            status = self.statuses.get(found.group(1))
            if status is None:
                return _json({"error": "Record not found"}, status=404)
            if not found.group(2):
                return _json(status)
            return _json({"ancestors": [], "descendants": self._descendants(found.group(1))})
        return _json({"error": "Record not found"}, status=404)

    def _descendants(self, root: str) -> list[dict[str, Any]]:
        """Depth first, as Mastodon orders them."""
        ordered: list[dict[str, Any]] = []

        def walk(parent: str) -> None:
            for status in sorted(self.statuses.values(), key=lambda s: int(s["id"])):
                if status["in_reply_to_id"] == parent:
                    ordered.append(status)
                    walk(status["id"])

        walk(root)
        return ordered

    # -- webmention.io --------------------------------------------------------------------------
    def _webmention(self, path: str, args: dict[str, str]) -> Response:
        if path != "/api/mentions.jf2":
            return Response("not found", 404)
        if "token" in args and args["token"] != self.webmention_token:
            return _json({"error": "invalid_token"}, status=401)
        mentions = self.mentions.get(args.get("target", ""), [])
        if args.get("sort-dir") != "up":
            mentions = list(reversed(mentions))
        size = min(int(args.get("per-page", "20")), 100)  # as asked: a short page is the last
        page = int(args.get("page", "0"))
        return _json(
            {
                "type": "feed",
                "name": "Webmentions",
                "children": mentions[page * size : (page + 1) * size],
            }
        )


def _json(body: Any, headers: dict[str, str] | None = None, status: int = 200) -> Response:
    return Response(
        json.dumps(body), status, {"Content-Type": "application/json", **(headers or {})}
    )


def _page(items: list[dict[str, Any]], after: str | None, size: int) -> dict[str, Any]:
    """A GraphQL connection page; cursors are opaque text to the client."""
    start = int(after.removeprefix("Y3Vyc29y:")) if after else 0
    nodes = [{k: v for k, v in item.items() if k != "replies"} for item in items]
    chunk = nodes[start : start + size]
    if items and "replies" in items[0]:
        chunk = [{**node, "replies": items[start + i]["replies"]} for i, node in enumerate(chunk)]
    more = start + size < len(items)
    return {
        "totalCount": len(items),
        "pageInfo": {"hasNextPage": more, "endCursor": f"Y3Vyc29y:{start + size}"},
        "nodes": chunk,
    }


def gh_comment(
    ident: str,
    login: str | None,
    body: str,
    at: str,
    replies: list[dict[str, Any]] | None = None,
    *,
    minimized: bool = False,
    deleted: bool = False,
    edited: str | None = None,
) -> dict[str, Any]:
    """A ``DiscussionComment`` node (``replies`` kept aside for the connection)."""
    node: dict[str, Any] = {
        "id": ident,
        "url": f"https://github.com/o/r/discussions/1#discussioncomment-{ident}",
        "createdAt": at,
        "lastEditedAt": edited,
        "deletedAt": "2023-11-15T00:00:00Z" if deleted else None,
        "isMinimized": minimized,
        "bodyHTML": body,
        "author": {"login": login, "url": f"https://github.com/{login}"} if login else None,
    }
    if replies is not None:
        node["replies"] = replies
    return node


def _issue(number: int, issue: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": 1000 + number,
        "number": number,
        "title": issue["title"],
        "html_url": f"https://github.com/o/r/issues/{number}",
        "state": "open",
        "comments": len(issue["comments"]),
        "user": {"login": "utterances-bot", "html_url": "https://github.com/utterances-bot"},
        "created_at": "2023-11-14T22:00:00Z",
    }


def issue_comment(ident: int, login: str, body: str, at: str) -> dict[str, Any]:
    """An issue comment as ``Accept: application/vnd.github.html+json`` gives it."""
    return {
        "id": ident,
        "node_id": f"IC_{ident}",
        "html_url": f"https://github.com/o/r/issues/1#issuecomment-{ident}",
        "body_html": body,
        "user": {"login": login, "html_url": f"https://github.com/{login}", "type": "User"},
        "created_at": at,
        "updated_at": at,
        "author_association": "NONE",
    }


def status(
    ident: str,
    reply_to: str | None,
    acct: str,
    content: str,
    at: str,
    *,
    visibility: str = "public",
    replies: int = 0,
    boosts: int = 0,
    favourites: int = 0,
    card_url: str | None = None,
    edited_at: str | None = None,
) -> dict[str, Any]:
    """A Mastodon ``Status`` entity."""
    return {
        "id": ident,
        "created_at": at,
        "edited_at": edited_at,
        "in_reply_to_id": reply_to,
        "in_reply_to_account_id": None,
        "sensitive": False,
        "spoiler_text": "",
        "visibility": visibility,
        "language": "en",
        "uri": f"https://social.example/users/{acct}/statuses/{ident}",
        "url": f"https://social.example/@{acct}/{ident}",
        "replies_count": replies,
        "reblogs_count": boosts,
        "favourites_count": favourites,
        "content": content,
        "reblog": None,
        "account": {
            "id": "1",
            "username": acct,
            "acct": acct,
            "display_name": acct.title(),
            "url": f"https://social.example/@{acct}",
        },
        "media_attachments": [],
        "mentions": [],
        "tags": [],
        "card": {"url": card_url, "title": "A post", "type": "link"} if card_url else None,
    }


def mention(
    ident: int,
    kind: str,
    name: str,
    target: str,
    at: str,
    text: str | None = None,
    *,
    url: str | None = None,
    reply_to: str | None = None,
    private: bool = False,
) -> dict[str, Any]:
    """A webmention.io JF2 child."""
    return {
        "type": "entry",
        "author": {
            "type": "card",
            "name": name,
            "photo": f"https://example.org/{name}.jpg",
            "url": f"https://{name.lower()}.example/",
        },
        "url": url or f"https://{name.lower()}.example/notes/{ident}",
        "published": at,
        "wm-received": at,
        "wm-id": ident,
        "wm-source": url or f"https://{name.lower()}.example/notes/{ident}",
        "wm-target": target,
        "wm-protocol": "webmention",
        "wm-property": kind,
        "wm-private": private,
        **({"content": {"html": f"<p>{text}</p>", "text": text}} if text else {}),
        **({kind: reply_to or target} if kind != "mention-of" or reply_to else {kind: target}),
    }


def quoted(url: str) -> str:
    return quote(url, safe="")
