"""Pure decisions about full text: is an entry a teaser, may its page be fetched, and is a
failed fetch worth another try on a later poll.

Does no IO and keeps no state: the callers (:mod:`aggregator.fulltext.reader`) fetch, extract
and store; this module only answers questions about data they hand it.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from aggregator.errors import BlockedAddressError, FetchError, RateLimitedError
from aggregator.parse.sanitize import plain_text

#: Visible text shorter than this is a teaser (a paragraph or two at most).
SHORT_TEXT = 500
#: A feed that gives only a summary (no content) is taken for a teaser up to this length.
SUMMARY_ONLY_TEXT = 1500
#: Only the newest entries of a source are considered (a source switched to full text does
#: not fetch its whole archive).
RECENT_ENTRIES = 50
#: Pages fetched for one source in one poll at most; the rest wait for the next poll.
PAGES_PER_POLL = 10
#: A page whose fetch failed transiently is tried on this many polls in all, then given up.
MAX_ATTEMPTS = 3
#: HTTP statuses after which the same request may well succeed later.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

#: What a stored row of ``full_texts`` says about an entry (None: not considered yet).
Status = Literal["ok", "retry", "failed", "skipped"]

# How teasers end: an ellipsis, or a "read more" link (in a few languages), maybe followed by
# the post's title ("Continue reading Foo →") and arrows or guillemets.
_TEASER_END = re.compile(
    r"(?:\u2026|\.\.\.|\[\s*(?:\u2026|\.\.\.)\s*\]|\(\s*(?:\u2026|\.\.\.)\s*\)"
    r"|\bread more\b|\bcontinue reading\b.{0,120}|\bkeep reading\b|\bread the (?:full|rest)\b.{0,60}"
    r"|\bweiterlesen\b|\blire la suite\b|\bleer m[aá]s\b|\bcontinua a leggere\b|\blees verder\b"
    r"|\bl[aä]s mer\b)"
    r"[\s\W]*$",
    re.IGNORECASE,
)
# WordPress appends this line to every item of its feeds (and Yoast a similar one).
_WORDPRESS_FOOTER = re.compile(r"\s*The post .{1,300} appeared first on .{1,200}$", re.IGNORECASE)


def is_teaser(content: str | None, summary: str | None) -> bool:
    """Whether an entry's own text looks like the start of an article rather than all of it.

    A teaser is: no text at all; text that ends in an ellipsis or a "read more" / "continue
    reading" link; text shorter than :data:`SHORT_TEXT` characters; or a summary without any
    content (the summary is a prefix of nothing longer) shorter than
    :data:`SUMMARY_ONLY_TEXT`. ``content`` and ``summary`` are HTML as stored.
    """
    body = plain_text(content, limit=None)
    brief = plain_text(summary, limit=None)
    text = body or brief
    if not text:
        return True
    text = _WORDPRESS_FOOTER.sub("", text).rstrip()
    if _TEASER_END.search(text[-200:]) or len(text) < SHORT_TEXT:
        return True
    only_summary = not body or body == brief
    return only_summary and len(text) < SUMMARY_ONLY_TEXT


def wants_page(mode: bool | str, content: str | None, summary: str | None) -> bool:
    """Whether ``full_text: mode`` fetches the page of an entry with this text."""
    if mode is True:
        return True
    if mode == "auto":
        return is_teaser(content, summary)
    return False


def page_url(link: str | None) -> str | None:
    """The entry's link when it is an http(s) URL with a host: the page to fetch; else None."""
    if not link:
        return None
    try:
        parts = urlsplit(link.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return link.strip()


def is_transient(error: Exception) -> bool:
    """Whether a failed page fetch may succeed on a later poll: a network error, a timeout, a
    rate limit or a server error. A refused address, a client error (404, 410, 403 ...) or a
    page over the size limit are for good."""
    if isinstance(error, BlockedAddressError):
        return False
    if isinstance(error, RateLimitedError):
        return True
    if isinstance(error, FetchError):
        return error.status is None or error.status in TRANSIENT_STATUSES
    return False


def status_after_error(error: Exception, attempts: int) -> Status:
    """The row's status after a failed fetch, ``attempts`` counting this one."""
    return "retry" if is_transient(error) and attempts < MAX_ATTEMPTS else "failed"


def is_html(content_type: str | None) -> bool:
    """Whether a response of this ``Content-Type`` can be an article page (no type: maybe)."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    return not kind or "html" in kind or kind in ("text/plain", "application/xml", "text/xml")
