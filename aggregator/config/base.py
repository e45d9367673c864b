"""What every section model of the configuration builds on: ``_Strict`` (unknown keys refused,
frozen), ``_EntryRules`` (the ``include``/``exclude``/date rules shared by ``defaults``, sources,
outputs and alert conditions), and the small checks several sections share (http(s) URLs,
killfile items).

Pure. Does not: define any section itself, nor read YAML (see :mod:`.loading`).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from aggregator.config.units import Duration


def _http_url(value: str) -> str:
    """``value`` when it is an absolute http(s) URL; raises ``ValueError`` otherwise."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# One include/exclude item, as sorted (field, pattern) pairs: hashable, like the whole config.
RuleItem = tuple[tuple[str, str], ...]


class _EntryRules(_Strict):
    """Entry rules (see :mod:`aggregator.select.rule_compile`), valid on ``defaults``, sources and outputs.

    The rules are compiled here only to be checked: a bad item raises ``RuleError``, which
    :func:`load_config` reports at the line of the exact item and field. Items are kept as
    sorted ``(field, pattern)`` pairs; :meth:`rule_items` gives them back as mappings.
    """

    include: tuple[RuleItem, ...] = ()
    exclude: tuple[RuleItem, ...] = ()
    max_age: Duration | None = None
    before: datetime | date | None = None
    after: datetime | date | None = None

    @field_validator("include", "exclude", mode="before")
    @classmethod
    def _check_rule_items(cls, value: Any, info: ValidationInfo) -> Any:
        from aggregator.select.rule_compile import compile_rules

        if value is None:
            return ()
        compile_rules(**{str(info.field_name): value})  # RuleError names the item and field
        return tuple(
            tuple(sorted((str(key), str(pattern)) for key, pattern in item.items()))
            for item in value
        )

    @field_validator("max_age")
    @classmethod
    def _check_max_age(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("expected a positive duration")
        return value

    def rule_items(self, kind: Literal["include", "exclude"]) -> list[dict[str, str]]:
        """The ``include`` or ``exclude`` items as field → pattern mappings."""
        return [dict(item) for item in getattr(self, kind)]


def _check_killfile_items(items: tuple[str, ...]) -> None:
    from aggregator.select.rule_compile import compile_comment_rules

    compile_comment_rules(list(items), ())  # raises RuleError (a ValueError) naming the item
