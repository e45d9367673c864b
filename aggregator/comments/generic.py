"""The careful fallback of ``comments_page: auto``: comments in markup no detector knows
(issue 14, item 1).

Pure. A thread is repeated sibling blocks, each with an author-like element (a class or
``itemprop`` saying author, name, user or nick, or a ``<cite>``), a date-like text (``<time>``,
a month name and a day, a numeric date, "3 days ago") and a permalink anchor to a fragment of
this page that names one comment (``#comment-12``, ``#c12``, ``#note-4``). The fallback answers
only when it is confident: at least :data:`MIN_BLOCKS` blocks of the same structure (tag and
classes) under one parent carry all three, with distinct permalinks, and they are at least
:data:`MIN_SHARE` of their siblings of that structure.

The blocks found are marked in the parsed tree with attributes named by a random token, so
that :func:`aggregator.comments.pages.extract_comments` reads them with ordinary selectors and a page
cannot forge the marks. Does not: read the comments itself, or run when a detector matched.
"""

from __future__ import annotations

import re
import secrets
from collections import defaultdict
from urllib.parse import urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from aggregator.comments.selectors import PageSelectors

MIN_BLOCKS = 3
MIN_SHARE = 0.8
_MAX_LABEL = 80  # an author's name or a date is a short text, not a paragraph
_AUTHORISH = re.compile(r"author|\bname\b|user-?name|\bnick|\bfn\b|byline|poster|\bwho\b")
_MONTHS = (
    r"jan|feb|m[aä]r|apr|ma[iy]|jun|jul|aug|sep|o[ck]t|nov|de[cz]|janv|f[ée]vr|avr|juil|"
    r"ao[uû]t|d[ée]c|ene|abr|ago|dic|gen|mag|giu|lug|set|ott|mei|okt|янв|фев|мар|апр|мая|"
    r"июн|июл|авг|сен|окт|ноя|дек"
)
_DATEISH = re.compile(
    rf"\b\d{{1,4}}[./-]\d{{1,2}}[./-]\d{{1,4}}\b"
    rf"|\b(?:{_MONTHS})[a-zéûäа-я]*\.?\s+\d{{1,2}}\b"
    rf"|\b\d{{1,2}}\.?\s+(?:de\s+)?(?:{_MONTHS})[a-zéûäа-я]*"
    r"|\b\d+\s+(?:minutes?|hours?|days?|weeks?|months?|years?)\s+ago\b",
    re.IGNORECASE,
)


def find_generic(tree: LexborHTMLParser, page_url: str) -> PageSelectors | None:
    """Selectors for the comment-like blocks of ``tree`` (marking them in it), or ``None``
    when the page holds no group of blocks that is clearly a comment thread."""
    here = _without_fragment(page_url)
    groups: dict[tuple[int, str], dict[int, LexborNode]] = defaultdict(dict)
    for anchor in tree.css("a[href*='#']"):
        if _permalink(anchor, page_url, here) is None:
            continue
        child = anchor
        current = anchor.parent
        while current is not None and current.tag not in ("body", "html"):
            groups[(current.mem_id, _signature(child))][child.mem_id] = child
            child, current = current, current.parent
    best: list[tuple[LexborNode, LexborNode, LexborNode, LexborNode]] = []
    for (parent_id, signature), members in groups.items():
        if len(members) < MIN_BLOCKS:
            continue
        parent = next(iter(members.values())).parent
        assert parent is not None and parent.mem_id == parent_id
        siblings = [n for n in _children(parent) if _signature(n) == signature]
        marked = [_parts(node, page_url, here) for node in siblings]
        found = [(node, *parts) for node, parts in zip(siblings, marked, strict=True) if parts]
        permalinks = {_permalink(link, page_url, here) for _, _, _, link in found}
        if (
            len(found) >= MIN_BLOCKS
            and len(found) >= MIN_SHARE * len(siblings)
            and len(permalinks) == len(found)
            and len(found) > len(best)
        ):
            best = found
    if not best:
        return None
    token = secrets.token_hex(4)
    names = {part: f"data-aggregator-{token}-{part}" for part in ("c", "a", "d", "l")}
    for node, author, date, link in best:
        node.attrs[names["c"]] = "1"
        author.attrs[names["a"]] = "1"
        date.attrs[names["d"]] = "1"
        link.attrs[names["l"]] = "1"
    marks = {part: f"[{name}]" for part, name in names.items()}
    return PageSelectors(
        container=marks["c"],
        author=(marks["a"],),
        date=(marks["d"],),
        link=(marks["l"],),
        exclude=(
            f"{marks['a']}, {marks['d']}, {marks['l']}, .reply, .comment-reply-link, .avatar, "
            "form, script, style, noscript, button"
        ),
    )


def _parts(
    node: LexborNode, page_url: str, here: str
) -> tuple[LexborNode, LexborNode, LexborNode] | None:
    """The author-like element, the date-like element and the permalink of one block."""
    link = next(
        (a for a in node.css("a[href*='#']") if _permalink(a, page_url, here) is not None), None
    )
    if link is None:
        return None
    author = next(
        (
            element
            for element in node.css("[class], [itemprop], cite")
            if (
                element.tag == "cite"
                or _AUTHORISH.search(
                    f"{element.attributes.get('class') or ''} "
                    f"{element.attributes.get('itemprop') or ''}".lower()
                )
            )
            and 0 < len(_text(element)) <= _MAX_LABEL
        ),
        None,
    )
    if author is None:
        return None
    date = node.css_first("time")
    if date is None:
        # The innermost short element whose text reads like a date.
        candidates = [
            element
            for element in node.traverse(include_text=False)
            if element is not node
            and len(_text(element)) <= _MAX_LABEL
            and _DATEISH.search(_text(element))
        ]
        date = candidates[-1] if candidates else None
    if date is None:
        return None
    return author, date, link


def _permalink(anchor: LexborNode, page_url: str, here: str) -> str | None:
    """The fragment ``anchor`` links to when it names one place of this page (a digit in it)."""
    href = (anchor.attributes.get("href") or "").strip()
    try:
        url = urljoin(page_url, href)
    except ValueError:
        return None
    target, _, fragment = url.partition("#")
    if not any(ch.isdigit() for ch in fragment) or len(fragment) > 100:
        return None
    if href.startswith("#") or _without_fragment(target) == here:
        return fragment
    return None


def _without_fragment(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    return parts._replace(fragment="", path=parts.path.rstrip("/")).geturl()


def _signature(node: LexborNode) -> str:
    classes = sorted(
        c for c in (node.attributes.get("class") or "").split() if not any(ch.isdigit() for ch in c)
    )
    return f"{node.tag}.{'.'.join(classes)}"


def _children(node: LexborNode) -> list[LexborNode]:
    children = []
    child = node.child
    while child is not None:
        if child.tag and not child.tag.startswith("-"):
            children.append(child)
        child = child.next
    return children


def _text(node: LexborNode) -> str:
    return " ".join((node.text(separator=" ") or "").split())
