"""Read a blog post's comment thread from the post's HTML page, with CSS selectors.

Some blogs publish no comment feed (Typepad blogs above all), so their comments are read from the
post's own page: a ``container`` selector finds one element per comment, and the other selectors
of a :class:`~aggregator.comments.selectors.PageSelectors` find its parts inside it (author, date,
body, link, number, a Typepad footer, the replies nested in it).

This module is pure: it turns a page's bytes into :class:`~aggregator.models.CommentData`. It does
not fetch, store or decide anything, and a broken page or comment never raises: a comment block
without a body is skipped, a missing or unreadable part (author, date, number) becomes ``None``.

Not here: the selectors, presets and their config (:mod:`aggregator.comments.selectors`), dates
read in the blog's zone (:mod:`aggregator.comments.page_dates`), the feeds a page announces
(:mod:`aggregator.parse.links`), pages read without selectors (:mod:`aggregator.comments.detect`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from selectolax.lexbor import LexborHTMLParser, LexborNode

from aggregator.comments.page_dates import _DateReader, _zone
from aggregator.comments.selectors import PageSelectors, Selector
from aggregator.models import CommentData
from aggregator.parse.comment_feed import comment_anchor
from aggregator.parse.links import _parse_html, _web_url
from aggregator.parse.sanitize import clean_html

_POSTED_BY = re.compile(r"^\s*posted\s+by\s*:?\s*", re.IGNORECASE)
_NUMBER = re.compile(r"\d{1,9}")
# "NAME says:" (WordPress classic), "NAME sagt:", "NAME dit :"...: the verb is not the name.
_SAYS = re.compile(
    r"\s+(?:says|said|sagt|schreibt|meint|dit|dice|diz|scrive|zegt|schreef|пишет|написал)\s*:?\s*$",
    re.IGNORECASE,
)
# Blogger's comment permalinks carry the comment's time: ?showComment=<milliseconds since 1970>.
_SHOW_COMMENT = re.compile(r"[?&]showComment=(\d{12,14})")
# The tail of a comment container's id: li-comment-12, div-comment-12 and comment-12 are one.
_REPLYTOCOM = re.compile(r"[?&]replytocom=(\d{1,12})")
_REPLY_BUTTON = frozenset({"comment-reply-link", "reply", "comment-reply", "reply-link"})
# "In reply to", in the languages of the date tests, at the end of the text before a link.
_REPLY_WORDS = re.compile(
    r"(?:in\s+reply\s+to|replying\s+to|reply\s+to|antwort\s+(?:an|auf)|"
    r"en\s+r[ée]ponse\s+[àa]|risposta\s+a|respuesta\s+a|em\s+resposta\s+a|"
    r"in\s+antwoord\s+op|ответ\s+(?:для|на))\s*:?\s*$",
    re.IGNORECASE,
)
_ID_TAIL = re.compile(r"^(?:li-|div-)?comment-?", re.IGNORECASE)


def extract_comments(
    html: bytes | str,
    page_url: str,
    selectors: PageSelectors,
    timezone: str | None = None,
    *,
    now: datetime | None = None,
    tree: LexborHTMLParser | None = None,
) -> list[CommentData]:
    """Read every comment on a post's page, in page order.

    ``page_url`` is the page's final URL, used to make links absolute. ``timezone`` is the blog's
    IANA zone, for dates printed without one (Typepad); UTC when ``None``. Dates are read in the
    page's ``lang`` as well as English; ``now`` (when the page was fetched) anchors relative
    dates ("3 days ago"), which are left unread without it. Dates become aware UTC, or ``None``
    when unreadable. A comment appearing twice (same key) is returned once. ``tree`` is the page
    already parsed, when the caller has it. Raises ``ValueError`` only for an unknown
    ``timezone``; nothing in the page itself makes it raise.
    """
    if selectors.detect:
        from aggregator.comments.detect import detect_comments

        raw = html.encode("utf-8", "replace") if isinstance(html, str) else html
        return list(detect_comments(raw, page_url, timezone, now=now).comments)
    zone = _zone(timezone)
    base = _web_url(page_url, None)
    tree = tree if tree is not None else _parse_html(html)
    dates = _DateReader(zone, page_language(tree), now)
    containers = _distinct(tree.css(selectors.container))
    container_ids = {node.mem_id for node in containers}
    reply_ids = (
        {node.mem_id for node in _css_any(tree, selectors.replies)} if selectors.replies else set()
    )
    keys: dict[int, str] = {}  # container mem_id -> key, for the replies nested inside it
    seen: set[str] = set()
    tails: dict[str, str] = {}  # "12" -> the key of comment 12, for in-reply-to links
    comments = []
    for position, node in enumerate(containers, 1):
        reader = _CommentReader(node, container_ids, selectors, base, dates)
        parent_key = _parent_key(node, container_ids, reply_ids, keys)
        if parent_key is None:
            # No nesting: an in-reply-to link to an earlier comment names the parent.
            target = reader.reply_target()
            parent_key = tails.get(_ID_TAIL.sub("", target)) if target else None
        comment = reader.read(position, parent_key)
        if comment is None:
            continue
        keys[node.mem_id] = comment.key
        if comment.key not in seen:
            seen.add(comment.key)
            tails.setdefault(_ID_TAIL.sub("", comment.key), comment.key)
            comments.append(comment)
    return comments


def page_language(tree: LexborHTMLParser) -> str | None:
    """The two-letter language of the page's ``<html lang>`` (or its ``og:locale``), or ``None``."""
    from aggregator.comments.dates import language_of

    root = tree.css_first("html")
    lang = root.attributes.get("lang") if root is not None else None
    if not lang:
        meta = tree.css_first('meta[property="og:locale"], meta[http-equiv="content-language"]')
        lang = meta.attributes.get("content") if meta is not None else None
    return language_of(lang)


def _distinct(containers: list[LexborNode]) -> list[LexborNode]:
    """The containers without those nested in a container of the same comment: WordPress themes
    wrap <article id="div-comment-12"> in <li id="li-comment-12">, and some repeat the id."""
    by_id = {node.mem_id: node for node in containers}
    kept = []
    for node in by_id.values():  # a selector group matches an element once per selector
        tail = _ID_TAIL.sub("", (node.id or node.attributes.get("data-comment-id") or "").strip())
        current = node.parent
        duplicate = False
        while tail and current is not None:
            other = by_id.get(current.mem_id)
            if other is not None:
                other_id = other.id or other.attributes.get("data-comment-id") or ""
                duplicate = _ID_TAIL.sub("", other_id.strip()) == tail
                break
            current = current.parent
        if not duplicate:
            kept.append(node)
    return kept


class _CommentReader:
    """Reads the parts of one comment container; knows nothing of the other comments."""

    def __init__(
        self,
        node: LexborNode,
        container_ids: set[int],
        selectors: PageSelectors,
        base: str | None,
        dates: _DateReader,
    ):
        self.node = node
        self.container_ids = container_ids
        self.selectors = selectors
        self.base = base
        self.dates = dates
        footer = self.find(selectors.footer)
        self.footer = footer
        self.signature = _split_footer(footer.text()) if footer else (None, None, None)

    def read(self, position: int, parent_key: str | None) -> CommentData | None:
        """The comment, or ``None`` when its body cannot be found."""
        body = self.find(self.selectors.body) if self.selectors.body else self.node
        if body is None and isinstance(self.selectors.body, tuple):
            body = self.node  # detectors' selectors: a theme without a body element
        if body is None:
            return None
        content = clean_html(self.body_html(body), self.base)
        author, author_url = self.author()
        link = self.link()
        date_text, published_at = self.date(link)
        node_id = (self.node.id or "").strip() if _has_digit(self.node.id) else None
        key = (
            comment_anchor(link)  # the same key a comment feed gives it (aggregator.parse.feed)
            or node_id
            or link
            or _sha256([author, date_text, _squash(body.text(separator=" "))])
        )
        return CommentData(
            key=key,
            content=content,
            author=author,
            author_url=author_url,
            published_at=published_at,
            link=link,
            number=self.number(position),
            parent_key=parent_key,
            # Not the number or link: both shift when earlier comments are deleted or paginated.
            content_hash=_sha256(
                [
                    content,
                    author,
                    author_url,
                    published_at.isoformat() if published_at else None,
                    parent_key,
                ]
            ),
        )

    def reply_target(self) -> str | None:
        """The comment this one says it replies to, as a fragment or id (``comment-12``, or
        ``comment-12`` from ``?replytocom=12``), when the markup says so: an mf2
        ``u-in-reply-to`` or ``rel=in-reply-to`` link, a ``?replytocom=N`` link that is not
        the comment's own reply button, or a link to ``#comment-N`` written "@name" or after
        "In reply to". ``None`` when it says nothing."""
        for anchor in self.node.css("a[href]"):
            if not self.owns(anchor) or _in_reply_button(anchor, self.node):
                continue
            href = anchor.attributes.get("href") or ""
            classes = (anchor.attributes.get("class") or "").split()
            rels = (anchor.attributes.get("rel") or "").lower().split()
            replytocom = _REPLYTOCOM.search(href)
            target = f"comment-{replytocom.group(1)}" if replytocom else comment_anchor(href)
            if not target:
                continue
            if replytocom or "u-in-reply-to" in classes or "in-reply-to" in rels:
                return target
            text = _squash(anchor.text())
            around = _squash(anchor.parent.text()) if anchor.parent is not None else text
            before = around[: max(0, around.find(text))] if text else around
            if text.startswith("@") or _REPLY_WORDS.search(before):
                return target
        return None

    def find(self, selector: Selector | None) -> LexborNode | None:
        """The first match of ``selector`` that belongs to this comment, not to a nested reply
        (of the first selector of a tuple that has one)."""
        if selector is None:
            return None
        if isinstance(selector, tuple):
            return next(filter(None, (self.find(part) for part in selector)), None)
        first = self.node.css_first(selector)
        if first is None or self.owns(first):
            return first
        return next((match for match in self.node.css(selector) if self.owns(match)), None)

    def owns(self, match: LexborNode) -> bool:
        current: LexborNode | None = match
        while current is not None:
            if current.mem_id == self.node.mem_id:
                return True
            if current.mem_id in self.container_ids:
                return False
            current = current.parent
        return False

    def author(self) -> tuple[str | None, str | None]:
        element = self.find(self.selectors.author)
        if element is not None:
            name = _SAYS.sub("", _POSTED_BY.sub("", _squash(element.text()))) or None
            anchor = element if element.tag == "a" else element.css_first("a[href]")
        elif self.footer is not None:
            name = self.signature[0]
            # The footer links both the author (when they left a URL) and the date: match the name.
            anchors = self.footer.css("a[href]")
            anchor = next((a for a in anchors if name and _squash(a.text()) == name), None)
        else:
            return None, None
        href = anchor.attributes.get("href") if anchor is not None else None
        return name, _web_url(href, self.base)

    def date(self, link: str | None) -> tuple[str | None, datetime | None]:
        """The date as written and as read: Blogger's permalink time first, then each date
        element's ``date_attribute`` (or ``datetime``, ``title``, ``data-*``) and text, the
        first that reads as a full date."""
        found = _SHOW_COMMENT.search(link or "")
        if found:
            stamp = datetime.fromtimestamp(int(found.group(1)) / 1000, UTC)
            return found.group(1), stamp
        selectors = self.selectors.date
        parts = selectors if isinstance(selectors, tuple) else (selectors,)
        texts: list[str] = []
        for part in parts:
            element = self.find(part) if part else None
            if element is None:
                continue
            attributes = element.attributes
            names = (self.selectors.date_attribute, "datetime", "title", "content")
            values = [attributes.get(name) for name in names if name]
            values += [v for k, v in attributes.items() if k.startswith("data-") and "time" in k]
            texts += [_squash(v) for v in [*values, element.text()] if v and v.strip()]
        if not texts and self.signature[1]:
            texts.append(self.signature[1])
        for text in dict.fromkeys(texts):
            read = self.dates.read(text)
            if read is not None:
                return text, read
        return (texts[0] if texts else None), None

    def body_html(self, body: LexborNode) -> str:
        """The body's HTML without the parts ``exclude`` names or the comments nested in it."""
        exclude = self.selectors.exclude
        nested = [n for n in body.traverse(include_text=False) if n.mem_id in self.container_ids]
        nested = [n for n in nested if n.mem_id != self.node.mem_id]
        if not exclude and not nested:
            return (body.inner_html or "").strip()
        fragment = LexborHTMLParser(f"<div>{body.inner_html or ''}</div>")
        root = fragment.css_first("body > div")
        if root is None:
            return ""
        removed = []
        parts = exclude if isinstance(exclude, tuple) else (exclude,) if exclude else ()
        for part in parts:
            removed += root.css(part)
        if nested:
            # The copy knows nothing of the page's containers: remove them by their position.
            removed += _same_places(body, root, nested)
        for node in removed:
            node.decompose()
        return (root.inner_html or "").strip()

    def link(self) -> str | None:
        node_id = (self.node.id or "").strip()
        if isinstance(self.selectors.link, tuple) and _has_digit(node_id):
            # Detectors: the anchor that names this very comment beats a link in its text.
            tail = _ID_TAIL.sub("", node_id)
            for anchor in self.node.css("a[href*='#']"):
                fragment = (anchor.attributes.get("href") or "").partition("#")[2]
                if fragment and _ID_TAIL.sub("", fragment) == tail and self.owns(anchor):
                    # Without a web base a "#comment-12" is still this comment's, not a cue to
                    # take some link of its text instead.
                    return _web_url(anchor.attributes.get("href"), self.base)
        element = self.find(self.selectors.link)
        if element is not None:
            found = element if element.tag == "a" else element.css_first("a[href]")
            link = _web_url(found.attributes.get("href") if found else None, self.base)
            if link:
                return link
        # Every id is a fragment target, so the container's id is a permalink of last resort.
        node_id = (self.node.id or "").strip()
        if not (_has_digit(node_id) and self.base):
            return None  # id="xenforo-comment-" on every comment names none of them
        return f"{self.base.partition('#')[0]}#{node_id}"

    def number(self, position: int) -> int | None:
        if self.selectors.number:
            element = self.find(self.selectors.number)
            found = _NUMBER.search(element.text()) if element is not None else None
            return int(found.group()) if found else None
        if self.selectors.footer:
            return self.signature[2]
        return position


def _in_reply_button(anchor: LexborNode, container: LexborNode) -> bool:
    """Whether ``anchor`` is a comment's own "Reply" button (WordPress ``comment-reply-link``,
    inside ``.reply``), which names the comment itself, not its parent."""
    current: LexborNode | None = anchor
    while current is not None and current.mem_id != container.mem_id:
        classes = (current.attributes.get("class") or "").split()
        if _REPLY_BUTTON.intersection(classes):
            return True
        current = current.parent
    return False


def _same_places(
    original: LexborNode, copy: LexborNode, targets: list[LexborNode]
) -> list[LexborNode]:
    """The nodes of ``copy`` (a re-parsed copy of ``original``) standing where ``targets``
    stand in ``original``."""
    wanted = {t.mem_id for t in targets}
    pairs = zip(
        original.traverse(include_text=False), copy.traverse(include_text=False), strict=False
    )
    return [theirs for ours, theirs in pairs if ours.mem_id in wanted and ours is not original]


def _parent_key(
    node: LexborNode, container_ids: set[int], reply_ids: set[int], keys: Mapping[int, str]
) -> str | None:
    """The key of the comment this one replies to: the nearest enclosing comment, when a replies
    wrapper lies between them. A skipped (bodiless) parent passes the reply on to its own parent.
    """
    in_replies = False
    current = node.parent
    while current is not None:
        if current.mem_id in reply_ids:
            in_replies = True
        elif current.mem_id in container_ids:
            if not in_replies:
                return None  # nested without a replies wrapper: malformed markup, not a thread
            if current.mem_id in keys:
                return keys[current.mem_id]
            in_replies = False
        current = current.parent
    return None


def _split_footer(text: str) -> tuple[str | None, str | None, int | None]:
    """Split "Posted by: NAME | DATE | N" into its parts; any part may be missing or empty."""
    parts = [part.strip() for part in _POSTED_BY.sub("", _squash(text)).split("|")] + ["", ""]
    number = int(parts[2]) if _NUMBER.fullmatch(parts[2]) else None
    return parts[0] or None, parts[1] or None, number


def _has_digit(text: str | None) -> bool:
    return bool(text) and any(ch.isdigit() for ch in text)  # type: ignore[union-attr]


def _squash(text: str | None) -> str:
    return " ".join(text.split()) if text else ""


def _sha256(parts: list[str | None]) -> str:
    return hashlib.sha256(json.dumps(parts).encode("utf-8", "surrogatepass")).hexdigest()


def _css_any(tree: LexborHTMLParser | LexborNode, selector: Selector) -> list[LexborNode]:
    """The elements matching ``selector``, or any selector of a tuple of them (each once)."""
    parts = (selector,) if isinstance(selector, str) else selector
    return list({node.mem_id: node for part in parts for node in tree.css(part)}.values())
