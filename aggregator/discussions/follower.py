"""Following the threads that APIs keep: a source's comment system and the discussions of its
entries on other sites (issue 16).

For each source with ``comment_system`` or ``discussions``, :class:`DiscussionFollower`:

1. asks each provider about the entries first seen within ``discussions_window`` (again after
   a while that grows with the entry's age: :func:`lookup_interval`), and records the threads
   found (``discussions`` rows);
2. reads the threads that are due (the comment schedule of :func:`decide_next_comments_poll`),
   and stores their comments as comments of the entry: a discussion elsewhere as a sub-thread
   under a root node labelled by site ("on Hacker News: 143 points, 87 comments"), a comment
   system's comments as the entry's own.

Requests go through one :class:`~aggregator.discussions.api.ApiClient` (budgets per API host,
429/Retry-After, cached responses, remembered in the database). Providers are never called
while ``write_lock`` is held: the client takes it to remember a response. A provider that is
rate limited is left alone for the rest of the round; its threads stay due. Runs in the
source's comment job thread.
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from aggregator.discussions.api import ApiClient
from aggregator.discussions.base import Provider, ThreadData, ThreadRef, make_comment
from aggregator.discussions.memory import StoredApiMemory
from aggregator.discussions.registry import PROVIDERS, parse_settings
from aggregator.errors import AggregatorError, RateLimitedError, StoppedError
from aggregator.models import ThreadState, ThreadUpdate
from aggregator.schedule.threads import decide_next_comments_poll

if TYPE_CHECKING:
    from aggregator.comments.follower import CommentsResult
    from aggregator.config.schema import AppConfig
    from aggregator.config.sources import SourceConfig
    from aggregator.fetch.fetcher import Fetcher
    from aggregator.storage import Storage
    from aggregator.storage.discussions import DiscussionState

log = logging.getLogger("aggregator.discussions")

# Entries asked about per round and provider at most (the newest), and threads read.
MAX_LOOKUPS_PER_ROUND = 30
MAX_THREADS_PER_ROUND = 100
# A thread that failed is tried again after this long.
ERROR_RETRY = timedelta(hours=1)


def lookup_interval(first_seen_at: datetime, now: datetime) -> timedelta:
    """How long after asking about an entry a site is asked again: an eighth of the entry's
    age, between 30 minutes and 6 hours (a post is submitted soon after it appears, if ever)."""
    return min(max((now - first_seen_at) / 8, timedelta(minutes=30)), timedelta(hours=6))


class DiscussionFollower:
    """Finds and reads the API-kept threads of one configuration's sources."""

    def __init__(
        self,
        config: Callable[[], AppConfig],
        *,
        storage: Callable[[], Storage],
        fetcher: Callable[[], Fetcher],
        clock: Callable[[], datetime],
        write_lock: threading.Lock,
        api: ApiClient | None = None,
    ):
        self._config = config
        self._storage = storage
        self.clock = clock
        self.write_lock = write_lock
        # Responses with validators and hosts' blocks are kept in the database, so a restart
        # neither asks again for what did not change nor asks a host that said to wait.
        self.api = api or ApiClient(fetcher, memory=StoredApiMemory(storage, write_lock, clock))

    def providers(self, source: SourceConfig) -> list[Provider]:
        """The source's comment system and discussion providers, built from the config."""
        config = self._config()
        found: list[Provider] = []
        if source.comment_system:
            settings = parse_settings(source.comment_system, "comments")
            found.append(PROVIDERS[settings.type](settings, self.api))
        for item in config.discussions_for(source):
            settings = parse_settings(item, "discussion")
            found.append(PROVIDERS[settings.type](settings, self.api))
        return found

    def follow(self, source: SourceConfig, result: CommentsResult, *, force: bool = False) -> None:
        """Look up and read the source's threads that are due (all when ``force``); count what
        changed in ``result``. Errors are logged and recorded, never raised."""
        try:
            providers = self.providers(source)
        except ValueError as error:  # the config was checked when loaded: a missing variable
            result.errors.append(f"{source.name}: {error}")
            return
        if not providers:
            return
        storage = self._storage()
        state = storage.get_source(source.name)
        now = self.clock()
        window = self._config().defaults.discussions_window
        entries = storage.list_threads(state.id, None, include_stopped=True)
        by_id = {entry.entry_id: entry for entry in entries}
        recent = [e for e in entries if now - e.first_seen_at <= window][:MAX_LOOKUPS_PER_ROUND]
        held: dict[str, RateLimitedError] = {}
        known = storage.list_discussions(by_id)
        self._look_up(source, providers, recent, known, held, result, force=force)
        known = storage.list_discussions(by_id)
        due = [
            d
            for threads in known.values()
            for d in threads
            if not d.stopped and (force or d.next_poll_at is None or d.next_poll_at <= now)
        ]
        by_name = {provider.name: provider for provider in providers}
        for discussion in due[:MAX_THREADS_PER_ROUND]:
            provider = by_name.get(discussion.provider)
            entry = by_id.get(discussion.entry_id)
            if provider is None or entry is None or provider.name in held:
                continue
            self._read(source, provider, entry, discussion, held, result)
        for reason in held.values():
            log.info("%s: %s", source.name, reason)

    # -- finding threads -----------------------------------------------------------------------
    def _look_up(
        self,
        source: SourceConfig,
        providers: Sequence[Provider],
        entries: Sequence[ThreadState],
        known: dict[int, list[DiscussionState]],
        held: dict[str, RateLimitedError],
        result: CommentsResult,
        *,
        force: bool,
    ) -> None:
        storage = self._storage()
        lookups = storage.list_lookups(e.entry_id for e in entries)
        for provider in providers:
            for entry in entries:
                if provider.name in held:
                    break
                now = self.clock()
                found = [d for d in known.get(entry.entry_id, []) if d.provider == provider.name]
                if provider.kind != "discussion" and found:
                    continue  # a comment system's thread is found once
                last = lookups.get((entry.entry_id, provider.name))
                if not force and last and now - last < lookup_interval(entry.first_seen_at, now):
                    continue
                error = None
                refs: list[ThreadRef] = []
                try:
                    if provider.reads_content:
                        entry = replace(entry, content=storage.entry_content(entry.entry_id))
                    refs = provider.find(entry)
                except RateLimitedError as limited:
                    held[provider.name] = limited
                    break
                except StoppedError:
                    return
                except AggregatorError as failure:
                    error = str(failure)
                    result.errors.append(f"{source.name}: {entry.link or entry.key}: {error}")
                    log.warning(
                        "%s: %s lookup of %s: %s",
                        source.name,
                        provider.label,
                        entry.link or entry.key,
                        error,
                    )
                with self.write_lock, storage.transaction():
                    storage.record_lookup(entry.entry_id, provider.name, now, error)
                    for ref in refs:
                        if storage.add_discussion(
                            entry.entry_id,
                            provider.name,
                            ref.ref,
                            now,
                            url=ref.url,
                            title=ref.title,
                            score=ref.score,
                            comment_count=ref.comment_count,
                            likes=ref.likes,
                            reposts=ref.reposts,
                        ):
                            log.info(
                                "%s: %s found on %s: %s",
                                source.name,
                                entry.link or entry.key,
                                provider.label,
                                ref.url,
                            )

    # -- reading one thread --------------------------------------------------------------------
    def _read(
        self,
        source: SourceConfig,
        provider: Provider,
        entry: ThreadState,
        discussion: DiscussionState,
        held: dict[str, RateLimitedError],
        result: CommentsResult,
    ) -> None:
        storage = self._storage()
        ref = ThreadRef(
            discussion.ref,
            discussion.url,
            discussion.title,
            discussion.score,
            discussion.comment_count,
            discussion.likes,
            discussion.reposts,
        )
        try:
            data = provider.fetch_thread(ref)
        except RateLimitedError as limited:
            held[provider.name] = limited
            return
        except StoppedError:
            return
        except AggregatorError as failure:
            now = self.clock()
            message = f"{provider.label} thread {discussion.url or discussion.ref}: {failure}"
            result.errors.append(f"{source.name}: {message}")
            log.warning("%s: %s", source.name, message)
            with self.write_lock, storage.transaction():
                storage.update_discussion(
                    discussion.id,
                    polled_at=now,
                    error=str(failure),
                    next_poll_at=now + ERROR_RETRY,
                )
            return
        result.threads += 1
        with self.write_lock, storage.transaction():
            self._store(storage, provider, entry, discussion, data, result)

    def _store(
        self,
        storage: Storage,
        provider: Provider,
        entry: ThreadState,
        discussion: DiscussionState,
        data: ThreadData,
        result: CommentsResult,
    ) -> None:
        now = self.clock()
        comments = list(data.comments)
        discussion_kind = provider.kind == "discussion"
        if data.gone_keys:
            # A deleted comment kept as "[deleted]" for its replies is stored once: written
            # again, it would come back to life and be marked gone anew at every read.
            already = storage.list_gone_comment_keys(entry.entry_id, data.gone_keys)
            comments = [c for c in comments if c.key not in already]
        if discussion_kind:
            comments = [*_root(provider, data), *_under(provider.key(data.ref.ref), comments)]
        stored = storage.store_comments(entry.entry_id, entry.public_id, comments, now)
        gone = storage.mark_comment_keys_gone(
            entry.entry_id, [*data.gone_keys, *_missing(storage, provider, entry, data)], now
        )
        result.new += stored.new
        result.updated += stored.updated
        result.gone += gone
        last_new = now if stored.new else discussion.last_new_at
        dates = [c.published_at for c in data.comments if c.published_at]
        last_comment = max([*dates, *filter(None, [discussion.last_comment_at])], default=None)
        next_at = decide_next_comments_poll(
            discussion.found_at,
            last_comment,
            last_new,
            now,
            quiet_after=self._config().defaults.comments_quiet_after,
        )
        storage.update_discussion(
            discussion.id,
            url=data.ref.url or discussion.url,
            title=data.ref.title or discussion.title,
            score=data.ref.score,
            comment_count=data.ref.comment_count
            if data.ref.comment_count is not None
            else len([c for c in data.comments if c.key not in set(data.gone_keys)]),
            likes=data.ref.likes,
            reposts=data.ref.reposts,
            polled_at=now,
            next_poll_at=next_at,
            stopped=1 if next_at is None else 0,
            last_new_at=last_new,
            last_comment_at=last_comment,
            error=None,
        )
        if stored.new:
            storage.update_thread(entry.entry_id, ThreadUpdate(comments_last_new_at=now))
        counted = data.ref.likes is not None or data.ref.reposts is not None
        if (discussion_kind or counted) and storage.refresh_entry_discussions(entry.entry_id, now):
            result.updated += 0  # the entry changed (its counts), which publishing sees


def _missing(
    storage: Storage, provider: Provider, entry: ThreadState, data: ThreadData
) -> list[str]:
    """The stored comments of a comment system that a complete listing no longer has: Isso
    removes a deleted comment nobody replied to, Discourse shows no deleted post to a reader
    without a key, Mastodon, GitHub and webmention.io drop deleted items from their answers.
    A listing that lost every comment is more likely a wrong setting or an error than a blog
    that deleted the whole thread: nothing is marked gone then. A provider used as a
    discussion elsewhere (Mastodon can be both) is not a comment system here."""
    if provider.kind != "comments" or not data.complete or not data.comments:
        return []
    present = {c.key for c in data.comments}
    return sorted(storage.list_comment_keys(entry.entry_id, f"@{provider.prefix}:") - present)


def _root(provider: Provider, data: ThreadData) -> list:
    """The node a discussion elsewhere hangs under: "on Hacker News: 143 points, 87 comments",
    linking to the thread."""
    text = provider.describe(data.ref)
    title = f" \u2014 {html.escape(data.ref.title)}" if data.ref.title else ""
    label = html.escape(text)
    content = (
        f'<p><a href="{html.escape(data.ref.url)}">{label}</a>{title}</p>'
        if data.ref.url
        else f"<p>{label}{title}</p>"
    )
    return [
        make_comment(
            provider.key(data.ref.ref),
            content,
            author=data.author,
            published_at=data.created_at,
            link=data.ref.url,
            title=text,
        )
    ]


def _under(root_key: str, comments: list) -> list:
    """Top-level comments of a thread placed under its root node."""
    return [c if c.parent_key else replace(c, parent_key=root_key) for c in comments]
