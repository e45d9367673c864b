"""``notify:``: alert targets (webhook or Apprise) and their conditions (new comments or
entries).

Pure. Does not: check that a condition names existing sources, tags and outputs (see
:class:`.schema.AppConfig`), nor send anything (see :mod:`aggregator.alerts`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator, model_validator

from aggregator.config.base import _EntryRules, _http_url, _Strict
from aggregator.config.sources import SourceConfig
from aggregator.config.units import Duration, PositiveDuration


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
