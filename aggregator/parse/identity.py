"""Entry identity within one source: which key each entry of a document is stored under (issue 13).

Pure: takes the entries of one document, as :mod:`aggregator.parse.feed` read them, and returns them
with their keys. It reads no storage and no clock.

The rule (README, "Entry identity"):

1. An entry's *base key* is its guid (RSS ``<guid>``, Atom ``<id>``, JSON Feed ``id``) exactly
   as the document writes it -- never resolved against the URL the document was fetched from,
   so the same document fetched from two URLs gives the same keys -- else its link, else a hash
   of its title and content.
2. When the base key is unique within the document, it is the key. An edited title or changed
   content keeps the entry.
3. When several entries of one document share a base key (items without a guid that all link to
   the site's home page, podcast episodes linking to the show, a feed repeating one guid), each
   is told apart by its enclosure, when it has one that no other entry of the group has; else
   by its title and date; else also by its content. Entries equal in all of these are one item
   written twice and keep one key.

Each entry also carries ``alternate_keys``: the keys it may already be stored under, tried by
storage when the key itself is not stored (the key the previous version of aggregator gave it,
whose guids were resolved against the document's URL; the plain base key of an entry whose link
became shared; the told-apart key of an entry whose link became unique again).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence

from aggregator.models import EntryData


def base_key(guid: str | None, link: str | None, title: str, content: str) -> str:
    """The key an entry gets when no other entry of its document shares it."""
    return guid or link or _digest(title, content)


def assign_keys(
    entries: Sequence[EntryData], legacy_keys: Sequence[str | None] | None = None
) -> tuple[EntryData, ...]:
    """``entries`` (each with its base key as ``key``) with distinct keys, as the module says.

    ``legacy_keys`` holds, per entry, the key the previous rule gave it when it differs (or
    ``None``); it becomes the first of its ``alternate_keys``.
    """
    legacy = list(legacy_keys) if legacy_keys is not None else [None] * len(entries)
    groups: dict[str, list[int]] = defaultdict(list)
    for position, entry in enumerate(entries):
        groups[entry.key].append(position)
    result = list(entries)
    for key, positions in groups.items():
        if len(positions) == 1:
            position = positions[0]
            entry = entries[position]
            alternates = [legacy[position]] + [
                _told_apart(key, label) for label in _labels(entry, enclosure_unique=True)
            ]
            result[position] = _with(entry, key, alternates)
            continue
        enclosures = Counter(_enclosure(entries[p]) for p in positions)
        labels = {
            p: _label(entries[p], enclosure_unique=enclosures[_enclosure(entries[p])] == 1)
            for p in positions
        }
        uses = Counter(labels.values())
        for position in positions:
            entry = entries[position]
            label = labels[position]
            if uses[label] > 1:  # same enclosure, title and date: tell apart by content too
                label = f"{label} content:{_digest(entry.summary or '', entry.content or '')}"
            result[position] = _with(entry, _told_apart(key, label), [legacy[position], key])
    return tuple(result)


def _with(entry: EntryData, key: str, alternates: Sequence[str | None]) -> EntryData:
    kept = tuple(dict.fromkeys(a for a in alternates if a and a != key))
    if key == entry.key and kept == entry.alternate_keys:
        return entry
    # dataclasses.replace, done as copy and pickle rebuild an object (a new instance given the
    # fields' values): EntryData has no __post_init__, and this runs once for every entry.
    keyed = object.__new__(EntryData)
    keyed.__dict__.update(vars(entry), key=key, alternate_keys=kept)
    return keyed


def _told_apart(key: str, label: str) -> str:
    return f"{key}\n{label}"


def _enclosure(entry: EntryData) -> str | None:
    return entry.enclosures[0].url if entry.enclosures else None


def _label(entry: EntryData, *, enclosure_unique: bool) -> str:
    """What tells ``entry`` apart from the others sharing its base key."""
    enclosure = _enclosure(entry)
    if enclosure and enclosure_unique:
        return f"enclosure:{enclosure}"
    return _title_date(entry, enclosure)


def _labels(entry: EntryData, *, enclosure_unique: bool) -> list[str]:
    """Every label ``entry`` could be told apart by, were its base key shared."""
    enclosure = _enclosure(entry)
    first = _label(entry, enclosure_unique=enclosure_unique)
    return [first] if not enclosure else [first, _title_date(entry, enclosure)]


def _title_date(entry: EntryData, enclosure: str | None) -> str:
    date = entry.published_at.isoformat() if entry.published_at else ""
    return f"item:{_digest(enclosure or '', entry.title, date)}"


def _digest(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()
