"""One-line texts for what went wrong in a fetch, in words a user can act on.

Pure: an HTTP status or an aiohttp/OS error in, a short line (or a :class:`FetchError`) out;
long URLs are cut. It does no fetching and decides nothing about retrying (that is
:mod:`aggregator.schedule.decide`); :mod:`aggregator.fetch.fetcher` and :mod:`.files` raise
what it words.
"""

from __future__ import annotations

import os
import ssl
from http import HTTPStatus

import aiohttp

from aggregator.errors import FetchError


def status_error(status: int, reason: str | None, headers: dict[str, str]) -> FetchError:
    if not reason:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
    return FetchError(
        f"HTTP {status} {reason}".rstrip(),
        status=status,
        headers=headers,
    )


def describe_client_error(error: aiohttp.ClientError) -> str:
    """One line for an aiohttp error: what went wrong, in words a user can act on."""
    if isinstance(error, aiohttp.ClientConnectorError):  # ClientSSLError among them
        text = error_reason(error.os_error)
        tls = "SSL" in text or "certificate" in text.lower() or "TLS" in text
        if isinstance(error, aiohttp.ClientSSLError) or tls:
            return f"TLS error: {text}"
        return f"cannot connect: {text}"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "the server broke the HTTP protocol: it closed the connection without an answer"
    if isinstance(error, aiohttp.ClientPayloadError):
        return f"the server broke the HTTP protocol: {error_reason(error)}"
    if isinstance(error, aiohttp.ClientResponseError):  # unreadable status line or headers
        return f"the server broke the HTTP protocol: {error_reason(error.message or error)}"
    if isinstance(error, aiohttp.ClientOSError):
        return f"connection lost: {error_reason(error)}"
    if isinstance(error, aiohttp.InvalidURL):
        return f"invalid URL: {error_reason(error)}"
    return f"{type(error).__name__}: {error_reason(error)}"


def error_reason(error: object) -> str:
    if isinstance(error, OSError) and error.errno and not isinstance(error, ssl.SSLError):
        return os.strerror(error.errno)  # asyncio says "Connect call failed (...)"
    text = str(error) or type(error).__name__
    # OSError text such as "[Errno 111] Connection refused"; keep it short.
    text = text.split("] ", 1)[-1] if text.startswith("[Errno") else text
    return text.splitlines()[0][:300] if text else type(error).__name__


def short_url(url: str) -> str:
    return url if len(url) <= 200 else url[:197] + "..."
