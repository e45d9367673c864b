"""Filter rules applied: keep or drop entries and comments, and say why.

Pure: this module receives rules compiled by :mod:`aggregator.select.rule_compile` (which owns
the rule syntax, the RE2 patterns and :class:`~aggregator.select.rule_compile.RuleError`),
entries and comments, and returns decisions. It does not read YAML, storage or the clock;
``now`` is passed in.

Entries
    An entry is dropped when it fails a threshold (``max_age``, ``before``, ``after``,
    ``min_comments``) or matches any exclude item; otherwise, if there are include items, it must
    match one. Exclude wins, and the order of items never changes whether an entry is kept.
    ``content`` is the visible text of the content or the summary (tags stripped, entities
    decoded); ``category`` matches any one category; ``source`` matches the source name or its
    title. Date thresholds compare the entry's date (:attr:`StoredEntry.dated_at`: its published
    time, else when it was first seen).

Comments
    A comment is dropped when its author is in a killfile (by name or pattern) or its visible
    text matches an exclude pattern.

Only the first :data:`MAX_MATCH_CHARS` characters of each field are examined, so one huge post
costs no more than a long one. A :class:`Verdict` names the rule that decided, the field and an
excerpt of the text that matched, for ``preview --explain``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from aggregator.models import StoredComment, StoredEntry
from aggregator.parse.sanitize import plain_text
from aggregator.select.rule_compile import CommentRules, Condition, Rule, RuleSet, fold_name
from aggregator.select.shaping import ELLIPSIS

MAX_MATCH_CHARS = 100_000
# HTML is cut before it is parsed for matching; generous, since markup outweighs text.
_MAX_HTML_CHARS = 4 * MAX_MATCH_CHARS
_EXCERPT_CONTEXT = 30
_EXCERPT_MATCH = 80


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
    name_rule = rules.names.get(fold_name(author)) if author.strip() else None
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
