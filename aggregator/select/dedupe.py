"""Find the same article published by several sources, and keep one copy.

Pure: takes stored entries, returns which to publish and which copies each one stands for. It
does not read storage or the clock, and it does not merge content.

Two entries are copies when they have:

1. the same guid. A guid that is not a URI (``1234`` rather than ``tag:...`` or ``https://...``)
   is only unique within its own feed, so it is not compared across sources;
2. the same link after :func:`normalize_url` (a guid that is an http(s) URL counts as a link
   too); ``http`` and ``https`` count as the same;
3. the same :func:`normalize_title`, come from different sources, and are dated within
   :data:`TITLE_WINDOW` of the copy that is kept (titles alone are weak evidence, hence the
   window; one source repeating a title, as in "Open thread", is not a copy).

Entries of one source are never copies of each other (issue 13): a source gives each of its
entries its own key, and a podcast whose episodes all link to the show's home page, or a blog
whose posts' links differ only by a ``#fragment``, has distinct entries. A set of copies holds
at most one entry per source.

Of each set of copies the earliest is kept, by published time, else first-seen time; ties go to
the source name, then the entry id, so the result does not depend on the input order.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

from aggregator.models import StoredEntry

TITLE_WINDOW = timedelta(hours=24)

# Query parameters that track a click rather than name a page. Anything starting with ``utm_``
# goes too. https://en.wikipedia.org/wiki/UTM_parameters and the ad networks' own docs.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid",
        "ttclid", "li_fat_id", "igshid", "mc_cid", "mc_eid", "_hsenc", "_hsmi", "hsctatracking",
        "mkt_tok", "oly_anon_id", "oly_enc_id", "vero_id", "vero_conv", "wickedid", "rb_clickid",
        "s_cid", "ref", "ref_src", "ref_url", "referrer", "cmpid", "campaign_id", "ncid", "sr_share",
        "at_medium", "at_campaign", "spm", "__s", "_ga", "_gl",
    }
)  # fmt: skip
_DEFAULT_PORTS = {"http": "80", "https": "443", "ftp": "21", "ws": "80", "wss": "443"}
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
# Punctuation and symbols (Unicode categories P* and S*) among ASCII characters, for the quick
# path of normalize_title: NFKC leaves ASCII alone and casefold() is lower() there.
_ASCII_DROP = str.maketrans(
    "", "", "".join(c for c in map(chr, range(128)) if unicodedata.category(c)[0] in "PS")
)
# Every publish normalizes the same few thousand links and titles again: remember them.
_MEMO_SIZE = 16_384


@dataclass(frozen=True)
class Duplicate:
    """A copy of a kept entry that is left out, and what gave it away."""

    source_name: str
    source_title: str | None
    link: str | None
    public_id: str
    reason: str  # "guid", "link" or "title"


@dataclass(frozen=True)
class DedupedEntry:
    """An entry to publish, with the copies of it that other entries were."""

    entry: StoredEntry
    duplicates: tuple[Duplicate, ...] = ()

    @property
    def also_in(self) -> tuple[str, ...]:
        """Names of the other sources that carried this article, each once, in order."""
        names = dict.fromkeys(d.source_name for d in self.duplicates)
        names.pop(self.entry.source_name, None)
        return tuple(names)


@functools.lru_cache(maxsize=_MEMO_SIZE)
def normalize_url(url: str) -> str:
    """Return ``url`` in a canonical form, for comparing links.

    Lowercases the scheme and host, drops the default port, the fragment, a trailing slash and
    tracking parameters (``utm_*``, ``fbclid``, ``gclid``, ``mc_cid``, ``ref``, ...), sorts the
    remaining query parameters and normalises percent-escapes (RFC 3986 section 6.2.2).
    Idempotent. Text without a scheme or host comes back only stripped of surrounding whitespace.
    """
    text = url.strip()
    # One pass can expose more to remove ("/a/ /" loses " /", then "/"), so repeat until
    # nothing changes; every pass only shortens or lowercases, so this ends quickly.
    for _ in range(8):
        normal = _normalize_url_once(text)
        if normal == text:
            break
        text = normal
    return text


def _normalize_url_once(text: str) -> str:
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return text
    if not parts.scheme and not parts.netloc:
        return text  # not an absolute URL: nothing safe to normalise
    scheme = parts.scheme.lower()
    netloc = _normalize_netloc(parts.netloc, scheme)
    path = _normalize_escapes(parts.path).rstrip("/")
    if not netloc and path.startswith("//"):
        return text  # would read back as a host; leave such oddities alone
    query = _normalize_query(parts.query)
    return urlunsplit((scheme, netloc, path, query, "")).strip()


@functools.lru_cache(maxsize=_MEMO_SIZE)
def normalize_title(title: str | None) -> str:
    """Return ``title`` casefolded, with punctuation dropped and whitespace collapsed.

    ``"Don’t Panic!"`` and ``"don't  panic"`` both become ``"dont panic"``. Compatibility forms
    (full-width letters, ligatures) are folded too.
    """
    if not title:
        return ""
    if title.isascii():
        return " ".join(title.lower().translate(_ASCII_DROP).split())
    text = unicodedata.normalize("NFKC", title).casefold()
    kept = "".join(char if not _is_punctuation(char) else "" for char in text)
    return " ".join(kept.split())


def dedupe(entries: Sequence[StoredEntry]) -> list[DedupedEntry]:
    """Keep one entry per article and name the copies in it.

    Returns the kept entries in their input order. Runs in O(n log n) (one sort, then
    dictionary look-ups). See the module docstring for what counts as a copy.
    """
    index = _Index()
    groups: list[_Group] = []
    order = sorted(range(len(entries)), key=lambda position: _age_key(entries[position]))
    for position in order:
        entry = entries[position]
        keys = _Keys.of(entry)
        group, reason = index.find(entry, keys)
        if group is None:
            group = _Group(position, entry, [], {entry.source_name})
            groups.append(group)
            index.add_title(keys.title, group)
        else:
            group.duplicates.append(_as_duplicate(entry, reason))
            group.sources.add(entry.source_name)
        index.add_ids(keys, group)
    groups.sort(key=lambda group: group.position)
    return [DedupedEntry(group.entry, tuple(group.duplicates)) for group in groups]


@dataclass
class _Group:
    position: int
    entry: StoredEntry
    duplicates: list[Duplicate]
    sources: set[str]

    @property
    def dated(self) -> datetime:
        return _dated(self.entry)


@dataclass(frozen=True)
class _Keys:
    guid: str | None
    links: tuple[str, ...]
    title: str

    @classmethod
    def of(cls, entry: StoredEntry) -> _Keys:
        guid = (entry.guid or "").strip()
        urls = [entry.link] if entry.link and entry.link.strip() else []
        if _is_web_url(guid):  # often the permalink, even when the link goes elsewhere
            urls.append(guid)
        links = [_link_key(url) for url in urls]
        if guid and ":" not in guid:  # not a URI: only unique within its own feed
            guid = f"{entry.source_name}\n{guid}"
        return cls(guid or None, tuple(dict.fromkeys(links)), normalize_title(entry.title))


class _Index:
    """Kept groups by guid, by link and by title."""

    def __init__(self) -> None:
        self.by_guid = _Groups()
        self.by_link = _Groups()
        self.by_title: dict[str, _TitleWindow] = {}

    def find(self, entry: StoredEntry, keys: _Keys) -> tuple[_Group | None, str]:
        source = entry.source_name
        if keys.guid and (group := self.by_guid.find(keys.guid, source)) is not None:
            return group, "guid"
        for link in keys.links:
            if (group := self.by_link.find(link, source)) is not None:
                return group, "link"
        window = self.by_title.get(keys.title) if keys.title else None
        group = window.find(source, _dated(entry)) if window else None
        return (group, "title") if group else (None, "")

    def add_ids(self, keys: _Keys, group: _Group) -> None:
        if keys.guid:
            self.by_guid.add(keys.guid, group)
        for link in keys.links:
            self.by_link.add(link, group)

    def add_title(self, title: str, group: _Group) -> None:
        if title:
            self.by_title.setdefault(title, _TitleWindow()).add(group)


class _Groups:
    """Groups by one kind of key, oldest first, each looked up from a source that it does not
    hold yet (a source's entries are never copies of each other).

    Per key and source, the first group not holding the source only moves forward (a group
    never loses a source), so a pointer per pair makes the look-ups linear in all.
    """

    def __init__(self) -> None:
        self.groups: dict[str, list[_Group]] = {}
        self.members: dict[str, set[int]] = {}
        self.start: dict[tuple[str, str], int] = {}

    def find(self, key: str, source: str) -> _Group | None:
        groups = self.groups.get(key)
        if not groups:
            return None
        position = self.start.get((key, source), 0)
        while position < len(groups) and source in groups[position].sources:
            position += 1
        self.start[(key, source)] = position
        return groups[position] if position < len(groups) else None

    def add(self, key: str, group: _Group) -> None:
        members = self.members.setdefault(key, set())
        if id(group) not in members:
            members.add(id(group))
            self.groups.setdefault(key, []).append(group)


class _TitleWindow:
    """Kept groups with one title, oldest first, as runs of consecutive groups of one source.

    Neighbouring runs have different sources, so the earliest group from a source other than
    ``s`` heads the first run, or the second when the first is ``s``'s own: each look-up is
    O(1), however often one source repeats a title.
    """

    def __init__(self) -> None:
        self.runs: deque[tuple[str, deque[_Group]]] = deque()

    def add(self, group: _Group) -> None:
        source = group.entry.source_name
        if self.runs and self.runs[-1][0] == source:
            self.runs[-1][1].append(group)
        else:
            self.runs.append((source, deque([group])))

    def find(self, source: str, dated: datetime) -> _Group | None:
        """The earliest group from another source, dated at most the window before ``dated``."""
        self._expire(dated - TITLE_WINDOW)
        for run_source, run in itertools.islice(self.runs, 2):
            if run_source != source:
                return run[0]
        return None

    def _expire(self, oldest: datetime) -> None:
        # Entries arrive oldest first, so a group too old now stays too old. Runs only leave
        # from the front, so neighbouring runs keep different sources.
        while self.runs:
            run = self.runs[0][1]
            while run and run[0].dated < oldest:
                run.popleft()
            if run:
                return
            self.runs.popleft()


def _dated(entry: StoredEntry) -> datetime:
    return entry.published_at or entry.first_seen_at


def _age_key(entry: StoredEntry) -> tuple[datetime, datetime, str, int, str]:
    return (_dated(entry), entry.first_seen_at, entry.source_name, entry.id, entry.public_id)


def _is_web_url(url: str) -> bool:
    return url.strip().lower().startswith(("http:", "https:", "//"))


def _link_key(url: str) -> str:
    normal = normalize_url(url)
    # The same page over http and https is the same article.
    return "https:" + normal[5:] if normal.startswith("http:") else normal


def _as_duplicate(entry: StoredEntry, reason: str) -> Duplicate:
    return Duplicate(entry.source_name, entry.source_title, entry.link, entry.public_id, reason)


def _normalize_netloc(netloc: str, scheme: str) -> str:
    userinfo, at, hostport = netloc.rpartition("@")
    hostport = hostport.rstrip(":")  # an empty port means the default one (RFC 3986, 6.2.3)
    host, colon, port = hostport.rpartition(":")
    if not colon or not port.isdigit():  # no port, or the colon was inside an IPv6 address
        host, port = hostport, ""
    if port == _DEFAULT_PORTS.get(scheme):
        port = ""
    return f"{userinfo}{at}{host.lower()}{':' + port if port else ''}"


def _normalize_query(query: str) -> str:
    pairs = []
    for pair in query.split("&"):
        if not pair:
            continue
        pair = _normalize_escapes(pair)
        name = pair.partition("=")[0].lower()
        if name.startswith("utm_") or name in TRACKING_PARAMS:
            continue
        pairs.append(pair)
    return "&".join(sorted(pairs))


def _normalize_escapes(text: str) -> str:
    """Decode escapes of unreserved characters and uppercase the rest (RFC 3986, 6.2.2)."""
    if "%" not in text:
        return text

    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else match.group(0).upper()

    # Repeat until stable: decoding "%4%41" makes a new escape, "%4A" (keeps this idempotent).
    while True:
        fixed = _PERCENT.sub(fix, text)
        if fixed == text:
            return fixed
        text = fixed


def _is_punctuation(char: str) -> bool:
    return unicodedata.category(char)[0] in "PS"
