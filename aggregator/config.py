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
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from aggregator import __version__
from aggregator.errors import ConfigError
from aggregator.filters import RuleError

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
    # Connections open at once; over it, the one idle longest is closed (aggregator.httpserver).
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
    """Entry rules (see :mod:`aggregator.filters`), valid on ``defaults``, sources and outputs.

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
        from aggregator.filters import compile_rules

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
    # Scheduling and politeness (README, "Polling politely"; aggregator.decide applies them).
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
        from aggregator.pages import selectors_from_config

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


class BasicAccess(_Strict):
    """HTTP basic credentials of a private output (``access: {basic: {user:, password:}}``)."""

    user: str
    password: SecretStr

    @field_validator("user", "password", mode="before")
    @classmethod
    def _expand(cls, value: Any) -> Any:
        from aggregator.access import expand_env

        return expand_env(value) if isinstance(value, str) else value


class AccessConfig(_Strict):
    """Who may read a private output (:mod:`aggregator.access`): a token or basic auth."""

    token: SecretStr | None = None
    basic: BasicAccess | None = None

    @field_validator("token", mode="before")
    @classmethod
    def _expand(cls, value: Any) -> Any:
        from aggregator.access import expand_env

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
    # "strip" removes images from republished content (feeds and pages): no remote loads.
    images: ImagesMode = "keep"
    via: bool = False
    # How many candidates (after the SQL part of the selection) the Python rules may examine.
    candidates: int = Field(5000, ge=1, le=1_000_000)
    # Flood control (aggregator.selection.cap_floods): at most N entries of one source on each
    # page; at most N undated entries of one source's single poll.
    per_source_limit: int | None = Field(None, ge=1, le=10000)
    new_source_limit: int | None = Field(None, ge=1, le=10000)
    # A private output (aggregator.access): its feeds and pages need this credential.
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
        from aggregator.filters import RuleError, compile_comment_rules

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


class AppConfig(_Strict):
    """The whole configuration file, validated, with paths made absolute."""

    # Beside the config file by default (the shipped config/aggregator.yaml names ../var/).
    database: Path = Path("aggregator.db")
    public_dir: Path = Path("public")
    # The operator's email address or URL, named in the default User-Agent (issue 18).
    contact: str | None = None
    # Let URLs found in feeds and redirects reach private, loopback and link-local addresses
    # (and configured URLs reach link-local and cloud metadata ones): see aggregator.addresses.
    allow_private_networks: bool = False
    server: ServerConfig = ServerConfig()
    defaults: DefaultsConfig = DefaultsConfig()
    sources: tuple[SourceConfig, ...] = ()
    outputs: tuple[OutputConfig, ...] = ()
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
        if problems:
            raise _ReferenceErrors(problems)
        return self

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
        return self.defaults.comments or bool(source.comments_url or source.comments_page)

    def sources_for(self, output: OutputConfig) -> tuple[SourceConfig, ...]:
        """The sources an output selects: by name, by tag, or all when it names neither."""
        if output.sources is None and output.tags is None:
            return self.sources
        wanted_names = set(output.sources or ())
        wanted_tags = set(output.tags or ())
        return tuple(
            source
            for source in self.sources
            if source.name in wanted_names or wanted_tags.intersection(source.tags)
        )

    def outputs_for(self, source_name: str) -> tuple[OutputConfig, ...]:
        """The outputs that include the source called ``source_name``."""
        return tuple(
            output
            for output in self.outputs
            if any(source.name == source_name for source in self.sources_for(output))
        )


def _check_killfile_items(items: tuple[str, ...]) -> None:
    from aggregator.filters import compile_comment_rules

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
        config = AppConfig.model_validate(data)
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
