"""JSON Feed 1.0 and 1.1 input (https://www.jsonfeed.org/version/1.1/), issue 13.

Pure: bytes → the raw values :func:`aggregator.parse.feed.parse_feed` reads from feedparser (``feed``,
``entries``, ``version``), so a JSON Feed is cleaned, dated, keyed and limited exactly as RSS
and Atom are: same sanitizer, same date window, same entry cap, same sandbox (parse_feed runs
in it). Extensions (keys starting with ``_``) and keys of no use to the aggregator (``icon``,
``image``, ...) are ignored (``hubs`` and ``feed_url`` are read as WebSub links); a value of the wrong type counts as missing.

Text fields of JSON Feed are plain text (``title``, ``content_text``, ``summary``, author
names) or HTML (``content_html``); plain text is escaped here, since feed.py reads titles and
content as HTML, as feedparser hands them over.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from typing import Any

from aggregator.errors import ParseError

VERSIONS = {
    "https://jsonfeed.org/version/1": "json10",
    "https://jsonfeed.org/version/1.1": "json11",
}
#: Nesting deeper than this is refused before decoding (JSON Feed needs 4 levels).
MAX_DEPTH = 64


def looks_like_json(content: bytes) -> bool:
    """Whether the document starts as a JSON object (after whitespace and a byte order mark)."""
    return content.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def read_json_feed(content: bytes, max_entries: int) -> dict[str, Any]:
    """A JSON Feed as feedparser-shaped raw values; :class:`ParseError` when it is not one.

    At most ``max_entries`` items are read; ``notes`` says when more were dropped.
    """
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ParseError(f"JSON Feed not in UTF-8 (byte {error.start})") from error
    _check_depth(text)
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise ParseError(f"not a feed: invalid JSON ({_one_line(error)})") from error
    if not isinstance(document, dict):
        raise ParseError("not a feed: JSON, but not an object")
    version = VERSIONS.get(str(document.get("version", "")).rstrip("/"))
    if version is None:
        raise ParseError("not a feed: JSON without a JSON Feed version")
    items = document.get("items")
    items = [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []
    notes = []
    if len(items) > max_entries:
        notes.append(f"{len(items)} entries; only the first {max_entries} were read")
        items = items[:max_entries]
    feed: dict[str, Any] = {}
    if title := _string(document.get("title")):
        feed["title"] = html.escape(title, quote=False)
    if link := _string(document.get("home_page_url")):
        feed["link"] = link
    if description := _string(document.get("description")):
        feed["subtitle"] = html.escape(description, quote=False)
    # WebSub (issue 17, item 8): the hubs, as feedparser's links would name them.
    links = [{"rel": "self", "href": url} for url in [_string(document.get("feed_url"))] if url]
    hubs = document.get("hubs")
    for hub in hubs if isinstance(hubs, list) else []:
        if isinstance(hub, dict) and (url := _string(hub.get("url"))):
            links.append({"rel": "hub", "href": url})
    if links:
        feed["links"] = links
    feed_author = _authors(document)
    entries = [_item(item, feed_author) for item in items]
    return {"feed": feed, "entries": entries, "version": version, "bozo": False, "notes": notes}


def _item(item: dict[str, Any], feed_author: str | None) -> dict[str, Any]:
    raw: dict[str, Any] = {"links": [], "tags": [], "enclosures": []}
    ident = item.get("id")
    if isinstance(ident, int | float) and not isinstance(ident, bool):
        ident = str(ident)  # 1.0 allows a number; 1.1 says a string
    if ident := _string(ident):
        raw["id"] = ident
    link = _string(item.get("url")) or _string(item.get("external_url"))
    if link:
        raw["link"] = link
    if title := _string(item.get("title")):
        raw["title"] = html.escape(title, quote=False)
    content = _string(item.get("content_html"))
    if content is None and (plain := _string(item.get("content_text"))) is not None:
        content = html.escape(plain, quote=False).replace("\n", "<br>\n")
    summary = _string(item.get("summary"))
    if content is not None:
        raw["content"] = [{"value": content}]
    if summary is not None:
        raw["summary"] = html.escape(summary, quote=False)
    elif content is not None:
        raw["summary"] = content
    for key, field in (("published_parsed", "date_published"), ("updated_parsed", "date_modified")):
        if (stamp := _date(item.get(field))) is not None:
            raw[key] = stamp
    if author := _authors(item) or feed_author:
        raw["author"] = html.escape(author, quote=False)
    tags = item.get("tags")
    if isinstance(tags, list):
        raw["tags"] = [{"term": html.escape(t, quote=False)} for t in tags if _string(t)]
    attachments = item.get("attachments")
    for attachment in attachments if isinstance(attachments, list) else []:
        if not isinstance(attachment, dict) or not (url := _string(attachment.get("url"))):
            continue
        enclosure = {"href": url}
        if kind := _string(attachment.get("mime_type")):
            enclosure["type"] = kind
        size = attachment.get("size_in_bytes")
        if isinstance(size, int) and not isinstance(size, bool):
            enclosure["length"] = str(size)
        raw["enclosures"].append(enclosure)
    return raw


def _authors(holder: dict[str, Any]) -> str | None:
    """The names of ``authors`` (1.1), else of ``author`` (1.0), joined."""
    found = holder.get("authors")
    people = found if isinstance(found, list) else [holder.get("author")]
    names = [
        name
        for person in people
        if isinstance(person, dict) and (name := _string(person.get("name")))
    ]
    return ", ".join(dict.fromkeys(names)) or None


def _string(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _date(value: Any) -> Any:
    """An RFC 3339 date as a UTC time tuple (what feed.py reads), else ``None``."""
    text = _string(value)
    if text is None:
        return None
    try:
        stamp = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)  # RFC 3339 requires an offset; read as UTC
    return stamp.astimezone(UTC).timetuple()


def _check_depth(text: str) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` (a hostile ``[[[[...`` would otherwise
    cost the decoder's recursion), counting brackets outside strings."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise ParseError(f"not a feed: JSON nested more than {MAX_DEPTH} levels deep")
        elif char in "]}":
            depth -= 1


def _one_line(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= 200 else text[:197] + "..."
