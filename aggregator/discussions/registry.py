"""Every provider by its config name, and the config's provider entries made settings.

Adding a provider: one module with a :class:`~aggregator.discussions.base.Provider` subclass,
one line in :data:`PROVIDERS`, its tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from aggregator.discussions.base import (
    COMMON_OPTIONS,
    Kind,
    Provider,
    ProviderSettings,
    Secret,
    resolve_secret,
)
from aggregator.discussions.bluesky import Bluesky
from aggregator.discussions.commento import Commento
from aggregator.discussions.discourse import Discourse
from aggregator.discussions.disqus import Disqus
from aggregator.discussions.giscus import Giscus
from aggregator.discussions.hackernews import HackerNews
from aggregator.discussions.isso import Isso
from aggregator.discussions.lobsters import Lobsters
from aggregator.discussions.mastodon import Mastodon
from aggregator.discussions.reddit import Reddit
from aggregator.discussions.remark42 import Remark42
from aggregator.discussions.utterances import Utterances
from aggregator.discussions.webmention import Webmention

PROVIDERS: dict[str, type[Provider]] = {
    provider.name: provider
    for provider in (
        # discussions elsewhere
        HackerNews,
        Reddit,
        Lobsters,
        Bluesky,
        # comment systems (Mastodon is both)
        Disqus,
        Discourse,
        Isso,
        Remark42,
        Commento,
        Giscus,
        Utterances,
        Mastodon,
        Webmention,
    )
}


def parse_settings(
    raw: Any, kind: Kind, environ: Mapping[str, str] | None = None
) -> ProviderSettings:
    """A ``discussions`` item (a name, or a mapping with ``type``) or a ``comment_system``
    mapping made :class:`ProviderSettings`; raises ``ValueError`` with one clear line."""
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, Mapping):
        raise ValueError("must be a provider name or a mapping with a 'type'")
    name = raw.get("type")
    if not isinstance(name, str) or not name:
        raise ValueError("'type' is missing (the provider's name)")
    provider = PROVIDERS.get(name)
    usable = sorted(n for n, p in PROVIDERS.items() if kind in p.kinds)
    if provider is None or kind not in provider.kinds:
        raise ValueError(f"unknown {kind} provider {name!r} (one of: {', '.join(usable)})")
    allowed = COMMON_OPTIONS | provider.options
    unknown = sorted(str(key) for key in raw if key not in allowed)
    if unknown:
        raise ValueError(
            f"{name}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
        )
    missing = sorted(key for key in provider.required if not raw.get(key))
    if missing:
        raise ValueError(f"{name}: {', '.join(missing)} must be set")
    base_url = raw.get("base_url") or provider.default_base_url
    for key, value in (("base_url", base_url), ("site_url", raw.get("site_url"))):
        if value is None:
            continue
        parts = urlsplit(str(value))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{name}: {key} {str(value)!r} is not an http(s) URL")
    if not base_url:
        raise ValueError(f"{name}: base_url must be set")
    rate = raw.get("requests_per_minute")
    if rate is not None and (
        isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0
    ):
        raise ValueError(f"{name}: requests_per_minute must be a number above 0")
    secrets: dict[str, Secret] = {}
    options: dict[str, str] = {}
    for key in provider.options:
        if raw.get(key) is None:
            continue
        if key in provider.secret_options:
            try:
                secrets[key] = resolve_secret(raw[key], environ)
            except ValueError as error:
                raise ValueError(f"{name}: {key}: {error}") from None
        else:
            options[key] = str(raw[key])
    provider.check_options(options)
    return ProviderSettings(
        type=name,
        base_url=str(base_url),
        site_url=str(raw["site_url"]) if raw.get("site_url") else None,
        requests_per_minute=float(rate) if rate is not None else None,
        options=options,
        secrets=secrets,
        kind=kind,
    )


def count_text_of(
    name: str,
    score: int | None,
    comments: int | None,
    likes: int | None = None,
    reposts: int | None = None,
) -> str:
    """A site's counts in its own words ("143 points, 87 comments", "3 boosts, 2 replies")."""
    return PROVIDERS.get(name, Provider).count_text(score, comments, likes, reposts)


def label_of(name: str) -> str:
    """How a provider is shown ("Hacker News"); the name itself when unknown."""
    provider = PROVIDERS.get(name)
    return provider.label if provider else name


def score_label_of(name: str) -> str:
    """What a provider's site calls a thread's score ("points", "likes")."""
    provider = PROVIDERS.get(name)
    return provider.score_label if provider else "points"
