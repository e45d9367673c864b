"""The article of a web page, extracted with trafilatura (its only adapter) and sanitized.

Runs inside the sandbox's extraction worker (:meth:`aggregator.parse.sandbox.SandboxParser.extract_article`),
which caps its memory and time: a hostile page costs that worker, never the daemon. Does not
fetch, store or decide whether a page is wanted (:mod:`aggregator.fulltext.decide`).
"""

from __future__ import annotations

import logging

import trafilatura

from aggregator.parse.sanitize import clean_html, plain_text

#: An extraction with less visible text than this found no article (a cookie wall, a menu).
MIN_TEXT = 80

# trafilatura reports what it could not parse through logging: the daemon's log is not for that.
logging.getLogger("trafilatura").setLevel(logging.CRITICAL)


def extract_article(html: bytes, page_url: str) -> str | None:
    """The main text of the page ``html`` (fetched from ``page_url``) as sanitized HTML, with
    its links, images, tables and emphasis; ``None`` when no article was found.

    Comments under the article are left out (the comment follower reads those), and so are
    navigation, footers and sidebars. Links are made absolute against ``page_url``.
    """
    try:
        extracted = trafilatura.extract(
            html,
            url=page_url,
            output_format="html",
            include_comments=False,
            include_links=True,
            include_images=True,
            include_tables=True,
            include_formatting=True,
            with_metadata=False,
        )
    except (ValueError, TypeError, AttributeError, LookupError):
        # What a broken document makes trafilatura's parsers raise: no article in it.
        return None
    if not extracted:
        return None
    article = clean_html(extracted, page_url)
    if len(plain_text(article, limit=None)) < MIN_TEXT:
        return None
    return article
