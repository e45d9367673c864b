"""Load and validate the YAML configuration.

``load_config(path)`` reads one YAML file and returns an :class:`AppConfig`, or raises
:class:`~aggregator.errors.ConfigError` whose ``problems`` are lines shaped like
``config/aggregator.yaml:14: sources[2].url: <what is wrong>``. Relative paths in the file resolve
against the file's own folder. This module holds no business logic.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from aggregator import __version__
from aggregator.errors import ConfigError
from aggregator.models import RequestOptions
from aggregator.secret import FileRef, Secret, read_secret
from aggregator.select.filters import RuleError

CONFIG_ENV = "AGGREGATOR_CONFIG"
DEFAULT_CONFIG = Path("config/aggregator.yaml")
# Names only real things: the software and its version; ``contact`` adds the operator's address.
DEFAULT_USER_AGENT = f"aggregator/{__version__}"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def parse_duration(value: Any) -> timedelta:
    """Read ``90s``, ``15m``, ``2h``, ``1d``, ``1w`` (or a bare number of seconds) as a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 15m, 2h or 1d")
    if isinstance(value, int | float):
        return timedelta(seconds=float(value))
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            number, unit = match.groups()
            return timedelta(seconds=float(number) * _UNITS[unit or "s"])
    raise ValueError(f"{value!r} is not a duration such as 15m, 2h or 1d")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|k|mb|m|gb|g)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
}


def parse_size(value: Any) -> int:
    """Read ``10MB``, ``512KB``, ``1GB`` (binary units) or a bare number of bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 10MB or 512KB")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (match := _SIZE.match(value)):
        number, unit = match.groups()
        size = int(float(number) * _SIZE_UNITS[(unit or "b").lower()])
    else:
        raise ValueError(f"{value!r} is not a size such as 10MB or 512KB")
    if size < 1024:
        raise ValueError(f"{value!r} is too small: use at least 1KB")
    return size


Size = Annotated[int, BeforeValidator(parse_size)]


def _check_positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero")
    return value


# An interval or timeout of zero would poll in a tight loop (APScheduler quietly turns 0 into 1s)
# or fail every request at once.
PositiveDuration = Annotated[Duration, AfterValidator(_check_positive)]


def _http_url(value: str) -> str:
    """``value`` when it is an absolute http(s) URL; raises ``ValueError`` otherwise."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


# One include/exclude item, as sorted (field, pattern) pairs: hashable, like the whole config.
RuleItem = tuple[tuple[str, str], ...]


class _EntryRules(_Strict):
    """Entry rules (see :mod:`aggregator.select.filters`), valid on ``defaults``, sources and outputs.

    The rules are compiled here only to be checked: a bad item raises ``RuleError``, which
    :func:`load_config` reports at the line of the exact item and field. Items are kept as
    sorted ``(field, pattern)`` pairs; :meth:`rule_items` gives them back as mappings.
    """

    include: tuple[RuleItem, ...] = ()
    exclude: tuple[RuleItem, ...] = ()
    max_age: Duration | None = None
    before: datetime | date | None = None
    after: datetime | date | None = None

    @field_validator("include", "exclude", mode="before")
    @classmethod
    def _check_rule_items(cls, value: Any, info: ValidationInfo) -> Any:
        from aggregator.select.filters import compile_rules

        if value is None:
            return ()
        compile_rules(**{str(info.field_name): value})  # RuleError names the item and field
        return tuple(
            tuple(sorted((str(key), str(pattern)) for key, pattern in item.items()))
            for item in value
        )

    @field_validator("max_age")
    @classmethod
    def _check_max_age(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("expected a positive duration")
        return value

    def rule_items(self, kind: Literal["include", "exclude"]) -> list[dict[str, str]]:
        """The ``include`` or ``exclude`` items as field → pattern mappings."""
        return [dict(item) for item in getattr(self, kind)]


class RetentionRule(_Strict):
    """How long stored rows are kept: older than ``max_age``, or beyond the newest
    ``max_count`` of a source, they are removed by ``aggregator prune`` (and the daemon daily)."""

    max_age: PositiveDuration | None = None
    max_count: int | None = Field(None, ge=1, le=10_000_000)

    @model_validator(mode="after")
    def _check_some(self) -> RetentionRule:
        if self.max_age is None and self.max_count is None:
            raise ValueError("set max_age, max_count or both")
        return self


class RetentionConfig(_Strict):
    """``retention:`` in ``defaults`` or on a source (a source's replaces the default's)."""

    entries: RetentionRule | None = None
    comments: RetentionRule | None = None


class DefaultsConfig(_EntryRules):
    """Settings every source inherits unless it sets its own.

    Its entry rules (``include``, ``exclude``, dates) apply to every source, when storing and
    when publishing.
    """

    interval: PositiveDuration = timedelta(hours=1)
    timeout: PositiveDuration = timedelta(seconds=30)
    max_body_size: Size = 10 * 1024 * 1024
    user_agent: str = DEFAULT_USER_AGENT
    # Following comment threads is what aggregator is for: on unless a config opts out (issue 20).
    comments: bool = True
    comments_quiet_after: Duration = timedelta(days=14)
    killfile: tuple[str, ...] = ()
    # Scheduling and politeness (README, "Polling politely"; aggregator.schedule.decide applies them).
    interval_floor: Duration = timedelta(minutes=15)
    adaptive: bool = True
    min_interval: Duration = timedelta(minutes=15)
    max_interval: Duration = timedelta(days=1)
    max_backoff: Duration = timedelta(days=1)
    max_retry_after: Duration = timedelta(days=1)
    redirect_adopt_after: int = Field(3, ge=1, le=100)
    max_concurrent_fetches: int = Field(32, ge=1, le=256)
    max_per_host: int = Field(2, ge=1, le=64)
    max_per_domain: int = Field(4, ge=1, le=64)
    stale_after: Duration = timedelta(days=2)
    # Threads about each entry on other sites (README, "Discussions"); a source may set its own.
    discussions: tuple[Any, ...] = ()
    discussions_window: PositiveDuration = timedelta(days=7)

    @field_validator("discussions")
    @classmethod
    def _check_discussions(cls, value: tuple[Any, ...]) -> tuple[Any, ...]:
        return _check_discussion_items(value)
    # A proxy for every source that sets none (README, "Request options"); unset: the
    # HTTP_PROXY / HTTPS_PROXY / NO_PROXY environment; "none": always direct.
    proxy: ProxyValue | None = None
    # What `aggregator prune` removes (README, "Retention"); unset: everything is kept.
    retention: RetentionConfig | None = None

    @model_validator(mode="after")
    def _check_intervals(self) -> DefaultsConfig:
        if self.min_interval > self.max_interval:
            raise ValueError("min_interval must not be longer than max_interval")
        if self.max_per_host > self.max_per_domain:
            raise ValueError("max_per_host must not be larger than max_per_domain")
        for key in ("interval", "interval_floor", "min_interval", "max_backoff"):
            if getattr(self, key) <= timedelta(0):
                raise ValueError(f"{key} must be longer than zero")
        return self


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


class SourceConfig(_EntryRules):
    """One feed to poll. Its entry rules apply when storing (a new entry they drop is not
    stored) and again when publishing (so stored entries follow a rule added later)."""

    name: str
    url: str
    title: str | None = None
    interval: PositiveDuration | None = None
    tags: tuple[str, ...] = ()
    comments: bool | None = None
    comments_url: str | None = None
    comments_page: str | dict[str, str] | None = None
    timezone: str | None = None
    killfile: tuple[str, ...] = ()
    # Where the source's threads live behind an API, and where its posts are discussed
    # (aggregator.discussions; README, "Discussions").
    comment_system: dict[str, Any] | None = None
    discussions: tuple[Any, ...] | None = None

    @field_validator("comment_system")
    @classmethod
    def _check_comment_system(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            from aggregator.discussions.registry import parse_settings

            parse_settings(value, "comments")  # raises ValueError with a clear message
        return value

    @field_validator("discussions")
    @classmethod
    def _check_discussions(cls, value: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
        return None if value is None else _check_discussion_items(value)
    # Request options (README, "Request options"): sent only to the origin of `url`.
    headers: tuple[tuple[str, SecretValue], ...] = ()
    auth: AuthConfig | None = None
    cookies: tuple[tuple[str, SecretValue], ...] = ()
    user_agent: str | None = None
    proxy: ProxyValue | None = None
    # Whether outputs may publish this source's entries; unset: no when it sends credentials.
    public: bool | None = None
    retention: RetentionConfig | None = None

    @field_validator("headers", mode="before")
    @classmethod
    def _headers_pairs(cls, value: Any, info: ValidationInfo) -> Any:
        return _named_pairs(value, "header", info)

    @field_validator("cookies", mode="before")
    @classmethod
    def _cookies_pairs(cls, value: Any, info: ValidationInfo) -> Any:
        return _named_pairs(value, "cookie", info)

    @field_validator("headers")
    @classmethod
    def _check_headers(
        cls, value: tuple[tuple[str, Secret], ...]
    ) -> tuple[tuple[str, Secret], ...]:
        _check_pair_values(value, "header")
        return value

    @field_validator("cookies")
    @classmethod
    def _check_cookies(
        cls, value: tuple[tuple[str, Secret], ...]
    ) -> tuple[tuple[str, Secret], ...]:
        _check_pair_values(value, "cookie")
        return value

    @field_validator("user_agent")
    @classmethod
    def _check_user_agent(cls, value: str | None) -> str | None:
        if value is not None and (
            not value.strip() or any(ord(c) < 32 or ord(c) == 127 for c in value)
        ):
            raise ValueError("must be one line of text")
        return value

    @property
    def sends_credentials(self) -> bool:
        """Whether requests carry credentials: auth, cookies, or a header that looks like one
        (its name, or a value written as ``${ENV_VAR}`` / ``!file``)."""
        return bool(
            self.auth
            or self.cookies
            or any(
                _CREDENTIAL_HEADER.search(name) or value.indirect for name, value in self.headers
            )
        )

    @property
    def is_public(self) -> bool:
        """Whether outputs may publish its entries without ``include_private_sources``."""
        return self.public if self.public is not None else not self.sends_credentials

    @field_validator("comments_url")
    @classmethod
    def _check_comments_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and not parts.netloc:
            raise ValueError(f"{value!r} has no host")
        if parts.scheme not in ("", "http", "https", "file") and len(parts.scheme) > 1:
            raise ValueError(f"{value!r} is not an http(s) or file URL")
        return value

    @field_validator("comments_page")
    @classmethod
    def _check_comments_page(
        cls, value: str | dict[str, str] | None
    ) -> str | dict[str, str] | None:
        if value is None:
            return None
        from aggregator.comments.selectors import selectors_from_config

        selectors_from_config(value)  # raises ValueError with a clear message
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as America/New_York)"
            ) from None
        return value

    @field_validator("killfile")
    @classmethod
    def _check_killfile(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        _check_killfile_items(value)
        return value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} is not a valid name: use letters, digits, '.', '_' or '-'")
        return value

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme in ("http", "https"):
            if not parts.netloc:
                raise ValueError(f"{value!r} has no host")
            return value
        if parts.scheme == "file":
            return value
        if parts.scheme and len(parts.scheme) > 1:
            raise ValueError(f"unsupported URL scheme {parts.scheme!r}: use http, https or file")
        if not value.strip():
            raise ValueError("must not be empty")
        return value  # a path, resolved against the config folder by AppConfig


Format = Literal["atom", "rss", "json"]
Sort = Literal["newest", "most_comments", "recent_activity"]
ContentMode = Literal["full", "summary"]
ImagesMode = Literal["keep", "strip"]


class OutputConfig(_EntryRules):
    """One published feed: which sources go in, which entries, in what order and shape."""

    name: str
    title: str | None = None
    description: str | None = None
    sources: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    formats: tuple[Format, ...] = ("atom", "rss", "json")
    limit: int = Field(50, ge=1, le=10000)
    # RFC 5005 paging: the feed plus pages 2..N of `limit` older entries each.
    pages: int = Field(10, ge=1, le=1000)
    killfile: tuple[str, ...] = ()
    comments_exclude: tuple[str, ...] = ()
    min_comments: int | None = Field(None, ge=0)
    search: str | None = None
    sort: Sort = "newest"
    content: ContentMode = "full"
    # "strip" removes images from republished content (feeds and pages): no remote loads.
    images: ImagesMode = "keep"
    via: bool = False
    # How many candidates (after the SQL part of the selection) the Python rules may examine.
    candidates: int = Field(5000, ge=1, le=1_000_000)
    # Publish entries of private sources (those sending credentials, or `public: false`).
    include_private_sources: bool = False
    # Issue 15: each entry's content ends with its thread (0: off; N newest; "all").
    inline_comments: int | Literal["all"] = 0
    # "bump": an entry's `updated` is its newest comment's time (its id never changes).
    comment_updates: Literal["keep", "bump"] = "keep"
    # "comments": the output's items are the comments of its sources' entries.
    items: Literal["entries", "comments"] = "entries"
    comment_authors: tuple[str, ...] = ()  # items: comments by these people only
    replies_to: tuple[str, ...] = ()  # items: replies to these people's comments only

    @field_validator("inline_comments")
    @classmethod
    def _check_inline_comments(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 0 <= value <= 1000:
            raise ValueError("must be a number from 0 to 1000, or all")
        return value

    @field_validator("comment_authors", "replies_to")
    @classmethod
    def _check_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not name.strip() for name in value):
            raise ValueError("names must not be empty")
        return tuple(name.strip() for name in value)

    @model_validator(mode="after")
    def _check_comment_items(self) -> OutputConfig:
        if (self.comment_authors or self.replies_to) and self.items != "comments":
            raise ValueError("comment_authors and replies_to need items: comments")
        return self
    # Publish /feeds/{name}/comment-changes.*: comment edits and disappearances (issue 15).
    comment_changes: bool = False

    @field_validator("search")
    @classmethod
    def _check_search(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from aggregator.storage.outputs import check_search_query

        check_search_query(value)  # raises ValueError with SQLite's message
        return value

    @field_validator("killfile")
    @classmethod
    def _check_killfile(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        _check_killfile_items(value)
        return value

    @field_validator("comments_exclude")
    @classmethod
    def _check_comments_exclude(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from aggregator.select.filters import RuleError, compile_comment_rules

        try:
            compile_comment_rules((), list(value))
        except RuleError as error:  # its path says "exclude[0]": name this key instead
            raise RuleError("comments_" + error.path, error.reason) from None
        return value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return SourceConfig._check_name(value)

    @property
    def display_title(self) -> str:
        return self.title or self.name


class AlertWatch(_Strict):
    """``watch: {output: NAME}``: the entries an output publishes (its sources and rules)."""

    output: str


class AlertCondition(_EntryRules):
    """What an alert reports: which entries (``watch``, or ``sources``/``tags`` and entry
    rules inline) and, for comments, whose (``authors``, ``replies_to``)."""

    watch: AlertWatch | None = None
    sources: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    authors: tuple[str, ...] = ()
    replies_to: tuple[str, ...] = ()


class NotifyConfig(_Strict):
    """One ``notify:`` item: a target (``webhook`` or ``apprise``) and a condition
    (``new_comments`` or ``new_entries``); see :mod:`aggregator.alerts`."""

    name: str
    webhook: str | None = None
    apprise: str | None = None
    # HMAC-SHA256 key of the X-Aggregator-Signature header (webhook only).
    secret: str | None = None
    timeout: PositiveDuration = timedelta(seconds=10)
    retries: int = Field(3, ge=0, le=10)
    backoff: PositiveDuration = timedelta(seconds=2)
    # At most one batch per this much time; what arrives meanwhile waits for the next batch.
    min_interval: Duration = timedelta(minutes=1)
    max_items: int = Field(50, ge=1, le=1000)
    new_comments: AlertCondition | None = None
    new_entries: AlertCondition | None = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return SourceConfig._check_name(value)

    @field_validator("webhook")
    @classmethod
    def _check_webhook(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @field_validator("min_interval")
    @classmethod
    def _check_min_interval(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("expected a duration of 0s or more")
        return value

    @model_validator(mode="after")
    def _check_one_of_each(self) -> NotifyConfig:
        if (self.webhook is None) == (self.apprise is None):
            raise ValueError("give exactly one target: webhook or apprise")
        if (self.new_comments is None) == (self.new_entries is None):
            raise ValueError("give exactly one condition: new_comments or new_entries")
        if self.secret is not None and self.webhook is None:
            raise ValueError("secret signs webhook payloads; an apprise target has none")
        if self.new_entries is not None and (
            self.new_entries.authors or self.new_entries.replies_to
        ):
            raise ValueError("authors and replies_to are conditions of new_comments")
        return self

    @property
    def condition(self) -> AlertCondition:
        """The condition, whichever kind it is."""
        condition = self.new_comments or self.new_entries
        assert condition is not None  # _check_one_of_each
        return condition

    @property
    def kind(self) -> Literal["new_comments", "new_entries"]:
        return "new_comments" if self.new_comments is not None else "new_entries"

    @property
    def target(self) -> str:
        """The target URL (webhook or Apprise)."""
        return self.webhook or self.apprise or ""


class AppConfig(_Strict):
    """The whole configuration file, validated, with paths made absolute."""

    # Beside the config file by default (the shipped config/aggregator.yaml names ../var/).
    database: Path = Path("aggregator.db")
    public_dir: Path = Path("public")
    # The operator's email address or URL, named in the default User-Agent (issue 18).
    contact: str | None = None
    # Let URLs found in feeds and redirects reach private, loopback and link-local addresses
    # (and configured URLs reach link-local and cloud metadata ones): see aggregator.fetch.addresses.
    allow_private_networks: bool = False
    server: ServerConfig = ServerConfig()
    defaults: DefaultsConfig = DefaultsConfig()
    sources: tuple[SourceConfig, ...] = ()
    outputs: tuple[OutputConfig, ...] = ()
    # Alerts (issue 15): webhooks and Apprise targets told of new comments and entries.
    notify: tuple[NotifyConfig, ...] = ()
    config_path: Path | None = Field(None, exclude=True)
    # The line of every key path in the file ("outputs[0].exclude[1]" -> 23), for messages.
    config_lines: tuple[tuple[str, int], ...] = Field((), exclude=True)

    @field_validator("contact")
    @classmethod
    def _check_contact(cls, value: str | None) -> str | None:
        return None if value is None else contact_uri(value)

    @model_validator(mode="after")
    def _contact_in_user_agent(self) -> AppConfig:
        # Only the default User-Agent gains the contact: one set by hand is sent as written.
        if self.contact and "user_agent" not in self.defaults.model_fields_set:
            defaults = self.defaults.model_copy(update={"user_agent": user_agent_for(self.contact)})
            object.__setattr__(self, "defaults", defaults)  # frozen model, still validating
        return self

    @model_validator(mode="after")
    def _check_references(self) -> AppConfig:
        problems = _reference_problems(
            [(source.name, source.tags) for source in self.sources],
            [(output.name, output.sources or (), output.tags or ()) for output in self.outputs],
        )
        private = {source.name for source in self.sources if not source.is_public}
        for index, output in enumerate(self.outputs):
            if output.include_private_sources:
                continue
            for position, name in enumerate(output.sources or ()):
                if name in private:
                    problems.append(
                        (
                            ("outputs", index, "sources", position),
                            f"source {name!r} is private (it sends credentials): set "
                            "include_private_sources: true on this output, or public: true "
                            "on the source",
                        )
                    )
        if problems:
            raise _ReferenceErrors(problems)
        return self

    @model_validator(mode="after")
    def _check_notify_references(self) -> AppConfig:
        problems: list[tuple[tuple[Any, ...], str]] = []
        sources = {source.name for source in self.sources}
        tags = {tag for source in self.sources for tag in source.tags}
        outputs = {output.name for output in self.outputs}
        names: set[str] = set()
        for index, item in enumerate(self.notify):
            if item.name in names:
                problems.append((("notify", index, "name"), f"duplicate notify name {item.name!r}"))
            names.add(item.name)
            where = ("notify", index, item.kind)
            condition = item.condition
            if condition.watch is not None and condition.watch.output not in outputs:
                problems.append(
                    ((*where, "watch", "output"), f"no output named {condition.watch.output!r}")
                )
            for position, name in enumerate(condition.sources or ()):
                if name not in sources:
                    problems.append(((*where, "sources", position), f"no source named {name!r}"))
            for position, tag in enumerate(condition.tags or ()):
                if tag not in tags:
                    problems.append(((*where, "tags", position), f"no source has tag {tag!r}"))
        if problems:
            raise _ReferenceErrors(problems)
        return self

    def notify_item(self, name: str) -> NotifyConfig:
        """The ``notify:`` item called ``name``; raises ``KeyError`` when there is none."""
        for item in self.notify:
            if item.name == name:
                return item
        raise KeyError(name)

    # -- derived values -------------------------------------------------------------------------
    def line_of(self, path: str) -> int | None:
        """The line in the config file of a key path such as ``outputs[0].exclude[1]``."""
        return dict(self.config_lines).get(path)

    def source(self, name: str) -> SourceConfig:
        """The source called ``name``; raises ``KeyError`` when there is none."""
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(name)

    def output(self, name: str) -> OutputConfig:
        """The output called ``name``; raises ``KeyError`` when there is none."""
        for output in self.outputs:
            if output.name == name:
                return output
        raise KeyError(name)

    def interval_for(self, source: SourceConfig) -> timedelta:
        return source.interval or self.defaults.interval

    def comments_for(self, source: SourceConfig) -> bool:
        """Whether a source's comment threads are followed (its own setting, else the default)."""
        if source.comments is not None:
            return source.comments
        return self.defaults.comments or bool(
            source.comments_url
            or source.comments_page
            or source.comment_system
            or self.discussions_for(source)
        )

    def discussions_for(self, source: SourceConfig) -> tuple[Any, ...]:
        """The ``discussions`` providers of a source: its own list, else the default one."""
        return self.defaults.discussions if source.discussions is None else source.discussions

    def sources_for(self, output: OutputConfig) -> tuple[SourceConfig, ...]:
        """The sources an output selects: by name, by tag, or all when it names neither.

        Private sources (:attr:`SourceConfig.is_public` false) only with the output's
        ``include_private_sources``.
        """
        sources = self.sources
        if not output.include_private_sources:
            sources = tuple(source for source in sources if source.is_public)
        if output.sources is None and output.tags is None:
            return sources
        wanted_names = set(output.sources or ())
        wanted_tags = set(output.tags or ())
        return tuple(
            source
            for source in sources
            if source.name in wanted_names or wanted_tags.intersection(source.tags)
        )

    def retention_for(self, source: SourceConfig) -> RetentionConfig:
        """The source's retention, else the defaults' (nothing removed when neither is set)."""
        return source.retention or self.defaults.retention or RetentionConfig()

    def request_for(self, source: SourceConfig) -> RequestOptions:
        """What every request of ``source`` carries: its User-Agent, its credentials (for the
        origin of its ``url`` only) and its proxy (else the defaults', else the environment)."""
        credentials: list[tuple[str, Secret]] = list(source.headers)
        if source.auth is not None:
            credentials.append(("Authorization", source.auth.header()))
        if source.cookies:
            cookie = "; ".join(f"{name}={value.reveal()}" for name, value in source.cookies)
            credentials.append(("Cookie", Secret(cookie)))
        proxy = source.proxy if source.proxy is not None else self.defaults.proxy
        return RequestOptions(
            origin=origin_of(source.url),
            credentials=tuple(credentials),
            user_agent=source.user_agent,
            proxy=None if proxy is None or proxy.reveal() == "none" else proxy,
            proxy_from_env=proxy is None,
        )

    def outputs_for(self, source_name: str) -> tuple[OutputConfig, ...]:
        """The outputs that include the source called ``source_name``."""
        return tuple(
            output
            for output in self.outputs
            if any(source.name == source_name for source in self.sources_for(output))
        )


def _check_discussion_items(items: tuple[Any, ...]) -> tuple[Any, ...]:
    """Each ``discussions`` item names a known provider with valid settings, once."""
    from aggregator.discussions.registry import parse_settings

    names = [parse_settings(item, "discussion").type for item in items]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"listed more than once: {', '.join(twice)}")
    return items


def _check_killfile_items(items: tuple[str, ...]) -> None:
    from aggregator.select.filters import compile_comment_rules

    compile_comment_rules(list(items), ())  # raises RuleError (a ValueError) naming the item


def _reference_problems(
    sources: Sequence[tuple[str | None, Sequence[str]]],
    outputs: Sequence[tuple[str | None, Sequence[str | None], Sequence[str | None]]],
) -> list[tuple[tuple[Any, ...], str]]:
    """Duplicate names, and outputs naming a source or tag that no source has.

    Takes plain (name, tags) and (name, sources, tags) tuples so that it can also check a file
    whose other keys are invalid; ``None`` stands for a value too broken to check.
    """
    problems: list[tuple[tuple[Any, ...], str]] = []
    seen: set[str] = set()
    for index, (name, _) in enumerate(sources):
        if name is not None and name in seen:
            problems.append((("sources", index, "name"), f"duplicate source name {name!r}"))
        if name is not None:
            seen.add(name)
    tags = {tag for _, source_tags in sources for tag in source_tags}
    names: set[str] = set()
    for index, (name, wanted_sources, wanted_tags) in enumerate(outputs):
        if name is not None and name in names:
            problems.append((("outputs", index, "name"), f"duplicate output name {name!r}"))
        if name is not None:
            names.add(name)
        for position, wanted in enumerate(wanted_sources):
            if wanted is not None and wanted not in seen:
                problems.append(
                    (("outputs", index, "sources", position), f"no source named {wanted!r}")
                )
        for position, tag in enumerate(wanted_tags):
            if tag is not None and tag not in tags:
                problems.append(
                    (("outputs", index, "tags", position), f"no source has tag {tag!r}")
                )
    return problems


def _raw_reference_problems(data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """:func:`_reference_problems` on the raw YAML mapping, skipping whatever is malformed.

    Pydantic runs the model validator only when every field is valid; without this, a file with
    a bad duration *and* an output naming an unknown source would report only the first mistake.
    """

    def items(key: str) -> list[dict[str, Any]]:
        value = data.get(key)
        if not isinstance(value, list):
            return []
        return [item if isinstance(item, dict) else {} for item in value]

    def text(value: Any) -> str | None:
        return value if isinstance(value, str) else None

    def texts(value: Any) -> list[str | None]:
        return [text(v) for v in value] if isinstance(value, list) else []

    sources = [(text(item.get("name")), texts(item.get("tags"))) for item in items("sources")]
    # A source whose name or tags cannot be read may be the one an output means: do not guess.
    names_known = all(name is not None for name, _ in sources)
    tags_known = all(
        item.get("tags") is None or isinstance(item.get("tags"), list) for item in items("sources")
    )
    outputs = [
        (
            text(item.get("name")),
            texts(item.get("sources")) if names_known else [],
            texts(item.get("tags")) if tags_known else [],
        )
        for item in items("outputs")
    ]
    return _reference_problems(
        [(name, [tag for tag in tags if tag is not None]) for name, tags in sources], outputs
    )


class _ReferenceErrors(ValueError):
    def __init__(self, problems: list[tuple[tuple[Any, ...], str]]):
        super().__init__("; ".join(message for _, message in problems))
        self.problems = problems


# -- YAML with line numbers --------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate keys instead of keeping the last one silently."""


def _construct_mapping(
    loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _construct_file(loader: _UniqueKeyLoader, node: yaml.Node) -> FileRef:
    """``!file path``: a secret read from a file, relative to the config's folder."""
    if not isinstance(node, yaml.ScalarNode) or not str(node.value).strip():
        raise yaml.constructor.ConstructorError(
            None, None, "!file needs a path, such as !file secrets/token", node.start_mark
        )
    return FileRef(str(node.value).strip())


_UniqueKeyLoader.add_constructor("!file", _construct_file)


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


def _index_lines(
    node: yaml.Node | None, path: tuple[Any, ...] = ()
) -> Iterator[tuple[tuple[Any, ...], int]]:
    """Yield (key path, 1-based line) for every node of a composed YAML document."""
    if node is None:
        return
    yield path, node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            yield (*path, key), key_node.start_mark.line + 1
            for sub_path, line in _index_lines(value_node, (*path, key)):
                if sub_path != (*path, key):
                    yield sub_path, line
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _index_lines(item, (*path, index))


def _line_for(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int:
    """The line of the deepest part of ``loc`` that exists in the file."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def _format_loc(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "(top level)"


def _clean_message(error: Mapping[str, object]) -> str:
    message = str(error.get("msg", "invalid value"))
    if error.get("type") == "extra_forbidden":
        return "unknown key"
    if error.get("type") == "missing":
        return "required key is missing"
    message = message.removeprefix("Value error, ")
    if error.get("type") == "literal_error":
        value = error.get("input")
        message = f"{value!r} is not allowed: {message.removeprefix('Input should be ')}"
    return message


def _loc_from_pydantic(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # pydantic adds the names of union members / validators to loc; keep the key path only.
    return tuple(
        part
        for part in loc
        if isinstance(part, int) or not str(part).startswith(("function-", "union["))
    )


def resolve_config_path(path: str | os.PathLike[str] | None) -> Path:
    """The config file to use: the given path, else ``$AGGREGATOR_CONFIG``, else the default."""
    if path:
        return Path(path)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    return DEFAULT_CONFIG


def load_config(path: str | os.PathLike[str]) -> AppConfig:
    """Read, validate and resolve one configuration file.

    Raises :class:`ConfigError` listing every problem found, each as ``file:line: key: message``.
    """
    config_path = Path(path)
    shown = str(path)
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{shown}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([f"{shown}: cannot read: {error}"]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError([f"{shown}:{line}: invalid YAML: {problem}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        line = node.start_mark.line + 1 if node is not None else 1
        raise ConfigError(
            [f"{shown}:{line}: the file must hold a mapping of keys (database, sources, ...)"]
        )
    lines = dict(_index_lines(node))
    try:
        config = AppConfig.model_validate(data, context={"folder": config_path.resolve().parent})
    except ValidationError as error:
        problems = []
        reported: set[tuple[Any, ...]] = set()
        for item in error.errors():
            context = item.get("ctx", {}).get("error")
            if isinstance(context, _ReferenceErrors):
                for loc, message in context.problems:
                    problems.append(
                        (
                            _line_for(lines, loc),
                            f"{shown}:{_line_for(lines, loc)}: {_format_loc(loc)}: {message}",
                        )
                    )
                continue
            loc = _loc_from_pydantic(tuple(item["loc"]))
            message = _clean_message(item)
            if isinstance(context, RuleError):
                # A rule names its own item ("exclude[1].author"): point at that line.
                loc = _join_loc(loc, _parse_path(context.path))
                message = context.reason
            line = _line_for(lines, loc)
            reported.add(loc)
            problems.append((line, f"{shown}:{line}: {_format_loc(loc)}: {message}"))
        if reported:
            # Field errors stop pydantic before the reference check: run it on the raw data.
            for loc, message in _raw_reference_problems(data):
                if loc not in reported:
                    line = _line_for(lines, loc)
                    problems.append((line, f"{shown}:{line}: {_format_loc(loc)}: {message}"))
        problems.sort(key=lambda pair: pair[0])
        raise ConfigError([message for _, message in problems]) from None
    config = config.model_copy(
        update={
            "config_lines": tuple((_format_loc(loc), line) for loc, line in lines.items() if loc)
        }
    )
    missing = []
    for index, source in enumerate(config.sources):
        for key, value in (("url", source.url), ("comments_url", source.comments_url)):
            problem = missing_file_problem(value, config_path.resolve().parent)
            if problem:
                where = f"sources[{index}].{key}"
                line = config.line_of(where) or 1
                missing.append((line, f"{shown}:{line}: {where}: {problem}"))
    if missing:
        missing.sort(key=lambda pair: pair[0])
        raise ConfigError([message for _, message in missing])
    return _resolve_paths(config, config_path)


_HOST_LIKE = re.compile(r"^(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,63}(?::\d{1,5})?(?:[/?#]|$)")
# A bare "feed.xml" is a file name that happens to look like a host name.
_FILE_SUFFIXES = (".xml", ".rss", ".atom", ".rdf", ".json", ".html", ".htm", ".txt", ".opml")


def missing_file_problem(url: str | None, folder: Path) -> str | None:
    """Why a source's ``url`` (or ``comments_url``), as resolved, cannot be read: a value that
    is neither an http(s) URL nor an existing file. ``None`` when it is fine.

    A value that looks like a host name (``example.com/feed``) gets a suggestion of the
    https URL that was probably meant. Pure but for one ``stat``.
    """
    if url is None or urlsplit(url).scheme in ("http", "https"):
        return None
    from urllib.request import url2pathname

    resolved = resolve_source_url(url, folder)
    if Path(url2pathname(urlsplit(resolved).path)).is_file():
        return None
    original = url.strip()
    if original.startswith("file:"):
        return f"{original!r}: no such file"
    message = f"{original!r} is neither an http(s) URL nor an existing file"
    bare = "/" not in original and original.lower().endswith(_FILE_SUFFIXES)
    if _HOST_LIKE.match(original) and not bare:
        message += f" (did you mean 'https://{original}'?)"
    return message


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _parse_path(path: str) -> tuple[Any, ...]:
    """``exclude[1].author`` -> ``("exclude", 1, "author")``: the inverse of _format_loc."""
    return tuple(int(index) if index else key for key, index in _PATH_PART.findall(path))


def _join_loc(loc: tuple[Any, ...], path: tuple[Any, ...]) -> tuple[Any, ...]:
    """Append a rule's own path to where pydantic found it; a field validator's loc already
    ends with the path's first key (``killfile`` + ``killfile[0]``)."""
    if loc and path and loc[-1] == path[0]:
        return loc[:-1] + path
    return loc + path


def _resolve_paths(config: AppConfig, config_path: Path) -> AppConfig:
    folder = config_path.resolve().parent
    sources = tuple(
        source.model_copy(
            update={
                "url": resolve_source_url(source.url, folder),
                "comments_url": resolve_source_url(source.comments_url, folder)
                if source.comments_url
                else None,
            }
        )
        for source in config.sources
    )
    return config.model_copy(
        update={
            "database": (folder / config.database).resolve(),
            "public_dir": (folder / config.public_dir).resolve(),
            "sources": sources,
            "config_path": config_path.resolve(),
        }
    )


def resolve_source_url(url: str, folder: Path) -> str:
    """Turn a bare or relative path into an absolute ``file://`` URL; leave real URLs alone."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        return url
    if parts.scheme == "file":
        path = (
            Path(parts.path)
            if parts.netloc in ("", "localhost")
            else Path(parts.netloc + parts.path)
        )
        if not path.is_absolute():
            path = folder / path
        return path.resolve().as_uri()
    return (folder / url).resolve().as_uri()
