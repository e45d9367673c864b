"""Tests for aggregator.fetch.decoding: content codings undone within a size limit."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import pytest

from aggregator.fetch.decoding import BoundedDecoder, DecodingError, format_size

LIMIT = 1024 * 1024


def decode(body: bytes, coding: str | None, limit: int = LIMIT, chunk: int = 65536) -> bytes:
    decoder = BoundedDecoder(coding, limit)
    out = bytearray()
    for start in range(0, len(body), chunk):
        for piece in decoder.feed(body[start : start + chunk]):
            out += piece
    return bytes(out)


def test_plain_gzip_and_deflate_round_trip() -> None:
    data = b"<rss>" + b"x" * 100_000 + b"</rss>"
    assert decode(gzip.compress(data), "gzip") == data
    assert decode(gzip.compress(data), "x-gzip") == data
    assert decode(zlib.compress(data), "deflate") == data
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    assert decode(raw.compress(data) + raw.flush(), "deflate") == data  # no zlib wrapper
    assert decode(data, None) == data
    assert decode(data, "identity") == data


def test_two_gzip_members_are_one_body() -> None:
    assert decode(gzip.compress(b"abc") + gzip.compress(b"def"), "gzip") == b"abcdef"


def test_layered_codings_are_undone_last_first() -> None:
    data = b"hello " * 1000
    assert decode(zlib.compress(gzip.compress(data)), "gzip, deflate") == data


def test_gzip_bomb_stops_at_the_limit_without_inflating_it() -> None:
    bomb = gzip.compress(b"\0" * (100 * 1024 * 1024), compresslevel=9)  # ~100 KB
    tracemalloc.start()
    with pytest.raises(DecodingError, match="larger than the 1 MB limit"):
        decode(bomb, "gzip")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 8 * 1024 * 1024


def test_nested_gzip_bomb_stops_at_the_limit() -> None:
    inner = gzip.compress(b"\0" * (50 * 1024 * 1024), compresslevel=9)
    with pytest.raises(DecodingError, match="limit"):
        decode(gzip.compress(inner), "gzip, gzip")


@pytest.mark.parametrize("coding", ["br", "zstd", "compress", "gzip, br"])
def test_codings_not_offered_are_refused(coding: str) -> None:
    with pytest.raises(DecodingError, match="unsupported Content-Encoding"):
        BoundedDecoder(coding, LIMIT)


def test_too_many_layers_are_refused() -> None:
    with pytest.raises(DecodingError, match="layers"):
        BoundedDecoder("gzip, gzip, gzip", LIMIT)


def test_corrupt_gzip_is_a_clear_error() -> None:
    with pytest.raises(DecodingError, match="invalid gzip data"):
        decode(b"this is not gzip", "gzip")


@pytest.mark.parametrize(
    ("size", "text"),
    [(10 * 1024 * 1024, "10 MB"), (512 * 1024, "512 KB"), (1536, "1.5 KB"), (12, "12 bytes")],
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text
