"""The polling hints a main feed gives: RSS ``<ttl>`` (read as a number here), ``sy:updatePeriod``
and ``sy:updateFrequency``, ``<skipHours>`` and ``<skipDays>``.

feedparser keeps only the last ``<hour>`` and ``<day>`` of the skip lists, so those are read again
from the document with the standard library's expat parser. Pure: values read from the parsed
feed and the document; what they mean for the next poll is :mod:`aggregator.schedule.decide`'s.
:func:`_int` (a count or number of minutes: a non-negative integer, else ``None``) is shared with
:mod:`aggregator.parse.feed`.
"""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

_DAYS = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
_PERIOD_SECONDS = {
    "hourly": 3600,
    "daily": 86400,
    "weekly": 604800,
    "monthly": 2592000,
    "yearly": 31536000,
}


def _int(value: Any) -> int | None:
    if value is None:
        return None
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def _skip_hints(content: bytes, feed: Any) -> dict[str, frozenset[Any]]:
    """RSS 2.0 ``<skipHours><hour>`` and ``<skipDays><day>``, read from the document itself.

    feedparser keeps only the last ``<hour>`` and ``<day>`` of these lists, so when it saw
    either element the channel is read again with the standard library's expat parser (which
    resolves no external entities and, from expat 2.4, refuses entity expansion bombs). An
    ill-formed document keeps no skip hints: they only ever delay a poll.
    """
    hours: set[int] = set()
    days: set[str] = set()
    if "skiphours" in feed or "skipdays" in feed:
        try:
            root = ElementTree.fromstring(content)
        except (ElementTree.ParseError, ValueError):
            root = None
        channel = root.find("channel") if root is not None else None
        if channel is not None:
            for text in channel.findall("skipHours/hour") + channel.findall("skiphours/hour"):
                hour = _int(text.text)
                if hour is not None and 0 <= hour <= 24:  # some feeds write 24 for midnight
                    hours.add(hour % 24)
            for text in channel.findall("skipDays/day") + channel.findall("skipdays/day"):
                day = (text.text or "").strip().lower()
                if day in _DAYS:
                    days.add(day.capitalize())
    return {"skip_hours": frozenset(hours), "skip_days": frozenset(days)}


def _update_period(feed: Any) -> int | None:
    period = str(feed.get("sy_updateperiod") or "").strip().lower()
    if period not in _PERIOD_SECONDS:
        return None
    frequency = _int(feed.get("sy_updatefrequency")) or 1
    return max(1, _PERIOD_SECONDS[period] // max(1, frequency))
