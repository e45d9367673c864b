"""The public addresses of published documents: file extensions, media types, URLs and ids.

Owns :class:`FeedLinks` (every URL of one output, from the server's base URL), :class:`Page`
(where a document sits in an RFC 5005 paged feed) and :func:`urn` (an entry's or comment's
public id as a URI). Pure: no IO. Rendering the documents is :mod:`aggregator.publish.render`
and :mod:`aggregator.publish.render_comments`; writing them is :mod:`aggregator.publish.publisher`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

EXTENSIONS = {"atom": "atom", "rss": "rss", "json": "json"}
MEDIA_TYPES = {
    "atom": "application/atom+xml",
    "rss": "application/rss+xml",
    "json": "application/feed+json",
}
_UUID_HEX = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class FeedLinks:
    """The public URLs of one output, built from the server's base URL.

    ``hub`` is the WebSub hub every document names in ``rel="hub"``, when one is configured.
    """

    base_url: str
    output: str
    hub: str | None = None

    def feed(self, fmt: str) -> str:
        return f"{self.base_url}/feeds/{self.output}.{EXTENSIONS[fmt]}"

    def feed_page(self, fmt: str, number: int) -> str:
        """Page ``number`` of the output (RFC 5005 paging); page 1 is the feed itself."""
        if number <= 1:
            return self.feed(fmt)
        return f"{self.base_url}/feeds/{self.output}/page/{number}.{EXTENSIONS[fmt]}"

    def web_page(self) -> str:
        """The output's readable web page."""
        return f"{self.base_url}/outputs/{self.output}"

    def web_entry(self, entry_public_id: str) -> str:
        """One entry of the output with its comment thread, as a web page."""
        return f"{self.base_url}/outputs/{self.output}/{entry_public_id}"

    def page(self) -> str:
        return f"{self.base_url}/"

    def comments(self, entry_public_id: str, fmt: str) -> str:
        return f"{self.base_url}/feeds/{self.output}/{entry_public_id}/comments.{EXTENSIONS[fmt]}"

    def latest_comments(self, fmt: str) -> str:
        return f"{self.base_url}/feeds/{self.output}/comments.{EXTENSIONS[fmt]}"


@dataclass(frozen=True)
class Page:
    """Where a document sits in an output's RFC 5005 paged feed: page ``number`` of ``count``."""

    number: int = 1
    count: int = 1

    def links(self, links: FeedLinks, fmt: str) -> list[tuple[str, str]]:
        """The (rel, href) paging links of this page; none when the output has one page."""
        if self.count <= 1:
            return []
        result = [("first", links.feed_page(fmt, 1))]
        if self.number > 1:
            result.append(("previous", links.feed_page(fmt, self.number - 1)))
        if self.number < self.count:
            result.append(("next", links.feed_page(fmt, self.number + 1)))
        result.append(("last", links.feed_page(fmt, self.count)))
        return result


def urn(public_id: str) -> str:
    """An entry's public id as a URI (``urn:uuid:...``), valid as Atom id and RSS guid."""
    if _UUID_HEX.fullmatch(public_id):  # as storage writes them (uuid.hex): no UUID object
        h = public_id
        return f"urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return uuid.UUID(hex=public_id).urn
