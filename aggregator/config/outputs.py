"""``outputs:``: the published feeds: which sources, which entries, in what order and shape,
and who may read a private one (``access``).

Pure. Does not: choose or render entries (see :mod:`aggregator.select`, :mod:`aggregator.publish`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from aggregator.config.base import _check_killfile_items, _EntryRules, _Strict
from aggregator.config.sources import SourceConfig

Format = Literal["atom", "rss", "json"]
Sort = Literal["newest", "most_comments", "recent_activity"]
ContentMode = Literal["full", "summary"]
ImagesMode = Literal["keep", "strip"]
#: Which text of an entry an output publishes: the article fetched from its page (when there
#: is one), the feed's own content, or both (the feed's, then the article's).
ContentFrom = Literal["full_text", "feed", "both"]


class BasicAccess(_Strict):
    """HTTP basic credentials of a private output (``access: {basic: {user:, password:}}``)."""

    user: str
    password: SecretStr

    @field_validator("user", "password", mode="before")
    @classmethod
    def _expand(cls, value: Any) -> Any:
        from aggregator.publish.access import expand_env

        return expand_env(value) if isinstance(value, str) else value


class AccessConfig(_Strict):
    """Who may read a private output (:mod:`aggregator.publish.access`): a token or basic auth."""

    token: SecretStr | None = None
    basic: BasicAccess | None = None

    @field_validator("token", mode="before")
    @classmethod
    def _expand(cls, value: Any) -> Any:
        from aggregator.publish.access import expand_env

        if isinstance(value, str):
            value = expand_env(value)
            if len(value) < 8:
                raise ValueError("the token must be at least 8 characters long")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> AccessConfig:
        if (self.token is None) == (self.basic is None):
            raise ValueError("give exactly one of 'token' or 'basic'")
        return self


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
    # With `full_text` on a source: publish the fetched article, the feed's text, or both.
    content_from: ContentFrom = "full_text"
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
    # Flood control (aggregator.select.selection.cap_floods): at most N entries of one source on each
    # page; at most N undated entries of one source's single poll.
    per_source_limit: int | None = Field(None, ge=1, le=10000)
    new_source_limit: int | None = Field(None, ge=1, le=10000)
    # A private output (aggregator.publish.access): its feeds and pages need this credential.
    access: AccessConfig | None = None

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
        from aggregator.select.rule_compile import RuleError, compile_comment_rules

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
