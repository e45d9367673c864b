"""What a post's own page says about its thread elsewhere: the embed's attributes (giscus'
``data-term``, utterances' ``issue-term``, a Mastodon status id) and its titles (issue 16).

Comment systems that name a post's thread by something only the page knows (the document's
``<title>``, ``og:title``, a term the blog set) read the entry's page once per lookup, through
the provider's :class:`~aggregator.discussions.api.ApiClient` (under the rules for found URLs
and the host's budget). Reading only: nothing here decides which thread is meant.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aggregator.discussions.base import entry_url
from aggregator.errors import FetchError
from aggregator.parse.links import _parse_html
from aggregator.parse.sanitize import plain_text

if TYPE_CHECKING:
    from aggregator.discussions.base import Provider
    from aggregator.models import ThreadState

# The mappings of giscus (https://giscus.app) and utterances (https://utteranc.es): how a
# page is named in its discussion's or issue's title.
URL_MAPPINGS = frozenset({"pathname", "url"})
PAGE_MAPPINGS = frozenset({"title", "og:title", "specific", "number", "issue-number"})


def check_repo_options(
    name: str, options: Mapping[str, str], mappings: frozenset[str] | set[str]
) -> None:
    """Raise ``ValueError`` for a ``repo`` not written ``owner/name`` or a ``mapping`` not in
    ``mappings`` (the settings giscus and utterances share)."""
    owner, _, repo = options.get("repo", "").partition("/")
    if not owner or not repo or "/" in repo:
        raise ValueError(f"{name}: repo must be written owner/name")
    mapping = options.get("mapping", "pathname")
    if mapping not in mappings:
        raise ValueError(f"{name}: mapping {mapping!r} is not one of {', '.join(sorted(mappings))}")


def read_page(provider: Provider, entry: ThreadState) -> Any:
    """The entry's web page, parsed (selectolax, through :mod:`aggregator.parse.links`);
    ``None`` when it has no http(s) link. Raises
    :class:`~aggregator.errors.FetchError` when the page cannot be read."""
    url = entry_url(entry)
    if url is None:
        return None
    body = provider.api.get_page(provider, url)
    try:
        return _parse_html(body)
    except Exception as error:  # selectolax on bytes no parser can read
        raise FetchError(f"{provider.label}: {url}: unreadable page: {error}") from None


def page_term(provider: Provider, entry: ThreadState, mapping: str) -> str | None:
    """The term (or number, as text) that names ``entry``'s thread under ``mapping``, as the
    embed computes it in the reader's browser; ``None`` when there is none."""
    url = entry_url(entry)
    if url is None:
        return None
    parts = urlsplit(url)
    if mapping == "pathname":
        path = parts.path
        if len(path) < 2:
            return "index"
        term = path[1:]
        if provider.name == "giscus":  # giscus drops a file extension, utterances does not
            stem, dot, extension = term.rpartition(".")
            if dot and "/" not in extension and extension.isalnum() and stem:
                term = stem
        return term
    if mapping == "url":
        return f"{parts.scheme}://{parts.netloc}{parts.path}"
    page = read_page(provider, entry)
    if page is None:
        return None
    if mapping == "title":
        node = page.css_first("title")
        return plain_text(node.text()) if node is not None else None
    if mapping == "og:title":
        node = page.css_first('meta[property="og:title"]')
        return plain_text(node.attributes.get("content")) if node is not None else None
    # specific, number (giscus) and issue-number (utterances): what the embed was given.
    for selector, attribute in (
        ("[data-term]", "data-term"),
        ("[issue-term]", "issue-term"),
        ("[issue-number]", "issue-number"),
    ):
        node = page.css_first(selector)
        if node is not None and node.attributes.get(attribute):
            return plain_text(node.attributes.get(attribute)) or None
    return None
