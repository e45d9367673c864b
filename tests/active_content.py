"""A scanner for active content in HTML: what a sanitizer must never let through."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

ACTIVE_TAGS = {
    "script",
    "iframe",
    "frame",
    "frameset",
    "form",
    "input",
    "button",
    "object",
    "embed",
    "applet",
    "style",
    "link",
    "meta",
    "base",
    "svg",
    "math",
}
URL_ATTRIBUTES = {
    "href",
    "src",
    "action",
    "formaction",
    "data",
    "poster",
    "background",
    "cite",
    "lowsrc",
    "dynsrc",
    "srcset",
    "xlink:href",
    "longdesc",
    "usemap",
    "codebase",
}
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):")
_INVISIBLE = re.compile(r"[\x00-\x20\x7f]+")


class ActiveContent(HTMLParser):
    """Collects whatever in an HTML fragment could run script or load active content."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._check(tag, attrs)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._check(tag, attrs)

    def _check(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ACTIVE_TAGS:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on"):
                self.found.append(f"{tag} {name}=")
            if name == "style":
                self.found.append(f"{tag} style={value!r}")
            if name in URL_ATTRIBUTES:
                plain = _INVISIBLE.sub("", html.unescape(value)).lower()
                scheme = _SCHEME.match(plain)
                if scheme and scheme.group(1) not in ("http", "https", "mailto", "ftp", "tel"):
                    self.found.append(f"{tag} {name}={value!r}")


def active_content(fragment: str) -> list[str]:
    scanner = ActiveContent()
    scanner.feed(fragment)
    scanner.close()
    return scanner.found
