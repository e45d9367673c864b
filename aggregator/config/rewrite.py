"""``rewrite:``: the rewrite rules of ``defaults`` and of a source, as written in the file.

Each item of a ``rewrite:`` list is one rule, named by its one kind key::

    rewrite:
      - remove: "div.ad, .share-buttons"          # a CSS selector
      - replace: "Sponsored by [^<]*"             # an RE2 regular expression ...
        with: ""                                  # ... its replacement (required)
        in: [content, summary]                    # optional: title, content, summary
      - replace_url: "^https://t\\.co/(.*)$"       # an RE2 pattern for each URL
        with: "https://example.org/\\1"
      - hosts: {youtube.com: yewtu.be, twitter.com: nitter.net}

Pure: checks the shape of each item here and asks :mod:`aggregator.parse.rewrite` whether its
selector or pattern can be used, so a bad one is a configuration error at load time, reported
as :class:`~aggregator.select.rule_compile.RuleError` with the item's path
(``rewrite[1].replace``) for :func:`~aggregator.config.loading.load_config` to put a line on.
Does not apply rules (see :mod:`aggregator.parse.rewrite`) nor merge the defaults' with a
source's (see :meth:`aggregator.config.schema.AppConfig.rewrite_for`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from aggregator.models import RewriteRule
from aggregator.parse.rewrite import KINDS, TEXT_FIELDS, RewriteError, check_rule
from aggregator.select.rule_compile import RuleError

_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_HOST = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*(?::\d{{1,5}})?$")
_ALLOWED = {
    "remove": {"remove"},
    "replace": {"replace", "with", "in"},
    "replace_url": {"replace_url", "with"},
    "hosts": {"hosts"},
}


def rewrite_rules(value: Any) -> tuple[RewriteRule, ...]:
    """The ``rewrite:`` list as checked rules; raises :class:`RuleError` naming the bad item."""
    if value is None:
        return ()
    if isinstance(value, tuple) and all(isinstance(item, RewriteRule) for item in value):
        return value  # already checked (a model copied or revalidated)
    if not isinstance(value, list):
        raise RuleError("rewrite", "expected a list of rules (remove, replace, replace_url, hosts)")
    return tuple(_rule(f"rewrite[{index}]", item) for index, item in enumerate(value))


def _rule(path: str, item: Any) -> RewriteRule:
    if not isinstance(item, Mapping):
        raise RuleError(path, f"expected a mapping with one of {', '.join(KINDS)}")
    kinds = [key for key in item if key in KINDS]
    if len(kinds) != 1:
        if kinds:
            found = f"found {', '.join(map(str, kinds))}"
        else:
            found = f"unknown key {', '.join(map(repr, item))}" if item else "an empty rule"
        raise RuleError(path, f"a rule needs exactly one of {', '.join(KINDS)} ({found})")
    kind = str(kinds[0])
    for key in item:
        if key not in _ALLOWED[kind]:
            raise RuleError(f"{path}.{key}", f"unknown key for a {kind} rule")
    if kind == "hosts":
        rule = RewriteRule("hosts", hosts=_hosts(f"{path}.hosts", item["hosts"]))
    else:
        pattern = _text(f"{path}.{kind}", item[kind])
        if not pattern:
            raise RuleError(f"{path}.{kind}", "must not be empty")
        replacement = ""
        if kind in ("replace", "replace_url"):
            if "with" not in item:
                raise RuleError(path, f"a {kind} rule needs 'with' (its replacement; \"\" removes)")
            replacement = _text(f"{path}.with", item["with"], allow_none=True)
        fields = _fields(f"{path}.in", item["in"]) if "in" in item else ()
        rule = RewriteRule(kind, pattern=pattern, replacement=replacement, fields=fields)
    try:
        check_rule(rule)
    except RewriteError as error:
        where = f"{path}.with" if "'with'" in str(error) else f"{path}.{kind}"
        raise RuleError(where, str(error)) from None
    return rule


def _text(path: str, value: Any, *, allow_none: bool = False) -> str:
    if value is None and allow_none:
        return ""  # `with:` left empty in YAML
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise RuleError(path, "expected a string")
    return value


def _fields(path: str, value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise RuleError(path, f"expected one of {', '.join(TEXT_FIELDS)}, or a list of them")
    for item in items:
        if item not in TEXT_FIELDS:
            raise RuleError(path, f"{item!r} is not one of {', '.join(TEXT_FIELDS)}")
    return tuple(dict.fromkeys(items))


def _hosts(path: str, value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping) or not value:
        raise RuleError(path, "expected a mapping of host names (youtube.com: yewtu.be)")
    pairs = []
    for old, new in value.items():
        for host in (old, new):
            if not isinstance(host, str) or not _HOST.match(host.lower()):
                # The path stops at `hosts`: a host's dots would read as key separators.
                raise RuleError(path, f"{host!r} is not a host name (no scheme, no path)")
        pairs.append((old.lower(), new.lower()))
    return tuple(pairs)
