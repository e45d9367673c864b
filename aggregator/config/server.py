"""``server:``: where ``aggregator serve`` and ``run`` listen, and the public URL of self links.

Pure. Does not: start any server (see :mod:`aggregator.serve`).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from aggregator.config.base import _http_url, _Strict


class ServerConfig(_Strict):
    """Where ``aggregator serve`` and ``run`` listen, and the public URL used in self links."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    base_url: str | None = None
    # A WebSub hub (W3C WebSub): feeds name it in rel="hub" and it is told of each change.
    websub_hub: str | None = None
    # Seconds a connection may take to send a complete request head before it is closed.
    header_timeout: float = Field(10.0, gt=0, le=300)
    # Connections open at once; over it, the one idle longest is closed (aggregator.serve.httpserver).
    max_connections: int = Field(8192, ge=16, le=1_000_000)
    # /healthz and /metrics in full (error texts, source names) to any address, not only loopback.
    public_health_details: bool = False
    # /status to any client, not only loopback ones (it names sources, URLs and error texts).
    public_status: bool = False

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value).rstrip("/")

    @field_validator("websub_hub")
    @classmethod
    def _check_websub_hub(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @property
    def public_url(self) -> str:
        """The base URL subscribers use: ``base_url``, else the listening address."""
        if self.base_url:
            return self.base_url
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"


def is_public_url(url: str | None) -> bool:
    """Whether hubs on the internet could reach ``url``: an http(s) URL whose host is a name
    (not ``localhost`` nor ``*.localhost``, ``*.local``, ``*.internal``) or a global address.

    Pure: no DNS. A name that resolves to a private address counts as public; an operator who
    knows better sets ``websub: false``.
    """
    if not url:
        return False
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".").lower()
    if parts.scheme not in ("http", "https") or not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if "." not in host:
            return False  # a single label: only names on the local network look like that
        return host != "localhost" and not host.endswith((".localhost", ".local", ".internal"))
    return address.is_global
