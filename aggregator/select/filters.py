"""Filter rules: compile them from configuration, apply them to entries and comments.

Pure: this module receives plain values (lists, mappings, datetimes) and entries, and returns
decisions. It does not read YAML, storage or the clock; ``now`` is passed in.

Entry rules
    ``include`` and ``exclude`` are lists of items; each item maps fields (``title``, ``content``,
    ``author``, ``category``, ``link``, ``source``) to a regular expression. An item matches when
    all its fields match (AND); a list matches when any item matches (OR). An entry is dropped
    when it fails a threshold (``max_age``, ``before``, ``after``, ``min_comments``) or matches
    any exclude item; otherwise, if there are include items, it must match one. Exclude wins, and
    the order of items never changes whether an entry is kept. ``content`` is the visible text of
    the content or the summary (tags stripped, entities decoded); ``category`` matches any one
    category; ``source`` matches the source name or its title. Date thresholds compare the
    entry's date (:attr:`StoredEntry.dated_at`: its published time, else when it was first seen).

Comment rules
    A killfile lists comment authors: a plain name matches exactly, ignoring case and surrounding
    whitespace; ``/regex/flags`` (flags from ``i``, ``m``, ``s``) is a regular expression,
    case-sensitive unless ``i`` is given. Exclude patterns match the comment's visible text.

Regular expressions: RE2, not Python's ``re``
    Patterns come from users and are matched against text from the internet, so a pattern such
    as ``(a+)+$`` must not be able to stall the daemon. We compile them with RE2 (the
    ``google-re2`` package), whose automata run in time linear in the text, whatever the pattern:
    there is no backtracking and so no timeout to handle. The syntax is Python's ``re`` without
    backreferences (``\\1``), look-around (``(?=``, ``(?<=``, ...), possessive or atomic groups and
    ``\\Z`` (RE2 spells it ``\\z``); see https://github.com/google/re2/wiki/Syntax. Such patterns
    are rejected when the rules are compiled, with a :class:`RuleError` naming the item, so a bad
    pattern is a configuration error rather than a surprise at run time. Entry patterns are
    case-insensitive; ``(?-i)`` at the start of a pattern makes it case-sensitive.
    Each pattern is limited to RE2's default 8 MiB of automaton memory (a bigger one is rejected
    as too large), and only the first :data:`MAX_MATCH_CHARS` characters of each field are
    examined, so one huge post costs no more than a long one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import re2

from aggregator.errors import AggregatorError
from aggregator.models import StoredComment, StoredEntry
from aggregator.parse.sanitize import plain_text
from aggregator.select.shaping import ELLIPSIS

FIELDS = ("title", "content", "author", "category", "link", "source")
MAX_MATCH_CHARS = 100_000
# HTML is cut before it is parsed for matching; generous, since markup outweighs text.
_MAX_HTML_CHARS = 4 * MAX_MATCH_CHARS
_EXCERPT_CONTEXT = 30
_EXCERPT_MATCH = 80
_KILLFILE_FLAGS = frozenset("ims")


class RuleError(AggregatorError, ValueError):
    """A filter rule cannot be compiled.

    ``path`` names the item relative to the lists given (``exclude[1].author``, ``max_age``,
    ``killfile[0]``) so the configuration layer can prefix it with its file, line and key path.
    """

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class Condition:
    """One field of a rule item and its compiled pattern."""

    field: str
    pattern: str
    regex: Any = dataclasses.field(repr=False, compare=False)  # `field` is the attribute above


@dataclass(frozen=True)
class Rule:
    """One include or exclude item: all its conditions must match."""

    name: str  # "include[0]", or "<scope>.include[0]"
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class RuleMatch:
    """Why a rule applied: the rule, the field and an excerpt of the text that matched."""

    rule: str
    field: str
    pattern: str
    text: str


@dataclass(frozen=True)
class Verdict:
    """Whether an entry or comment is kept, and why.

    ``rule`` names what decided (``exclude[0]``, ``include[2]``, ``max_age``; ``include`` when no
    include item matched; ``None`` when no rule applied). ``matches`` holds one
    :class:`RuleMatch` per matching condition, for ``preview --explain``.
    """

    kept: bool
    rule: str | None = None
    reason: str = "no rule applies"
    matches: tuple[RuleMatch, ...] = ()

    @property
    def field(self) -> str | None:
        """The first field that matched, if any."""
        return self.matches[0].field if self.matches else None

    @property
    def text(self) -> str | None:
        """An excerpt of the first text that matched, if any."""
        return self.matches[0].text if self.matches else None

    def explain(self) -> str:
        """One line for people, e.g. ``dropped by exclude[0]: author /^guest$/ matched "Guest"``."""
        head = ("kept" if self.kept else "dropped") + (f" by {self.rule}" if self.rule else "")
        if not self.matches:
            return f"{head}: {self.reason}"
        return f"{head}: " + "; ".join(_describe(match) for match in self.matches)


def _describe(match: RuleMatch) -> str:
    if match.pattern:
        return f'{match.field} /{match.pattern}/ matched "{match.text}"'
    return f"{match.field}: {match.text}"


@dataclass(frozen=True)
class RuleSet:
    """Compiled entry rules, ready to apply.

    ``include`` holds one group per rule level (defaults, source, output): an entry must match
    some item of every group. Build one with :func:`compile_rules`, merge levels with
    :func:`combine_rules` or ``+``.
    """

    include: tuple[tuple[Rule, ...], ...] = ()
    exclude: tuple[Rule, ...] = ()
    max_age: timedelta | None = None
    before: datetime | None = None
    after: datetime | None = None
    min_comments: int | None = None
    # The scoped name of each threshold's level (``outputs[0].max_age``), for verdicts.
    names: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __add__(self, other: RuleSet) -> RuleSet:
        return combine_rules(self, other)


@dataclass(frozen=True)
class CommentRules:
    """Compiled comment rules: killfile names, killfile patterns and text exclusions."""

    names: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)
    authors: tuple[Rule, ...] = ()
    exclude: tuple[Rule, ...] = ()


# -- compiling ----------------------------------------------------------------------------------


def compile_rules(
    include: Sequence[Mapping[str, Any]] | None = None,
    exclude: Sequence[Mapping[str, Any]] | None = None,
    max_age: timedelta | None = None,
    before: datetime | date | None = None,
    after: datetime | date | None = None,
    min_comments: int | None = None,
    *,
    scope: str = "",
) -> RuleSet:
    """Compile one level of entry rules (defaults, a source or an output).

    ``scope`` (e.g. ``sources.moa``) prefixes rule names in verdicts, so an explanation says
    which level decided; it is not part of :class:`RuleError` paths. Naive datetimes and dates
    are taken as UTC. Raises :class:`RuleError` naming the first bad item.
    """
    prefix = f"{scope}." if scope else ""
    include_rules = _compile_items("include", include, prefix)
    limits = RuleSet(  # checked before the exclude items, so the first bad one is reported
        max_age=_check_max_age(max_age),
        before=_as_utc("before", before),
        after=_as_utc("after", after),
        min_comments=_check_min_comments(min_comments),
    )
    thresholds = {
        "max_age": limits.max_age,
        "before": limits.before,
        "after": limits.after,
        "min_comments": limits.min_comments,
    }
    return dataclasses.replace(
        limits,
        include=(include_rules,) if include_rules else (),
        exclude=_compile_items("exclude", exclude, prefix),
        names={name: prefix + name for name, value in thresholds.items() if value is not None},
    )


def combine_rules(*rulesets: RuleSet) -> RuleSet:
    """Merge rule levels into one: every level's rules apply.

    Excludes add up, each level's include list must be satisfied, and of each threshold the
    strictest wins. The result does not depend on the order of the arguments.
    """
    picks = {"max_age": min, "before": min, "after": max, "min_comments": max}
    thresholds: dict[str, Any] = {}
    names: dict[str, str] = {}
    for name, pick in picks.items():
        levels = [r for r in rulesets if getattr(r, name) is not None]
        if levels:
            # The first level holding the strictest value names it, whatever the order.
            value = pick(getattr(r, name) for r in levels)
            thresholds[name] = value
            names[name] = min(r.names.get(name, name) for r in levels if getattr(r, name) == value)
    return RuleSet(
        include=tuple(group for ruleset in rulesets for group in ruleset.include),
        exclude=tuple(rule for ruleset in rulesets for rule in ruleset.exclude),
        **thresholds,
        names=names,
    )


def compile_comment_rules(
    killfile: Sequence[str] | None = None,
    exclude_patterns: Sequence[str] | None = None,
    *,
    scope: str = "",
) -> CommentRules:
    """Compile a killfile and comment text patterns; raises :class:`RuleError` naming the item."""
    prefix = f"{scope}." if scope else ""
    names: dict[str, str] = {}
    authors: list[Rule] = []
    for index, item in enumerate(_as_list("killfile", killfile)):
        path = f"killfile[{index}]"
        if not isinstance(item, str) or not item.strip():
            raise RuleError(path, "expected an author name or /regex/flags")
        if _is_slashed(item):
            pattern = _killfile_pattern(path, item)
            condition = Condition("author", pattern, _compile(path, pattern, ignore_case=False))
            authors.append(Rule(prefix + path, (condition,)))
        else:
            names.setdefault(_fold_name(item), prefix + path)
    excludes = []
    for index, item in enumerate(_as_list("exclude", exclude_patterns)):
        path = f"exclude[{index}]"
        pattern = _check_pattern(path, item)
        condition = Condition("content", pattern, _compile(path, pattern, ignore_case=True))
        excludes.append(Rule(prefix + path, (condition,)))
    return CommentRules(names=names, authors=tuple(authors), exclude=tuple(excludes))


def combine_comment_rules(*rules: CommentRules) -> CommentRules:
    """Merge comment rule levels: a comment any of them drops is dropped."""
    names: dict[str, str] = {}
    for item in rules:
        for name, rule in item.names.items():
            names.setdefault(name, rule)
    return CommentRules(
        names=names,
        authors=tuple(rule for item in rules for rule in item.authors),
        exclude=tuple(rule for item in rules for rule in item.exclude),
    )


def _compile_items(
    kind: str, items: Sequence[Mapping[str, Any]] | None, prefix: str
) -> tuple[Rule, ...]:
    rules = []
    for index, item in enumerate(_as_list(kind, items)):
        path = f"{kind}[{index}]"
        if not isinstance(item, Mapping) or not item:
            raise RuleError(path, f"expected a mapping of fields ({', '.join(FIELDS)}) to patterns")
        conditions = []
        for name in sorted(item, key=str):
            if name not in FIELDS:
                raise RuleError(f"{path}.{name}", f"unknown field; use one of {', '.join(FIELDS)}")
            pattern = _check_pattern(f"{path}.{name}", item[name])
            conditions.append(Condition(name, pattern, _compile(f"{path}.{name}", pattern)))
        rules.append(Rule(prefix + path, tuple(conditions)))
    return tuple(rules)


def _as_list(kind: str, items: Any) -> Sequence[Any]:
    if items is None:
        return ()
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Sequence):
        raise RuleError(kind, "expected a list")
    return items


def _check_pattern(path: str, value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)  # YAML reads `title: 1984` as a number
    if not isinstance(value, str):
        raise RuleError(path, "expected a regular expression (a string)")
    if not value:
        raise RuleError(path, "empty pattern would match everything")
    return value


def _compile(path: str, pattern: str, *, ignore_case: bool = True) -> Any:
    options = re2.Options()
    options.case_sensitive = not ignore_case
    options.log_errors = False  # RE2 would otherwise print every error to stderr
    try:
        return re2.compile(pattern, options)
    except re2.error as error:
        message = error.args[0] if error.args else error
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        raise RuleError(path, f"bad regular expression: {message}") from error


def _is_slashed(item: str) -> bool:
    text = item.strip()
    return len(text) > 2 and text.startswith("/") and text.rfind("/") > 0


def _killfile_pattern(path: str, item: str) -> str:
    text = item.strip()
    end = text.rfind("/")
    pattern, flags = text[1:end], text[end + 1 :]
    unknown = sorted(set(flags) - _KILLFILE_FLAGS)
    if unknown:
        raise RuleError(path, f"unknown regular expression flag {unknown[0]!r}; use i, m or s")
    if not pattern:
        raise RuleError(path, "empty pattern would match everything")
    return f"(?{''.join(sorted(set(flags)))}){pattern}" if flags else pattern


def _fold_name(name: str) -> str:
    return " ".join(name.split()).casefold()


def _check_max_age(value: timedelta | None) -> timedelta | None:
    if value is not None and (not isinstance(value, timedelta) or value <= timedelta(0)):
        raise RuleError("max_age", "expected a positive duration")
    return value


def _check_min_comments(value: int | None) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise RuleError("min_comments", "expected a whole number, 0 or more")
    return value


def _as_utc(path: str, value: datetime | date | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), UTC)
    raise RuleError(path, "expected a date or a date and time")


# -- applying -----------------------------------------------------------------------------------


def evaluate(ruleset: RuleSet, entry: StoredEntry, now: datetime) -> Verdict:
    """Decide whether ``entry`` is kept, and say which rule decided, on which field and text.

    Thresholds are checked first, then excludes, then includes; when several rules apply, the
    verdict names the first in the order given (the decision itself does not depend on order).
    """
    verdict = _check_thresholds(ruleset, entry, now)
    if verdict is not None:
        return verdict
    fields = _EntryFields(entry)
    for rule in ruleset.exclude:
        matches = _match_rule(rule, fields)
        if matches:
            return Verdict(False, rule.name, "matched an exclude rule", matches)
    kept_by: list[RuleMatch] = []
    for group in ruleset.include:
        matches = _match_any(group, fields)
        if not matches:
            name = _group_name(group)
            tried = "; ".join(
                " and ".join(f"{c.field} /{c.pattern}/" for c in rule.conditions) for rule in group
            )
            match = RuleMatch(name, "include", "", f"none of {tried} matched")
            return Verdict(False, name, "matched no include rule", (match,))
        kept_by.extend(matches)
    if kept_by:
        return Verdict(True, kept_by[0].rule, "matched an include rule", tuple(kept_by))
    return Verdict(True)


def _group_name(group: Sequence[Rule]) -> str:
    """``outputs[0].include`` for a group whose rules are ``outputs[0].include[N]``."""
    return group[0].name.rpartition("[")[0] if group else "include"


def keep(ruleset: RuleSet, entry: StoredEntry, now: datetime) -> bool:
    """Whether ``entry`` is kept; the bulk form of :func:`evaluate`."""
    if _check_thresholds(ruleset, entry, now) is not None:
        return False
    fields = _EntryFields(entry)
    if any(_rule_hits(rule, fields) for rule in ruleset.exclude):
        return False
    return all(any(_rule_hits(rule, fields) for rule in group) for group in ruleset.include)


def select(ruleset: RuleSet, entries: Iterable[StoredEntry], now: datetime) -> list[StoredEntry]:
    """The entries that ``ruleset`` keeps, in their given order."""
    return [entry for entry in entries if keep(ruleset, entry, now)]


def comment_verdict(rules: CommentRules, comment: StoredComment) -> Verdict:
    """Decide whether ``comment`` is kept: dropped when its author is killfiled or its text
    matches an exclude pattern."""
    author = comment.author or ""
    name_rule = rules.names.get(_fold_name(author)) if author.strip() else None
    if name_rule is not None:
        match = RuleMatch(name_rule, "author", "", f"{_excerpt_text(author)!r} is in the killfile")
        return Verdict(False, name_rule, "author is in the killfile", (match,))
    fields = _CommentFields(comment)
    for rule in rules.authors:
        matches = _match_rule(rule, fields)
        if matches:
            return Verdict(False, rule.name, "author is in the killfile", matches)
    for rule in rules.exclude:
        matches = _match_rule(rule, fields)
        if matches:
            return Verdict(False, rule.name, "matched an exclude pattern", matches)
    return Verdict(True)


def keep_comment(rules: CommentRules, comment: StoredComment) -> bool:
    """Whether ``comment`` is kept; same decision as :func:`comment_verdict`."""
    return comment_verdict(rules, comment).kept


def _check_thresholds(ruleset: RuleSet, entry: StoredEntry, now: datetime) -> Verdict | None:
    dated = entry.dated_at
    if ruleset.max_age is not None and now - dated > ruleset.max_age:
        text = f"{dated.isoformat()} is older than {_duration(ruleset.max_age)}"
        return _threshold(ruleset, "max_age", "date", text)
    if ruleset.before is not None and dated >= ruleset.before:
        text = f"{dated.isoformat()} is not before {ruleset.before}"
        return _threshold(ruleset, "before", "date", text)
    if ruleset.after is not None and dated < ruleset.after:
        return _threshold(
            ruleset, "after", "date", f"{dated.isoformat()} is before {ruleset.after}"
        )
    if ruleset.min_comments is not None and entry.comment_count < ruleset.min_comments:
        text = f"{entry.comment_count} comments, fewer than {ruleset.min_comments}"
        return _threshold(ruleset, "min_comments", "comments", text)
    return None


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _threshold(ruleset: RuleSet, name: str, field_name: str, text: str) -> Verdict:
    rule = ruleset.names.get(name, name)
    return Verdict(False, rule, text, (RuleMatch(rule, field_name, "", text),))


class _Fields:
    """The texts of an item per field, UTF-8 encoded and bounded, computed once on demand."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[str, tuple[bytes, ...]] = {}

    def get(self, name: str) -> tuple[bytes, ...]:
        texts = self._cache.get(name)
        if texts is None:
            texts = self._cache[name] = tuple(_bounded(text) for text in self._texts(name) if text)
        return texts

    def _texts(self, name: str) -> Iterable[str | None]:
        raise NotImplementedError


class _EntryFields(_Fields):
    """The texts of an entry per field."""

    __slots__ = ("_entry",)

    def __init__(self, entry: StoredEntry):
        super().__init__()
        self._entry = entry

    def _texts(self, name: str) -> Iterable[str | None]:
        entry = self._entry
        if name == "content":
            return (_visible(entry.content), _visible(entry.summary))
        if name == "category":
            return entry.categories
        if name == "source":
            return (entry.source_name, entry.source_title)
        return (getattr(entry, name),)  # title, author, link


class _CommentFields(_Fields):
    """The texts of a comment per field (``author``; anything else is its visible text)."""

    __slots__ = ("_comment",)

    def __init__(self, comment: StoredComment):
        super().__init__()
        self._comment = comment

    def _texts(self, name: str) -> Iterable[str | None]:
        comment = self._comment
        if name == "author":
            return (comment.author,)
        return (_visible(comment.content),)


def _visible(html: str | None) -> str | None:
    return plain_text(html[:_MAX_HTML_CHARS], limit=None) if html else None


def _bounded(text: str) -> bytes:
    return text[:MAX_MATCH_CHARS].encode("utf-8", "surrogatepass")


def _rule_hits(rule: Rule, fields: _Fields) -> bool:
    return all(
        any(condition.regex.search(text) for text in fields.get(condition.field))
        for condition in rule.conditions
    )


def _match_rule(rule: Rule, fields: _Fields) -> tuple[RuleMatch, ...]:
    """One RuleMatch per condition when every condition matches, else ``()``."""
    matches = []
    for condition in rule.conditions:
        found = _first_match(condition, fields.get(condition.field))
        if found is None:
            return ()
        matches.append(RuleMatch(rule.name, condition.field, condition.pattern, found))
    return tuple(matches)


def _match_any(rules: Sequence[Rule], fields: _Fields) -> tuple[RuleMatch, ...]:
    for rule in rules:
        matches = _match_rule(rule, fields)
        if matches:
            return matches
    return ()


def _first_match(condition: Condition, texts: tuple[bytes, ...]) -> str | None:
    for text in texts:
        found = condition.regex.search(text)
        if found is not None:
            return _excerpt(text, *found.span())
    return None


def _excerpt(text: bytes, start: int, end: int) -> str:
    """The matched text with a little context either side, ``…`` marking what was left out."""
    window = _EXCERPT_CONTEXT * 4  # bytes: enough for the context in any UTF-8 text
    # Offsets are in bytes; "ignore" drops a character split by a window's edge.
    left = text[max(0, start - window) : start].decode("utf-8", "ignore")
    middle = text[start:end].decode("utf-8", "ignore")
    right = text[end : end + window].decode("utf-8", "ignore")
    if len(middle) > _EXCERPT_MATCH:
        middle = middle[:_EXCERPT_MATCH] + ELLIPSIS
    prefix = ELLIPSIS if len(left) > _EXCERPT_CONTEXT or start > window else ""
    suffix = ELLIPSIS if len(right) > _EXCERPT_CONTEXT or end + window < len(text) else ""
    left, right = left[-_EXCERPT_CONTEXT:], right[:_EXCERPT_CONTEXT]
    return _excerpt_text(prefix + left + middle + right + suffix)


def _excerpt_text(text: str) -> str:
    return " ".join(text.split())
