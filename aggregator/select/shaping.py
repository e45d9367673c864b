"""Shape entry HTML for publishing: short summaries (plain text is :func:`sanitize.plain_text`).

Pure functions: they take a string of HTML and return a string. They do not sanitise (``nh3``
does that elsewhere, before or after this step), fetch anything, or read configuration.

HTML is read with selectolax's lexbor parser (an HTML5 parser, so it repairs broken markup the
way browsers do) and written back from the parsed tree. Cutting a summary therefore happens on
decoded text, never inside a tag or an entity, and every tag that is open at the cut is closed by
the serialiser.
"""

from __future__ import annotations

from collections.abc import Iterator

from selectolax.lexbor import LexborHTMLParser, LexborNode

ELLIPSIS = "\u2026"

# Elements whose text is not shown to a reader.
_INVISIBLE = frozenset({"script", "style", "template", "noscript", "head", "title"})

# Elements that start a new line when rendered; a cut counts a space between their texts, as
# sanitize.plain_text (the one HTML-to-text function) shows "<p>one</p><p>two</p>" as "one two".
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "details", "div", "dl", "dt",
        "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
        "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "td",
        "tfoot", "th", "thead", "tr", "ul",
    }
)  # fmt: skip

_INVISIBLE_SELECTOR = ", ".join(sorted(_INVISIBLE))
_TEXT = "-text"
# Trailing characters dropped before the ellipsis so a cut reads "war…" rather than "war,…".
_TRAILING = " \t\n,;:&-\u2013\u2014([{"


def summarize(html: str | None, max_chars: int = 500, ellipsis: str = ELLIPSIS) -> str:
    """Return ``html`` shortened to about ``max_chars`` characters of visible text.

    The cut falls on a word boundary (a single word longer than ``max_chars`` is cut hard), every
    element open at the cut is closed, ``ellipsis`` is appended to the last text, and everything
    after the cut is dropped. Scripts, styles and comments are dropped from a cut summary.
    Input whose visible text already fits is returned unchanged, byte for byte.
    Visible text is counted with runs of whitespace as one character.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    if not html:
        return ""
    body = _parse(html)
    if body is None:
        return html
    _drop_invisible(body)
    cut = _find_cut(body, max_chars)
    if cut is None:
        return html
    node, text = cut
    _drop_following(node)
    node.replace_with(text.rstrip(_TRAILING) + ellipsis)
    return body.inner_html or ""


def _parse(html: str) -> LexborNode | None:
    return LexborHTMLParser(html).body


def _walk(root: LexborNode) -> Iterator[LexborNode | None]:
    """Yield the visible text nodes under ``root`` in document order, and ``None`` where a block
    element starts or ends (a line break for a reader). Iterative: nesting depth is unbounded."""
    open_elements: list[LexborNode] = []
    node = root.child
    while True:
        while node is None:
            if not open_elements:
                return
            element = open_elements.pop()
            if element.tag in _BLOCKS:
                yield None
            node = element.next
        tag = node.tag
        if tag == _TEXT:
            yield node
        elif tag is not None and not tag.startswith("-") and tag not in _INVISIBLE:
            if tag in _BLOCKS:
                yield None
            open_elements.append(node)
            node = node.child
            continue
        node = node.next


def _drop_invisible(body: LexborNode) -> None:
    # One at a time: decomposing an element frees its descendants, so a list collected up front
    # could hold nodes that no longer exist (a <style> inside a <noscript>).
    while (node := body.css_first(_INVISIBLE_SELECTOR)) is not None:
        node.decompose()
    comments = [node for node in body.traverse(include_text=True) if node.tag == "-comment"]
    for node in comments:
        node.decompose()


def _find_cut(body: LexborNode, max_chars: int) -> tuple[LexborNode, str] | None:
    """Find the text node where the budget runs out and the text to keep in it.

    Counts text as :func:`aggregator.parse.sanitize.plain_text` shows it. ``None`` when it all fits.
    """
    used = 0
    space = False  # whitespace or a block boundary since the last visible character
    for node in _walk(body):
        raw = "" if node is None else node.text_content or ""
        if node is None or raw[:1].isspace():
            space = True
        words = " ".join(raw.split())
        if not words:
            continue
        text = (" " if space and used else "") + words
        if used + len(text) > max_chars and node is not None:
            kept = _cut_words(text, max_chars - used, hard=used == 0)
            if kept and not raw[:1].isspace() and text[:1] == " ":
                kept = kept[1:]  # that space was a block boundary or the end of the last node
            return node, kept
        used += len(text)
        space = raw[-1:].isspace()
    return None


def _cut_words(text: str, budget: int, *, hard: bool) -> str:
    """Cut ``text`` to at most ``budget`` characters, at the last space that fits.

    When no space fits, the cut takes nothing (the previous node ended on a word), unless
    ``hard`` says nothing came before, in which case the word itself is cut.
    """
    if budget < len(text) and text[budget].isspace():
        return text[:budget]
    space = text.rfind(" ", 0, budget + 1)
    if space >= 0:
        return text[:space]
    return text[:budget] if hard else ""


def _drop_following(node: LexborNode) -> None:
    """Remove everything after ``node`` in document order, up to the end of ``body``."""
    current: LexborNode | None = node
    while current is not None and current.tag != "body":
        sibling = current.next
        while sibling is not None:
            following = sibling.next
            sibling.decompose()
            sibling = following
        current = current.parent
