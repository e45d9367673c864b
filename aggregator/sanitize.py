"""Make HTML from feeds and pages safe to republish (nh3), and titles plain text.

Everything aggregator stores as HTML goes through :func:`clean_html` once, when it is stored, so
every output (feeds, comment feeds, web pages) republishes only sanitized markup: no scripts, no
event handlers, no ``javascript:``/``data:`` URLs, no forms or frames. Relative URLs are made
absolute against the document's own URL, since a reader shows them far from their origin.
"""

from __future__ import annotations

import html
import re
from functools import partial
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
    "object",
    "embed",
    "form",
    "noscript",
    "template",
}
_WHITESPACE = re.compile(r"\s+")
# Characters XML 1.0 forbids (C0 controls but tab, newline, return; lone surrogates; U+FFFE/F):
# a feed may carry them as &#7; and an XML writer refuses them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """Drop characters that cannot appear in an XML document."""
    return _NOT_XML.sub("", text)


_TAG = re.compile(r"<[^>]*>")


def _absolutize(base_url: str | None, tag: str, attribute: str, value: str) -> str | None:
    if attribute not in _URL_ATTRIBUTES:
        return value
    value = value.strip()
    if base_url:
        value = urljoin(base_url, value)
    scheme = urlsplit(value).scheme.lower()
    if scheme and scheme not in _SAFE_SCHEMES:
        return None
    return value


def clean_html(markup: str | None, base_url: str | None = None) -> str:
    """Sanitize an HTML fragment and make its links absolute against ``base_url``."""
    if not markup:
        return ""
    return nh3.clean(
        xml_safe(markup),
        tags=_TAGS,
        clean_content_tags=_DROP_WITH_CONTENT,
        attributes=_ATTRIBUTES,
        attribute_filter=partial(_absolutize, base_url),
        url_schemes=_SAFE_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )


def plain_text(markup: str | None) -> str:
    """Reduce HTML (or text with entities) to one line of plain text, for titles and names."""
    if not markup:
        return ""
    text = nh3.clean(xml_safe(markup), tags=set(), clean_content_tags=_DROP_WITH_CONTENT)
    text = html.unescape(_TAG.sub(" ", text))
    return xml_safe(_WHITESPACE.sub(" ", text)).strip()
