"""Comment dates as a post's page prints them, read in the blog's own time zone.

Typepad prints "Mar 3, 2019 11:42:10 AM" with no zone: a date without an offset is local to the
blog's IANA zone (a source's ``timezone``; UTC when it has none). ISO 8601 is read by the standard
library, the English forms Typepad and WordPress print by a regular expression
(:func:`parse_common_date`: dateutil costs ~35 µs a date, too slow for pages of thousands of
comments), the rest by dateutil; pages in another language and relative dates go to
:mod:`aggregator.comments.dates` (dateparser), imported only when such a page is read.

Pure: a date lacking its year, month or day, or unreadable, is ``None``; only an unknown zone
name raises (``ValueError``). Finding the date in a comment is :mod:`aggregator.comments.pages`'s
job.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import timezone as fixed_zone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import parser as date_parser

# The dates Typepad and WordPress print: "Mar 3, 2019 11:42:10 AM", "March 03, 2019 at 11:05 AM".
# Matched here because dateutil costs ~35 µs a date, too slow for pages of thousands of comments.
_COMMON_DATE = re.compile(
    r"(?P<month>[a-z]{3,9})\.? (?P<day>\d{1,2}),? (?P<year>\d{4})"
    r"(?:,? (?:at )?(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?"
    r"(?: ?(?P<half>[ap])\.?m\.?)?)?",
    re.IGNORECASE,
)
_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
# Two parses with different defaults reveal a date that lacks its year, month or day.
_DEFAULTS = (datetime(2001, 1, 1), datetime(2002, 2, 2))
_UTC_NAMES = {"UTC", "GMT", "UT", "Z"}


class _DateReader:
    """Reads comment dates in one page's zone and language (see :mod:`aggregator.comments.dates`)."""

    def __init__(self, zone: tzinfo, language: str | None, now: datetime | None):
        self.zone = zone
        self.language = language
        self.now = now

    def read(self, text: str) -> datetime | None:
        # dateutil reads "03.04.2019" month first: only for English pages, as before issue 14.
        if self.language in (None, "en"):
            stamp = _parse_date(text, self.zone)
            if stamp is not None:
                return stamp
        from aggregator.comments.dates import parse_comment_date

        return parse_comment_date(text, self.zone, language=self.language, now=self.now)


def _parse_date(text: str | None, zone: tzinfo) -> datetime | None:
    """An aware UTC datetime from ISO 8601 or a printed date; local to ``zone`` when it has no
    offset. ``None`` for anything unreadable or incomplete (no year, month or day)."""
    if not text or len(text) > 100:
        return None
    try:
        stamp: datetime | None = datetime.fromisoformat(text)
    except ValueError:
        stamp = parse_common_date(text) or _parse_any_date(text)
    if stamp is None:
        return None
    try:
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=zone)
        return stamp.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def parse_common_date(text: str) -> datetime | None:
    """A naive datetime from the English forms Typepad and WordPress print, or ``None``."""
    found = _COMMON_DATE.fullmatch(text)
    month = _month(found.group("month")) if found else None
    if found is None or month is None:
        return None
    hour = int(found.group("hour") or 0)
    if found.group("half"):
        if not 1 <= hour <= 12:
            return None
        # 12-hour clock: 12:xx AM is just after midnight, 12:xx PM just after noon.
        hour = hour % 12 + (12 if found.group("half").lower() == "p" else 0)
    try:
        return datetime(
            int(found.group("year")),
            month,
            int(found.group("day")),
            hour,
            int(found.group("minute") or 0),
            int(found.group("second") or 0),
        )
    except ValueError:
        return None


def is_common_date_form(text: str) -> bool:
    """Whether ``text`` has the shape :func:`parse_common_date` reads, valid or not."""
    found = _COMMON_DATE.fullmatch(text)
    return bool(found and _month(found.group("month")))


def _month(word: str) -> int | None:
    """1-12 for a month's name or its abbreviation ("Mar", "Sept"), else ``None``."""
    word = word.lower()
    return next((n for n, name in enumerate(_MONTHS, 1) if name.startswith(word)), None)


def _parse_any_date(text: str) -> datetime | None:
    try:
        first, second = (date_parser.parse(text, default=d, tzinfos=_tzinfo) for d in _DEFAULTS)
    except (ValueError, OverflowError, TypeError, ArithmeticError, LookupError):
        return None
    if (first.year, first.month, first.day) != (second.year, second.month, second.day):
        return None
    return first


def _tzinfo(name: str | None, offset: int | None) -> tzinfo | None:
    """Zones written in a date: numeric offsets and UTC only, as abbreviations are ambiguous."""
    if offset is not None:
        return fixed_zone(timedelta(seconds=offset))
    return UTC if name in _UTC_NAMES else None


def _zone(name: str | None) -> tzinfo:
    if name is None:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown time zone {name!r} (expected an IANA name)") from e
