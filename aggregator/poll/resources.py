"""What polling needs around the pipeline: the fetcher built from the config, the sources chosen
by name, the real clock, and whether polls feed the full-text index.

It holds no pipeline: :mod:`aggregator.poll.poller` polls one source through fetch, parse, decide
and store, and records what each poll found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from aggregator.config.schema import AppConfig
from aggregator.config.sources import SourceConfig
from aggregator.fetch.fetcher import Fetcher
from aggregator.fetch.files import file_roots_for, file_url_path
from aggregator.fetch.limits import FetchLimits

Clock = Callable[[], datetime]


def uses_search(config: AppConfig) -> bool:
    """Whether any output has a ``search`` rule. Without one, polls leave new rows queued for
    the full-text index (see :class:`~aggregator.storage.Storage`), indexed at the first search.
    """
    return any(output.search for output in config.outputs)


def utc_now() -> datetime:
    """The real clock; tests inject their own."""
    return datetime.now(UTC)


def same_limits(limits: FetchLimits, config: AppConfig) -> FetchLimits | None:
    """Keep the running limiter when its numbers did not change (so no cap is ever doubled)."""
    d = config.defaults
    if (limits.total, limits.per_host, limits.per_domain) == (
        d.max_concurrent_fetches,
        d.max_per_host,
        d.max_per_domain,
    ):
        return limits
    return None


def make_fetcher(config: AppConfig, *, limits: FetchLimits | None = None) -> Fetcher:
    """A fetcher set up from the config's defaults (User-Agent, timeout, request limits)."""
    roots = list(file_roots_for(config.config_path.parent)) if config.config_path else []
    # A file source configured elsewhere is the operator's choice: its folder may be read too.
    roots += [
        file_url_path(url).parent
        for source in config.sources
        for url in (source.url, source.comments_url)
        if url and url.startswith("file:")
    ]
    return Fetcher(
        user_agent=config.defaults.user_agent,
        timeout=config.defaults.timeout.total_seconds(),
        max_bytes=config.defaults.max_body_size,
        file_roots=roots,
        limits=limits
        or FetchLimits(
            config.defaults.max_concurrent_fetches,
            config.defaults.max_per_host,
            config.defaults.max_per_domain,
        ),
        allow_private_networks=config.allow_private_networks,
    )


def select_sources(config: AppConfig, names: Iterable[str]) -> list[SourceConfig]:
    """The configured sources called ``names`` (all when empty); unknown names raise."""
    wanted = list(names)
    if not wanted:
        return list(config.sources)
    known = {source.name: source for source in config.sources}
    missing = [name for name in wanted if name not in known]
    if missing:
        from aggregator.errors import NotFoundError

        raise NotFoundError(f"no source named {', '.join(repr(m) for m in missing)} in the config")
    return [known[name] for name in wanted]
