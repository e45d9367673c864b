"""The one interface every provider of comments behind an API implements (issue 16).

A provider answers two questions, each with requests made through an
:class:`~aggregator.discussions.api.ApiClient` (never the network directly):

* :meth:`Provider.find`: which threads on this site are about this entry (``ThreadRef``s);
* :meth:`Provider.fetch_thread`: the comments of one thread (``ThreadData``), with keys,
  parents, authors and times, sanitized.

Providers decide nothing about *when* to ask (:mod:`aggregator.discussions.follower` does) and
store nothing. Comment keys start with ``@`` and the provider's prefix (``@hn:8863``): no feed
or page key does, so they never collide with a blog's own comments.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit

from aggregator.models import CommentData, ThreadState

if TYPE_CHECKING:
    from aggregator.discussions.api import ApiClient

Kind = Literal["discussion", "comments"]
_VARIABLE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
# Keys every provider accepts; each provider adds its own (``Provider.options``).
COMMON_OPTIONS = frozenset({"type", "base_url", "site_url", "requests_per_minute"})


class Secret:
    """An API key or token: its value is never part of a repr, str, log line or message."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str):
        self._value = value
        self.source = source  # "${DISQUS_KEY}" or "the config": safe to show

    def reveal(self) -> str:
        """The value, for the one place that sends it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.source})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def resolve_secret(value: Any, environ: Mapping[str, str] | None = None) -> Secret:
    """``${VAR}`` from the environment, else the literal text; raises ``ValueError``."""
    environ = os.environ if environ is None else environ
    text = str(value).strip()
    match = _VARIABLE.match(text)
    if match:
        name = match.group(1)
        if not environ.get(name):
            raise ValueError(f"environment variable {name} is not set")
        return Secret(environ[name], f"${{{name}}}")
    if "${" in text:
        raise ValueError("write an environment variable as ${NAME}, alone in the value")
    if not text:
        raise ValueError("must not be empty")
    return Secret(text, "the config")


@dataclass(frozen=True)
class ProviderSettings:
    """One provider as configured: its type, where its API is, and its own options."""

    type: str
    base_url: str
    site_url: str | None = None
    requests_per_minute: float | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, Secret] = field(default_factory=dict)
    # How it is used: a source's comment system or a discussions site (a provider that can be
    # both, Mastodon, behaves as configured).
    kind: Kind | None = None

    def secret(self, name: str) -> str | None:
        """The value of a secret option, or ``None`` when it is not set."""
        found = self.secrets.get(name)
        return found.reveal() if found else None


@dataclass(frozen=True)
class ThreadRef:
    """One thread about an entry, as a provider names it."""

    ref: str  # the provider's id of the thread: "8863", "t3_abc", "link:https://..."
    url: str | None = None  # its public page
    title: str | None = None
    score: int | None = None
    comment_count: int | None = None
    # Counted, not stored as comments (webmention likes and reposts, Mastodon favourites and
    # boosts: migration 0020_webmention_counts).
    likes: int | None = None
    reposts: int | None = None


@dataclass(frozen=True)
class ThreadData:
    """The comments of one thread, ready to store.

    ``comments`` come in thread order with keys ``@prefix:id``; a top-level comment has no
    ``parent_key`` (the follower hangs it under the thread's root node for a discussion
    elsewhere). ``gone_keys`` names comments the API says were deleted. ``complete`` says the
    listing holds the whole thread.
    """

    ref: ThreadRef
    comments: tuple[CommentData, ...]
    author: str | None = None
    created_at: datetime | None = None
    gone_keys: tuple[str, ...] = ()
    complete: bool = True


class Provider(ABC):
    """A site whose comments are read through its API. Subclasses set the class variables and
    implement :meth:`find` and :meth:`fetch_thread`; one module per provider."""

    name: ClassVar[str]  # as written in the config: "hackernews"
    label: ClassVar[str]  # as shown: "Hacker News"
    prefix: ClassVar[str]  # comment keys: "@{prefix}:{id}"
    kinds: ClassVar[frozenset[Kind]]  # discussion (elsewhere), comments (the blog's own)
    default_base_url: ClassVar[str | None]
    default_site_url: ClassVar[str | None] = None
    # The API's published limit (requests per minute and host); the config may lower it.
    requests_per_minute: ClassVar[float]
    # What the site calls a thread's score, plural ("points", "likes"): its counts' wording.
    score_label: ClassVar[str] = "points"
    options: ClassVar[frozenset[str]] = frozenset()
    required: ClassVar[frozenset[str]] = frozenset()
    secret_options: ClassVar[frozenset[str]] = frozenset()
    # Whether :meth:`find` reads the entry's stored content (``ThreadState.content``), which
    # the follower then loads for it.
    reads_content: ClassVar[bool] = False

    def __init__(self, settings: ProviderSettings, api: ApiClient):
        self.settings = settings
        self.api = api
        self.base_url = settings.base_url.rstrip("/")
        self.site_url = (settings.site_url or self.default_site_url or self.base_url).rstrip("/")

    @classmethod
    def check_options(cls, options: Mapping[str, str]) -> None:
        """Raise ``ValueError`` (one line, naming the provider) for options that are set but
        wrong; the registry calls it when the config is read. Nothing to check here."""
        return None

    @property
    def kind(self) -> Kind:
        """How this provider is used here: as configured, else its one kind."""
        return self.settings.kind or sorted(self.kinds)[0]

    @property
    def rate(self) -> float:
        """Requests per minute allowed to this provider's API host."""
        return self.settings.requests_per_minute or self.requests_per_minute

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value, so that no message carries one."""
        return tuple(secret.reveal() for secret in self.settings.secrets.values())

    def key(self, item_id: object) -> str:
        """The stored key of one of this provider's comments or threads."""
        return f"@{self.prefix}:{item_id}"

    def get(self, path: str, params: Mapping[str, object] | None = None, **kwargs: Any) -> Any:
        """GET ``base_url + path`` as JSON through the shared API client."""
        return self.api.get_json(self, self.base_url + path, params, **kwargs)

    def post(self, path: str, payload: Mapping[str, object], **kwargs: Any) -> Any:
        """POST ``payload`` as JSON to ``base_url + path`` through the shared API client."""
        return self.api.post_json(self, self.base_url + path, payload, **kwargs)

    @abstractmethod
    def find(self, entry: ThreadState) -> list[ThreadRef]:
        """The threads about ``entry`` on this site (none: an empty list)."""

    @abstractmethod
    def fetch_thread(self, ref: ThreadRef) -> ThreadData:
        """Every comment of one thread (raises :class:`~aggregator.errors.FetchError`)."""

    def describe(self, ref: ThreadRef) -> str:
        """The root node's text: "on Hacker News: 143 points, 87 comments"."""
        counts = self.count_text(ref.score, ref.comment_count, ref.likes, ref.reposts)
        return f"on {self.label}" + (f": {counts}" if counts else "")

    @classmethod
    def counts(
        cls,
        score: int | None,
        comments: int | None,
        likes: int | None = None,
        reposts: int | None = None,
    ) -> list[tuple[int | None, str]]:
        """A thread's counts, each with what this site calls it (plural), in the site's order;
        a provider whose site words them otherwise ("boosts", "replies") overrides this."""
        return [
            (score, cls.score_label),
            (comments, "comments"),
            (likes, "likes"),
            (reposts, "reposts"),
        ]

    @classmethod
    def count_text(
        cls,
        score: int | None,
        comments: int | None,
        likes: int | None = None,
        reposts: int | None = None,
    ) -> str:
        """A thread's counts as this site words them: "143 points, 1 comment", "3 boosts"."""
        return count_text(cls.counts(score, comments, likes, reposts))


def count_text(counts: Iterable[tuple[int | None, str]]) -> str:
    """Counts with their plural names as text, the uncounted left out:
    ``[(143, "points"), (1, "replies"), (None, "likes")]`` gives "143 points, 1 reply"."""
    return ", ".join(
        f"{number} {_singular(label) if number == 1 else label}"
        for number, label in counts
        if number is not None
    )


def _singular(label: str) -> str:
    return label[:-3] + "y" if label.endswith("ies") else label.removesuffix("s")


def entry_url(entry: ThreadState) -> str | None:
    """The entry's web address, when it has an http(s) one (what other sites link to)."""
    link = entry.link
    if link and urlsplit(link).scheme in ("http", "https"):
        return link
    return None


def same_page(one: str | None, other: str | None) -> bool:
    """Whether two URLs name the same page (scheme, ``www.``, trailing slash and fragment
    aside): a site's search is fuzzy, so each hit is checked against the entry."""
    if not one or not other:
        return False

    def norm(url: str) -> tuple[str, str, str]:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower().removeprefix("www.")
        return host, parts.path.rstrip("/") or "/", parts.query

    return norm(one) == norm(other)


def from_timestamp(value: object) -> datetime | None:
    """An aware UTC time from Unix seconds, else ``None``."""
    try:
        return datetime.fromtimestamp(float(value), UTC)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def from_iso(value: object) -> datetime | None:
    """An aware UTC time from ISO 8601 text (naive means UTC, as the APIs document), else None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def as_int(value: object) -> int | None:
    """An int from a JSON number (or numeric text), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def make_comment(
    key: str,
    content: str,
    *,
    author: str | None,
    author_url: str | None = None,
    published_at: datetime | None,
    link: str | None = None,
    parent_key: str | None = None,
    title: str | None = None,
) -> CommentData:
    """A :class:`CommentData` from an API's fields (already sanitized), with its hash."""
    import hashlib
    import json

    fingerprint = json.dumps(
        [content, author, author_url, link, parent_key, published_at and published_at.isoformat()]
    )
    return CommentData(
        key=key,
        content=content,
        author=author,
        author_url=author_url,
        published_at=published_at,
        link=link,
        parent_key=parent_key,
        title=title,
        content_hash=hashlib.sha256(fingerprint.encode()).hexdigest(),
    )


# One thread is read this many comments deep at most (a hostile API could send millions).
MAX_COMMENTS = 5000
DELETED = "<p>[deleted]</p>"
