"""Feed documents put together from entries rendered before.

A feed document is a head, its entries (Atom ``<entry>``, RSS ``<item>``, JSON Feed items) and
a tail. Pretty-printed XML and indented JSON lay an entry out the same way in every document of
one format, at the same depth and under the same namespace declarations, so the bytes of an
entry rendered once can be reused. :class:`FragmentCache` keeps them, each with everything it
depends on, and splices documents from them, rendering only the entries it does not hold. A new
entry at the top of a merged output moves every entry of every RFC 5005 page down by one: each
page changes, but of its entries only the one moving in from the page before is new to it.

Splicing is checked, not assumed: a document rendered to fill the cache must come apart into
its head, one piece per entry (each starting and ending where an entry does) and its tail,
exactly; otherwise the whole document is rendered as before and nothing is kept. In XML, text
and attribute values cannot contain a raw ``<``, so an entry's closing tag at its own depth
cannot occur inside another entry.

Pure: bytes and the callables that render them; no feedgen, SQLite or files here.
"""

from __future__ import annotations

import json
import secrets
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

# Where the entries of a pretty-printed document start and end: (opening, closing, tail).
XML_LAYOUT = {
    "atom": (b"  <entry>\n", b"  </entry>\n", b"</feed>\n"),
    "rss": (b"    <item>\n", b"    </item>\n", b"  </channel>\n</rss>\n"),
}
# json.dumps(indent=1) puts a feed's items two levels deep ({"items": [ {...} ]}).
_JSON_ITEM_INDENT = "  "


# What a piece's bytes depend on: a tuple of the values its renderer reads.
D = TypeVar("D")


@dataclass(frozen=True)
class Piece(Generic[D]):
    """One entry of a document: ``key`` names it (per format), ``depends`` is everything its
    bytes depend on (compared with ``==``)."""

    key: Hashable
    depends: D


class FragmentCache:
    """Rendered entries, least recently used dropped first beyond ``max_bytes``."""

    def __init__(self, max_bytes: int = 32 * 1024 * 1024):
        self.max_bytes = max_bytes
        self.size = 0
        self._fragments: OrderedDict[Hashable, tuple[object, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._fragments)

    def clear(self) -> None:
        self._fragments.clear()
        self.size = 0

    def xml(
        self, fmt: str, pieces: Sequence[Piece[D]], render: Callable[[Sequence[Piece[D]]], bytes]
    ) -> bytes:
        """A pretty-printed Atom or RSS document of ``pieces``, in their order.

        ``render(some)`` renders the document with only ``some`` of the pieces, in order, and
        the same head (feed-level values must not depend on which pieces are passed).
        """
        opening, closing, tail = XML_LAYOUT[fmt]
        parts, missing = self._lookup(pieces)
        if missing:
            whole = render([pieces[i] for i in missing])
            split = _split_xml(whole, len(missing), opening, closing, tail)
            if split is None:
                return render(pieces)
            head = split.pop(0)
            self._fill(pieces, parts, missing, split)
            if len(missing) == len(pieces):
                return whole  # every piece was new: that is the document
        else:
            empty = render(())
            if not empty.endswith(tail):
                return render(pieces)
            head = empty[: -len(tail)]
        return b"".join([head, *_complete(parts), tail])

    def json(
        self,
        document: dict[str, Any],
        pieces: Sequence[Piece[D]],
        item: Callable[[Piece[D]], dict[str, Any]],
    ) -> bytes:
        """``json.dumps(document, ensure_ascii=False, indent=1)`` with ``document["items"]``
        made of ``item(piece)`` for every piece, in order, encoded as UTF-8."""
        if not pieces:
            return _dumps({**document, "items": []}).encode("utf-8")
        parts, missing = self._lookup(pieces)
        if missing:
            rendered = _split_json([item(pieces[i]) for i in missing])
            if rendered is None:  # cannot happen with json.dumps; render everything
                items = [item(piece) for piece in pieces]
                return _dumps({**document, "items": items}).encode("utf-8")
            self._fill(pieces, parts, missing, rendered)
        # A marker no stored text can contain (a NUL and a random token) stands for the items.
        marker = f"\x00{secrets.token_hex(8)}"
        text = _dumps({**document, "items": [marker]}).encode("utf-8")
        before, found, after = text.partition(f"{_JSON_ITEM_INDENT}{_dumps(marker)}".encode())
        if not found:  # cannot happen with json.dumps; render everything rather than guess
            items = [item(piece) for piece in pieces]
            return _dumps({**document, "items": items}).encode("utf-8")
        return b"".join([before, b",\n".join(_complete(parts)), after])

    def _lookup(self, pieces: Sequence[Piece[Any]]) -> tuple[list[bytes | None], list[int]]:
        """The held bytes of each piece (None where missing or stale) and the missing places."""
        parts: list[bytes | None] = []
        missing: list[int] = []
        for index, piece in enumerate(pieces):
            held = self._fragments.get(piece.key)
            if held is not None and held[0] == piece.depends:
                self._fragments.move_to_end(piece.key)
                parts.append(held[1])
            else:
                parts.append(None)
                missing.append(index)
        return parts, missing

    def _fill(
        self,
        pieces: Sequence[Piece[Any]],
        parts: list[bytes | None],
        missing: Sequence[int],
        rendered: Sequence[bytes],
    ) -> None:
        """Put the ``rendered`` bytes of the ``missing`` places in ``parts`` and keep them."""
        for index, part in zip(missing, rendered, strict=True):
            parts[index] = part
            piece = pieces[index]
            old = self._fragments.pop(piece.key, None)
            if old is not None:
                self.size -= len(old[1])
            self._fragments[piece.key] = (piece.depends, part)
            self.size += len(part)
        while self.size > self.max_bytes and self._fragments:
            _, (_, dropped) = self._fragments.popitem(last=False)
            self.size -= len(dropped)


def _complete(parts: list[bytes | None]) -> list[bytes]:
    """``parts`` once every place holds bytes, held or rendered (a gap would be a bug here)."""
    complete = [part for part in parts if part is not None]
    if len(complete) != len(parts):
        raise AssertionError("a piece was neither held nor rendered")
    return complete


def _split_xml(
    whole: bytes, count: int, opening: bytes, closing: bytes, tail: bytes
) -> list[bytes] | None:
    """``[head, piece 1, ..., piece count]`` of a document whose tail is ``tail``, or None when
    it does not come apart exactly that way."""
    if not whole.endswith(tail):
        return None
    start = whole.find(b"\n" + opening) + 1
    if start == 0:
        return None
    parts = [whole[:start]]
    stop = len(whole) - len(tail)
    while start < stop:
        end = whole.find(closing, start, stop) + len(closing)
        if end < len(closing) or not whole.startswith(opening, start):
            return None
        parts.append(whole[start:end])
        start = end
    return parts if start == stop and len(parts) == count + 1 else None


# json.dumps({"items": [...]}, indent=1) lays items out two levels deep, as in a feed; a line
# holding only "  }" closes an item (what is nested goes deeper, and JSON text has no raw
# line breaks), so the items come apart at these.
_JSON_OPEN = '{\n "items": [\n'
_JSON_CLOSE = "\n ]\n}"
_JSON_BETWEEN = "\n  },\n  {\n"


def _split_json(items: list[dict[str, Any]]) -> list[bytes] | None:
    """Each item as ``json.dumps`` writes it in a feed's ``items``, in one call for all."""
    text = _dumps({"items": items})
    if not (text.startswith(_JSON_OPEN) and text.endswith(_JSON_CLOSE)):
        return None
    body = text[len(_JSON_OPEN) : -len(_JSON_CLOSE)]
    parts = body.split(_JSON_BETWEEN)
    if len(parts) != len(items):
        return None
    last = len(parts) - 1
    return [
        (("" if index == 0 else "  {\n") + part + ("" if index == last else "\n  }")).encode()
        for index, part in enumerate(parts)
    ]


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1)
