"""What blog platforms' comment threads look like in a page: fingerprints and selectors (issue 14).

Pure data and cheap tests on a parsed page. Each :class:`Platform` names a fingerprint (a CSS
selector whose presence says the page was made by it) and the :class:`~aggregator.comments.selectors.
PageSelectors` that read its comments, several selectors per part where themes differ, tried in
turn. :data:`SCRIPT_SYSTEMS` are the comment systems that load their thread by script: their
comments are not in the HTML, so they are only named, never read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aggregator.comments.selectors import PageSelectors


@dataclass(frozen=True)
class Platform:
    """One kind of comment markup: ``fingerprint`` finds it, ``selectors`` read it."""

    name: str
    fingerprint: str
    selectors: PageSelectors


# Parts of a comment that are not its text, in the themes of every platform below.
_NOT_BODY = (
    ".comment-author, .comment-meta, .commentmetadata, .comment-metadata, .comment_meta, "
    ".comment-header, .comment-footer, .reply, .comment-reply, .comment-reply-link, "
    ".comment-actions, .comment-edit-link, .edit-link, .says, .avatar, .comment-avatar, "
    ".comment_counter, .comment_author, .comment-awaiting-moderation, .children, "
    ".pmcc-comments-report-link, form, script, style, noscript"
)

_WP_AUTHOR = (
    ".comment-author .fn",
    ".comment-author-name",
    ".fn",
    "[itemprop=author] [itemprop=name]",
    "[itemprop=author]",
    ".comment-author cite",
    ".comment-author strong",
    ".comment-author b",
    ".comment-author a:not(.comment-reply-link)",
    ".comment-author",
    ".comment_author",
    ".comment-author-link",
    ".author",
    "cite",
)
_WP_DATE = (
    ".comment-metadata time",
    ".comment-meta time",
    "time",
    "[itemprop=dateCreated]",
    "[itemprop=datePublished]",
    ".comment-date",
    ".comment-time",
    ".comment_date",
    ".commentmetadata a",
    ".comment-meta a",
    ".comment-metadata a",
    ".comment_meta a",
    ".comment-meta",
    ".commentmetadata",
    "small a",
    "a[href*='#comment-']",
    ".comment-author",
    ".comment-info",
    ".comment-header",
    ".meta",
)
_WP_LINK = (
    ".comment-metadata a[href*='#']",
    ".comment-meta a[href*='#']",
    ".commentmetadata a[href*='#']",
    "a[href*='#comment-']",
)
_WP_BODY = (
    "[itemprop=text]",
    ".comment-text",
    ".comment_text",
    ".comment-content",
    ".comment-entry",
    ".commenttext",
    ".entry-content",
    ".comment-body",
)

PLATFORMS: tuple[Platform, ...] = (
    Platform(
        "wpdiscuz",
        ".wpd-comment, .wc-comment",
        PageSelectors(
            container="div.wpd-comment, div.wc-comment",
            author=(".wpd-comment-author", ".wc-comment-author"),
            date=(".wpd-comment-date", ".wc-comment-date"),
            body=(".wpd-comment-text", ".wc-comment-text"),
            link=(".wpd-comment-link a", ".wc-comment-link a", "a[href*='#comment-']"),
            replies=".wpd-reply, .wc-reply",
            exclude=_NOT_BODY,
        ),
    ),
    Platform(
        "epoch",
        "#epoch-comments, .epoch-comment-body",
        PageSelectors(
            container="[data-comment-id][id^='comment-']",
            author=(".epoch-author-link", ".epoch-comment-author"),
            date=("time", ".epoch-comment-link"),
            body=(".epoch-comment-content",),
            link=(".epoch-comment-link",),
            replies=".epoch-children, .children",
            exclude=_NOT_BODY,
        ),
    ),
    Platform(
        "blogger",
        "li.comment .comment-block, .comment-thread, #comments-block",
        PageSelectors(
            container="li.comment",
            author=("cite.user", ".comment-header .user", ".user"),
            date=(".datetime a", ".datetime"),
            body=(".comment-content",),
            link=(".datetime a", "a[href*='showComment']"),
            replies=".comment-replies",
            exclude=_NOT_BODY,
        ),
    ),
    Platform(
        "typepad",
        ".comment .comment-footer, .comment-footer",
        PageSelectors(
            container="div.comment",
            body=".comment-content",
            footer=".comment-footer",
            link='.comment-footer a[href*="#comment"]',
        ),
    ),
    Platform(
        # WordPress's wp_list_comments(), classic and html5 markup, and themes that keep its
        # ids (comment-N, li-comment-N, div-comment-N); pingbacks and trackbacks are left out.
        "wordpress",
        "[id^='comment-'], [id^='li-comment-']",
        PageSelectors(
            container=(
                "li.comment:not(.pingback):not(.trackback), "
                "li[id^='comment-']:not(.pingback):not(.trackback), "
                "li[id^='li-comment-']:not(.pingback):not(.trackback), "
                "article.comment[id^='comment-'], div.comment[id^='comment-'], "
                "article[id^='div-comment-']"
            ),
            author=_WP_AUTHOR,
            date=_WP_DATE,
            body=_WP_BODY,
            link=_WP_LINK,
            replies=".children",
            exclude=_NOT_BODY,
        ),
    ),
    Platform(
        "drupal",
        "[class*='comment-by-'], .comment__content, .field-name-comment-body, "
        ".field--name-comment-body, .comment-wrapper",
        PageSelectors(
            container="article.comment, div.comment",
            author=(".username", ".comment__author", ".name", ".submitted a"),
            date=(".comment__time", ".submitted time", ".date", ".submitted", "time"),
            body=(
                ".field-name-comment-body",
                ".field--name-comment-body",
                ".comment__content",
                ".field-comment-body",
                ".content",
            ),
            link=("a.permalink", ".comment__permalink a", "a[rel=bookmark]"),
            replies=".indented",
            exclude=_NOT_BODY + ", .links",
        ),
    ),
    Platform(
        # Movable Type's default templates: <div class="comment" id="comment-N">, "Posted by
        # NAME at DATE" in .comment-header or .comment-footer.
        "movabletype",
        ".comment .comment-header .comment-date, .comment .asset-meta, #comments-content .comment",
        PageSelectors(
            container="div.comment[id^='comment-']",
            author=(".vcard .fn", ".comment-header .author", ".author"),
            date=(".comment-header abbr", ".comment-header time", "abbr", "time", ".published"),
            body=(".comment-content", ".comment-body"),
            link=("a.permalink", ".comment-header a[href*='#comment']"),
            exclude=_NOT_BODY,
        ),
    ),
    Platform(
        # XenForo's comment widget rendered into the page (no names or dates are shown).
        "xenforo",
        ".xenforo-comments-list",
        PageSelectors(
            container="li.xenforo-comment",
            author=(".username", ".xenforo-comment-author", "header"),
            date=("time", ".xenforo-comment-date"),
            body=(".js-read-more", ".xenforo-comment-content"),
            exclude="header",
        ),
    ),
)

# Comment systems whose thread a script loads from elsewhere: (name, pattern in the HTML).
SCRIPT_SYSTEMS: tuple[tuple[str, re.Pattern[bytes]], ...] = tuple(
    (name, re.compile(pattern.encode(), re.IGNORECASE))
    for name, pattern in (
        ("Disqus", r"disqus\.com/embed\.js|id=[\"']?disqus_thread|disqus_shortname"),
        ("Facebook", r"class=[\"'][^\"']*\bfb-comments\b|facebook\.com/plugins/comments"),
        ("Commento", r"cdn\.commento\.io|id=[\"']commento[\"']"),
        ("Isso", r"id=[\"']isso-thread|data-isso="),
        ("giscus", r"giscus\.app/client\.js|class=[\"']giscus[\"']"),
        ("utterances", r"utteranc\.es/client\.js"),
        ("Ghost", r"ghost/comments-ui|data-ghost-comments"),
        ("Substack", r"substackcdn\.com"),
        ("Discourse", r"DiscourseEmbed|discourse-embed"),
        ("Remark42", r"remark_config|id=[\"']remark42[\"']"),
        ("Hyvor Talk", r"talk\.hyvor\.com"),
        ("Cusdis", r"cusdis\.com/js"),
        ("IntenseDebate", r"intensedebate\.com/js"),
        ("Coral", r"Coral\.createStreamEmbed|coral-embed"),
        ("Hypercomments", r"hypercomments\.com"),
        ("Vuukle", r"vuukle\.com"),
    )
)


def find_script_systems(html: bytes) -> tuple[str, ...]:
    """The names of the script-loaded comment systems a page embeds, in :data:`SCRIPT_SYSTEMS`
    order; empty when none. Their comments are not in the page and are not read."""
    return tuple(name for name, pattern in SCRIPT_SYSTEMS if pattern.search(html))
