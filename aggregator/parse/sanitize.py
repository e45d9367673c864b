"""Make HTML from feeds and pages safe to republish (nh3), and titles plain text.

Everything aggregator stores as HTML goes through :func:`clean_html` once, when it is stored, so
every output (feeds, comment feeds, web pages) republishes only sanitized markup: no scripts, no
event handlers, no ``style`` attributes, no ``javascript:``/``data:`` URLs, no forms, frames,
objects or embeds. Relative URLs are made absolute against the document's own URL, since a
reader shows them far from their origin.

What a page shows when an embed cannot run is kept (issue 13): the content of ``<noscript>``
and ``<object>`` (a gist's code, a "Code example" link), and of ``<video>``/``<audio>``; an
``<iframe>``, ``<embed>`` or ``<object>`` that is removed leaves a plain link to its source.

:func:`plain_text` is the one way HTML becomes text (titles, names, summaries, rules, search
pages): block elements and ``<br>`` separate words, so ``Jane<br>Doe`` is ``Jane Doe``.

Every text first loses the characters XML 1.0 cannot carry (control characters, lone
surrogates, U+FFFE/U+FFFF): one of them would make lxml refuse to render a whole output. HTML
longer than :data:`MAX_HTML_CHARS` and text longer than :data:`MAX_TEXT_CHARS` are cut (the
markup is closed again by the sanitizer), so one entry cannot blow up every output it is in.
"""

from __future__ import annotations

import html
import re
import threading
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

import nh3

_URL_ATTRIBUTES = {"href", "src", "cite", "poster"}
_SAFE_SCHEMES = {"http", "https", "mailto", "ftp", "tel", "news"}
_TAGS = set(nh3.ALLOWED_TAGS) | {"audio", "video", "source", "track", "picture"}
_ATTRIBUTES = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
_ATTRIBUTES.setdefault("img", set()).update({"src", "alt", "title", "width", "height"})
_ATTRIBUTES.setdefault("a", set()).update({"href", "title"})
_ATTRIBUTES.setdefault("audio", set()).update({"src", "controls"})
_ATTRIBUTES.setdefault("video", set()).update({"src", "controls", "poster", "width", "height"})
_ATTRIBUTES.setdefault("source", set()).update({"src", "type"})
_DROP_WITH_CONTENT = {
    "script",
    "style",
    "iframe",
    "embed",
    "form",
    "template",
}
#: The longest HTML fragment kept (an entry's content, a summary, a comment).
MAX_HTML_CHARS = 256 * 1024
#: The longest plain text kept (a title, an author's name, a category).
MAX_TEXT_CHARS = 2000
# Not allowed in XML 1.0 (section 2.2): C0 controls but tab/newline/return, surrogates, FFFE/F.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_C0_BYTES = bytes(code for code in range(0x20) if code not in (0x09, 0x0A, 0x0D))
_WHITESPACE = re.compile(r"\s+")
_TAG = re.compile(r"<[^>]*>")
# <noscript> content is read as raw text by an HTML parser that runs scripts (html5ever does):
# its tags go, so the fallback inside is read as the markup it is.
_NOSCRIPT = re.compile(r"</?noscript\b[^>]*>", re.IGNORECASE)
# An embed with its source: an <iframe> (its content is raw text, dropped), an <embed>, or an
# <object>'s start tag (its content, the fallback, is kept).
_EMBED = re.compile(
    r"<(?:(?P<frame>iframe)\b(?P<frame_attrs>[^>]*)>(?:.*?</iframe\s*>)?"
    r"|(?P<embed>embed)\b(?P<embed_attrs>[^>]*)>"
    r"|(?P<object>object)\b(?P<object_attrs>[^>]*)>)",
    re.IGNORECASE | re.DOTALL,
)
_SOURCE = {"frame": "src", "embed": "src", "object": "data"}
# Any start tag keep_fallbacks changes; it matches wherever markup.lower() holds one of them
# (IGNORECASE also matches a few non-ASCII letters, which only costs the closer look).
_FALLBACK_START = re.compile(r"<(?:noscript|iframe|embed|object)", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"""([\w:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
# Elements a reader sees as their own block or line: plain_text keeps them through the
# sanitizer (which drops stray end tags, as a browser does) and makes each a space.
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "details", "div", "dl", "dt",
        "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
        "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "td",
        "tfoot", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
# An absolute http(s) URL that urljoin gives back unchanged whatever the base, and whose scheme
# is safe: a lower-case scheme, an ASCII host (no user info, no IPv6 brackets, so nothing for
# urlsplit to refuse), no ";" params in the path, no empty "?" or "#" (both dropped by
# urljoin), no whitespace or control characters (removed by urlsplit). Most links in feeds are
# such URLs; tests/test_sanitize.py checks the shortcut against urljoin itself.
_PLAIN_ABSOLUTE = re.compile(
    r"https?://[A-Za-z0-9.\-]+(?::[0-9]*)?"
    r"(?:/[^;?#\s\x00-\x1f\x7f]*)?(?:\?[^#\s\x00-\x1f\x7f]+)?(?:#[^\s\x00-\x1f\x7f]+)?"
)


def _absolutize(base_url: str | None, tag: str, attribute: str, value: str) -> str | None:
    """The attribute's value to keep: a URL made absolute against ``base_url`` and refused when
    its scheme is not a safe one, any other attribute as it is; ``None`` drops it."""
    if attribute not in _URL_ATTRIBUTES:
        return value
    joined = _joined(value.strip(), base_url)
    if joined is None:
        return None
    url, scheme = joined
    if scheme and scheme not in _SAFE_SCHEMES:
        return None
    return url


def joins_as_itself(url: str, base_url: str | None) -> bool:
    """Whether ``urljoin(base_url, url)`` is ``url`` itself, known without joining: ``url`` is
    a plain absolute http(s) URL (:data:`_PLAIN_ABSOLUTE`) and urljoin can read ``base_url``.
    Also true of feedparser's ``_urljoin`` (whose fix-up of ``scheme:///`` such a URL does not
    need). tests/test_sanitize.py checks it against urljoin itself."""
    plain = (
        _is_plain_absolute(url)
        if len(url) <= _REMEMBERED_URL_CHARS
        else _PLAIN_ABSOLUTE.fullmatch(url) is not None
    )
    return plain and is_usable_base(base_url)


#: The longest URL whose shape is remembered (:func:`_is_plain_absolute`): a hostile document's
#: long values are not kept.
_REMEMBERED_URL_CHARS = 2000


@lru_cache(maxsize=4096)
def _is_plain_absolute(url: str) -> bool:
    """Whether :data:`_PLAIN_ABSOLUTE` matches ``url`` (a third of the URLs of a document come
    again: images, share links, the entries' own links in their content)."""
    return _PLAIN_ABSOLUTE.fullmatch(url) is not None


def _joined(value: str, base_url: str | None) -> tuple[str, str] | None:
    """``value`` made absolute against ``base_url``, with its lower-case scheme; ``None`` when
    urljoin or urlsplit cannot read them (e.g. an unclosed IPv6 literal, "http://[::1")."""
    if joins_as_itself(value, base_url):
        # What urljoin would give (see _PLAIN_ABSOLUTE); the scheme is "http" or "https".
        return value, value[: value.index(":")]
    try:
        url = urljoin(base_url, value) if base_url else value
        return url, urlsplit(url).scheme.lower()
    except ValueError:
        return None


class _Base(threading.local):
    """The base URL of the fragment being cleaned in this thread, for :func:`_filter_attribute`."""

    url: str | None = None


_base = _Base()


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    if attribute not in _URL_ATTRIBUTES:  # most attributes: spare a call (this runs for each)
        return value
    return _absolutize(_base.url, tag, attribute, value)


# Built once: building a sanitizer (its tag and attribute sets, in Rust) cost more than cleaning
# a typical comment with it (issue 8). The base URL differs per fragment (each comment's and
# entry's own link), so the one attribute filter reads it from _base, set around each call; it
# is thread-local, so threads cleaning at once each see their own.
_HTML_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    clean_content_tags=_DROP_WITH_CONTENT,
    attributes=_ATTRIBUTES,
    attribute_filter=_filter_attribute,
    url_schemes=_SAFE_SCHEMES,
    link_rel="noopener noreferrer nofollow",
)
_TEXT_CLEANER = nh3.Cleaner(
    tags=set(_BLOCKS), attributes={}, clean_content_tags=_DROP_WITH_CONTENT, link_rel=None
)
# For outputs with ``images: strip``: the same rules without images (``img``, ``picture`` and a
# video's ``poster``), which a reader would load from their own servers (a tracking vector).
_NO_IMAGES_CLEANER = nh3.Cleaner(
    tags=_TAGS - {"img", "picture"},
    clean_content_tags=_DROP_WITH_CONTENT,
    attributes={
        tag: attributes - {"poster"} for tag, attributes in _ATTRIBUTES.items() if tag != "img"
    },
    url_schemes=_SAFE_SCHEMES,
    link_rel="noopener noreferrer nofollow",
)


def is_usable_base(base_url: str | None) -> bool:
    """Whether urljoin can read ``base_url`` (when it cannot, it refuses every URL).

    urlsplit refuses only a host with square brackets or non-ASCII characters, so an ASCII
    URL without brackets (nearly every base, each comment's own link) needs no parse.
    """
    if not base_url or (base_url.isascii() and "[" not in base_url and "]" not in base_url):
        return True
    return _splits(base_url)


@lru_cache(maxsize=256)
def _splits(url: str) -> bool:
    try:
        urlsplit(url)
    except ValueError:
        return False
    return True


def keep_fallbacks(markup: str) -> str:
    """``markup`` with ``<noscript>`` unwrapped and each embed (``<iframe>``, ``<embed>``,
    ``<object>``) preceded by, or for an iframe replaced with, a link to its source; the
    sanitizer then drops the embeds and keeps the fallback content (issue 13)."""
    if "<" not in markup or _FALLBACK_START.search(markup) is None:
        return markup  # (most markup: one scan, without a lower-case copy of it all)
    lowered = markup.lower()
    if "<noscript" in lowered:
        markup = _NOSCRIPT.sub(" ", markup)
    if "<iframe" in lowered or "<embed" in lowered or "<object" in lowered:
        markup = _EMBED.sub(_embed_link, markup)
    return markup


def _embed_link(found: re.Match[str]) -> str:
    kind = next(k for k in _SOURCE if found.group(k))
    wanted = _SOURCE[kind]
    source = next(
        (
            value[1] or value[2] or value[3]
            for value in _ATTRIBUTE.findall(found.group(f"{kind}_attrs"))
            if value[0].lower() == wanted
        ),
        None,
    )
    link = ""
    if source and source.strip():
        value = html.escape(html.unescape(source.strip()), quote=True)
        link = f' <a href="{value}">{value}</a> '
    return link if kind != "object" else link + found.group(0)


def xml_safe(text: str) -> str:
    """``text`` without the characters that XML 1.0 cannot carry."""
    if len(text) >= 256 and _is_xml_safe(text):
        return text
    return _NOT_XML.sub("", text)


def _is_xml_safe(text: str) -> bool:
    """Whether :data:`_NOT_XML` finds nothing in ``text``, checked on its UTF-8 bytes, which is
    a few times faster than the pattern on long text (entries' HTML): a C0 control is a byte of
    its own (never part of a multi-byte sequence), a surrogate starts with 0xED and U+FFFE/FFFF
    are EF BF BE/BF. Conservative: other characters starting so (Hangul, U+FFxx) say no."""
    data = text.encode("utf-8", "surrogatepass")
    return (
        len(data.translate(None, _C0_BYTES)) == len(data)
        and b"\xed" not in data
        and b"\xef\xbf" not in data
    )


def clean_html(
    markup: str | None, base_url: str | None = None, *, limit: int = MAX_HTML_CHARS
) -> str:
    """Sanitize an HTML fragment (cut to ``limit`` characters) and make its links absolute."""
    if not markup:
        return ""
    text = xml_safe(str(markup)[:limit])
    if "<" not in text and "&" not in text:
        return _as_html(text).strip()
    previous, _base.url = _base.url, base_url
    try:
        cleaned = _HTML_CLEANER.clean(keep_fallbacks(text))
    finally:
        _base.url = previous
    # Whitespace around a fragment means nothing; parsers differ in keeping it.
    return cleaned.strip()


def _as_html(text: str) -> str:
    """What the sanitizer makes of XML-safe ``text`` that has no tag and no entity (no ``<``,
    no ``&``): the HTML parser drops one leading byte order mark and makes CR LF and CR a LF,
    and the serializer escapes ``>`` and the no-break space. Titles and summaries of many feeds
    are such text; tests/test_sanitize.py checks it against the sanitizer."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.replace(">", "&gt;").replace("\xa0", "&nbsp;")


def strip_images(markup: str | None) -> str | None:
    """Sanitized HTML without its images (``img``, ``picture``, video posters); other markup
    is kept as it is. ``None`` and markup without images come back unchanged."""
    if not markup or ("<img" not in markup and "<picture" not in markup and "poster" not in markup):
        return markup
    return _NO_IMAGES_CLEANER.clean(markup).strip()


def plain_text(markup: str | None, *, limit: int | None = MAX_TEXT_CHARS) -> str:
    """Reduce HTML (or text with entities) to one line of plain text: the visible words, with
    block elements and ``<br>`` separating them (``<p>one</p><p>two</p>`` is ``one two``),
    scripts and styles dropped, entities decoded, whitespace collapsed.

    The only HTML-to-text function (issue 13): titles, names, categories (cut to ``limit``
    characters), summaries and rules (``limit=None``: all of it).
    """
    if not markup:
        return ""
    if type(markup) is str and len(markup) <= _REMEMBERED_CHARS:
        # Names, categories, types and titles come again in every entry of a document.
        return _short_plain_text(markup, limit)
    return _plain_text(markup, limit)


#: The longest text whose plain text is remembered (:func:`_short_plain_text`).
_REMEMBERED_CHARS = 300


def _plain_text(markup: object, limit: int | None) -> str:
    text = xml_safe(str(markup) if limit is None else str(markup)[: limit * 4])
    if "<" in text or "&" in text or text.startswith("\ufeff"):
        if "<" in text:
            text = keep_fallbacks(text)
        text = xml_safe(html.unescape(_TAG.sub(" ", _TEXT_CLEANER.clean(text))))
    # else: no tag and no entity, so the sanitizer and unescaping would give the text back but
    # for CR made LF (whitespace: the same once collapsed) and a leading byte order mark (which
    # the HTML parser drops); tests/test_sanitize.py proves it. Most names are such text.
    text = _WHITESPACE.sub(" ", text).strip()
    return text if limit is None else text[:limit]


_short_plain_text = lru_cache(maxsize=4096)(_plain_text)


def clean_url(url: str | None, base_url: str | None = None) -> str | None:
    """An absolute http(s), ftp or mailto URL fit to republish, else ``None``.

    ``javascript:``, ``data:`` and other schemes are dropped; so is anything over 2,000
    characters or with characters XML cannot carry.
    """
    if not url:
        return None
    value = str(url).strip()
    if not value or len(value) > 2000 or _NOT_XML.search(value):
        return None  # an empty value is no link (joined to the base it would be the base)
    joined = _joined(value, base_url)
    if joined is None:
        return None
    url, scheme = joined
    if scheme not in _SAFE_SCHEMES and scheme != "file":
        return None
    return url
