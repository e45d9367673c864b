"""Turn fetched bytes into :class:`FeedData`: main feeds, through feedparser (its adapter) or a fast path.

feedparser receives bytes and headers, never a URL, so it never fetches anything itself. Its
dicts are converted here, at the boundary, into frozen dataclasses. feedparser is imported here
(the parse itself, :func:`_run_feedparser`, which :mod:`aggregator.parse.comment_feed` uses too)
and, for the pieces whose values a fast path must share with it, in the main-feed fast path's
modules (:mod:`aggregator.parse.fastfeed`, ``fastfeed_items``, ``fastfeed_names`` and
:mod:`aggregator.parse.fastxml`); nowhere else. All HTML is sanitized (nh3,
:mod:`aggregator.parse.sanitize`) and all dates become aware UTC datetimes, by the date rules of
:mod:`aggregator.parse.dates`; the feed's polling hints are read by :mod:`aggregator.parse.hints`.

Before feedparser sees a document, :mod:`aggregator.parse.xmlguard` rewrites its DOCTYPE so that no
entity can explode or reach outside (see that module for what feedparser does by itself).

Not here: comment feeds (:mod:`aggregator.parse.comment_feed`), JSON Feed
(:mod:`aggregator.parse.jsonfeed`), entry keys (:mod:`aggregator.parse.identity`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import feedparser
import feedparser.api
import feedparser.encodings
import feedparser.mixin
import feedparser.urls

from aggregator.errors import ParseError
from aggregator.models import PODCAST_TAGS, EnclosureData, EntryData, FeedData, RewriteRule
from aggregator.parse.dates import _LATEST_AHEAD, _date
from aggregator.parse.fastfeed import read_feed
from aggregator.parse.fastxml import _urljoin
from aggregator.parse.hints import _int, _skip_hints, _update_period
from aggregator.parse.identity import assign_keys, base_key
from aggregator.parse.jsonfeed import looks_like_json, read_json_feed
from aggregator.parse.links import _web_url, alternate_feeds
from aggregator.parse.sanitize import clean_html, clean_url, plain_text, xml_safe
from aggregator.parse.xmlguard import defuse

if TYPE_CHECKING:  # imported when a source has rules: RE2 stays out of a plain worker's start
    from aggregator.parse.rewrite import Note, Rewriter

# feedparser tries libxml2's SAX driver first when it is installed; its entity handling is not
# the one xmlguard was checked against (expat's), and the failing import costs a path search on
# every parse. Use expat only.
feedparser.api.PREFERRED_XML_PARSERS[:] = []
# An entry's identity is its guid or id as the document writes it (issue 13): feedparser resolves
# a permalink guid or an Atom id against the URL the document was fetched from, so "t3_42tizy"
# or "12345" would become a different key for each URL the same feed is read from. Ids are left
# as written; a guid that stands for the entry's link is resolved by _entry, as links are.
feedparser.mixin._FeedParserMixin.can_be_relative_uri = (
    feedparser.mixin._FeedParserMixin.can_be_relative_uri - {"id"}
)
# feedparser joins its base to itself at every element (mixin's unknown_starttag) and every link
# to the base: the same few pairs again and again, each through urljoin. Both functions are
# pure (of their arguments and feedparser's constant scheme list): the mixin's names for them
# are bound to remembering copies; the values are the same.


def _remembered_for_short(function: Callable[[str, str], str]) -> Callable[[str, str], str]:
    """``function`` of two strings, remembered for pairs of short ones (a hostile document's long
    values are not kept)."""
    remembered = lru_cache(maxsize=1024)(function)

    def call(first: str, second: str) -> str:
        if len(first or "") + len(second or "") <= 4000:
            return remembered(first, second)
        return function(first, second)

    return call


feedparser.mixin.make_safe_absolute_uri = _remembered_for_short(
    feedparser.urls.make_safe_absolute_uri
)
feedparser.mixin._urljoin = _remembered_for_short(feedparser.urls._urljoin)

#: Entries read from one document at most; the rest are dropped with a warning.
MAX_ENTRIES = 20_000
_ENTRY_START = re.compile(rb"<(?:item|entry)[\s>/]")
#: Categories and enclosures kept per entry at most.
MAX_LIST_ITEMS = 100
#: The keys _podcast_tags reads.
_PODCAST_KEYS = frozenset(
    {
        "image", "itunes_duration", "itunes_episode", "itunes_explicit", "podcast_transcript",
        "podcast_chapters",
    }
)  # fmt: skip
# json.dumps(fingerprint, sort_keys=True, default=str), without building an encoder per entry.
# (A fingerprint holds no cycles: not looking for them changes no byte.)
_FINGERPRINT = json.JSONEncoder(sort_keys=True, default=str, check_circular=False)


def parse_feed(
    content: bytes,
    headers: Mapping[str, str] | None = None,
    url: str = "",
    *,
    now: datetime | None = None,
    fast: bool = True,
    rewrite: Sequence[RewriteRule] = (),
) -> FeedData:
    """Parse a feed document. Raises :class:`ParseError` when it holds no feed at all.

    A feed that feedparser flags as ill-formed ("bozo") but that still yields entries is
    returned with ``warning`` set, so that what can be read is not lost. ``now`` is the time
    the document is read, for the date rules (default: the clock). ``fast`` reads a plain
    feed with lxml (:mod:`aggregator.parse.fastfeed`: the same result as feedparser, several times
    faster); false reads every document with feedparser, the reference. ``rewrite`` rules
    (:mod:`aggregator.parse.rewrite`) change each entry before it is finished; what they
    changed is the result's ``rewrite_changes``.
    """
    if looks_like_json(content):  # JSON Feed 1.0 / 1.1 (issue 13)
        parsed = read_json_feed(content, MAX_ENTRIES)
        notes = list(parsed.pop("notes"))
    else:
        quick = read_feed(content, headers, url, MAX_ENTRIES) if fast else None
        if quick is not None:
            parsed, notes = quick, []
        else:
            parsed, notes, content = _run_feedparser(content, headers, url)
    latest = (now or datetime.now(UTC)) + _LATEST_AHEAD
    feed = parsed.get("feed", {})
    link = clean_url(feed.get("link"), url or None)
    base = link or url
    raw_entries = parsed.get("entries", [])
    if len(raw_entries) > MAX_ENTRIES:
        notes.append(f"{len(raw_entries)} entries; only the first {MAX_ENTRIES} were read")
        raw_entries = raw_entries[:MAX_ENTRIES]
    rewriter = None
    if rewrite:
        from aggregator.parse.rewrite import Rewriter

        rewriter = Rewriter(rewrite)
    read = [_entry(raw, base, url, latest, content, rewriter) for raw in raw_entries]
    entries = assign_keys([entry for entry, _, _ in read], [legacy for _, legacy, _ in read])
    changes = (
        tuple(
            note.change(entry)
            for entry, (_, _, notes) in zip(entries, read, strict=True)
            for note in notes
        )
        if rewriter
        else ()
    )
    hubs, self_url = _websub_links(feed, base)
    return FeedData(
        title=plain_text(feed.get("title")) or None,
        link=link,
        subtitle=plain_text(feed.get("subtitle")) or None,
        entries=entries,
        version=parsed.get("version", ""),
        warning=_warning(parsed, notes),
        ttl_minutes=_int(feed.get("ttl")),
        update_period_seconds=_update_period(feed),
        rewrite_changes=changes,
        hubs=hubs,
        self_url=self_url,
        **_skip_hints(content, feed),
    )


def _websub_links(feed: Any, base: str) -> tuple[tuple[str, ...], str | None]:
    """The hubs a feed names and its self URL (W3C WebSub 4: ``<link rel="hub">`` and
    ``rel="self"``, or ``atom:link`` in RSS; JSON Feed's ``hubs`` and ``feed_url``, which
    :mod:`.jsonfeed` hands over as links), absolute http(s) only."""
    hubs: list[str] = []
    self_url = None
    for link in feed.get("links", None) or []:
        if not isinstance(link, Mapping):
            continue
        url = _web_url(link.get("href"), base)
        if url is None:
            continue
        if link.get("rel") == "hub" and url not in hubs:
            hubs.append(url)
        elif link.get("rel") == "self" and self_url is None:
            self_url = url
    return tuple(hubs[:5]), self_url


def _run_feedparser(
    content: bytes, headers: Mapping[str, str] | None, url: str
) -> tuple[Any, list[str], bytes]:
    """feedparser's result for a defused document, notes for the warning, and the document as
    feedparser was given it (safe to hand to another XML parser)."""
    if not content or not content.strip():
        raise ParseError("empty document")
    response_headers = {key.lower(): value for key, value in (headers or {}).items()}
    if url.startswith(("http://", "https://")):
        # feedparser resolves relative links against it; it mangles file:// URLs, so those are
        # resolved by us instead (see clean_url).
        response_headers.setdefault("content-location", url)
    defused = defuse(content)
    notes = [defused.warning] if defused.warning else []
    content = _defuse_decoded(defused.content, response_headers, notes)
    content = _cut_after_entries(content, notes)
    try:
        # Our own sanitizer (nh3, sanitize.clean_html) cleans every HTML field and makes its links
        # absolute, so feedparser's slower passes would be done twice (kurtmckee/feedparser#209).
        parsed = feedparser.parse(
            content,
            response_headers=response_headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except MemoryError:
        raise  # the sandbox reports it with its limit
    except Exception as error:  # feedparser should not raise, but a hostile feed must not crash us
        raise ParseError(f"unreadable feed: {type(error).__name__}: {_one_line(error)}") from error
    if not parsed.get("version") and not parsed.get("entries"):
        reason = parsed.get("bozo_exception")
        if _looks_like_html(content):
            raise ParseError(_html_message(content, url))
        raise ParseError(f"not a feed: {_one_line(reason)}" if reason else "not a feed")
    return parsed, notes, content


def _defuse_decoded(content: bytes, headers: dict[str, str], notes: list[str]) -> bytes:
    """``content`` checked again as text, decoded the way feedparser will decode it.

    :func:`defuse` reads the bytes as an ASCII-compatible encoding unless a BOM or the XML 1.0
    appendix F patterns say otherwise. A document declared ``charset=utf-7`` (``+ADw-`` is
    ``<``), EBCDIC other than cp037's ``<?xm``, or UTF-16/32 without a BOM and not starting with
    ``<`` hides its DOCTYPE from that pass, and feedparser, which decodes by the HTTP charset
    and the XML declaration (RFC 3023), would then hand expat and its loose parser an entity
    bomb (500 MB for a 76 KB document). So the text feedparser will parse is made with
    feedparser's own decoder, over the same headers, and defused again; when that pass finds
    something, feedparser gets that UTF-8 text, labelled UTF-8 (``headers`` is changed to
    say so), instead of the original bytes. Otherwise the bytes go on unchanged.
    """
    decoded = feedparser.encodings.convert_to_utf8(headers, content, {})
    again = defuse(decoded)
    if again.content is decoded:
        return content
    kind = headers.get("content-type")
    if kind:
        headers["content-type"] = kind.split(";", 1)[0].strip() + "; charset=utf-8"
    if again.warning and again.warning not in notes:
        notes.append(again.warning)
    return again.content


def _cut_after_entries(content: bytes, notes: list[str]) -> bytes:
    """The document cut before its entry number ``MAX_ENTRIES + 1``, if it has that many.

    feedparser keeps the whole document as Python objects: 300,000 tiny entries cost a minute
    and 400 MB before a single one could be dropped. Cut first; the truncated document parses
    as an ill-formed feed whose first entries are all read.
    """
    if len(content) < MAX_ENTRIES * 16:  # too short to hold that many entries
        return content
    for count, match in enumerate(_ENTRY_START.finditer(content), 1):
        if count > MAX_ENTRIES:
            notes.append(f"more than {MAX_ENTRIES} entries; only the first {MAX_ENTRIES} were read")
            return content[: match.start()]
    return content


def _html_message(content: bytes, url: str) -> str:
    feeds = alternate_feeds(content, url)
    if not feeds:
        return "this is an HTML page, not a feed, and it links to no feed"
    others = f" (and {len(feeds) - 1} more)" if len(feeds) > 1 else ""
    return f"this is an HTML page, not a feed; it links to a feed at {feeds[0]}{others}"


def _one_line(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= 200 else text[:197] + "..."


def _looks_like_html(content: bytes) -> bool:
    head = content[:1024].lower()
    return b"<html" in head or b"<!doctype html" in head


def _warning(parsed: Any, notes: list[str]) -> str | None:
    notes = list(notes)
    if parsed.get("bozo"):
        error = parsed.get("bozo_exception")
        name = type(error).__name__ if error is not None else "warning"
        # CharacterEncodingOverride, NonXMLContentType: common and harmless, read correctly.
        if name not in ("CharacterEncodingOverride", "NonXMLContentType"):
            notes.insert(0, f"ill-formed feed ({name}: {_one_line(error)[:120]})")
    return "; ".join(notes) or None


def _entry(
    raw: Any,
    base: str,
    document_url: str,
    latest: datetime,
    document: bytes = b"",
    rewriter: Rewriter | None = None,
) -> tuple[EntryData, str | None, list[Note]]:
    """One entry, keyed by its base key (:func:`identity.base_key`), the key the previous
    rule gave it when that differs (its guid, or a relative link, resolved against the
    document's URL), and what the ``rewriter``'s rules changed."""
    fields = _fields(raw)
    # A guid standing for the link is as written (ids are not resolved, see the top of this
    # module): resolve it against the document's URL, as feedparser resolves links.
    link = _absolute_link(
        fields.get("link"), (document_url or base) if fields.get("guidislink") else base
    )
    entry_base = link or base
    content_html = _content(fields)
    summary_html = fields.get("summary") if fields.get("summary") != content_html else None
    as_written = {"title": fields.get("title"), "content": content_html, "summary": summary_html}
    markup, notes = rewriter.markup(as_written) if rewriter else (as_written, [])
    content = clean_html(markup["content"], entry_base) or None
    summary = clean_html(markup["summary"], entry_base) or None
    title = plain_text(markup["title"])
    guid = _key_text(fields.get("id"))
    published = _date(fields.get("published_parsed"), latest) or _date(
        fields.get("created_parsed"), latest
    )
    updated = _date(_own(fields, "updated_parsed"), latest)
    terms = [plain_text(tag.get("term")) for tag in fields.get("tags", [])[:MAX_LIST_ITEMS]]
    categories = tuple(dict.fromkeys(filter(None, terms)))
    enclosures = tuple(
        EnclosureData(
            url=href,
            type=plain_text(enc.get("type"), limit=200) or None,
            length=_int(enc.get("length")),
        )
        for enc in raw.get("enclosures", [])[:MAX_LIST_ITEMS]
        if (href := clean_url(enc.get("href"), entry_base))
    )
    podcast = _podcast_tags(fields, entry_base)
    comments_feed, comments_page, count = _thread_links(fields)
    author = plain_text(fields.get("author")) or None
    written = _link_as_written(link, document_url, document) if not guid else link
    if notes and not (guid or written):
        # The key is the feed's, not the rules': a changed rule must not make a new entry.
        key = base_key(
            None,
            None,
            plain_text(as_written["title"]),
            clean_html(content_html, entry_base) or clean_html(summary_html, entry_base) or "",
        )
    else:
        key = base_key(guid, written, title, content or summary or "")
    as_linked = link
    if rewriter:
        values, url_notes = rewriter.urls(
            {"link": link, "content": content, "summary": summary, "enclosures": enclosures},
            entry_base,
        )
        link, content, summary = values["link"], values["content"], values["summary"]
        enclosures = values["enclosures"]
        notes += url_notes
    comments_feed_url = _absolute_link(_present(comments_feed), document_url or entry_base)
    if comments_feed_url and _same_url(comments_feed_url, document_url):
        # A comment feed that is the feed itself (an empty wfw:commentRss read as the
        # document's URL) would make every post a comment on every other (issue 13).
        comments_feed_url = None
    fingerprint: dict[str, object] = {
        "title": title,
        "link": link,
        "author": author,
        "summary": summary,
        "content": content,
        "published": published.isoformat() if published else None,
        "updated": updated.isoformat() if updated else None,
        "categories": categories,
        "enclosures": [(e.url, e.type, e.length) for e in enclosures],
    }
    if podcast:  # only then: the hash of every other entry stays what it was
        fingerprint["podcast"] = [list(pair) for pair in podcast]
    entry = EntryData(
        key=key,
        guid=guid,
        title=title,
        link=link,
        author=author,
        summary=summary,
        content=content,
        published_at=published or updated,
        updated_at=updated,
        categories=categories,
        enclosures=enclosures,
        podcast=podcast,
        # A relative comment feed link is relative to the document it appears in.
        comments_feed_url=comments_feed_url,
        comments_page_url=_absolute_link(
            _present(fields.get("comments")) or _present(comments_page), entry_base
        ),
        comment_count=count,
        content_hash=_hash(_FINGERPRINT.encode(fingerprint)),
    )
    legacy = _legacy_key(guid, document_url) or (as_linked if written != as_linked else None)
    return entry, legacy, notes


def _link_as_written(link: str | None, document_url: str, document: bytes) -> str | None:
    """An entry's link as the document writes it, for its key: a relative link (``/post/1``)
    was resolved against the URL the document was fetched from, so it would make a different
    key at every URL. A link on the document's own host that the document does not spell out
    in full was relative: it is keyed without its scheme and host."""
    if not link or not document_url.startswith(("http://", "https://")):
        return link
    slash = document_url.find("/", document_url.find("//") + 2)
    origin = document_url if slash < 0 else document_url[:slash]
    if not link.startswith(origin + "/") and link != origin:
        return link
    spelled = link.encode("utf-8", "surrogatepass")
    if spelled in document or spelled.replace(b"&", b"&amp;") in document:
        return link
    return link[len(origin) :] or "/"


def _legacy_key(guid: str | None, document_url: str) -> str | None:
    """The key aggregator gave an entry before issue 13: its guid resolved against the URL the
    document was fetched from, as feedparser does (a guid marked ``isPermaLink="false"`` was
    left alone, and is then the key itself)."""
    if not guid or not document_url.startswith(("http://", "https://")):
        return None
    return _key_text(_urljoin(_rejoined(document_url), guid))


@lru_cache(maxsize=64)
def _rejoined(document_url: str) -> str:
    """The document's URL joined to itself, as feedparser makes its base (once per document)."""
    return _urljoin(document_url, document_url) or document_url


def _present(value: Any) -> str | None:
    """A URL value, or ``None`` when it is empty or only whitespace: an empty
    ``<comments/>``, ``<wfw:commentRss></wfw:commentRss>`` or ``<link></link>`` is no link, and
    joined to a base it would become the base itself (issue 13)."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _same_url(first: str, second: str | None) -> bool:
    return bool(second) and first.partition("#")[0].rstrip("/") == str(second).partition("#")[
        0
    ].rstrip("/")


def _fields(raw: Any) -> dict[str, Any]:
    """An item's own keys as a plain dict, read without feedparser's ``FeedParserDict.get``.

    That ``get`` maps aliases and a few computed keys, and raises and catches a ``KeyError``
    for every missing key: a tenth of an entry's conversion. None of the keys read here is an
    alias or computed, but ``enclosures`` (built from the links), which is read from ``raw``.
    """
    return raw if type(raw) is dict else dict(raw)


def _own(raw: Any, key: str) -> Any:
    """A key feedparser really read; its ``updated`` falls back to ``published`` with a warning."""
    return dict.get(raw, key)


def _key_text(value: Any) -> str | None:
    """A guid or reference as stored: XML-safe text, at most 2,000 characters, else ``None``."""
    if not value:
        return None
    text = xml_safe(str(value)).strip()
    return text[:2000] or None


def _thread_links(raw: Any) -> tuple[str | None, str | None, int | None]:
    """An entry's comment feed, comments page and comment count, as its feed gives them.

    The feed is ``wfw:commentRss``, else an Atom ``rel="replies"`` link of a feed type (WordPress
    adds a ``text/html`` one pointing at the post's comments, which is the page, not a feed). The
    count is ``slash:comments``, else ``thr:total``, else a replies link's ``thr:count``; 0 is a
    count, not a missing one.
    """
    replies = [
        item for item in raw.get("links", []) if item.get("rel") == "replies" and item.get("href")
    ]
    feeds = [r for r in replies if _is_feed_link(r)]
    pages = [r for r in replies if not _is_feed_link(r)]
    comments_feed = (raw.get("wfw_commentrss") or "").strip() or None
    if comments_feed is None and feeds:
        atom = [r for r in feeds if "atom" in (r.get("type") or "")]
        comments_feed = (atom or feeds)[0].get("href")
    count = _int(raw.get("slash_comments"))
    if count is None:
        count = _int(raw.get("thr_total"))
    for link in feeds + pages:
        if count is None:
            count = _int(link.get("thr:count") or link.get("count"))
    return comments_feed, (pages[0].get("href") if pages else None), count


def _is_feed_link(link: Mapping[str, Any]) -> bool:
    """Whether a replies link leads to a comment feed rather than to the comments on a page.

    Its ``type`` says so; but feedparser reports a link without a type as ``text/html``, so an
    HTML-typed link whose URL looks like a feed's (``.xml``, ``/feed/``, ``/feeds/``, ...) and has
    no fragment is taken for a feed too.
    """
    kind = str(link.get("type") or "").split(";")[0].strip().lower()
    if kind.endswith(("xml", "+json")) or kind == "application/json":
        return True
    if kind not in ("", "text/html"):
        return False
    href = str(link.get("href") or "")
    path = urlsplit(href).path.lower().rstrip("/")
    return "#" not in href and (
        path.endswith((".xml", ".rss", ".atom", ".rdf", "/feed", "/atom", "/rss"))
        or "/feeds/" in path
    )


def _content(raw: Any) -> str | None:
    for item in raw.get("content", []) or []:
        if item.get("value"):
            return str(item["value"])
    return raw.get("summary")


def _absolute_link(value: str | None, base: str) -> str | None:
    """An absolute URL fit to republish (``javascript:``, ``data:``, over-long: ``None``)."""
    return clean_url(value, base or None)


def _hash(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


def _podcast_tags(fields: Any, base: str | None) -> tuple[tuple[str, str], ...]:
    """An episode's iTunes and Podcasting 2.0 tags as feedparser reads them (PODCAST_TAGS)."""
    if fields.keys().isdisjoint(_PODCAST_KEYS):
        return ()  # (most entries)
    found: dict[str, str] = {}
    image = fields.get("image")
    if isinstance(image, dict) and (href := clean_url(image.get("href"), base)):
        found["image"] = href
    for name in ("duration", "episode"):
        value = plain_text(fields.get(f"itunes_{name}"), limit=50)
        if value:
            found[name] = value
    explicit = fields.get("itunes_explicit")
    if explicit is not None:
        # feedparser reads only "yes" (True) and "clean" (False): written back as they were.
        # Its None (any other value, "true" and "false" included) cannot be carried.
        found["explicit"] = "yes" if explicit else "clean"
    for name in ("transcript", "chapters"):
        tag = fields.get(f"podcast_{name}")
        if isinstance(tag, dict) and (url := clean_url(tag.get("url"), base)):
            found[name] = url
            kind = plain_text(tag.get("type"), limit=200)
            if kind:
                found[f"{name}_type"] = kind
    return tuple((name, found[name]) for name in PODCAST_TAGS if name in found)
