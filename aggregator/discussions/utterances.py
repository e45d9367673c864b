"""utterances: a post's comments kept in a GitHub issue, read through GitHub's REST API
(https://docs.github.com/en/rest; a token is optional).

The post's issue is the one the utterances embed would open: ``GET /search/issues?q="TERM"
type:issue in:title repo:OWNER/NAME`` for the title its ``mapping`` gives (``pathname``,
``url``, ``title``, ``og:title``, ``specific``: :mod:`aggregator.discussions.embeds`), the
exact title preferred, or with ``mapping: issue-number`` the issue the page names. Its
comments are ``GET /repos/{owner}/{name}/issues/{n}/comments?per_page=100`` (as HTML with
``Accept: application/vnd.github.html+json``), oldest first, paged by the ``Link`` header's
``rel="next"``. Deleted comments are simply gone from the listing.

Without a token GitHub allows 60 requests an hour (10 searches a minute); with one, 5,000 an
hour (30 searches a minute): the budget follows. ``X-RateLimit-Remaining: 0`` with
``X-RateLimit-Reset``, and 403 or 429 with ``Retry-After`` (its secondary limits), stop every
request to the host until then (:mod:`aggregator.discussions.api`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from aggregator.discussions.base import (
    MAX_COMMENTS,
    Provider,
    ThreadData,
    ThreadRef,
    as_int,
    from_iso,
    make_comment,
)
from aggregator.discussions.embeds import URL_MAPPINGS, check_repo_options, page_term
from aggregator.errors import FetchError, ParseError
from aggregator.models import CommentData, ThreadState
from aggregator.parse.sanitize import clean_html, clean_url, plain_text

MAX_PAGES = 50
MAPPINGS = URL_MAPPINGS | {"title", "og:title", "specific", "issue-number"}
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
_HTML = "application/vnd.github.html+json"


class Utterances(Provider):
    name = "utterances"
    label = "utterances"
    prefix = "utterances"
    kinds = frozenset({"comments"})
    default_base_url = "https://api.github.com"
    default_site_url = "https://github.com"
    requests_per_minute = 1.0  # 60 an hour without a token
    options = frozenset({"repo", "mapping", "token"})
    required = frozenset({"repo"})
    secret_options = frozenset({"token"})

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.repo = self.settings.options.get("repo", "")
        self.mapping = self.settings.options.get("mapping", "pathname")

    @classmethod
    def check_options(cls, options: Mapping[str, str]) -> None:
        """Raise ``ValueError`` for a ``repo`` not written ``owner/name`` or an unknown
        ``mapping``."""
        check_repo_options(cls.name, options, MAPPINGS)

    @property
    def rate(self) -> float:
        """60 requests an hour without a token, 5,000 with one (spaced: 30 searches a minute)."""
        if self.settings.requests_per_minute:
            return self.settings.requests_per_minute
        return 30.0 if self.settings.secret("token") else self.requests_per_minute

    def _headers(self, accept: str = "application/vnd.github+json") -> dict[str, str]:
        token = self.settings.secret("token")
        headers = {"Accept": accept, "X-GitHub-Api-Version": "2022-11-28"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def find(self, entry: ThreadState) -> list[ThreadRef]:
        term = page_term(self, entry, self.mapping)
        if not term:
            return []
        if self.mapping == "issue-number":
            number = as_int(term)
            return [ThreadRef(ref=str(number))] if number and number > 0 else []
        answer = self.get(
            "/search/issues",
            {"q": f'"{term}" type:issue in:title repo:{self.repo}', "per_page": 10},
            headers=self._headers(),
        )
        if not isinstance(answer, dict) or not isinstance(answer.get("items"), list):
            raise ParseError("utterances API /search/issues: no items list in the answer")
        items = [i for i in answer["items"] if isinstance(i, dict) and "pull_request" not in i]
        exact = [i for i in items if i.get("title") == term]
        near = [i for i in items if term.lower() in str(i.get("title") or "").lower()]
        for item in exact or near:
            number = as_int(item.get("number"))
            if number is None or number <= 0:
                continue
            return [
                ThreadRef(
                    ref=str(number),
                    url=clean_url(item.get("html_url")),
                    title=plain_text(item.get("title")) or None,
                    comment_count=as_int(item.get("comments")),
                )
            ]
        return []

    def fetch_thread(self, ref: ThreadRef) -> ThreadData:
        number = as_int(ref.ref)
        if number is None or number <= 0:
            raise ParseError(f"utterances: bad issue number {ref.ref!r}")
        path = f"/repos/{self.repo}/issues/{number}/comments"
        url: str | None = f"{self.base_url}{path}?per_page=100"
        comments: list[CommentData] = []
        pages = 0
        while url and pages < MAX_PAGES and len(comments) < MAX_COMMENTS:
            try:
                response = self.api.get_response(self, url, headers=self._headers(_HTML))
            except FetchError as error:
                if error.status in (404, 410) and not comments:
                    return ThreadData(ref, (), complete=False)  # the issue was deleted
                raise
            pages += 1
            if not isinstance(response.data, list):
                raise ParseError(f"utterances API {path}: not a list of comments")
            for item in response.data:
                comment = self._comment(item)
                if comment is not None:
                    comments.append(comment)
            url = self._next(response.headers)
        return ThreadData(ref, tuple(comments[:MAX_COMMENTS]), complete=url is None)

    def _next(self, headers: Mapping[str, str]) -> str | None:
        """The ``Link`` header's next page, when it is on this API (a response's URL is not
        followed anywhere else)."""
        link = next((v for k, v in headers.items() if k.lower() == "link"), "")
        match = _NEXT.search(link)
        if not match:
            return None
        target = match.group(1)
        return target if target.startswith(self.base_url + "/") else None

    def _comment(self, item: Any) -> CommentData | None:
        if not isinstance(item, dict) or as_int(item.get("id")) is None:
            return None
        user = item.get("user") if isinstance(item.get("user"), dict) else {}
        body = item.get("body_html")
        content = (
            clean_html(str(body), self.site_url + "/")
            if body
            else clean_html(f"<p>{_escape(str(item.get('body') or ''))}</p>")
        )
        return make_comment(
            self.key(as_int(item.get("id"))),
            content,
            author=plain_text((user or {}).get("login")) or None,
            author_url=clean_url((user or {}).get("html_url")),
            published_at=from_iso(item.get("created_at")),
            link=clean_url(item.get("html_url")),
        )


def _escape(text: str) -> str:
    import html

    return html.escape(text).replace("\n\n", "</p><p>")
