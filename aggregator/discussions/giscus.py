"""giscus: a post's comments kept in a GitHub Discussion, read through GitHub's GraphQL API
(https://docs.github.com/en/graphql, ``POST /graphql``; a token is required).

A post's discussion is the one giscus' embed would open: with ``mapping: number`` the
discussion of that number (``data-term`` on the page), else a search of the repository's
discussions (``search(type: DISCUSSION, query: "repo:OWNER/NAME category:"C" in:title
TERM")``) for the title the mapping gives (``pathname``, ``url``, ``title``, ``og:title``,
``specific``: :mod:`aggregator.discussions.embeds`), the exact title preferred. Its
``comments`` and each comment's ``replies`` are read 50 a page, by ``pageInfo.endCursor``
while ``hasNextPage``; a comment ``isMinimized`` (hidden as spam or off-topic) or deleted
(``deletedAt``) is left out, or kept as ``[deleted]`` when replies hang under it.

GraphQL allows 5,000 points an hour (each query here costs one); ``X-RateLimit-Remaining``
and ``X-RateLimit-Reset`` and 403 or 429 with ``Retry-After`` stop the host
(:mod:`aggregator.discussions.api`), an error of type ``RATE_LIMITED`` this provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from aggregator.discussions.base import (
    DELETED,
    MAX_COMMENTS,
    Provider,
    ThreadData,
    ThreadRef,
    as_int,
    from_iso,
    make_comment,
)
from aggregator.discussions.embeds import URL_MAPPINGS, check_repo_options, page_term
from aggregator.errors import FetchError, ParseError, RateLimitedError
from aggregator.models import CommentData, ThreadState
from aggregator.parse.sanitize import clean_html, clean_url, plain_text

MAX_PAGES = 40
PAGE_SIZE = 50
MAPPINGS = URL_MAPPINGS | {"title", "og:title", "specific", "number"}

_COMMENT_FIELDS = """
  id url createdAt lastEditedAt deletedAt isMinimized bodyHTML
  author { login url }
"""
_THREAD_QUERY = """
query($owner: String!, $name: String!, $number: Int!, $after: String) {
  repository(owner: $owner, name: $name) {
    discussion(number: $number) {
      number url title createdAt upvoteCount
      author { login }
      comments(first: SIZE, after: $after) {
        totalCount
        pageInfo { hasNextPage endCursor }
        nodes {
          FIELDS
          replies(first: SIZE) {
            totalCount
            pageInfo { hasNextPage endCursor }
            nodes { FIELDS }
          }
        }
      }
    }
  }
}
""".replace("SIZE", str(PAGE_SIZE)).replace("FIELDS", _COMMENT_FIELDS)
_REPLIES_QUERY = """
query($id: ID!, $after: String) {
  node(id: $id) {
    ... on DiscussionComment {
      replies(first: SIZE, after: $after) {
        pageInfo { hasNextPage endCursor }
        nodes { FIELDS }
      }
    }
  }
}
""".replace("SIZE", str(PAGE_SIZE)).replace("FIELDS", _COMMENT_FIELDS)
_SEARCH_QUERY = """
query($query: String!) {
  search(type: DISCUSSION, query: $query, first: 10) {
    nodes { ... on Discussion { number title url comments { totalCount } } }
  }
}
"""


class Giscus(Provider):
    name = "giscus"
    label = "giscus"
    prefix = "giscus"
    kinds = frozenset({"comments"})
    default_base_url = "https://api.github.com"
    default_site_url = "https://github.com"
    requests_per_minute = 60.0  # 5,000 points an hour, and GitHub's secondary limits
    options = frozenset({"repo", "category", "mapping", "token"})
    required = frozenset({"repo", "token"})
    secret_options = frozenset({"token"})

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        owner, _, name = self.settings.options.get("repo", "").partition("/")
        self.owner, self.repo = owner, name
        self.mapping = self.settings.options.get("mapping", "pathname")

    @classmethod
    def check_options(cls, options: Mapping[str, str]) -> None:
        """Raise ``ValueError`` for a ``repo`` not written ``owner/name`` or an unknown
        ``mapping``."""
        check_repo_options(cls.name, options, MAPPINGS)

    def _query(self, query: str, variables: dict[str, object]) -> dict[str, Any]:
        token = self.settings.secret("token") or ""
        answer = self.post(
            "/graphql",
            {"query": query, "variables": variables},
            headers={"Authorization": f"bearer {token}"},
        )
        if not isinstance(answer, dict):
            raise ParseError("giscus API /graphql: not an object")
        errors = answer.get("errors")
        if isinstance(errors, list) and errors:
            kinds = {str(e.get("type")) for e in errors if isinstance(e, dict)}
            if "RATE_LIMITED" in kinds:
                until = self.api.now() + timedelta(minutes=1)
                raise RateLimitedError("giscus API /graphql: rate limited", until=until)
            if "NOT_FOUND" not in kinds:
                first = errors[0] if isinstance(errors[0], dict) else {}
                reason = plain_text(str(first.get("message") or first), limit=200)
                raise FetchError(f"giscus API /graphql: {reason}")
        data = answer.get("data")
        return data if isinstance(data, dict) else {}

    def find(self, entry: ThreadState) -> list[ThreadRef]:
        term = page_term(self, entry, self.mapping)
        if not term:
            return []
        if self.mapping == "number":
            number = as_int(term)
            return [ThreadRef(ref=str(number))] if number and number > 0 else []
        category = self.settings.options.get("category")
        scope = (
            f'repo:{self.owner}/{self.repo} category:"{category}"'
            if category
            else (f"repo:{self.owner}/{self.repo}")
        )
        data = self._query(_SEARCH_QUERY, {"query": f"{scope} in:title {term}"})
        search = data.get("search") if isinstance(data.get("search"), dict) else {}
        nodes = [n for n in (search or {}).get("nodes") or [] if isinstance(n, dict)]
        exact = [n for n in nodes if n.get("title") == term]
        near = [n for n in nodes if term in str(n.get("title") or "")]
        for node in exact or near:
            number = as_int(node.get("number"))
            if number is None or number <= 0:
                continue
            comments = node.get("comments") if isinstance(node.get("comments"), dict) else {}
            return [
                ThreadRef(
                    ref=str(number),
                    url=clean_url(node.get("url")),
                    title=plain_text(node.get("title")) or None,
                    comment_count=as_int((comments or {}).get("totalCount")),
                )
            ]
        return []

    def fetch_thread(self, ref: ThreadRef) -> ThreadData:
        number = as_int(ref.ref)
        if number is None:
            raise ParseError(f"giscus: bad discussion number {ref.ref!r}")
        variables: dict[str, object] = {"owner": self.owner, "name": self.repo, "number": number}
        comments: list[CommentData] = []
        gone: list[str] = []
        discussion: dict[str, Any] = {}
        complete = True
        after: str | None = None
        for _ in range(MAX_PAGES):
            data = self._query(_THREAD_QUERY, {**variables, "after": after})
            repository = data.get("repository") if isinstance(data.get("repository"), dict) else {}
            found = (repository or {}).get("discussion")
            if not isinstance(found, dict):
                return ThreadData(ref, (), complete=False)  # deleted, or never there
            discussion = found
            page = _connection(found.get("comments"))
            for node in page["nodes"]:
                self._add(node, None, comments, gone)
                replies = _connection(node.get("replies"))
                for reply in replies["nodes"]:
                    self._add(reply, node, comments, gone)
                if replies["more"]:
                    complete = self._more_replies(node, replies["cursor"], comments, gone)
            after = page["cursor"]
            if not page["more"] or not after or len(comments) >= MAX_COMMENTS:
                complete = complete and not page["more"]
                break
        author = discussion.get("author") if isinstance(discussion.get("author"), dict) else {}
        refreshed = ThreadRef(
            ref=ref.ref,
            url=clean_url(discussion.get("url")) or ref.url,
            title=plain_text(discussion.get("title")) or ref.title,
        )
        return ThreadData(
            refreshed,
            tuple(_threaded(comments)),
            author=plain_text((author or {}).get("login")) or None,
            created_at=from_iso(discussion.get("createdAt")),
            gone_keys=tuple(gone),
            complete=complete and len(comments) < MAX_COMMENTS,
        )

    def _more_replies(
        self, node: dict[str, Any], after: str | None, comments: list[CommentData], gone: list[str]
    ) -> bool:
        """The replies after the first page of one comment; whether all were read."""
        for _ in range(MAX_PAGES):
            if not after or len(comments) >= MAX_COMMENTS:
                return False
            data = self._query(_REPLIES_QUERY, {"id": str(node.get("id")), "after": after})
            found = data.get("node") if isinstance(data.get("node"), dict) else {}
            page = _connection((found or {}).get("replies"))
            for reply in page["nodes"]:
                self._add(reply, node, comments, gone)
            if not page["more"]:
                return True
            after = page["cursor"]
        return False

    def _add(
        self,
        node: dict[str, Any],
        parent: dict[str, Any] | None,
        comments: list[CommentData],
        gone: list[str],
    ) -> None:
        ident = str(node.get("id") or "")
        if not ident or not ident.replace("_", "").replace("-", "").isalnum():
            return
        key = self.key(ident)
        if node.get("isMinimized") or node.get("deletedAt"):
            gone.append(key)
            replies = _connection(node.get("replies"))
            if parent is not None or not replies["nodes"]:
                return
            content, name, url = DELETED, None, None
        else:
            content = clean_html(str(node.get("bodyHTML") or ""), self.site_url + "/")
            author = node.get("author") if isinstance(node.get("author"), dict) else {}
            name = plain_text((author or {}).get("login")) or None
            url = clean_url((author or {}).get("url"))
        comments.append(
            make_comment(
                key,
                content,
                author=name,
                author_url=url,
                published_at=from_iso(node.get("createdAt")),
                link=clean_url(node.get("url")),
                parent_key=self.key(parent.get("id")) if parent is not None else None,
            )
        )


def _connection(value: Any) -> dict[str, Any]:
    """A GraphQL connection's nodes, whether there are more, and the cursor after them."""
    if not isinstance(value, dict):
        return {"nodes": [], "more": False, "cursor": None}
    info = value.get("pageInfo") if isinstance(value.get("pageInfo"), dict) else {}
    cursor = (info or {}).get("endCursor")
    return {
        "nodes": [n for n in value.get("nodes") or [] if isinstance(n, dict)],
        "more": bool((info or {}).get("hasNextPage")),
        "cursor": cursor if isinstance(cursor, str) else None,
    }


def _threaded(comments: list[CommentData]) -> list[CommentData]:
    """Each comment followed by its replies (later pages of replies are read last)."""
    replies: dict[str, list[CommentData]] = {}
    top: list[CommentData] = []
    for comment in comments:
        if comment.parent_key:
            replies.setdefault(comment.parent_key, []).append(comment)
        else:
            top.append(comment)
    ordered: list[CommentData] = []
    for comment in top:
        ordered.append(comment)
        ordered.extend(replies.get(comment.key, []))
    return ordered
