"""Dates as people write them under comments: ISO stamps, "March 3, 2019 at 11:05 am",
"10. Februar 2019 um 18:05 Uhr", "8. April 2019 @ 11:38", "il y a 3 jours" (issue 14).

The only module that imports dateparser. Pure: the time a relative date counts from ("3 days ago")
is given by the caller (the time the page was fetched). Cheap forms are read first (ISO 8601, the
English forms Typepad and WordPress print); dateparser (~0.1-1 ms a date, more the first time a
language is loaded) reads the rest, with the page's language tried before English. A date lacking
its year, month or day is no date: comment dates are never guessed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from functools import lru_cache

import dateparser

# Not a date however it is read: "Reply", "Antworten", "Permalink", bare numbers.
_HAS_DIGIT = re.compile(r"\d")
_RELATIVE_WORDS = re.compile(
    r"\b(ago|yesterday|today|gestern|heute|hier|aujourd|ayer|hoy|ieri|oggi|ontem|hoje|gisteren|"
    r"vandaag|вчера|сегодня|назад|vor|il y a|hace|fa|há|geleden)\b",
    re.IGNORECASE,
)
# Glue words between date and time that dateparser reads less well than a space.
_GLUE = re.compile(r"\s+(?:@|\||-|–|—|um|à|a las|alle|às|om|в|at)\s+", re.IGNORECASE)
_TRAILING = re.compile(r"\s*(?:Uhr|h)\s*$", re.IGNORECASE)
_MAX_LENGTH = 100
# Languages whose all-digit dates put the month first (or the year first, then unambiguous).
_MONTH_FIRST = frozenset({"en", "zh", "ja", "ko", "hu", "lt", "fa"})
# A date inside a longer line ("Ben 19. Juni 2018 um 15:28 Uhr - Antworten"): day-month-year
# in words or digits, month-day-year, ISO; an optional time after it.
_MONTH_WORD = r"[^\W\d_]{3,12}\.?"
_TIME = r"(?:,?\s*(?:um|at|@|à|a las|alle|às|om|в|-|\|)?\s*\d{1,2}[:.h]\d{2}(?::\d{2})?(?:\s*[ap]\.?\s?m\.?|\s*Uhr)?)?"
_EMBEDDED = re.compile(
    r"(?:\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?"
    r"|\d{1,2}[./]\d{1,2}[./]\d{2,4}"
    + _TIME
    + r"|\d{1,2}\.?\s+(?:de\s+)?"
    + _MONTH_WORD
    + r"\s+(?:de\s+)?\d{4}"
    + _TIME
    + r"|"
    + _MONTH_WORD
    + r"\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}"
    + _TIME
    + r")",
    re.IGNORECASE,
)


def language_of(lang: str | None) -> str | None:
    """The two-letter language of an HTML ``lang`` attribute ("de-DE" → "de"), or ``None``."""
    if not lang:
        return None
    code = lang.strip().lower().replace("_", "-").split("-")[0]
    return code if re.fullmatch(r"[a-z]{2,3}", code) else None


def parse_comment_date(
    text: str | None,
    zone: tzinfo = UTC,
    *,
    language: str | None = None,
    now: datetime | None = None,
) -> datetime | None:
    """An aware UTC datetime read from ``text``, or ``None`` when it holds no full date.

    ``zone`` is the blog's zone, for dates written without an offset. ``language`` is the page's
    two-letter language (``language_of``); English is always tried too. ``now`` (aware) is when
    the page was fetched: relative dates ("3 days ago", "vor 2 Stunden") count back from it, and
    without it they are not read. Never raises.
    """
    text = " ".join((text or "").split())
    if not text or len(text) > 4 * _MAX_LENGTH:
        return None
    if len(text) > _MAX_LENGTH:
        return _embedded(text, zone, language, now)
    stamp = _read(text, zone, language, now)
    return stamp if stamp is not None else _embedded(text, zone, language, now)


def _embedded(
    text: str, zone: tzinfo, language: str | None, now: datetime | None
) -> datetime | None:
    """The first date-shaped part of a line that holds more than a date."""
    for found in _EMBEDDED.finditer(text):
        if found.group() != text:
            stamp = _read(found.group(), zone, language, now)
            if stamp is not None:
                return stamp
    return None


def _read(text: str, zone: tzinfo, language: str | None, now: datetime | None) -> datetime | None:
    relative = bool(_RELATIVE_WORDS.search(text))
    if not _HAS_DIGIT.search(text) and not relative:
        return None
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        stamp = None
    if stamp is None:
        from aggregator.comments.page_dates import is_common_date_form, parse_common_date

        stamp = parse_common_date(text)  # the fast English forms
        if stamp is None and is_common_date_form(text):
            return None  # "Mar 3, 2019 13:05 PM": the known form, but no real time
    if stamp is None:
        if relative and now is None:
            return None
        base = now.astimezone(zone).replace(tzinfo=None) if now else None
        stamp = _dateparser(text, language, base)
    if stamp is None:
        return None
    try:
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=zone)
        return stamp.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


@lru_cache(maxsize=4096)
def _dateparser(text: str, language: str | None, base: datetime | None) -> datetime | None:
    languages = [language, "en"] if language and language != "en" else ["en"]
    settings: dict[str, object] = {
        "REQUIRE_PARTS": ["day", "month", "year"],
        "PREFER_DATES_FROM": "past",
        "RETURN_AS_TIMEZONE_AWARE": False,
    }
    if base is not None:
        settings["RELATIVE_BASE"] = base
    if language and language not in _MONTH_FIRST:
        settings["DATE_ORDER"] = "DMY"  # "03.04.2019" on a German page is the 3rd of April
    candidates = tuple(dict.fromkeys((text, _TRAILING.sub("", _GLUE.sub(" ", text)))))
    for candidate in candidates:
        found = _parse(candidate, languages, settings)
        if found is not None:
            return found
    if base is None:
        return None
    # "Jun 20th at 2:41 am": blogs leave out the current year; the latest such day before the
    # fetch is meant (dateparser's PREFER_DATES_FROM past, counted from RELATIVE_BASE).
    settings["REQUIRE_PARTS"] = ["day", "month"]
    for candidate in candidates:
        found = _parse(candidate, languages, settings)
        if found is not None:
            return found
    return None


def _parse(text: str, languages: list[str], settings: dict[str, object]) -> datetime | None:
    try:
        return dateparser.parse(text, languages=languages, settings=settings)
    except Exception:  # dateparser raises assorted errors on odd input; none is ours
        return None
