"""Discourse topics embedded under blog posts (https://docs.discourse.org/,
https://meta.discourse.org/t/embedding-discourse-comments-via-javascript/31963).

Finding the topic of a post: with an API key, ``GET /embed/info?embed_url=POST_URL``
(``Api-Key`` and ``Api-Username`` headers) answers ``{"topic_id", "post_id", "topic_slug",
...}``, or 404 when no topic embeds the post yet; without one, the post's page is read for
its embed code (``DiscourseEmbed = {discourseUrl, topicId}``, see
:mod:`aggregator.discussions.detect`). Reading it: ``GET /t/ID.json`` gives the topic
(``title``, ``slug``, ``posts_count``) and ``post_stream`` with the first posts (``posts``)
and every post id in order (``stream``); the rest come from ``GET /t/ID/posts.json?
post_ids[]=...``, 20 at a time. A post has ``id``, ``post_number``, ``reply_to_post_number``,
``username``, ``name``, ``created_at``, ``updated_at``, ``cooked`` (HTML), ``post_type`` (1
regular, 2 moderator, 3 small action, 4 whisper), ``deleted_at``, ``hidden`` and
``user_deleted``. The first post is the blog post itself (the embed leaves it out too): the
comments are the posts after it, a reply to the first post a top-level comment.
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
    make_comment,
    same_page,
)
from aggregator.errors import AggregatorError, FetchError, ParseError
from aggregator.models import CommentData, ThreadState
from aggregator.parse.sanitize import clean_html, plain_text

CHUNK = 20  # post ids per posts.json request, as Discourse's own client asks
MAX_CHUNKS = 50
_SHOWN_TYPES = frozenset({1, 2})  # regular and moderator posts; no small actions, no whispers


class Discourse(Provider):
    name = "discourse"
    label = "Discourse"
    prefix = "discourse"
    kinds = frozenset({"comments"})
    default_base_url = None  # the forum's URL is required
    # Discourse allows 60 API requests a minute per key by default (and 200 per address).
    requests_per_minute = 60.0
    options = frozenset({"api_key", "api_username"})
    secret_options = frozenset({"api_key", "api_username"})

    def find(self, entry: ThreadState) -> list[ThreadRef]:
        url = entry_url(entry)
        if not url:
            return []
        topic = self._embed_info(url) if self.settings.secret("api_key") else self._page(url)
        if topic is None:
            return []
        return [ThreadRef(ref=str(topic), url=f"{self.base_url}/t/{topic}")]

    def _embed_info(self, url: str) -> int | None:
        headers = {"Api-Key": self.settings.secret("api_key") or ""}
        username = self.settings.secret("api_username")
        if username:
            headers["Api-Username"] = username
        try:
            info = self.get("/embed/info", {"embed_url": url}, headers=headers)
        except FetchError as error:
            if error.status == 404:
                return None  # no topic embeds this post yet
            raise
        if not isinstance(info, dict):
            raise ParseError("Discourse API /embed/info: not an object")
        return _positive(info.get("topic_id"))

    def _page(self, url: str) -> int | None:
        """The ``topicId`` of the post page's embed code, when it names this forum's topic."""
        from aggregator.discussions.detect import discourse_embed

        found = discourse_embed(self.api.get_page(self, url), url)
        if found is None:
            return None  # no embed on this post (comments off)
        if found.base_url and not same_page(found.base_url, self.base_url):
            return None  # another forum's topic
        if found.topic_id is None:
            # The usual embed names the post, not the topic: only /embed/info can tell which.
            raise AggregatorError(
                "the post page embeds Discourse by its URL, not a topicId: set api_key "
                "(and api_username) so that /embed/info can find its topic"
            )
        return found.topic_id

    def fetch_thread(self, ref: ThreadRef) -> ThreadData:
        topic_id = _positive(ref.ref)
        if topic_id is None:
            raise ParseError(f"Discourse: bad topic id {ref.ref!r}")
        path = f"/t/{topic_id}.json"
        topic = self.get(path)
        if not isinstance(topic, dict) or not isinstance(topic.get("post_stream"), dict):
            raise ParseError(f"Discourse API {path}: no post_stream in the answer")
        stream_info = topic["post_stream"]
        posts = {
            p["id"]: p
            for p in stream_info.get("posts") or []
            if isinstance(p, dict) and _positive(p.get("id"))
        }
        stream = [i for i in (_positive(x) for x in stream_info.get("stream") or []) if i]
        stream = stream[: MAX_COMMENTS + 1]
        missing = [i for i in stream if i not in posts]
        complete = True
        for start in range(0, len(missing), CHUNK):
            if start // CHUNK >= MAX_CHUNKS:
                complete = False
                break
            more = self.get(
                f"/t/{topic_id}/posts.json", {"post_ids[]": missing[start : start + CHUNK]}
            )
            page = more.get("post_stream") if isinstance(more, dict) else None
            if not isinstance(page, dict):
                raise ParseError(f"Discourse API /t/{topic_id}/posts.json: no post_stream")
            for post in page.get("posts") or []:
                if isinstance(post, dict) and _positive(post.get("id")):
                    posts[post["id"]] = post
        ordered = [posts[i] for i in stream if i in posts] if stream else list(posts.values())
        slug = str(topic.get("slug") or "topic")
        comments, gone = self._comments(ordered, topic_id, slug)
        count = as_int(topic.get("posts_count"))
        refreshed = ThreadRef(
            ref=ref.ref,
            url=f"{self.base_url}/t/{slug}/{topic_id}"
            if slug.replace("-", "").isalnum()
            else ref.url,
            title=plain_text(topic.get("title")) or ref.title,
            comment_count=max(count - 1, 0) if count is not None else None,
        )
        return ThreadData(refreshed, tuple(comments), gone_keys=tuple(gone), complete=complete)

    def _comments(
        self, posts: list[dict[str, Any]], topic_id: int, slug: str
    ) -> tuple[list[CommentData], list[str]]:
        by_number = {as_int(p.get("post_number")): p["id"] for p in posts}
        replied = {as_int(p.get("reply_to_post_number")) for p in posts}
        comments: list[CommentData] = []
        gone: list[str] = []
        for post in posts:
            number = as_int(post.get("post_number"))
            if number is None or number <= 1 or as_int(post.get("post_type")) not in _SHOWN_TYPES:
                continue
            key = self.key(post["id"])
            if post.get("deleted_at") or post.get("hidden") or post.get("user_deleted"):
                gone.append(key)
                if number not in replied:
                    continue
                content, author, author_url = DELETED, None, None
            else:
                content = clean_html(str(post.get("cooked") or ""), self.base_url + "/")
                username = str(post.get("username") or "")
                author = plain_text(post.get("name")) or plain_text(username) or None
                author_url = (
                    f"{self.base_url}/u/{username}"
                    if username.replace("_", "").replace("-", "").replace(".", "").isalnum()
                    else None
                )
            parent_number = as_int(post.get("reply_to_post_number"))
            parent = by_number.get(parent_number) if parent_number and parent_number > 1 else None
            comments.append(
                make_comment(
                    key,
                    content,
                    author=author,
                    author_url=author_url,
                    published_at=from_iso(post.get("created_at")),
                    link=f"{self.base_url}/t/{slug}/{topic_id}/{number}"
                    if slug.replace("-", "").isalnum()
                    else None,
                    parent_key=self.key(parent) if parent else None,
                )
            )
            if len(comments) >= MAX_COMMENTS:
                break
        return comments, gone


def _positive(value: object) -> int | None:
    number = as_int(value)
    return number if number is not None and number > 0 else None
