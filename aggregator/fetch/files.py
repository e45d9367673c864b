"""``file://`` URLs: where they may read, and reading one as a fetch.

A configured file URL is read only under the configured folders (``file_roots``, by default the
config file's own folder); a file URL found in content only from a file source, inside that
source's folder (the bundled demo's relative ``wfw:commentRss`` links), never from an http
source. The body is capped like an HTTP body, and the file's mtime and size make its validator,
so an unchanged file answers 304. It does no HTTP (that is :mod:`aggregator.fetch.fetcher`,
whose :class:`~aggregator.fetch.fetcher.Fetcher` calls :func:`fetch_file` for ``file:`` URLs).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from aggregator.errors import BlockedAddressError, FetchError
from aggregator.fetch.addresses import Provenance
from aggregator.fetch.decoding import format_size
from aggregator.fetch.describe import short_url
from aggregator.models import FetchResult


def fetch_file(
    url: str,
    *,
    etag: str | None,
    provenance: Provenance,
    file_roots: Sequence[Path],
    max_bytes: int,
) -> FetchResult:
    """Read a ``file://`` URL for :meth:`~aggregator.fetch.fetcher.Fetcher.fetch`: only under
    ``file_roots``, at most ``max_bytes``; ``etag`` (our own validator) answers 304."""
    if urlsplit(url).netloc not in ("", "localhost"):
        raise BlockedAddressError(f"refused to read {short_url(url)}: a file URL names no host")
    path = file_url_path(url)
    if not provenance.configured:
        # A file URL from content is followed only from a file source, inside its folder
        # (the bundled demo's relative wfw:commentRss links), never from an http source.
        source = provenance.source_url
        if urlsplit(source).scheme != "file" or not _is_under(path, file_url_path(source).parent):
            raise BlockedAddressError(
                f"refused to read {short_url(url)}: a file URL found in a feed is followed "
                "only inside its own file source's folder"
            )
    if not any(_is_under(path, root) for root in file_roots):
        raise BlockedAddressError(f"{path} is outside the folders file URLs may read")
    started = time.monotonic()
    try:
        stat = path.stat()
        validator = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
        if etag and etag == validator:
            return FetchResult(
                url=url, final_url=url, status=304, headers={}, content=None, etag=etag
            )
        if stat.st_size > max_bytes:
            raise FetchError(
                f"file of {format_size(stat.st_size)} is larger than the "
                f"{format_size(max_bytes)} limit"
            )
        with path.open("rb") as handle:
            content = handle.read(max_bytes + 1)
        if len(content) > max_bytes:
            raise FetchError(f"file is larger than the {format_size(max_bytes)} limit")
    except FileNotFoundError:
        raise FetchError(f"no such file: {path}", status=404) from None
    except OSError as error:
        raise FetchError(f"cannot read {path}: {error.strerror or error}") from None
    return FetchResult(
        url=url,
        final_url=url,
        status=200,
        headers={"content-type": _guess_type(path)},
        content=content,
        etag=validator,
        elapsed=time.monotonic() - started,
    )


def file_url_path(url: str) -> Path:
    """The filesystem path a ``file://`` URL names (symlinks resolved)."""
    parts = urlsplit(url)
    return Path(unquote(parts.path)).resolve()


def file_roots_for(folder: Path) -> tuple[Path, ...]:
    """The default folders file URLs may read: the config file's own folder."""
    return (Path(os.path.realpath(folder)),)


def _is_under(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _guess_type(path: Path) -> str:
    suffix = path.suffix.lower()
    return {
        ".atom": "application/atom+xml",
        ".rss": "application/rss+xml",
        ".rdf": "application/rdf+xml",
        ".json": "application/feed+json",
        ".html": "text/html",
        ".htm": "text/html",
    }.get(suffix, "application/xml")
