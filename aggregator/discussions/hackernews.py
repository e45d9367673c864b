"""Hacker News through its public Algolia API (https://hn.algolia.com/api).

``GET /search?query=URL&restrictSearchableAttributes=url&tags=story`` finds the stories that
link to an entry (``hits``, paged by ``page``/``nbPages``); ``GET /items/{id}`` returns one
story with its whole comment tree (``children``), one request per thread. Algolia allows
10,000 requests an hour per address. Deleted comments come with neither ``author`` nor
``text``.
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
    from_iso,
    from_timestamp,
    make_comment,
    same_page,
)
from aggregator.errors import ParseError
from aggregator.models import CommentData, ThreadState
from aggregator.parse.sanitize import clean_html, plain_text

MAX_SEARCH_PAGES = 3


class HackerNews(Provider):
    name = "hackernews"
    label = "Hacker News"
    prefix = "hn"
    kinds = frozenset({"discussion"})
    default_base_url = "https://hn.algolia.com/api/v1"
    default_site_url = "https://news.ycombinator.com"
    requests_per_minute = 10000 / 60

    def find(self, entry: ThreadState) -> list[ThreadRef]:
        url = entry_url(entry)
        if not url:
            return []
        refs: dict[str, ThreadRef] = {}
        page = 0
        while page < MAX_SEARCH_PAGES:
            data = self.get(
                "/search",
                {
                    "query": url,
                    "restrictSearchableAttributes": "url",
                    "tags": "story",
                    "page": page,
                },
            )
            if not isinstance(data, dict) or not isinstance(data.get("hits"), list):
                raise ParseError("Hacker News API /search: no hits list in the answer")
            for hit in data["hits"]:
                if not isinstance(hit, dict) or not same_page(hit.get("url"), url):
                    continue
                story = as_int(hit.get("objectID") or hit.get("story_id"))
                if story is None or story <= 0:
                    continue
                refs[str(story)] = ThreadRef(
                    ref=str(story),
                    url=f"{self.site_url}/item?id={story}",
                    title=plain_text(hit.get("title")) or None,
                    score=as_int(hit.get("points")),
                    comment_count=as_int(hit.get("num_comments")),
                )
            page += 1
            pages = as_int(data.get("nbPages")) or 0
            if page >= pages:
                break
        return list(refs.values())

    def fetch_thread(self, ref: ThreadRef) -> ThreadData:
        story = self.get(f"/items/{int(ref.ref)}")
        if not isinstance(story, dict) or as_int(story.get("id")) is None:
            raise ParseError(f"Hacker News API /items/{ref.ref}: not an item")
        comments: list[CommentData] = []
        gone: list[str] = []
        # Depth first, in the order given (the site's order), without recursion.
        stack: list[tuple[Any, str | None]] = [
            (child, None) for child in reversed(_children(story))
        ]
        while stack and len(comments) < MAX_COMMENTS:
            item, parent = stack.pop()
            item_id = as_int(item.get("id"))
            if item_id is None:
                continue
            key = self.key(item_id)
            children = _children(item)
            text, author = item.get("text"), item.get("author")
            if not text and not author:  # deleted (or flagged dead)
                gone.append(key)
                if not children:
                    continue
                content = DELETED
            else:
                content = clean_html(text, self.site_url)
            name = plain_text(author) or None
            comments.append(
                make_comment(
                    key,
                    content,
                    author=name,
                    author_url=f"{self.site_url}/user?id={name}" if name else None,
                    published_at=from_timestamp(item.get("created_at_i"))
                    or from_iso(item.get("created_at")),
                    link=f"{self.site_url}/item?id={item_id}",
                    parent_key=parent,
                )
            )
            stack.extend((child, key) for child in reversed(children))
        counted = len(comments) - len([c for c in comments if c.key in set(gone)])
        refreshed = ThreadRef(
            ref=ref.ref,
            url=ref.url or f"{self.site_url}/item?id={ref.ref}",
            title=plain_text(story.get("title")) or ref.title,
            score=as_int(story.get("points")),
            comment_count=counted,
        )
        return ThreadData(
            refreshed,
            tuple(comments),
            author=plain_text(story.get("author")) or None,
            created_at=from_timestamp(story.get("created_at_i"))
            or from_iso(story.get("created_at")),
            gone_keys=tuple(gone),
            complete=len(comments) < MAX_COMMENTS,
        )


def _children(item: Any) -> list[dict[str, Any]]:
    children = item.get("children") if isinstance(item, dict) else None
    return [c for c in children if isinstance(c, dict)] if isinstance(children, list) else []
