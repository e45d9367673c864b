"""``defaults:`` and ``sources:``: the feeds to poll, what each inherits from the defaults
(intervals, politeness, comments, discussions, proxy), and ``retention:``.

Pure (settings are checked by the modules that will use them: discussion providers, comment
page selectors, time zones). Does not: define the request options' types (see
:mod:`.request_options`) nor resolve a source's relative path (see :mod:`.loading`).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator, model_validator

from aggregator.config.base import _check_killfile_items, _EntryRules, _Strict
from aggregator.config.request_options import (
    _CREDENTIAL_HEADER,
    DEFAULT_USER_AGENT,
    AuthConfig,
    ProxyValue,
    SecretValue,
    _check_pair_values,
    _named_pairs,
)
from aggregator.config.rewrite import rewrite_rules
from aggregator.config.units import Duration, PositiveDuration, Size
from aggregator.models import RewriteRule
from aggregator.secret import Secret

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

#: ``full_text``: always, only for entries that look like teasers, or never.
FullTextMode = bool | Literal["auto"]


def _full_text_mode(value: Any) -> Any:
    """One clear error for a bad ``full_text`` (the union would report one per member)."""
    if value is None or value is True or value is False or value == "auto":
        return value
    raise ValueError(f"{value!r} is not allowed: true, false or auto")


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
    # Fetch each entry's page and keep its article (README, "Full text"; aggregator.fulltext).
    full_text: FullTextMode = False

    _check_full_text = field_validator("full_text", mode="before")(_full_text_mode)

    # Rewrite rules for every source's entries, before storing (README, "Rewrite rules").
    rewrite: tuple[RewriteRule, ...] = ()

    @field_validator("rewrite", mode="before")
    @classmethod
    def _check_rewrite(cls, value: Any) -> tuple[RewriteRule, ...]:
        return rewrite_rules(value)  # RuleError names the item and key

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
    # Unset: the default's `full_text`.
    full_text: FullTextMode | None = None

    _check_full_text = field_validator("full_text", mode="before")(_full_text_mode)

    # Rewrite rules (README, "Rewrite rules"): after the defaults' unless rewrite_defaults is false.
    rewrite: tuple[RewriteRule, ...] = ()
    rewrite_defaults: bool = True

    @field_validator("rewrite", mode="before")
    @classmethod
    def _check_rewrite(cls, value: Any) -> tuple[RewriteRule, ...]:
        return rewrite_rules(value)  # RuleError names the item and key

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


def _check_discussion_items(items: tuple[Any, ...]) -> tuple[Any, ...]:
    """Each ``discussions`` item names a known provider with valid settings, once."""
    from aggregator.discussions.registry import parse_settings

    names = [parse_settings(item, "discussion").type for item in items]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"listed more than once: {', '.join(twice)}")
    return items
