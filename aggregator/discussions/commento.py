"""Commento (and Commento++) through the API its embed reads (https://gitlab.com/commento/commento,
``api/comment_list.go``).

``POST /api/comment/list`` with ``{"commenterToken": "anonymous", "domain": DOMAIN, "path":
PATH}`` answers ``{"success": true, "comments": [...], "commenters": {HEX: {...}}}``: every
approved comment of the page, each with ``commentHex``, ``parentHex`` (``"root"`` at the top),
``html``, ``commenterHex`` (a key of ``commenters``, whose ``name`` and ``link`` say who wrote
it; ``"anonymous"`` for anonymous comments), ``creationDate`` (RFC 3339) and ``deleted``.
``{"success": false, "message": ...}`` is an error (an unknown domain, a frozen thread). One
request reads a whole thread; the API has no paging.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from aggregator.discussions.base import (
    DELETED,
    MAX_COMMENTS,
    Provider,
    ThreadData,
    ThreadRef,
    entry_url,
    from_iso,
    make_comment,
)
from aggregator.errors import FetchError, ParseError
from aggregator.models import CommentData, ThreadState
from aggregator.parse.sanitize import clean_html, clean_url, plain_text

ROOT = "root"


class Commento(Provider):
    name = "commento"
    label = "Commento"
    prefix = "commento"
    kinds = frozenset({"comments"})
    default_base_url = "https://commento.io"
    # Commento publishes no limit; one request a second.
    requests_per_minute = 60.0
    options = frozenset({"domain"})

    def find(self, entry: ThreadState) -> list[ThreadRef]:
        """No request: Commento names a thread by the page's path (``data-page-id`` aside)."""
        url = entry_url(entry)
        if not url:
            return []
        return [ThreadRef(ref=urlsplit(url).path or "/", url=url)]

    def fetch_thread(self, ref: ThreadRef) -> ThreadData:
        path = "/api/comment/list"
        domain = self.settings.options.get("domain") or urlsplit(ref.url or "").netloc
        answer = self.post(path, {"commenterToken": "anonymous", "domain": domain, "path": ref.ref})
        if not isinstance(answer, dict):
            raise ParseError(f"Commento API {path}: not an object")
        if answer.get("success") is not True:
            reason = plain_text(str(answer.get("message") or "no reason given"), limit=200)
            raise FetchError(f"Commento API {path}: {reason}")
        listed = answer.get("comments") or []
        if not isinstance(listed, list):
            raise ParseError(f"Commento API {path}: no list of comments")
        people = answer.get("commenters") if isinstance(answer.get("commenters"), dict) else {}
        assert isinstance(people, dict)
        items = [c for c in listed if isinstance(c, dict) and isinstance(c.get("commentHex"), str)]
        parents = {c.get("parentHex") for c in items}
        comments: list[CommentData] = []
        gone: list[str] = []
        for item, parent in _thread_order(items[:MAX_COMMENTS]):
            ident = item["commentHex"]
            key = self.key(ident)
            if item.get("deleted"):
                gone.append(key)
                if ident not in parents:
                    continue
                content, author, author_url = DELETED, None, None
            else:
                content = clean_html(str(item.get("html") or item.get("markdown") or ""), ref.url)
                person = people.get(str(item.get("commenterHex")))
                person = person if isinstance(person, dict) else {}
                author = plain_text(person.get("name")) or None
                if author is None and item.get("commenterHex") == "anonymous":
                    author = "Anonymous"
                link = person.get("link")
                author_url = (
                    clean_url(link) if isinstance(link, str) and link != "undefined" else None
                )
            comments.append(
                make_comment(
                    key,
                    content,
                    author=author,
                    author_url=author_url,
                    published_at=from_iso(item.get("creationDate")),
                    link=f"{ref.url}#commento-{ident}" if ref.url else None,
                    parent_key=self.key(parent) if parent else None,
                )
            )
        return ThreadData(
            ref, tuple(comments), gone_keys=tuple(gone), complete=len(items) <= MAX_COMMENTS
        )


def _thread_order(items: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str | None]]:
    """``(comment, parent hex)`` depth-first, each level oldest first (Commento lists a page's
    comments in no thread order). A comment whose parent is missing is put at the top."""
    known = {item["commentHex"] for item in items}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for item in items:
        parent = item.get("parentHex")
        parent = parent if isinstance(parent, str) and parent in known and parent != ROOT else None
        children.setdefault(parent, []).append(item)
    for level in children.values():
        level.sort(key=lambda c: str(c.get("creationDate") or ""))
    ordered: list[tuple[dict[str, Any], str | None]] = []
    stack: list[tuple[dict[str, Any], str | None]] = [
        (item, None) for item in reversed(children.get(None, []))
    ]
    seen: set[str] = set()
    while stack:
        item, parent = stack.pop()
        if item["commentHex"] in seen:
            continue
        seen.add(item["commentHex"])
        ordered.append((item, parent))
        stack.extend(
            (c, item["commentHex"]) for c in reversed(children.get(item["commentHex"], []))
        )
    return ordered
