"""Choose what an output shows: its entries (rules, search, dedupe, limit), its older pages,
and the comments of each entry (killfiles and comment rules, threads merged across copies).

:class:`OutputChooser` is the one place outputs are chosen: the publisher
(:mod:`aggregator.publish.publisher`), the web pages (:mod:`aggregator.serve.web`),
``aggregator preview``, retention and alerts all ask it, so they agree on what an output holds.
SQL fetches candidates (:func:`aggregator.select.rules.candidate_query`), the pure
:func:`aggregator.select.selection.select_entries` applies the rules. It reads the database and
writes nothing; rendering and writing documents belong to :mod:`aggregator.publish`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from aggregator.config.outputs import OutputConfig
from aggregator.config.schema import AppConfig
from aggregator.errors import NotFoundError
from aggregator.models import StoredComment, StoredEntry
from aggregator.publish.commentitems import ParentView, as_entry, as_item
from aggregator.publish.inline import merge_threads
from aggregator.select.dedupe import Duplicate
from aggregator.select.filters import (
    CommentRules,
    RuleSet,
    combine_comment_rules,
    compile_comment_rules,
    evaluate,
    keep_comment,
)
from aggregator.select.rules import RuleBook, candidate_query
from aggregator.select.selection import CandidatePage, Selection, select_entries
from aggregator.storage import Storage


def has_rules(rules: CommentRules) -> bool:
    """Whether ``rules`` can drop a comment (``CommentRules.names`` is left out of ``==``)."""
    return bool(rules.names or rules.authors or rules.exclude)


class OutputChooser:
    """Chooses an output's entries and the comments it shows, as every document and page does.

    ``storage`` may be a :class:`Storage` or a function returning the calling thread's own.
    Rules are compiled once per (output, source) and kept until :meth:`configure`.
    """

    def __init__(
        self,
        config: AppConfig,
        storage: Storage | Callable[[], Storage],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self._storage = storage
        self.clock = clock
        self.configure(config)

    def configure(self, config: AppConfig) -> None:
        """Use a new configuration (a reload)."""
        self.config = config
        self.rules = RuleBook.from_config(config)
        self._comment_rules: dict[tuple[str, str], CommentRules] = {}
        self._sources = {source.name: source for source in config.sources}
        self._entry_rules: dict[tuple[str, str], RuleSet] = {}

    @property
    def storage(self) -> Storage:
        return self._storage if isinstance(self._storage, Storage) else self._storage()

    def entries_for(self, output: OutputConfig) -> list[StoredEntry]:
        """The entries an output shows now, in its order (deduplicated, before shaping)."""
        return self.select(output).kept

    def select(
        self, output: OutputConfig, *, explain: bool = False, page_size: int | None = None
    ) -> Selection:
        """Choose the output's entries: SQL fetches candidates, Python applies the rules.

        Candidates are read a page at a time until ``limit`` entries are kept or the
        output's ``candidates`` window is used up. With ``explain``, SQL applies no bounds
        but the sources and the order, so every candidate gets a verdict from the rules.
        """
        now = self.clock()
        query = candidate_query(self.config, self.rules, output, now, explain=explain)
        page_size = min(query.window, max(2 * output.limit, 100))
        storage = self.storage
        pages = storage.iter_candidates(query, page_size)
        index = next((i for i, o in enumerate(self.config.outputs) if o.name == output.name), 0)

        def annotated() -> Iterator[CandidatePage]:
            for entries in pages:
                if output.min_comments:
                    entries = [self._with_visible_count(output, entry) for entry in entries]
                hits = None
                if explain and output.search:
                    hits = storage.search_hits(output.search, [entry.id for entry in entries])
                yield CandidatePage(entries, hits)

        try:
            return select_entries(
                annotated(),
                lambda source_name: self.entry_rules(output, source_name),
                now,
                limit=output.limit,
                search=output.search,
                search_rule=f"outputs[{index}].search",
                per_source_limit=output.per_source_limit,
                new_source_limit=output.new_source_limit,
                page_size=page_size,
            )
        finally:
            pages.close()

    def entry_rules(self, output: OutputConfig, source_name: str) -> RuleSet:
        """The entry rules of all three levels for one source's entries in an output."""
        key = (output.name, source_name)
        rules = self._entry_rules.get(key)
        if rules is None:
            rules = self._entry_rules[key] = self.rules.for_output(output.name, source_name)
        return rules

    def _with_visible_count(self, output: OutputConfig, entry: StoredEntry) -> StoredEntry:
        """``min_comments`` counts the comments an output shows: killfiled ones do not count."""
        rules = self.comment_rules(output, entry.source_name)
        if not entry.comment_count or not has_rules(rules):
            return entry
        return replace(entry, comment_count=len(self.visible_comments(output, entry)))

    def comment_rules(self, output: OutputConfig, source_name: str) -> CommentRules:
        """The killfile and comment rules that apply to one source's comments in an output."""
        cached = self._comment_rules.get((output.name, source_name))
        if cached is not None:
            return cached
        source = self._sources.get(source_name)
        rules = combine_comment_rules(
            compile_comment_rules(list(self.config.defaults.killfile), ()),
            compile_comment_rules(list(source.killfile) if source else [], ()),
            compile_comment_rules(list(output.killfile), list(output.comments_exclude)),
        )
        self._comment_rules[(output.name, source_name)] = rules
        return rules

    def can_have_comments(self, entry: StoredEntry) -> bool:
        """Whether aggregator has a way to read this entry's thread."""
        if entry.extra.get("comments_feed_url"):
            return True
        source = self._sources.get(entry.source_name)
        return bool(source and (source.comments_url or (source.comments_page and entry.link)))

    def visible_comments(self, output: OutputConfig, entry: StoredEntry) -> list[StoredComment]:
        """An entry's comments as this output shows them: killfiled authors removed."""
        rules = self.comment_rules(output, entry.source_name)
        return [c for c in self.storage.list_comments(entry.id) if keep_comment(rules, c)]

    def merged_thread(
        self, output: OutputConfig, entry: StoredEntry, copies: Sequence[Duplicate]
    ) -> list[StoredComment]:
        """An entry's visible comments merged with those of the copies dedupe folded into it,
        each labelled with its source, counted once (:func:`aggregator.publish.inline.merge_threads`);
        without copies, :meth:`visible_comments`."""
        own = self.visible_comments(output, entry)
        if not copies:
            return own
        threads = [(entry, own)]
        for copy in copies:
            try:
                other = self.storage.get_entry(copy.public_id)
            except NotFoundError:
                continue
            threads.append((other, self.visible_comments(output, other)))
        return merge_threads(entry, threads)

    def copies_in(self, output: OutputConfig, entry: StoredEntry) -> tuple[Duplicate, ...]:
        """The copies dedupe folds into ``entry`` in the output's feed (none on older pages)."""
        for item in self.select(output).entries:
            if item.entry.id == entry.id:
                return tuple(item.duplicates)
        return ()

    def older_pages(
        self, output: OutputConfig, first: Sequence[StoredEntry]
    ) -> list[list[StoredEntry]]:
        """Pages 2 to ``output.pages`` of an output (RFC 5005 paging), ``limit`` entries each.

        They hold the entries that come after ``first`` (the feed itself) in the same selection
        and order, so a reader following ``rel="next"`` reads on where the feed stops. A feed
        shorter than ``limit`` has no older pages.
        """
        if output.pages <= 1 or len(first) < output.limit:
            return []
        deeper = output.model_copy(update={"limit": output.limit * output.pages})
        shown = {entry.id for entry in first}
        deep = self.select(deeper, page_size=output.limit).kept
        rest = [entry for entry in deep if entry.id not in shown]
        size = output.limit
        return [rest[i : i + size] for i in range(0, len(rest), size)][: output.pages - 1]

    def passes_rules(self, output: OutputConfig, entries: Sequence[StoredEntry]) -> set[int]:
        """The ids of ``entries`` that the output's rules and search keep (limit aside)."""
        now = self.clock()
        unique = {entry.id: entry for entry in entries}
        hits = self.storage.search_hits(output.search, list(unique)) if output.search else None
        return {
            entry.id
            for entry in unique.values()
            if (hits is None or entry.id in hits)
            and evaluate(self.entry_rules(output, entry.source_name), entry, now).kept
        }

    def comment_items(
        self, output: OutputConfig, parent_links: dict[str, str] | None = None
    ) -> list[tuple[StoredComment, StoredEntry]]:
        """The comments an output of ``items: comments`` shows, newest first, with their
        entries: ``limit × pages`` at most, after the output's rules (killfiles and
        ``comments_exclude``; ``include``/``exclude`` and dates read the comment as an entry,
        see :mod:`aggregator.publish.commentitems`), ``comment_authors`` and ``replies_to``.
        The permalinks of the parents they reply to are added to ``parent_links``."""
        parent_links = {} if parent_links is None else parent_links
        names = [source.name for source in self.config.sources_for(output)]
        wanted = output.limit * output.pages
        now = self.clock()
        entries: dict[str, StoredEntry] = {}
        kept: list[tuple[StoredComment, StoredEntry]] = []
        rows = self.storage.iter_comment_items(
            names,
            authors=output.comment_authors,
            replies_to=output.replies_to,
            window=output.candidates,
        )
        for comment, parent in rows:
            entry = entries.get(comment.entry_public_id)
            if entry is None:
                entry = entries[comment.entry_public_id] = self.storage.get_entry(
                    comment.entry_public_id
                )
            if not keep_comment(self.comment_rules(output, entry.source_name), comment):
                continue
            rules = replace(self.entry_rules(output, entry.source_name), min_comments=None)
            if not evaluate(rules, as_entry(comment, entry), now).kept:
                continue
            view = ParentView(**parent) if comment.parent_public_id else None
            kept.append((as_item(comment, view), entry))
            if parent.get("link") and comment.parent_public_id:
                parent_links[comment.parent_public_id] = parent["link"]
            if len(kept) >= wanted:
                break
        return kept
