"""Which entry rules apply where: compiled once from the configuration, by level.

Pure: reads an :class:`~aggregator.config.schema.AppConfig` (already validated) and returns
compiled :class:`~aggregator.select.rule_compile.RuleSet` values, store-time decisions and the SQL half
of an output's selection (:class:`~aggregator.models.CandidateQuery`). It does not touch
storage, the network or the clock (``now`` is passed in).

Levels
    ``defaults`` rules apply to every entry of every source; a source's rules to its own
    entries; an output's rules to the entries it publishes. When storing, the defaults and the
    source's rules decide whether a *new* entry is stored. When publishing, all three levels
    apply together (:func:`~aggregator.select.rule_compile.combine_rules`: excludes add up, each level's
    include list must match, the strictest date wins), so an entry stored before a rule was
    added is hidden from every output as soon as the rule exists. Nothing stored is deleted.

Rule names
    Verdicts name rules by their place in the file (``outputs[0].exclude[1]``,
    ``sources[2].include[0]``, ``defaults.exclude[0]``), which :meth:`AppConfig.line_of` turns
    into a line number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from aggregator.config.outputs import OutputConfig
from aggregator.config.schema import AppConfig
from aggregator.config.sources import DefaultsConfig, SourceConfig
from aggregator.models import CandidateQuery, EntryData, StoredEntry
from aggregator.select.filters import Verdict, evaluate
from aggregator.select.rule_compile import RuleSet, combine_rules, compile_rules


@dataclass(frozen=True)
class RuleBook:
    """Every level's compiled entry rules for one configuration."""

    defaults: RuleSet
    sources: Mapping[str, RuleSet]
    outputs: Mapping[str, RuleSet]

    @classmethod
    def from_config(cls, config: AppConfig) -> RuleBook:
        """Compile the rules of ``defaults``, every source and every output."""
        return cls(
            defaults=_compile(config.defaults, "defaults"),
            sources={
                source.name: _compile(source, f"sources[{index}]")
                for index, source in enumerate(config.sources)
            },
            outputs={
                output.name: _compile(output, f"outputs[{index}]")
                for index, output in enumerate(config.outputs)
            },
        )

    def for_storing(self, source_name: str) -> RuleSet:
        """The rules a new entry of ``source_name`` must pass to be stored."""
        return self.defaults + self.sources.get(source_name, RuleSet())

    def for_output(self, output_name: str, source_name: str) -> RuleSet:
        """The rules an entry of ``source_name`` must pass to appear in ``output_name``.

        A source no longer in the configuration has no rules of its own.
        """
        return combine_rules(
            self.defaults,
            self.sources.get(source_name, RuleSet()),
            self.outputs.get(output_name, RuleSet()),
        )


def _compile(level: DefaultsConfig | SourceConfig | OutputConfig, scope: str) -> RuleSet:
    return compile_rules(
        level.rule_items("include"),
        level.rule_items("exclude"),
        level.max_age,
        level.before,
        level.after,
        getattr(level, "min_comments", None),
        scope=scope,
    )


def is_empty(ruleset: RuleSet) -> bool:
    """Whether ``ruleset`` keeps every entry (no rule at all)."""
    return ruleset == RuleSet()


# -- storing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Screened:
    """A poll's entries after the store-time rules: those to store and those skipped."""

    kept: tuple[EntryData, ...]
    skipped: tuple[tuple[EntryData, Verdict], ...] = ()


def screen_new_entries(
    ruleset: RuleSet,
    entries: Sequence[EntryData],
    known_keys: Iterable[str],
    *,
    source_name: str,
    source_title: str | None,
    source_url: str,
    now: datetime,
) -> Screened:
    """Drop the *new* entries that ``ruleset`` excludes; keep every entry already stored.

    An entry already stored is always passed on, so that it keeps being updated; the
    publish-time rules hide it if it now fails them. ``known_keys`` are the stored keys.
    """
    if is_empty(ruleset):
        return Screened(tuple(entries))
    known = set(known_keys)
    kept: list[EntryData] = []
    skipped: list[tuple[EntryData, Verdict]] = []
    for entry in entries:
        if entry.key in known or not known.isdisjoint(entry.alternate_keys):
            kept.append(entry)
            continue
        verdict = evaluate(
            ruleset, as_stored(entry, source_name, source_title, source_url, now), now
        )
        if verdict.kept:
            kept.append(entry)
        else:
            skipped.append((entry, verdict))
    return Screened(tuple(kept), tuple(skipped))


def as_stored(
    entry: EntryData, source_name: str, source_title: str | None, source_url: str, now: datetime
) -> StoredEntry:
    """How ``entry`` would read back from storage if it were stored ``now`` (for rules)."""
    published = entry.published_at
    return StoredEntry(
        id=0,
        public_id="",
        source_name=source_name,
        source_title=source_title,
        source_url=source_url,
        source_link=None,
        key=entry.key,
        title=entry.title,
        link=entry.link,
        author=entry.author,
        summary=entry.summary,
        content=entry.content,
        published_at=published,
        updated_at=entry.updated_at,
        first_seen_at=now,
        categories=entry.categories,
        enclosures=entry.enclosures,
        guid=entry.guid,
        # The same choice as storage's sort_at: a date in the future counts as "now".
        sort_at=published if published is not None and published <= now else now,
    )


# -- publishing ---------------------------------------------------------------------------------


def candidate_query(
    config: AppConfig, rules: RuleBook, output: OutputConfig, now: datetime, *, explain: bool
) -> CandidateQuery:
    """The SQL half of an output's selection: sources, date and comment bounds, search, order.

    Bounds come from the defaults and the output only: a source's own dates are stricter and
    are left to the Python rules, so SQL never drops an entry the rules would keep. With
    ``explain``, only the sources and the order are left to SQL, so that every entry of the
    selected sources reaches the rules and gets a verdict.
    """
    # Always by name, even for "every source": a source removed from the configuration keeps
    # its stored entries, which no output shows.
    names = tuple(source.name for source in config.sources_for(output))
    if explain:
        return CandidateQuery(source_names=names, sort=output.sort, window=output.candidates)
    common = rules.defaults + rules.outputs.get(output.name, RuleSet())
    since = [bound for bound in (common.after,) if bound is not None]
    if common.max_age is not None:
        since.append(now - common.max_age)
    return CandidateQuery(
        source_names=names,
        sort=output.sort,
        since=max(since) if since else None,
        until=common.before,
        min_comments=common.min_comments or None,
        search=output.search,
        window=output.candidates,
    )
