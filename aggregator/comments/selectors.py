"""Where a post's HTML page keeps its comments: :class:`PageSelectors`, the presets, the config.

A ``container`` selector finds one element per comment, and the other selectors of a
:class:`PageSelectors` find its parts inside it. :data:`PRESETS` cover classic Typepad templates,
WordPress's default ``wp_list_comments`` html5 markup, Blogger, Drupal and wpDiscuz; a source's
config gives a preset's name, its own selectors (:func:`selectors_from_config`), or ``auto``
(:data:`AUTO`: the detectors of :mod:`aggregator.comments.detect`).

Pure data and its validation: a selector that is not valid CSS raises ``ValueError`` when the
:class:`PageSelectors` is made. Reading a page with them is :mod:`aggregator.comments.pages`'s job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from selectolax.lexbor import LexborHTMLParser, SelectolaxError

_SELECTOR_FIELDS = (
    "container",
    "author",
    "date",
    "body",
    "link",
    "number",
    "footer",
    "replies",
    "exclude",
)
# A selector field: one CSS selector, or (built in code, never from config) several tried in turn.
Selector = str | tuple[str, ...]


@dataclass(frozen=True)
class PageSelectors:
    """Where a page keeps its comments: CSS selectors, all relative to one comment's container.

    ``container`` matches one element per comment. ``author``, ``date``, ``body``, ``link`` and
    ``number`` find its parts; the first match that belongs to this comment (not to a reply nested
    inside it) is used. ``footer`` is a Typepad-style signature, "Posted by: NAME | DATE | N", read
    for the author, date and number when their own selectors are not given. ``date_attribute``
    names an attribute of the date element to read before its text (WordPress ``<time datetime>``).
    ``replies`` matches the element that wraps threaded replies (WordPress ``ol.children``): a
    comment inside one is a reply to the comment that encloses it. ``exclude`` matches parts
    removed from the body (author line, meta, reply links); comments nested in the body are always
    removed from it. Without ``body`` the whole container is the body; without ``number`` or
    ``footer`` the number is the position on the page. A field built in code (the detectors of
    :mod:`aggregator.comments.platforms`) may be a tuple of selectors, tried in turn.
    Raises ``ValueError`` for a selector that is not valid CSS.
    """

    container: str
    author: Selector | None = None
    date: Selector | None = None
    body: Selector | None = None
    link: Selector | None = None
    number: Selector | None = None
    footer: Selector | None = None
    date_attribute: str | None = None
    replies: Selector | None = None
    exclude: Selector | None = None
    # comments_page: auto: find the thread without selectors (aggregator.comments.detect).
    detect: bool = False

    def __post_init__(self) -> None:
        probe = LexborHTMLParser("<p></p>")
        for name in _SELECTOR_FIELDS:
            value = getattr(self, name)
            if value is None and name != "container":
                continue
            parts = value if isinstance(value, tuple) and name != "container" else (value,)
            for part in parts:
                if not isinstance(part, str) or not part.strip():
                    raise ValueError(f"page selector {name!r} must be a non-empty CSS selector")
                try:
                    probe.css(part)
                except SelectolaxError as e:
                    raise ValueError(f"page selector {name!r} is not valid CSS: {part!r}") from e
        attribute = self.date_attribute
        if attribute is not None and not (
            isinstance(attribute, str) and re.fullmatch(r"[\w:.-]+", attribute)
        ):
            raise ValueError(
                f"date_attribute must be an attribute name, not {self.date_attribute!r}"
            )


PRESETS: dict[str, PageSelectors] = {
    # Classic Typepad templates: <div class="comment" id="comment-..."> holding the body and a
    # footer "Posted by: NAME | DATE | N" whose date links to the comment's permalink.
    "typepad": PageSelectors(
        container="div.comment",
        body=".comment-content",
        footer=".comment-footer",
        link='.comment-footer a[href*="#comment"]',
    ),
    # WordPress wp_list_comments(), html5 format: <li class="comment" id="comment-N">, replies
    # nested in <ol class="children"> (<ul class="children"> with style "ul").
    "wordpress": PageSelectors(
        container="li.comment",
        author=".comment-author .fn",
        date=".comment-metadata time",
        date_attribute="datetime",
        body=".comment-content",
        link=".comment-metadata a",
        replies=".children",
    ),
    # Blogger's threaded comments (2012 onwards): <li class="comment" id="c123">, the date's
    # link carries ?showComment=<ms>, replies inside <div class="comment-replies">.
    "blogger": PageSelectors(
        container="li.comment",
        author="cite.user",
        date=".datetime a",
        body=".comment-content",
        link=".datetime a",
        replies=".comment-replies",
    ),
    # Drupal 7 to 10 (Bartik, Olivero and their kin): replies in <div class="indented">.
    "drupal": PageSelectors(
        container="article.comment, div.comment",
        author=".username, .comment__author",
        date=".comment__time, .submitted time, .date, .submitted",
        date_attribute="datetime",
        body=".field-name-comment-body, .field--name-comment-body, .comment__content, .content",
        link="a.permalink, .comment__permalink a, a[rel=bookmark]",
        replies=".indented",
        exclude=".links, ul.links",
    ),
    # wpDiscuz (WordPress plugin): <div class="wpd-comment" id="wpd-comm-12_0"> (7.x) or
    # <div class="wc-comment" id="wc-comm-12_0"> (5.x), replies nested inside.
    "wpdiscuz": PageSelectors(
        container="div.wpd-comment, div.wc-comment",
        author=".wpd-comment-author, .wc-comment-author",
        date=".wpd-comment-date, .wc-comment-date",
        date_attribute="title",
        body=".wpd-comment-text, .wc-comment-text",
        link=".wpd-comment-link a, .wc-comment-link a, a[href*='#comment-']",
        replies=".wpd-reply, .wc-reply",
    ),
}
# What ``comments_page: auto`` stands for: no selectors, the detectors of issue 14.
AUTO = PageSelectors(container="body", detect=True)


def selectors_from_config(value: str | Mapping[str, str]) -> PageSelectors:
    """Make :class:`PageSelectors` from a preset name or a mapping of selectors.

    A mapping holds ``container`` (required unless ``preset`` is given) and any of ``author``,
    ``date``, ``body``, ``link``, ``number``, ``footer``, ``date_attribute``, ``replies``,
    ``exclude``; with
    ``preset: NAME`` it overrides only the given selectors of that preset. Raises ``ValueError``
    for an unknown preset or key, a missing container, or invalid CSS; config validation wraps it.
    """
    if isinstance(value, str):
        return AUTO if value.strip().lower() == "auto" else _preset(value)
    if not isinstance(value, Mapping):
        raise ValueError("page selectors must be a preset name or a mapping of CSS selectors")
    allowed = {f.name for f in fields(PageSelectors)} - {"detect"}
    unknown = sorted(str(key) for key in value if key not in allowed | {"preset"})
    if unknown:
        raise ValueError(
            f"unknown page selector key(s) {', '.join(unknown)}; "
            f"expected: preset, {', '.join(sorted(allowed))}"
        )
    values: dict[str, Any] = {key: item for key, item in value.items() if key != "preset"}
    if "preset" in value:
        base = _preset(value["preset"])
        values = {f.name: getattr(base, f.name) for f in fields(PageSelectors)} | values
    if not values.get("container"):
        raise ValueError("page selectors need a 'container' selector (or a 'preset')")
    return PageSelectors(**values)


def _preset(name: object) -> PageSelectors:
    preset = PRESETS.get(name.strip().lower()) if isinstance(name, str) else None
    if preset is None:
        raise ValueError(
            f"unknown page selector preset {name!r}; expected auto or one of: "
            f"{', '.join(sorted(PRESETS))}"
        )
    return preset
