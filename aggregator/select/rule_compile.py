"""Filter rules compiled from configuration: the rule types, checked and ready to apply.

Pure: this module receives plain values (lists, mappings, datetimes) and returns compiled
:class:`RuleSet` and :class:`CommentRules` values, or raises :class:`RuleError` naming the bad
item. It does not apply rules to entries or comments (that, and the verdicts that explain it,
is :mod:`aggregator.select.filters`), and it reads no YAML, storage or clock.

Entry rules
    ``include`` and ``exclude`` are lists of items; each item maps fields (``title``, ``content``,
    ``author``, ``category``, ``link``, ``source``) to a regular expression. An item matches when
    all its fields match (AND); a list matches when any item matches (OR). Thresholds are
    ``max_age`` (a positive duration), ``before`` and ``after`` (naive dates and datetimes are
    taken as UTC) and ``min_comments``. Rule levels (defaults, source, output) merge with
    :func:`combine_rules`: excludes add up, each level's include list must match, the strictest
    threshold wins.

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
    as too large).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import re2

from aggregator.errors import AggregatorError

FIELDS = ("title", "content", "author", "category", "link", "source")
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
            names.setdefault(fold_name(item), prefix + path)
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


def fold_name(name: str) -> str:
    """A killfile name as compared: whitespace runs made one space, case folded."""
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
