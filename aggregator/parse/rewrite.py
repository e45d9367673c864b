"""Rewrite rules (issue 17, item 3): change an entry before it is stored.

Four kinds of rule, in two passes; within a pass, in the order written (the defaults' first,
then the source's):

``remove`` (markup pass)
    A CSS selector (selectolax, lexbor's engine): every matching element of the entry's
    ``content`` and ``summary`` is removed with its children (the text after it stays).
``replace`` (markup pass)
    An RE2 regular expression and its ``with`` text (``\\1`` and ``\\g<name>`` name groups),
    applied ``in`` the ``title``, ``content`` and/or ``summary`` (default: content and
    summary). In HTML fields the pattern sees the markup (``<a href="...">``).
``replace_url`` (URL pass)
    An RE2 pattern and its ``with``, applied to each URL of the entry: its link, its
    enclosures, and every ``href``, ``src``, ``poster`` and ``cite`` in its content and summary.
``hosts`` (URL pass)
    A host map (``youtube.com: yewtu.be``): a URL on a host, or on one of its subdomains
    (``www.youtube.com``), moves to the new host, keeping its path, query and fragment.

The markup pass sees the title, content and summary as the feed gives them, before they are
sanitized: the sanitizer drops ``class`` and ``id``, which selectors need. The URL pass sees
the sanitized entry, whose URLs are absolute.

Patterns are RE2's (the ``google-re2`` package), as for the entry rules of
:mod:`aggregator.select.rule_compile`: matching is linear in the text whatever the pattern, so a
pattern such as ``(a+)+$`` cannot stall a parse worker; backreferences and look-around are
refused when the rule is checked (:func:`check_rule`), with the reason.

Everything a rule changes is made safe again (:mod:`aggregator.parse.sanitize`): HTML through
``clean_html``, the title through ``plain_text``, URLs through ``clean_url`` (a rewritten URL that
is not fit to republish leaves the old one). So no rule can bring back a script, an event
handler or a ``javascript:`` link. An output of a ``replace`` longer than
:data:`MAX_REWRITTEN_CHARS` is not applied (a pattern matching the empty string everywhere with
a long ``with`` would otherwise build a huge string).

Rules apply to entries only, not to comments: comment threads come from comment feeds, pages
and APIs read elsewhere, and a thread is republished as the commenters wrote it.

Pure: no IO. A :class:`Rewriter` is used by :func:`aggregator.parse.feed.parse_feed` (its
``rewrite`` argument), so rules run in the parse sandbox (:mod:`aggregator.parse.sandbox`). An
entry's key is made from the feed as written, so a rule never changes which entry is which; its
``content_hash`` is made from the rewritten entry, so a changed rule updates stored entries.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import re2
from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from aggregator.models import EntryData, RewriteChange, RewriteRule
from aggregator.parse.sanitize import MAX_HTML_CHARS, clean_html, clean_url

KINDS = ("remove", "replace", "replace_url", "hosts")
TEXT_FIELDS = ("title", "content", "summary")
DEFAULT_FIELDS = ("content", "summary")
#: The longest text one ``replace`` may produce in one field; longer, the rule is not applied.
MAX_REWRITTEN_CHARS = 2 * MAX_HTML_CHARS
_URL_ATTRIBUTES = ("href", "src", "poster", "cite")
_URL_SELECTOR = ", ".join(f"[{name}]" for name in _URL_ATTRIBUTES)
_SNIPPET = 80


class RewriteError(ValueError):
    """A rule cannot be used: a selector that is not CSS, a pattern that is not RE2."""


@dataclass(frozen=True)
class _Compiled:
    rule: RewriteRule
    regex: Any = None  # an RE2 pattern for replace and replace_url
    hosts: tuple[tuple[str, str], ...] = ()  # longest host first


def check_rule(rule: RewriteRule) -> None:
    """Raise :class:`RewriteError` with the reason when ``rule`` cannot be applied."""
    _compile(rule)


def _compile(rule: RewriteRule) -> _Compiled:
    if rule.kind == "remove":
        try:
            LexborHTMLParser("<p></p>").css(rule.pattern)
        except (SelectolaxError, ValueError):
            raise RewriteError(f"{rule.pattern!r} is not a valid CSS selector") from None
        return _Compiled(rule)
    if rule.kind in ("replace", "replace_url"):
        options = re2.Options()
        options.log_errors = False  # RE2 would otherwise print every error to stderr
        try:
            regex = re2.compile(rule.pattern, options)
        except re2.error as error:
            message = error.args[0] if error.args else error
            if isinstance(message, bytes):
                message = message.decode("utf-8", "replace")
            raise RewriteError(
                f"bad regular expression (RE2 syntax: no backreferences or look-around): {message}"
            ) from None
        _check_template(regex, rule.replacement)
        return _Compiled(rule, regex=regex)
    if rule.kind == "hosts":
        return _Compiled(rule, hosts=tuple(sorted(rule.hosts, key=lambda p: -len(p[0]))))
    raise RewriteError(f"unknown rule kind {rule.kind!r}")


def _check_template(regex: Any, template: str) -> None:
    """A ``with`` that names a group the pattern lacks fails here, not at every entry."""
    groups = regex.groups
    for number in re2.compile(r"\\(\d+)|\\g<(\d+)>").finditer(template):
        index = int(number.group(1) or number.group(2))
        if index > groups:
            raise RewriteError(f"'with' refers to group {index}, the pattern has {groups}")
    names = set(regex.groupindex)
    for named in re2.compile(r"\\g<([A-Za-z_]\w*)>").finditer(template):
        if named.group(1) not in names:
            raise RewriteError(f"'with' refers to group {named.group(1)!r}, which is not defined")


@lru_cache(maxsize=64)
def _compile_all(rules: tuple[RewriteRule, ...]) -> tuple[_Compiled, ...]:
    return tuple(_compile(rule) for rule in rules)


@dataclass(frozen=True)
class Note:
    """One rule's change in one field of an entry whose key is not known yet."""

    rule: RewriteRule
    field: str
    count: int
    before: str
    after: str

    def change(self, entry: EntryData) -> RewriteChange:
        """This note as a :class:`RewriteChange` of ``entry``."""
        return RewriteChange(
            rule=self.rule.name,
            kind=self.rule.kind,
            entry_key=entry.key,
            entry_title=entry.title,
            field=self.field,
            count=self.count,
            before=_snippet(self.before),
            after=_snippet(self.after),
        )


class Rewriter:
    """One source's rules, compiled, applied in two passes.

    :meth:`markup` runs the ``remove`` and ``replace`` rules on an entry's title, content and
    summary as the feed gives them, before they are sanitized (the sanitizer drops ``class``
    and ``id``, which selectors need); :meth:`urls` runs the ``replace_url`` and ``hosts``
    rules on the finished entry, whose URLs are absolute, and sanitizes what they changed.
    """

    def __init__(self, rules: Sequence[RewriteRule]):
        compiled = _compile_all(tuple(rules))
        self._markup = tuple(c for c in compiled if c.rule.kind in ("remove", "replace"))
        self._urls = tuple(c for c in compiled if c.rule.kind in ("replace_url", "hosts"))

    def markup(self, values: dict[str, str | None]) -> tuple[dict[str, str | None], list[Note]]:
        """``values`` (``title``, ``content``, ``summary``: raw) after the markup rules."""
        if not self._markup:
            return values, []
        values = dict(values)
        for field in DEFAULT_FIELDS:  # the sanitizer keeps no more than this anyway
            if values[field] and len(str(values[field])) > MAX_HTML_CHARS:
                values[field] = str(values[field])[:MAX_HTML_CHARS]
        notes: list[Note] = []
        for compiled in self._markup:
            rule = compiled.rule
            if rule.kind == "remove":
                for field in DEFAULT_FIELDS:
                    if values[field]:
                        values[field], count, first = _remove(str(values[field]), rule.pattern)
                        if count:
                            notes.append(Note(rule, field, count, first, ""))
            else:
                for field in rule.fields or DEFAULT_FIELDS:
                    if values[field]:
                        new, count, before, after = _replace_text(
                            compiled.regex, rule, str(values[field])
                        )
                        if count:
                            values[field] = new
                            notes.append(Note(rule, field, count, before, after))
        return values, notes

    def urls(self, values: dict[str, Any], base: str | None) -> tuple[dict[str, Any], list[Note]]:
        """``values`` (``link``, ``content``, ``summary``: sanitized, ``enclosures``) after the
        URL rules; the HTML they changed is sanitized again (against ``base``)."""
        if not self._urls:
            return values, []
        values = dict(values)
        original = dict(values)
        notes: list[Note] = []
        for compiled in self._urls:
            rule, rewrite = compiled.rule, _url_rewriter(compiled)
            link = values["link"]
            if link and (new_link := rewrite(link)) != link:
                notes.append(Note(rule, "link", 1, link, new_link))
                values["link"] = new_link
            moved = []
            for enclosure in values["enclosures"]:
                new_url = rewrite(enclosure.url)
                if new_url != enclosure.url:
                    notes.append(Note(rule, "enclosure", 1, enclosure.url, new_url))
                    enclosure = replace(enclosure, url=new_url)
                moved.append(enclosure)
            values["enclosures"] = tuple(moved)
            for field in DEFAULT_FIELDS:
                if values[field]:
                    values[field], count, before, after = _rewrite_html_urls(values[field], rewrite)
                    if count:
                        notes.append(Note(rule, field, count, before, after))
        for field in DEFAULT_FIELDS:
            if values[field] != original[field]:
                values[field] = clean_html(values[field], values["link"] or base) or None
        return values, notes


def rules_mark(rules: Sequence[RewriteRule]) -> str:
    """A short digest of what ``rules`` do (their names left out), ``""`` for none.

    The poller appends it to the body digest it stores, so that after a rule changes the
    next poll fetches without validators and parses and stores the same body again
    (issue 17: a changed rule applies to the entries still in the feed).
    """
    if not rules:
        return ""
    text = json.dumps(
        [
            [r.kind, r.pattern, r.replacement, list(r.fields), [list(h) for h in r.hosts]]
            for r in rules
        ]
    )
    return "+" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


# -- the rule kinds -----------------------------------------------------------------------------


def _fragment(markup: str) -> LexborHTMLParser:
    # Lone surrogates cannot be encoded for the parser; sanitized HTML holds none anyway.
    return LexborHTMLParser(markup.encode("utf-8", "replace"))


def _inner(tree: LexborHTMLParser) -> str:
    body = tree.body
    return (body.inner_html or "") if body is not None else ""


def _remove(markup: str, selector: str) -> tuple[str, int, str]:
    """``markup`` without the elements ``selector`` matches, their count and the first one."""
    tree = _fragment(markup)
    if tree.body is None:
        return markup, 0, ""
    found = tree.body.css(selector)
    if not found:
        return markup, 0, ""
    first = found[0].html or ""
    # Last first: a match inside another match goes before its ancestor, whose removal frees it.
    for node in reversed(found):
        node.decompose()
    return _inner(tree), len(found), first


def _replace_text(regex: Any, rule: RewriteRule, text: str) -> tuple[str, int, str, str]:
    """``text`` with every match replaced, the count, and the first match before and after.

    Built piece by piece so that an output over :data:`MAX_REWRITTEN_CHARS` is given up as
    soon as it gets that long (then the count is 0 and ``text`` comes back unchanged).
    """
    pieces: list[str] = []
    size = 0
    end = 0
    count = 0
    before = after = ""
    for match in regex.finditer(text):
        start, stop = match.span()
        replacement = match.expand(rule.replacement)
        if not count:
            before, after = match.group(0), replacement
        pieces.append(text[end:start])
        pieces.append(replacement)
        size += (start - end) + len(replacement)
        end = stop
        count += 1
        if size > MAX_REWRITTEN_CHARS:
            return text, 0, "", ""
    if not count:
        return text, 0, "", ""
    pieces.append(text[end:])
    return "".join(pieces), count, before, after


def _url_rewriter(compiled: _Compiled) -> Any:
    """A function from one URL to its rewritten form (the URL itself when nothing applies, or
    when the result is not an absolute URL fit to republish)."""
    rule = compiled.rule

    def by_pattern(url: str) -> str:
        new = compiled.regex.sub(rule.replacement, url)
        return new if new == url else (_fit_url(new) or url)

    def by_host(url: str) -> str:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if not host or parts.scheme not in ("http", "https"):
            return url
        for old, new in compiled.hosts:
            if host == old or host.endswith("." + old):
                netloc = new if ":" in new or parts.port is None else f"{new}:{parts.port}"
                return _fit_url(urlunsplit(parts._replace(netloc=netloc))) or url
        return url

    return by_pattern if rule.kind == "replace_url" else by_host


def _fit_url(url: str) -> str | None:
    cleaned = clean_url(url)
    if cleaned is None or urlsplit(cleaned).scheme not in ("http", "https", "mailto", "ftp"):
        return None
    return cleaned


def _rewrite_html_urls(markup: str, rewrite: Any) -> tuple[str, int, str, str]:
    """``markup`` with the URLs of its ``href``/``src``/``poster``/``cite`` rewritten."""
    if not any(f"{name}=" in markup for name in _URL_ATTRIBUTES):
        return markup, 0, "", ""
    tree = _fragment(markup)
    if tree.body is None:
        return markup, 0, "", ""
    count = 0
    before = after = ""
    node: LexborNode
    for node in tree.body.css(_URL_SELECTOR):
        for name in _URL_ATTRIBUTES:
            old = node.attributes.get(name)
            if not old:
                continue
            new = rewrite(old)
            if new != old:
                node.attrs[name] = new
                if not count:
                    before, after = old, new
                count += 1
    if not count:
        return markup, 0, "", ""
    return _inner(tree), count, before, after


def _snippet(text: str) -> str:
    text = " ".join(html.unescape(text).split()) if "<" not in text else " ".join(text.split())
    return text if len(text) <= _SNIPPET else text[: _SNIPPET - 1] + "…"
