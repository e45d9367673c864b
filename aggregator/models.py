"""Frozen dataclasses that cross module boundaries.

Naming follows the stage a value comes from: ``*Data`` is read from a feed or page, ``*State`` is
what storage holds, ``*Result`` is the outcome of an operation. Timestamps end in ``_at`` and are
aware UTC datetimes. No feedparser dict, sqlite row or YAML mapping leaves its own module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import Enum

from aggregator.secret import Secret


@dataclass(frozen=True)
class FetchResult:
    """What one HTTP (or file) request returned.

    ``content`` is ``None`` when the server answered 304 Not Modified.
    """

    url: str
    final_url: str
    status: int
    headers: Mapping[str, str]
    content: bytes | None
    etag: str | None = None
    last_modified: str | None = None
    elapsed: float = 0.0
    permanent_redirect: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


#: The iTunes and Podcasting 2.0 tags of an episode that are carried from source to output:
#: ``image`` (itunes:image), ``duration``, ``episode``, ``explicit`` (``yes``/``clean``),
#: ``transcript`` and ``chapters`` (URLs) with their media types.
PODCAST_TAGS = (
    "image",
    "duration",
    "episode",
    "explicit",
    "transcript",
    "transcript_type",
    "chapters",
    "chapters_type",
)


@dataclass(frozen=True)
class EnclosureData:
    """A media attachment (podcast episode, image) of an entry."""

    url: str
    type: str | None = None
    length: int | None = None


@dataclass(frozen=True)
class EntryData:
    """One entry as read from a feed, normalised.

    ``key`` identifies the entry within its source: the guid as the document writes it, else the
    link, else a hash of its content, told apart when several entries of one document share it
    (:mod:`aggregator.parse.identity`). ``alternate_keys`` are keys it may already be stored under
    (an earlier rule's), tried when ``key`` is not stored. ``content_hash`` changes whenever
    anything that we republish changes.
    """

    key: str
    title: str
    guid: str | None = None
    link: str | None = None
    author: str | None = None
    summary: str | None = None
    content: str | None = None
    published_at: datetime | None = None
    updated_at: datetime | None = None
    categories: tuple[str, ...] = ()
    enclosures: tuple[EnclosureData, ...] = ()
    comments_feed_url: str | None = None
    comments_page_url: str | None = None
    comment_count: int | None = None
    content_hash: str = ""
    # Podcast tags (see PODCAST_TAGS), as (name, value) pairs in that order.
    podcast: tuple[tuple[str, str], ...] = ()
    alternate_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeedData:
    """A parsed feed: its metadata and entries, plus any warning feedparser raised."""

    title: str | None
    link: str | None
    entries: tuple[EntryData, ...]
    subtitle: str | None = None
    version: str = ""
    warning: str | None = None
    # Publisher hints about how often to poll (RSS <ttl>, sy:updatePeriod/Frequency, skipHours/Days).
    ttl_minutes: int | None = None
    update_period_seconds: int | None = None
    skip_hours: frozenset[int] = frozenset()
    skip_days: frozenset[str] = frozenset()
    # What the source's rewrite rules changed (aggregator.parse.rewrite), for preview --explain.
    rewrite_changes: tuple[RewriteChange, ...] = ()
    # WebSub: the hubs the document names (rel="hub") and its own URL (rel="self").
    hubs: tuple[str, ...] = ()
    self_url: str | None = None


#: How a subscription's ``last_error`` starts when the hub denied it (``status`` says "denied").
WEBSUB_DENIED = "the hub denied it"


@dataclass(frozen=True)
class Subscription:
    """A WebSub subscription of one source, as stored (table ``websub_subscriptions``).

    ``mode`` is what we last asked of the hub (``subscribe`` or ``unsubscribe``);
    ``requested_at`` when (``None``: not asked yet); ``expires_at`` the end of the lease the
    hub verified (``None``: not verified). ``callback_id`` is the unguessable last part of
    the callback URL; ``secret`` signs pushed content and is never logged or shown.
    """

    id: int
    source_name: str
    callback_id: str
    hub: str
    topic: str
    secret: Secret
    mode: str
    lease_seconds: int | None = None
    requested_at: datetime | None = None
    verified_at: datetime | None = None
    expires_at: datetime | None = None
    pushed_at: datetime | None = None
    retry_at: datetime | None = None
    error_count: int = 0
    last_error: str | None = None

    def live(self, now: datetime) -> bool:
        """Whether the hub verified a subscription whose lease has not ended."""
        return self.mode == "subscribe" and self.expires_at is not None and self.expires_at > now


@dataclass(frozen=True)
class CommentData:
    """One comment as read from a comment feed or an HTML page.

    ``key`` is a stable id within its entry: the permalink's anchor (``comment-123``) when it has
    one, so that the same comment read from a feed and from a page is one comment; else its guid or
    permalink; else a hash. ``number`` is its position as the blog numbers it, when known.
    ``parent_key`` names the comment it replies to, where the source threads replies.
    ``in_reply_to`` and ``in_reply_to_href`` are the ``thr:in-reply-to`` ``ref`` and ``href`` a
    comment feed gives (the post, or the parent comment), used to match a site-wide feed's
    comments to their entries. ``alternate_keys`` are keys it may already be stored under (the
    previous rule's, which resolved a guid against the feed's URL), tried when ``key`` is not.
    """

    key: str
    content: str
    author: str | None = None
    author_url: str | None = None
    published_at: datetime | None = None
    link: str | None = None
    number: int | None = None
    parent_key: str | None = None
    in_reply_to: str | None = None
    in_reply_to_href: str | None = None
    title: str | None = None
    guid: str | None = None
    content_hash: str = ""
    alternate_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class CommentFeedData:
    """One document of a comment feed: its comments (oldest first) and, when the feed is split
    into pages (RFC 5005 ``rel="next"``), the URL of the next, older page."""

    comments: tuple[CommentData, ...]
    next_url: str | None = None
    newest_first: bool = True


@dataclass(frozen=True)
class SourceState:
    """What storage remembers about a source between polls."""

    id: int
    name: str
    url: str
    title: str | None = None
    link: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    last_polled_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    error_count: int = 0
    next_poll_at: datetime | None = None
    next_poll_reason: str | None = None
    redirect_url: str | None = None
    redirect_count: int = 0
    retired_at: datetime | None = None
    comments_etag: str | None = None
    comments_last_modified: str | None = None
    config_url: str | None = None  # as configured; ``url`` differs once a redirect is adopted
    last_success_at: datetime | None = None
    next_poll_detail: str | None = None
    hint_ttl_minutes: int | None = None
    hint_update_period: int | None = None
    hint_skip_hours: frozenset[int] = frozenset()
    hint_skip_days: frozenset[str] = frozenset()
    comments_polled_at: datetime | None = None  # the site-wide comment feed's last read


class Keep(Enum):
    """The type of :data:`KEEP`."""

    KEEP = "keep"


#: A :class:`SourceUpdate` or :class:`ThreadUpdate` field left at ``KEEP`` is not written
#: (``None`` writes NULL).
KEEP = Keep.KEEP


@dataclass(frozen=True)
class _ColumnUpdate:
    """An update of one row: a subclass's fields are the names of the columns it may write."""

    def columns(self) -> dict[str, object]:
        """The columns to write and their values, in field order (those not :data:`KEEP`)."""
        return {
            item.name: value
            for item in fields(self)
            if (value := getattr(self, item.name)) is not KEEP
        }


@dataclass(frozen=True)
class SourceUpdate(_ColumnUpdate):
    """What a poll records on its source's row: each field is a column of ``sources`` (the
    names are the SQL column names), written unless it is :data:`KEEP`."""

    url: str | Keep = KEEP
    title: str | None | Keep = KEEP
    link: str | None | Keep = KEEP
    etag: str | None | Keep = KEEP
    last_modified: str | None | Keep = KEEP
    body_hash: str | None | Keep = KEEP
    last_polled_at: datetime | None | Keep = KEEP
    last_status: int | None | Keep = KEEP
    last_error: str | None | Keep = KEEP
    error_count: int | Keep = KEEP
    next_poll_at: datetime | None | Keep = KEEP
    next_poll_reason: str | None | Keep = KEEP
    next_poll_detail: str | None | Keep = KEEP
    redirect_url: str | None | Keep = KEEP
    redirect_count: int | Keep = KEEP
    retired_at: datetime | None | Keep = KEEP
    last_success_at: datetime | None | Keep = KEEP
    comments_etag: str | None | Keep = KEEP
    comments_last_modified: str | None | Keep = KEEP
    comments_polled_at: datetime | None | Keep = KEEP
    hint_ttl_minutes: int | None | Keep = KEEP
    hint_update_period: int | None | Keep = KEEP
    hint_skip_hours: frozenset[int] | Keep = KEEP
    hint_skip_days: frozenset[str] | Keep = KEEP


@dataclass(frozen=True)
class ThreadUpdate(_ColumnUpdate):
    """What a comment poll records on its entry's row: each field is a column of ``entries``,
    written unless it is :data:`KEEP`."""

    comments_polled_at: datetime | None | Keep = KEEP
    comments_error: str | None | Keep = KEEP
    comments_hint_polled: int | None | Keep = KEEP
    comments_etag: str | None | Keep = KEEP
    comments_last_modified: str | None | Keep = KEEP
    comments_last_new_at: datetime | None | Keep = KEEP
    comments_next_poll_at: datetime | None | Keep = KEEP
    comments_stopped: int | Keep = KEEP


@dataclass(frozen=True)
class StoreResult:
    """Counts of what one store operation changed."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    # Threads whose comment count moved in the feed, made due to be read in this poll.
    moved_threads: int = 0

    @property
    def status(self) -> str:
        """The poll status this store gives: ``new``, ``updated`` or ``unchanged``."""
        return "new" if self.new else "updated" if self.updated else "unchanged"


@dataclass(frozen=True)
class PollResult:
    """The outcome of polling one source, reported one line per source."""

    source: str
    status: str  # "new", "updated", "unchanged", "not-modified", "error", "skipped"
    new: int = 0
    updated: int = 0
    http_status: int | None = None
    error: str | None = None
    warning: str | None = None
    new_comments: int = 0
    changed_comments: int = 0  # edited at the source, or gone from it
    elapsed: float = 0.0
    # When the source is due next (None: retired, or not decided because the poll was skipped).
    next_poll_at: datetime | None = None
    note: str | None = None  # why a poll was skipped, or what changed about the source
    skipped: int = 0  # new entries the source's rules kept out of storage
    moved_threads: int = 0  # threads whose comment count moved in the feed (read at once)
    full_texts: int = 0  # articles fetched from entries' pages and stored (`full_text`)

    @property
    def changed(self) -> bool:
        """Whether this poll changed anything an output may show."""
        return self.ok and bool(
            self.new
            or self.updated
            or self.new_comments
            or self.changed_comments
            or self.full_texts
        )

    @property
    def ok(self) -> bool:
        return self.status != "error"

    def describe(self) -> str:
        """One human line, e.g. ``moa: 3 new, 1 updated``."""
        if self.status == "error":
            return f"{self.source}: error: {self.error}"
        if self.status == "skipped":
            return f"{self.source}: skipped: {self.note}"
        if self.status == "not-modified":
            text = "unchanged (304)"
        elif self.new or self.updated:
            parts = []
            if self.new:
                parts.append(f"{self.new} new")
            if self.updated:
                parts.append(f"{self.updated} updated")
            text = ", ".join(parts)
        else:
            text = "unchanged"
        if self.skipped:
            text += f", {self.skipped} skipped by rules"
        if self.full_texts:
            text += f", {self.full_texts} full text{'' if self.full_texts == 1 else 's'}"
        if self.new_comments:
            text += f", {self.new_comments} new comment{'' if self.new_comments == 1 else 's'}"
        if self.changed_comments:
            plural = "" if self.changed_comments == 1 else "s"
            text += f", {self.changed_comments} comment{plural} changed"
        if self.warning:
            text += f" (warning: {self.warning})"
        if self.note:
            text += f"; {self.note}"
        return f"{self.source}: {text}"


@dataclass(frozen=True)
class StoredEntry:
    """An entry as storage returns it for publishing."""

    id: int
    public_id: str
    source_name: str
    source_title: str | None
    source_url: str
    source_link: str | None
    key: str
    title: str
    link: str | None
    author: str | None
    summary: str | None
    content: str | None
    published_at: datetime | None
    updated_at: datetime | None
    first_seen_at: datetime
    categories: tuple[str, ...] = ()
    enclosures: tuple[EnclosureData, ...] = ()
    # Podcast tags (see PODCAST_TAGS), as (name, value) pairs in that order.
    podcast: tuple[tuple[str, str], ...] = ()
    comment_count: int = 0
    last_comment_at: datetime | None = None
    guid: str | None = None
    extra: Mapping[str, object] = field(default_factory=dict)
    # The entry's date for sorting and date rules: its published time, else (or when that lies
    # in the future) the time aggregator first saw it. ``None`` for entries not read from storage.
    sort_at: datetime | None = None
    # The article extracted from the entry's page (`full_text`), sanitized; ``None``: none.
    full_text: str | None = None

    @property
    def dated_at(self) -> datetime:
        """The date that sorting and the date rules (``max_age``, ``before``, ``after``) use."""
        return self.sort_at or self.published_at or self.updated_at or self.first_seen_at


@dataclass(frozen=True)
class CandidateQuery:
    """The part of an output's selection that SQL does: the cheap, indexable work.

    ``source_names`` is ``None`` for every source. ``since`` and ``until`` bound the entry's
    ``sort_at`` (``since <= sort_at < until``); ``min_comments`` bounds the stored comment count;
    ``search`` is an FTS5 query over entries and their comments. ``sort`` is ``newest``,
    ``most_comments`` or ``recent_activity``. At most ``window`` candidates are returned.
    Every bound here must be looser than or equal to the Python rules it stands for, so that
    SQL never drops an entry the rules would keep.
    """

    source_names: tuple[str, ...] | None = None
    sort: str = "newest"
    since: datetime | None = None
    until: datetime | None = None
    min_comments: int | None = None
    search: str | None = None
    window: int = 5000


@dataclass(frozen=True)
class SearchHit:
    """Where a full-text search matched an entry: the entry itself or one of its comments.

    ``text`` is a short excerpt around the match, for ``preview --explain``.
    """

    where: str  # "entry" or "comment"
    text: str
    comment_public_id: str | None = None
    comment_author: str | None = None


@dataclass(frozen=True)
class StoredComment:
    """A comment as storage returns it for publishing."""

    id: int
    public_id: str
    entry_id: int
    entry_public_id: str
    key: str
    content: str
    author: str | None
    author_url: str | None
    published_at: datetime | None
    first_seen_at: datetime
    link: str | None
    number: int | None
    parent_public_id: str | None = None
    gone_at: datetime | None = None


@dataclass(frozen=True)
class ThreadState:
    """What storage remembers about following one entry's comment thread."""

    entry_id: int
    public_id: str
    key: str
    guid: str | None
    link: str | None
    comments_feed_url: str | None
    comments_page_url: str | None
    first_seen_at: datetime
    last_comment_at: datetime | None = None
    last_new_comment_at: datetime | None = None
    etag: str | None = None
    last_modified: str | None = None
    comment_count_hint: int | None = None
    hint_at_last_poll: int | None = None
    polled_at: datetime | None = None
    comment_count: int = 0
    error: str | None = None
    # The entry's stored content, loaded only for a provider that reads it (issue 16:
    # a Mastodon status linked from the post).
    content: str | None = None


@dataclass(frozen=True)
class StoredThread:
    """An entry's stored comments summed up, read without building every comment.

    ``count`` counts every stored comment (gone ones too), ``last_at`` is the newest published
    (else first seen) time. ``fingerprint`` is opaque: two reads of a thread give equal
    fingerprints exactly when every stored field its comment feeds show is equal, in the same
    order, so a publisher can tell that a feed would render the same bytes again.
    """

    entry_id: int
    count: int
    last_at: datetime | None
    fingerprint: tuple[object, ...]


@dataclass(frozen=True)
class RequestOptions:
    """What a source's requests carry besides the fetcher's own headers (issue 17).

    ``credentials`` (headers, ``Authorization``, ``Cookie``: values are
    :class:`~aggregator.secret.Secret`) are sent only to ``origin`` (``scheme://host:port`` of
    the source's configured URL): a redirect or a comment feed elsewhere gets none of them.
    ``user_agent`` replaces the fetcher's on every request of the source. ``proxy`` is a proxy
    URL (a ``Secret``: it may hold a password); ``None`` with ``proxy_from_env`` means the
    ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``NO_PROXY`` environment, without it a direct connection.
    """

    origin: str = ""
    credentials: tuple[tuple[str, Secret], ...] = ()
    user_agent: str | None = None
    proxy: Secret | None = None
    proxy_from_env: bool = True


@dataclass(frozen=True)
class CommentRevision:
    """One change seen at the source of a stored comment (issue 15): an ``edit`` (its text
    before and after) or ``gone`` (its last text, and when it vanished from its thread)."""

    id: int
    kind: str  # "edit" or "gone"
    recorded_at: datetime
    old_content: str
    new_content: str | None
    comment_public_id: str
    comment_link: str | None
    author: str | None
    entry_public_id: str
    entry_title: str | None
    entry_link: str | None
    source_name: str


@dataclass(frozen=True)
class AlertItem:
    """A new comment or entry an alert may report, as storage reads it for ``aggregator.alerts``."""

    kind: str  # "comment" or "entry"
    row_id: int
    public_id: str
    source_name: str
    entry_id: int
    entry_public_id: str
    entry_title: str | None
    entry_link: str | None
    author: str | None
    content: str
    link: str | None
    published_at: datetime | None
    parent_author: str | None = None
    parent_public_id: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class RewriteRule:
    """One rewrite rule (issue 17), as configured and checked, applied to entries before they
    are stored (:mod:`aggregator.parse.rewrite`).

    ``kind`` is ``remove`` (``pattern`` is a CSS selector), ``replace`` (``pattern`` an RE2
    regular expression, ``replacement`` its ``with``, ``fields`` its ``in``), ``replace_url``
    (an RE2 pattern for URLs) or ``hosts`` (``hosts``: old host → new host). ``name`` is its
    key path in the configuration (``sources[2].rewrite[0]``), for ``preview --explain``.
    Plain values only, so a rule crosses into the parse sandbox as it is.
    """

    kind: str
    pattern: str = ""
    replacement: str = ""
    fields: tuple[str, ...] = ()
    hosts: tuple[tuple[str, str], ...] = ()
    name: str = ""


@dataclass(frozen=True)
class RewriteChange:
    """What one rewrite rule changed in one entry: ``count`` matches in ``field`` (``title``,
    ``content``, ``summary``, ``link`` or ``enclosure``), with a short ``before`` and ``after``."""

    rule: str
    kind: str
    entry_key: str
    entry_title: str
    field: str
    count: int
    before: str = ""
    after: str = ""


@dataclass(frozen=True)
class SourceRewrites:
    """One source's rewrite rules and what they change in its feed now, or why that is
    unknown (``error``): what ``aggregator preview --explain`` reports."""

    source: str
    rules: tuple[RewriteRule, ...]
    changes: tuple[RewriteChange, ...] = ()
    error: str | None = None
