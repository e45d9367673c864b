"""What a source's requests carry, as configured: the default User-Agent (with the operator's
``contact``), credentials (``headers``, ``cookies``, ``auth``) read as secrets (text,
``${ENV_VAR}`` or ``!file``), the ``proxy``, and ``origin_of`` (the origin credentials are
sent to).

Pure but for reading a secret's file or variable. Does not: build the per-source
:class:`~aggregator.models.RequestOptions` (:meth:`.schema.AppConfig.request_for` does), nor
send anything (:mod:`aggregator.fetch`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    PlainSerializer,
    PlainValidator,
    ValidationInfo,
    model_validator,
)

from aggregator import __version__
from aggregator.config.base import _Strict
from aggregator.secret import Secret, read_secret

# Names only real things: the software and its version; ``contact`` adds the operator's address.
DEFAULT_USER_AGENT = f"aggregator/{__version__}"


_EMAIL = re.compile(r"^[^@\s/:]+@[^@\s/]+\.[^@\s/]+$")


def contact_uri(value: str) -> str:
    """The operator's contact as a URI: ``ops@example.org`` -> ``mailto:ops@example.org``;
    ``mailto:`` and http(s) URLs as given. Raises ``ValueError`` for anything else."""
    value = value.strip()
    if _EMAIL.match(value):
        return f"mailto:{value}"
    if value.startswith("mailto:") and _EMAIL.match(value.removeprefix("mailto:")):
        return value
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.netloc:
        return value
    raise ValueError(f"{value!r} is neither an email address nor an http(s) URL")


def user_agent_for(contact: str | None) -> str:
    """The default User-Agent: ``aggregator/0.1.0``, with ``(+mailto:...)`` when there is a
    contact, as polite crawlers name whom to write to."""
    return f"{DEFAULT_USER_AGENT} (+{contact})" if contact else DEFAULT_USER_AGENT


def _secret(value: Any, info: ValidationInfo) -> Secret:
    folder = (info.context or {}).get("folder") if isinstance(info.context, dict) else None
    return read_secret(value, folder=folder)


#: A credential: text, ``${ENV_VAR}`` or ``!file path`` (:mod:`aggregator.secret`); shown as ***.
SecretValue = Annotated[Secret, PlainValidator(_secret), PlainSerializer(str)]

# RFC 9110 token characters: what a header or cookie name may be made of.
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Headers the HTTP client owns: a source setting them would break the request or its framing.
_RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "te", "upgrade", "trailer"}
)
# Header names that carry credentials: a source sending one is private by default.
_CREDENTIAL_HEADER = re.compile(r"auth|cookie|token|key|secret|session|password", re.IGNORECASE)
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


def _named_pairs(value: Any, what: str, info: ValidationInfo) -> Any:
    """A mapping of ``name: value`` as sorted pairs of name and :class:`Secret`."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of {what} names to values")
    for name in value:
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise ValueError(f"{name!r} is not a valid {what} name")
        if what == "header" and name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"the {name} header is set by the HTTP client and cannot be changed")
    pairs = []
    for name, item in value.items():
        try:
            pairs.append((name, _secret(item, info)))
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
    return tuple(sorted(pairs, key=lambda pair: str(pair[0]).lower()))


def _check_pair_values(pairs: tuple[tuple[str, Secret], ...], what: str) -> None:
    for name, secret in pairs:
        text = secret.reveal()
        if any(ord(char) < 32 or ord(char) == 127 for char in text):
            raise ValueError(f"the value of {what} {name} holds a control character or newline")
        if what == "cookie" and (";" in text or "," in text):
            raise ValueError(f"the value of cookie {name} must not hold ';' or ','")


def _check_proxy(value: Secret | None) -> Secret | None:
    """A proxy URL (http, https, socks5, socks5h; credentials allowed), or ``none``."""
    if value is None:
        return None
    text = value.reveal()
    if text.strip().lower() in ("none", "off", "direct"):
        return Secret("none")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 -- raises ValueError for a port out of range
    except ValueError:
        raise ValueError("the proxy is not a valid URL") from None
    if parts.scheme.lower() not in PROXY_SCHEMES or not parts.hostname:
        raise ValueError(
            "the proxy must be a URL such as http://host:3128, https://host, socks5://host:1080 "
            "(or none)"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("the proxy URL must not have a path, query or fragment")
    return value


ProxyValue = Annotated[SecretValue, AfterValidator(_check_proxy)]


class AuthConfig(_Strict):
    """``auth:`` of a source: HTTP basic (``username`` and ``password``) or ``bearer`` token."""

    username: str | None = None
    password: SecretValue | None = None
    bearer: SecretValue | None = None

    @model_validator(mode="after")
    def _check_kind(self) -> AuthConfig:
        basic = self.username is not None or self.password is not None
        if basic and self.bearer is not None:
            raise ValueError("use either username and password (basic) or bearer, not both")
        if not basic and self.bearer is None:
            raise ValueError("set username and password (basic), or bearer (a token)")
        if basic and (self.username is None or self.password is None):
            raise ValueError("basic auth needs both username and password")
        if self.username is not None and ":" in self.username:
            raise ValueError("a basic auth username must not hold ':'")
        for secret in (self.password, self.bearer):
            if secret is not None and any(ord(c) < 32 or ord(c) == 127 for c in secret.reveal()):
                raise ValueError("a credential must not hold a control character or newline")
        return self

    def header(self) -> Secret:
        """The ``Authorization`` header's value."""
        if self.bearer is not None:
            return Secret(f"Bearer {self.bearer.reveal()}")
        import base64

        assert self.username is not None and self.password is not None
        pair = f"{self.username}:{self.password.reveal()}".encode()
        return Secret("Basic " + base64.b64encode(pair).decode("ascii"))


def origin_of(url: str) -> str:
    """``scheme://host:port`` of a URL (default ports written out), lower case."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    scheme = parts.scheme.lower()
    port = port or {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"
