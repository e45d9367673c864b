"""Disqus through its public API 3.0 (https://disqus.com/api/docs/threads/listPosts/).

``GET /threads/listPosts.json?api_key=KEY&forum=SHORTNAME&thread=link:URL`` (or
``thread=ident:ID``) lists a thread's posts, oldest first with ``order=asc``, 100 a page,
paged by ``cursor.next`` while ``cursor.hasNext``. Answers are ``{"code": 0, "response":
[...]}``; a thread Disqus does not know is an error (code 2, HTTP 400): no comments yet.
The public key allows 1,000 requests an hour. Times are UTC without an offset. Deleted posts
carry ``isDeleted``.
"""

from __future__ import annotations

from aggregator.discussions.base import (
    DELETED,
    MAX_COMMENTS,
    Provider,
    ThreadData,
    ThreadRef,
    as_int,
    entry_url,
    from_iso,
    make_comment,
)
from aggregator.errors import FetchError, ParseError
from aggregator.models import CommentData, ThreadState
from aggregator.parse.sanitize import clean_html, clean_url, plain_text

MAX_PAGES = 50


class Disqus(Provider):
    name = "disqus"
    label = "Disqus"
    prefix = "disqus"
    kinds = frozenset({"comments"})
    default_base_url = "https://disqus.com/api/3.0"
    requests_per_minute = 1000 / 60
    options = frozenset({"forum", "api_key", "identifier"})
    required = frozenset({"forum", "api_key"})
    secret_options = frozenset({"api_key"})

    def find(self, entry: ThreadState) -> list[ThreadRef]:
        """No request: Disqus names a thread by the post's URL (``link:``) or, with
        ``identifier: guid``, by the entry's guid (``ident:``, as the blog's embed sets it)."""
        if self.settings.options.get("identifier") == "guid":
            ident = entry.guid or entry.key
            return [ThreadRef(ref=f"ident:{ident}", url=entry_url(entry))] if ident else []
        url = entry_url(entry)
        return [ThreadRef(ref=f"link:{url}", url=url)] if url else []

    def fetch_thread(self, ref: ThreadRef) -> ThreadData:
        path = "/threads/listPosts.json"
        posts: list[dict[str, object]] = []
        cursor: str | None = None
        complete = False  # until the last page was read
        for _ in range(MAX_PAGES):
            params: dict[str, object] = {
                "api_key": self.settings.secret("api_key") or "",
                "forum": self.settings.options.get("forum", ""),
                "thread": ref.ref,
                "limit": 100,
                "order": "asc",
            }
            if cursor:
                params["cursor"] = cursor
            try:
                answer = self.get(path, params)
            except FetchError as error:
                if error.status == 400 and not posts:
                    # Disqus answers 400 (code 2) for a thread it does not know: a post
                    # nobody commented on yet has none.
                    return ThreadData(ref, (), complete=False)
                raise
            if not isinstance(answer, dict):
                raise ParseError(f"Disqus API {path}: not an object")
            code = answer.get("code")
            if code != 0:
                reason = plain_text(str(answer.get("response")), limit=200)
                raise FetchError(f"Disqus API {path}: code {code}: {reason}")
            page = answer.get("response")
            if not isinstance(page, list):
                raise ParseError(f"Disqus API {path}: no list of posts")
            posts += [post for post in page if isinstance(post, dict)]
            info = answer.get("cursor") if isinstance(answer.get("cursor"), dict) else {}
            cursor = info.get("next") if isinstance(info, dict) else None
            if not (isinstance(info, dict) and info.get("hasNext")) or not isinstance(cursor, str):
                complete = True
                break
            if len(posts) >= MAX_COMMENTS:
                break
        comments: list[CommentData] = []
        gone: list[str] = []
        has_replies = {str(p.get("parent")) for p in posts if p.get("parent") is not None}
        for post in posts[:MAX_COMMENTS]:
            post_id = as_int(post.get("id"))
            if post_id is None:
                continue
            key = self.key(post_id)
            if post.get("isDeleted") or post.get("isSpam"):
                gone.append(key)
                if str(post_id) not in has_replies:
                    continue
                content = DELETED
            else:
                content = clean_html(str(post.get("message") or ""), ref.url)
            author = post.get("author") if isinstance(post.get("author"), dict) else {}
            assert isinstance(author, dict)
            parent = as_int(post.get("parent"))
            comments.append(
                make_comment(
                    key,
                    content,
                    author=plain_text(author.get("name") or author.get("username")) or None,
                    author_url=clean_url(author.get("profileUrl") or author.get("url")),
                    published_at=from_iso(post.get("createdAt")),
                    link=f"{ref.url}#comment-{post_id}" if ref.url else None,
                    parent_key=self.key(parent) if parent is not None else None,
                )
            )
        return ThreadData(
            ref,
            tuple(comments),
            gone_keys=tuple(gone),
            complete=complete and len(posts) <= MAX_COMMENTS,
        )
