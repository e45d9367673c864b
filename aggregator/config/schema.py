"""``AppConfig``: the whole configuration file as one validated model, the checks across
sections (unique names, outputs and alerts naming sources, tags and outputs that exist, private
sources kept out of outputs), and the values derived per source (interval, comments,
discussions, retention, request options) and per output (its sources).

Pure. Does not: read the file, number its lines or resolve its paths (see :mod:`.loading`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from aggregator.config.base import _Strict
from aggregator.config.notify import NotifyConfig
from aggregator.config.outputs import OutputConfig
from aggregator.config.request_options import contact_uri, origin_of, user_agent_for
from aggregator.config.server import ServerConfig
from aggregator.config.sources import DefaultsConfig, FullTextMode, RetentionConfig, SourceConfig
from aggregator.models import RequestOptions, RewriteRule
from aggregator.secret import Secret


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
        for index, source in enumerate(self.sources):
            # A provider that can be both (Mastodon) keeps one kind per source: its threads
            # would share keys and records (issue 16).
            system = (source.comment_system or {}).get("type")
            listed = {
                item if isinstance(item, str) else (item or {}).get("type")
                for item in self.discussions_for(source)
            }
            if system and system in listed:
                problems.append(
                    (
                        ("sources", index, "comment_system"),
                        f"{system} is this source's comment system and one of its "
                        "discussions: keep one (discussions: [] on the source turns the "
                        "default off)",
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

    def full_text_for(self, source: SourceConfig) -> FullTextMode:
        """Whether an entry's page is fetched for its article: ``True``, ``"auto"`` (only for
        teasers) or ``False`` (the source's own ``full_text``, else the default's)."""
        return source.full_text if source.full_text is not None else self.defaults.full_text

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

    def rewrite_for(self, source: SourceConfig) -> tuple[RewriteRule, ...]:
        """The rewrite rules of ``source`` in the order they apply: the defaults' (unless it
        sets ``rewrite_defaults: false``), then its own; each named by its key path."""
        rules = [
            replace(rule, name=f"defaults.rewrite[{index}]")
            for index, rule in enumerate(self.defaults.rewrite if source.rewrite_defaults else ())
        ]
        if source.rewrite:
            at = next((i for i, s in enumerate(self.sources) if s.name == source.name), None)
            prefix = f"sources[{at}]." if at is not None else f"{source.name}."
            rules += [
                replace(rule, name=f"{prefix}rewrite[{index}]")
                for index, rule in enumerate(source.rewrite)
            ]
        return tuple(rules)

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
