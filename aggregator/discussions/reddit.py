"""Reddit through its public JSON endpoints (https://www.reddit.com/dev/api).

``GET /api/info.json?url=URL`` lists the submissions of a URL (a ``Listing`` of ``t3``
things, paged by ``after``); ``GET /comments/{id}.json?raw_json=1`` returns the submission
and its comment tree (``t1`` things, ``replies`` nested; ``more`` stubs for what was left
out, filled by ``GET /api/morechildren?link_id=t3_ID&children=ID,ID&api_type=json``, whose
``json.data.things`` is a flat list of ``t1`` things with their ``parent_id``).
Unauthenticated clients get about 10 requests a minute; ``X-Ratelimit-Remaining`` and
``X-Ratelimit-Reset`` are honoured by the API client. Deleted comments read ``[deleted]`` or
``[removed]``.
"""

from __future__ import annotations

from dataclasses import dataclass
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
from aggregator.errors import AggregatorError, ParseError, StoppedError
from aggregator.models import CommentData, ThreadState
from aggregator.parse.sanitize import clean_html, clean_url, plain_text

MAX_LISTING_PAGES = 3
# "more" stubs are filled by /api/morechildren: this many ids a request, requests a thread.
MORE_BATCH = 100
MAX_MORE_REQUESTS = 5
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
        root = f"t3_{ref.ref}"
        tree = _Tree()
        tree.add(_listing(answer[1], path).get("children") or [], root, path)
        self._expand(tree, root)
        comments, gone = self._comments(tree, root)
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
            complete=not tree.incomplete and len(comments) < MAX_COMMENTS,
        )

    def _expand(self, tree: _Tree, root: str) -> None:
        """Replace ``more`` stubs by the comments they stand for (``GET /api/morechildren``,
        up to :data:`MORE_BATCH` ids a request, :data:`MAX_MORE_REQUESTS` requests a thread).
        A failed request leaves the rest as stubs: the thread is read again later."""
        asked: set[str] = set()
        for _ in range(MAX_MORE_REQUESTS):
            batch: list[_More] = []
            ids: list[str] = []
            for stub in tree.stubs():
                wanted = [i for i in stub.ids if i not in asked][: MORE_BATCH - len(ids)]
                if wanted:
                    batch.append(stub)
                    ids.extend(wanted)
                    asked.update(wanted)
                if len(ids) >= MORE_BATCH:
                    break
            if not ids:
                return
            try:
                data = self.get(
                    "/api/morechildren",
                    {
                        "api_type": "json",
                        "link_id": root,
                        "children": ",".join(ids),
                        "limit_children": "false",
                        "raw_json": 1,
                    },
                )
            except StoppedError:
                raise
            except AggregatorError:
                return
            answer = data.get("json") if isinstance(data, dict) else None
            things = answer.get("data", {}).get("things") if isinstance(answer, dict) else None
            if not isinstance(things, list):
                return
            tree.fill(batch, things, asked)

    def _comments(self, tree: _Tree, root: str) -> tuple[list[CommentData], list[str]]:
        """The tree's comments depth first, in the site's order, and the deleted ones' keys."""
        comments: list[CommentData] = []
        gone: list[str] = []
        seen: set[str] = set()
        stack: list[tuple[dict[str, Any], str | None]] = [
            (node, None) for node in reversed(tree.comments(root))
        ]
        while stack and len(comments) < MAX_COMMENTS:
            data, parent = stack.pop()
            name = f"t1_{data['id']}"
            if name in seen:
                continue
            seen.add(name)
            key = self.key(name)
            children = tree.comments(name)
            body = str(data.get("body") or "")
            author = str(data.get("author") or "")
            if body in _GONE or (author in _GONE and not body):
                gone.append(key)
                if not children:
                    continue
                content, who = DELETED, None
            else:
                content = clean_html(data.get("body_html") or body, self.site_url + "/")
                who = None if author in _GONE else plain_text(author) or None
            comments.append(
                make_comment(
                    key,
                    content,
                    author=who,
                    author_url=f"{self.site_url}/user/{who}" if who else None,
                    published_at=from_timestamp(data.get("created_utc")),
                    link=clean_url(str(data.get("permalink") or ""), self.site_url + "/"),
                    parent_key=parent,
                )
            )
            stack.extend((child, key) for child in reversed(children))
        return comments, gone


@dataclass(eq=False)
class _More:
    """A ``more`` stub: ids of comments the listing left out, where they belong."""

    ids: list[str]


class _Tree:
    """A thread's comments by parent (``t3_``/``t1_`` names), in the site's order, with the
    ``more`` stubs in their places until they are filled."""

    def __init__(self) -> None:
        self.children: dict[str, list[dict[str, Any] | _More]] = {}
        self.incomplete = False  # a "continue this thread" stub, or one not filled

    def add(self, things: list[Any], parent: str, path: str) -> None:
        """Place ``things`` (with their nested replies) under ``parent``."""
        stack: list[tuple[list[Any], str]] = [(things, parent)]
        while stack:
            batch, under = stack.pop()
            for thing in batch:
                node = self._node(thing)
                if node is None:
                    continue
                self.children.setdefault(under, []).append(node)
                if isinstance(node, dict):
                    replies = node.get("replies")
                    if isinstance(replies, dict):
                        nested = _listing(replies, path).get("children") or []
                        stack.append((nested, f"t1_{node['id']}"))

    def _node(self, thing: Any) -> dict[str, Any] | _More | None:
        if isinstance(thing, dict) and thing.get("kind") == "more":
            data = thing.get("data")
            listed = data.get("children") if isinstance(data, dict) else None
            ids = [str(i) for i in listed or [] if str(i).isalnum()]
            if not ids:
                self.incomplete = True  # "continue this thread": another page's listing
                return None
            return _More(ids[:1000])
        data = _thing(thing, "t1")
        if data is None or not str(data.get("id") or "").isalnum():
            return None
        return data

    def stubs(self) -> list[_More]:
        """The stubs still in the tree."""
        return [n for nodes in self.children.values() for n in nodes if isinstance(n, _More)]

    def fill(self, batch: list[_More], things: list[Any], asked: set[str]) -> None:
        """Put the comments a morechildren answer gave in place of the stubs asked about;
        what was not asked stays a stub."""
        where: dict[int, str] = {}  # parent name of each stub of the batch
        for under, nodes in self.children.items():
            for existing in nodes:
                if any(existing is stub for stub in batch):
                    where[id(existing)] = under
        placed: dict[int, list[dict[str, Any] | _More]] = {id(stub): [] for stub in batch}
        for thing in things:
            node = self._node(thing)
            if node is None:
                continue
            data = thing.get("data") if isinstance(thing, dict) else None
            parent = str(data.get("parent_id") or "") if isinstance(data, dict) else ""
            stub = next(
                (
                    s
                    for s in batch
                    if where.get(id(s)) == parent
                    and (isinstance(node, _More) or node["id"] in s.ids)
                ),
                None,
            )
            if stub is not None:
                placed[id(stub)].append(node)
            elif parent:
                self.children.setdefault(parent, []).append(node)
                if isinstance(node, dict) and isinstance(node.get("replies"), dict):
                    self.add(
                        _listing(node["replies"], "/api/morechildren").get("children") or [],
                        f"t1_{node['id']}",
                        "/api/morechildren",
                    )
        for stub in batch:
            home = where.get(id(stub))
            if home is None:
                continue
            nodes = self.children[home]
            index = next(i for i, n in enumerate(nodes) if n is stub)
            rest = [i for i in stub.ids if i not in asked]
            nodes[index : index + 1] = placed[id(stub)] + ([_More(rest)] if rest else [])

    def comments(self, parent: str) -> list[dict[str, Any]]:
        """The comments under ``parent`` (stubs left: the thread is incomplete)."""
        nodes = self.children.get(parent, [])
        if any(isinstance(n, _More) for n in nodes):
            self.incomplete = True
        return [n for n in nodes if isinstance(n, dict)]


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
