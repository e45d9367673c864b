"""Mastodon through an instance's REST API (https://docs.joinmastodon.org/methods/statuses/,
https://docs.joinmastodon.org/methods/search/); a token is optional.

Two uses, as configured:

* ``comment_system``: the blog announces each post in a status on its instance and takes the
  replies as comments. The status is found in the entry's content, else on its page: a link
  to a status on the instance (``/@user/ID``, ``/users/user/statuses/ID``, ``/web/statuses/ID``)
  or an embed's ``data-toot-id`` (``data-status-id``, ``data-mastodon-id``). Its replies are
  ``GET /api/v1/statuses/:id/context``'s ``descendants``, threaded by ``in_reply_to_id``; a
  reply to the status itself is top-level.
* ``discussions``: ``GET /api/v2/search?q=URL&type=statuses&resolve=false`` finds the
  statuses on the instance that link to the entry (its content or its preview card); each is
  a sub-thread "on Mastodon: N boosts, M replies" (``GET /api/v1/statuses/:id`` for the
  counts) with its context below.

Only ``public`` and ``unlisted`` statuses are kept. A deleted status is gone from the context;
replies under it move up to the status. Edited ones carry ``edited_at`` and their new content.
Mastodon allows 300 requests per 5 minutes and IP; ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset`` (ISO 8601) are honoured by the API client. Without a token, a context
holds at most 60 descendants: more replies make the thread incomplete.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from aggregator.discussions.base import (
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
from aggregator.discussions.embeds import read_page
from aggregator.errors import FetchError, ParseError
from aggregator.models import CommentData, ThreadState
from aggregator.parse.links import _parse_html
from aggregator.parse.sanitize import clean_html, clean_url, plain_text

# The descendants an anonymous context request returns at most (Mastodon 4.x).
ANONYMOUS_CONTEXT = 60
_ID = r"(\d{1,20})"
_STATUS_PATHS = (
    re.compile(rf"^/@[\w.\-]+(?:@[\w.\-]+)?/{_ID}/?$"),
    re.compile(rf"^/users/[\w.\-]+/statuses/{_ID}/?$"),
    re.compile(rf"^/web/(?:@[\w.\-]+/|statuses/){_ID}/?$"),
)
_EMBED_ATTRIBUTES = ("data-toot-id", "data-status-id", "data-mastodon-id", "data-toot")
_VISIBLE = frozenset({"public", "unlisted"})


class Mastodon(Provider):
    name = "mastodon"
    label = "Mastodon"
    prefix = "mastodon"
    kinds = frozenset({"comments", "discussion"})
    default_base_url = "https://mastodon.social"
    requests_per_minute = 60.0  # 300 per 5 minutes
    options = frozenset({"token"})
    secret_options = frozenset({"token"})
    reads_content = True

    @classmethod
    def counts(
        cls,
        score: int | None,
        comments: int | None,
        likes: int | None = None,
        reposts: int | None = None,
    ) -> list[tuple[int | None, str]]:
        """ "3 boosts, 2 replies", as Mastodon names them."""
        return [(reposts, "boosts"), (comments, "replies")]

    def _headers(self) -> dict[str, str]:
        token = self.settings.secret("token")
        return {"Authorization": f"Bearer {token}"} if token else {}

    # -- finding ------------------------------------------------------------------------------
    def find(self, entry: ThreadState) -> list[ThreadRef]:
        if self.kind == "discussion":
            return self._search(entry)
        found = self._status_in(entry.content) if entry.content else None
        if found is None and entry_url(entry):
            page = read_page(self, entry)
            found = self._status_in_page(page) if page is not None else None
        if found is None:
            return []
        ident, url = found
        return [ThreadRef(ref=ident, url=url or f"{self.site_url}/web/statuses/{ident}")]

    def _status_in(self, markup: str) -> tuple[str, str | None] | None:
        try:
            return self._status_in_page(_parse_html(markup))
        except Exception:  # markup no parser reads holds no status
            return None

    def _status_in_page(self, page: Any) -> tuple[str, str | None] | None:
        """The first status of this instance the page links to or embeds."""
        for attribute in _EMBED_ATTRIBUTES:
            node = page.css_first(f"[{attribute}]")
            value = str(node.attributes.get(attribute) or "") if node is not None else ""
            if value.isdigit() and len(value) <= 20:
                return value, None
        hosts = {urlsplit(self.base_url).hostname, urlsplit(self.site_url).hostname}
        for node in page.css("a[href]"):
            href = clean_url(str(node.attributes.get("href") or ""))
            if not href:
                continue
            parts = urlsplit(href)
            if parts.hostname not in hosts:
                continue
            for pattern in _STATUS_PATHS:
                match = pattern.match(parts.path)
                if match:
                    return match.group(1), href
        return None

    def _search(self, entry: ThreadState) -> list[ThreadRef]:
        url = entry_url(entry)
        if not url:
            return []
        answer = self.get(
            "/api/v2/search",
            {"q": url, "type": "statuses", "resolve": "false", "limit": 40},
            headers=self._headers(),
        )
        if not isinstance(answer, dict) or not isinstance(answer.get("statuses"), list):
            raise ParseError("Mastodon API /api/v2/search: no statuses list in the answer")
        refs: dict[str, ThreadRef] = {}
        for status in answer["statuses"]:
            if not isinstance(status, dict):
                continue
            if isinstance(status.get("reblog"), dict):
                status = status["reblog"]
            ident = str(status.get("id") or "")
            if not ident.isdigit() or status.get("visibility") not in _VISIBLE:
                continue
            if not _links_to(status, url):
                continue
            refs[ident] = _ref(status, self.site_url)
        return list(refs.values())

    # -- reading ------------------------------------------------------------------------------
    def fetch_thread(self, ref: ThreadRef) -> ThreadData:
        if not ref.ref.isdigit():
            raise ParseError(f"Mastodon: bad status id {ref.ref!r}")
        status: dict[str, Any] | None = None
        try:
            if self.kind == "discussion":
                found = self.get(f"/api/v1/statuses/{ref.ref}", headers=self._headers())
                status = found if isinstance(found, dict) else None
            context = self.get(f"/api/v1/statuses/{ref.ref}/context", headers=self._headers())
        except FetchError as error:
            if error.status in (404, 410):  # the status was deleted: its thread with it
                return ThreadData(ref, (), complete=False)
            raise
        if not isinstance(context, dict) or not isinstance(context.get("descendants"), list):
            raise ParseError(f"Mastodon API /api/v1/statuses/{ref.ref}/context: no descendants")
        descendants = [d for d in context["descendants"] if isinstance(d, dict)]
        comments = self._thread(ref.ref, descendants)
        refreshed = _ref(status, self.site_url) if status else ref
        complete = len(descendants) < ANONYMOUS_CONTEXT or bool(self.settings.secret("token"))
        account = (status or {}).get("account")
        return ThreadData(
            refreshed,
            tuple(comments),
            author=_name(account) if isinstance(account, dict) else None,
            created_at=from_iso((status or {}).get("created_at")),
            complete=complete and len(comments) < MAX_COMMENTS,
        )

    def _thread(self, root: str, statuses: list[dict[str, Any]]) -> list[CommentData]:
        """The descendants in thread order (depth first, each level by id, which Mastodon
        makes grow with time), a reply to a status not shown hung under the nearest one that
        is, else top-level."""
        shown = {
            str(s.get("id")): s
            for s in statuses
            if str(s.get("id") or "").isdigit() and s.get("visibility") in _VISIBLE
        }
        every = {str(s.get("id")): s for s in statuses}

        def parent_of(status: dict[str, Any]) -> str | None:
            seen: set[str] = set()
            parent = str(status.get("in_reply_to_id") or "")
            while parent and parent != root and parent not in shown and parent not in seen:
                seen.add(parent)
                parent = str((every.get(parent) or {}).get("in_reply_to_id") or "")
            return parent if parent in shown else None

        children: dict[str | None, list[str]] = {}
        for ident, status in shown.items():
            children.setdefault(parent_of(status), []).append(ident)
        ordered: list[CommentData] = []
        stack: list[tuple[str, str | None]] = [
            (i, None) for i in sorted(children.get(None, []), key=int, reverse=True)
        ]
        while stack and len(ordered) < MAX_COMMENTS:
            ident, parent = stack.pop()
            status = shown[ident]
            account = status.get("account") if isinstance(status.get("account"), dict) else None
            link = clean_url(status.get("url")) or clean_url(status.get("uri"))
            ordered.append(
                make_comment(
                    self.key(ident),
                    clean_html(str(status.get("content") or ""), link),
                    author=_name(account) if account else None,
                    author_url=clean_url(account.get("url")) if account else None,
                    published_at=from_iso(status.get("created_at")),
                    link=link,
                    parent_key=self.key(parent) if parent else None,
                )
            )
            stack.extend(
                (child, ident) for child in sorted(children.get(ident, []), key=int, reverse=True)
            )
        return ordered


def _ref(status: dict[str, Any], site_url: str) -> ThreadRef:
    ident = str(status.get("id"))
    return ThreadRef(
        ref=ident,
        url=clean_url(status.get("url")) or f"{site_url}/web/statuses/{ident}",
        title=None,
        comment_count=as_int(status.get("replies_count")),
        likes=as_int(status.get("favourites_count")),
        reposts=as_int(status.get("reblogs_count")),
    )


def _name(account: dict[str, Any]) -> str | None:
    return plain_text(account.get("display_name")) or plain_text(account.get("acct")) or None


def _links_to(status: dict[str, Any], url: str) -> bool:
    """Whether a status links to ``url`` (a search for a URL also finds words of it)."""
    card = status.get("card") if isinstance(status.get("card"), dict) else None
    if card and same_page(card.get("url"), url):
        return True
    try:
        page = _parse_html(str(status.get("content") or ""))
    except Exception:
        return False
    return any(same_page(str(a.attributes.get("href") or ""), url) for a in page.css("a[href]"))
