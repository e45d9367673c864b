"""Undo HTTP content codings (gzip, deflate) without ever holding more than a set size.

An HTTP client's own decoder handles a whole network chunk at once, so a 64 KB chunk of a gzip
bomb becomes 64 MB before any size check can run, and ``Content-Encoding: gzip, gzip``
multiplies that again.
:class:`BoundedDecoder` asks zlib for at most a small piece at a time and stops as soon as the
decoded total passes the limit. Brotli and zstd are not offered in ``Accept-Encoding`` (no
bounded decoder is installed), so a server that sends them anyway gets a clear error.
Pure: no IO.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

_PIECE = 64 * 1024

#: What aggregator asks for; anything else in Content-Encoding is refused.
ACCEPT_ENCODING = "gzip, deflate"


class DecodingError(ValueError):
    """The body cannot be decoded, or decodes to more than the limit."""


class _Layer:
    """One content coding (gzip or deflate) undone in bounded pieces."""

    def __init__(self, coding: str):
        self.coding = coding
        self._first = True
        self._new()

    def _new(self) -> None:
        if self.coding == "gzip":
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        else:
            self._zlib = zlib.decompressobj()  # zlib-wrapped deflate (RFC 9110 8.4.1.2)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            try:
                piece = self._zlib.decompress(data, _PIECE)
            except zlib.error as error:
                if self.coding == "deflate" and self._first:
                    # Many servers send raw deflate without the zlib wrapper.
                    self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                    self._first = False
                    continue
                raise DecodingError(f"invalid {self.coding} data: {error}") from None
            self._first = False
            if piece:
                yield piece
            if self._zlib.eof:
                data = self._zlib.unused_data
                if data and self.coding == "gzip" and data.lstrip(b"\0"):
                    self._new()  # a second gzip member (RFC 1952 2.2)
                    continue
                return
            data = self._zlib.unconsumed_tail


class BoundedDecoder:
    """Decodes a body coded as ``Content-Encoding`` says, refusing to exceed ``limit`` bytes."""

    def __init__(self, content_encoding: str | None, limit: int):
        codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        for coding in codings:
            if coding not in ("gzip", "x-gzip", "deflate"):
                raise DecodingError(f"unsupported Content-Encoding {coding!r}")
        if len(codings) > 2:
            raise DecodingError(f"{len(codings)} layers of Content-Encoding")
        # Codings are listed in the order applied: undo the last one first.
        self._layers = [_Layer("gzip" if c == "x-gzip" else c) for c in reversed(codings)]
        self.limit = limit
        self.size = 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decoded pieces of one raw chunk; raises :class:`DecodingError` past the limit."""
        for piece in self._through(data, 0):
            self.size += len(piece)
            if self.size > self.limit:
                raise DecodingError(
                    f"decoded body is larger than the {format_size(self.limit)} limit"
                )
            yield piece

    def _through(self, data: bytes, index: int) -> Iterator[bytes]:
        if index == len(self._layers):
            yield data
            return
        for piece in self._layers[index].feed(data):
            yield from self._through(piece, index + 1)


def format_size(size: int) -> str:
    """``10485760`` as ``10 MB``: binary units, written the way people say them."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            value = size / scale
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"
