"""Lobsters through its JSON pages (https://lobste.rs/about, "JSON"; any Lobsters site with
``base_url``).

``GET /stories/url/all.json?url=URL`` lists the stories submitted for a URL (its ``http``,
``https`` and ``www.`` forms alike): ``short_id``, ``comments_url``, ``title``, ``url``,
``score``, ``comment_count``, ``submitter_user``. ``GET /s/{short_id}.json`` is the story with
its ``comments``: a flat list in thread order, each with ``short_id``, ``parent_comment`` (a
``short_id`` or null), ``depth``, ``comment`` (HTML), ``commenting_user`` (a name; an object in
older versions), ``created_at``, ``last_edited_at``, ``score``, ``is_deleted`` and
``is_moderated``. No rate limit is published; the site asks for restraint, so the default is
30 requests a minute.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

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
    same_page,
)
from aggregator.errors import ParseError
from aggregator.models import CommentData, ThreadState
from aggregator.parse.sanitize import clean_html, clean_url, plain_text


class Lobsters(Provider):
    name = "lobsters"
    label = "Lobsters"
    prefix = "lobsters"
    kinds = frozenset({"discussion"})
    default_base_url = "https://lobste.rs"
    default_site_url = "https://lobste.rs"
    requests_per_minute = 30.0
    score_label = "points"

    def find(self, entry: ThreadState) -> list[ThreadRef]:
        url = entry_url(entry)
        if not url:
            return []
        stories = self.get("/stories/url/all.json", {"url": url})
        if not isinstance(stories, list):
            raise ParseError("Lobsters API /stories/url/all.json: not a list of stories")
        refs: dict[str, ThreadRef] = {}
        for story in stories:
            if not isinstance(story, dict) or not same_page(story.get("url"), url):
                continue
            short_id = str(story.get("short_id") or "")
            if not short_id.isalnum():
                continue
            refs[short_id] = self._ref(short_id, story)
        return list(refs.values())

    def _ref(self, short_id: str, story: dict[str, Any]) -> ThreadRef:
        page = story.get("comments_url") or story.get("short_id_url")
        return ThreadRef(
            ref=short_id,
            url=clean_url(str(page or ""), self.site_url + "/") or f"{self.site_url}/s/{short_id}",
            title=plain_text(story.get("title")) or None,
            score=as_int(story.get("score")),
            comment_count=as_int(story.get("comment_count")),
        )

    def fetch_thread(self, ref: ThreadRef) -> ThreadData:
        if not ref.ref.isalnum():
            raise ParseError(f"Lobsters: bad story id {ref.ref!r}")
        path = f"/s/{ref.ref}.json"
        story = self.get(path)
        if not isinstance(story, dict) or not isinstance(story.get("comments"), list):
            raise ParseError(f"Lobsters API {path}: not a story with its comments")
        listed = [c for c in story["comments"] if isinstance(c, dict)]
        ids = {str(c.get("short_id")) for c in listed if str(c.get("short_id") or "").isalnum()}
        # The list is in thread order already; rebuilt as a tree so that a reply always
        # follows its parent, whatever a (hostile) answer's order.
        children: dict[str | None, list[dict[str, Any]]] = {}
        for comment in listed:
            short_id = str(comment.get("short_id") or "")
            if not short_id.isalnum():
                continue
            parent = comment.get("parent_comment")
            parent = str(parent) if parent and str(parent) in ids and parent != short_id else None
            children.setdefault(parent, []).append(comment)
        comments: list[CommentData] = []
        gone: list[str] = []
        seen: set[str] = set()
        stack: list[tuple[dict[str, Any], str | None]] = [
            (c, None) for c in reversed(children.get(None, []))
        ]
        while stack and len(comments) < MAX_COMMENTS:
            comment, parent_key = stack.pop()
            short_id = str(comment["short_id"])
            if short_id in seen:
                continue
            seen.add(short_id)
            key = self.key(short_id)
            replies = children.get(short_id, [])
            user = comment.get("commenting_user")
            if isinstance(user, dict):
                user = user.get("username")
            name = plain_text(user) or None if isinstance(user, str) else None
            if comment.get("is_deleted") or comment.get("is_moderated"):
                gone.append(key)
                if not replies:
                    continue
                content, name = DELETED, None
            else:
                content = clean_html(comment.get("comment"), self.site_url + "/")
            link = comment.get("short_id_url") or comment.get("url")
            comments.append(
                make_comment(
                    key,
                    content,
                    author=name,
                    author_url=clean_url(f"{self.site_url}/~{quote(name)}") if name else None,
                    published_at=from_iso(comment.get("created_at")),
                    link=clean_url(str(link or ""), self.site_url + "/")
                    or f"{self.site_url}/c/{short_id}",
                    parent_key=parent_key,
                )
            )
            stack.extend((reply, key) for reply in reversed(replies))
        refreshed = self._ref(ref.ref, story)
        submitter = story.get("submitter_user")
        if isinstance(submitter, dict):
            submitter = submitter.get("username")
        return ThreadData(
            ThreadRef(
                refreshed.ref,
                refreshed.url or ref.url,
                refreshed.title or ref.title,
                refreshed.score,
                refreshed.comment_count,
            ),
            tuple(comments),
            author=plain_text(submitter) or None if isinstance(submitter, str) else None,
            created_at=from_iso(story.get("created_at")),
            gone_keys=tuple(gone),
            complete=len(comments) < MAX_COMMENTS,
        )
