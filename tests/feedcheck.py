"""Feed checks modelled on the W3C Feed Validation Service, for the tests.

Each ``check_*`` function takes a published document's bytes and the URL it is served at, and
returns a list of problems (empty when the document passes), each one line naming the element.

* Atom 1.0: the RFC 4287 RELAX NG grammar (``tests/data/schema/atom.rng``), the grammar's
  Schematron rules (author, alternate link or content), RFC 3339 dates with a zone, absolute
  ids and links, unique entry ids, a self link equal to the URL, no duplicate alternate links,
  plain-text titles, RFC 4685 counts.
* RSS 2.0 (the RSS Advisory Board's specification and the validator's rules): channel title,
  link and description; items with a title or description; RFC 822 dates; guids unique, and
  ``isPermaLink="false"`` unless the guid is a URL; one enclosure with url, length and type;
  namespaces known and declared; no HTML in titles; ``atom:link rel="self"``.
* JSON Feed 1.1: the specification's required fields and types.

Does not: fetch anything, or check what the validator only suggests for the look of a feed.
"""

from __future__ import annotations

import json
import re
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

from lxml import etree

ATOM = "http://www.w3.org/2005/Atom"
THR = "http://purl.org/syndication/thread/1.0"
SCHEMA = Path(__file__).parent / "data" / "schema" / "atom.rng"

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$")
RFC822 = re.compile(
    r"^(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?\d{1,2} "
    r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    r"\d\d:\d\d(?::\d\d)? (?:GMT|UT|Z|[+-]\d{4}|[ECMP][SD]T)$"
)
# HTML markup in what should be plain text (the validator's "ContainsHTML"): known tags only,
# so a title that merely mentions <sample> as text passes.
HTML_TAG = re.compile(
    r"<\s*/?\s*(?:a|abbr|b|big|blockquote|br|cite|code|del|div|em|font|h[1-6]|hr|i|iframe|img"
    r"|ins|li|ol|p|pre|q|s|script|small|span|strike|strong|style|sub|sup|table|td|th|tr|tt|u|ul)"
    r"(?:\s[^<>]*)?/?>",
    re.IGNORECASE,
)
# Namespaces an RSS 2.0 document may use, as the validator knows them.
RSS_NAMESPACES = {
    "http://www.w3.org/2005/Atom",
    "http://purl.org/rss/1.0/modules/content/",
    "http://purl.org/dc/elements/1.1/",
    "http://purl.org/rss/1.0/modules/slash/",
    "http://wellformedweb.org/CommentAPI/",
    THR,
}
RSS_CHANNEL_ELEMENTS = {
    "title", "link", "description", "language", "copyright", "managingEditor", "webMaster",
    "pubDate", "lastBuildDate", "category", "generator", "docs", "cloud", "ttl", "image",
    "rating", "textInput", "skipHours", "skipDays", "item",
}  # fmt: skip
RSS_ITEM_ELEMENTS = {
    "title", "link", "description", "author", "category", "comments", "enclosure", "guid",
    "pubDate", "source",
}  # fmt: skip
ATOM_LINK_RELS = {
    "alternate", "self", "related", "enclosure", "via", "replies", "hub", "first", "last",
    "next", "previous", "prev-archive", "next-archive", "current", "license", "edit",
}  # fmt: skip

_schema: etree.RelaxNG | None = None


def _atom_schema() -> etree.RelaxNG:
    global _schema
    if _schema is None:
        _schema = etree.RelaxNG(etree.parse(str(SCHEMA)))
    return _schema


def _parse_xml(content: bytes) -> tuple[etree._Element | None, list[str]]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        return etree.fromstring(content, parser), []
    except etree.XMLSyntaxError as error:
        return None, [f"not well-formed XML: {error}"]


def _absolute(url: str | None) -> bool:
    if not url:
        return False
    parts = urlsplit(url)
    if parts.scheme in ("http", "https", "file"):
        return bool(parts.netloc) or parts.scheme == "file"
    return bool(parts.scheme) and parts.scheme.isascii()


def _http_url(url: str | None) -> bool:
    parts = urlsplit(url or "")
    return parts.scheme in ("http", "https") and bool(parts.netloc)


# -- Atom ---------------------------------------------------------------------------------------


def check_atom(content: bytes, url: str | None = None) -> list[str]:
    """Problems of an Atom 1.0 document served at ``url``."""
    root, problems = _parse_xml(content)
    if root is None:
        return problems
    if root.tag != f"{{{ATOM}}}feed":
        return [f"root element is {root.tag}, not atom:feed"]
    schema = _atom_schema()
    if not schema.validate(root):
        problems += [f"RFC 4287 schema: line {e.line}: {e.message}" for e in schema.error_log]
    ns = {"a": ATOM, "thr": THR}
    feed_authors = root.findall("a:author", ns)
    for date in root.iter(f"{{{ATOM}}}updated", f"{{{ATOM}}}published"):
        if not RFC3339.match((date.text or "").strip()):
            problems.append(f"{date.tag}: {date.text!r} is not an RFC 3339 date-time with a zone")
    for element in root.iter(f"{{{ATOM}}}link"):
        stamp = element.get(f"{{{THR}}}updated")
        if stamp is not None and not RFC3339.match(stamp):
            problems.append(f"link thr:updated {stamp!r} is not an RFC 3339 date-time")
        count = element.get(f"{{{THR}}}count")
        if count is not None and not count.isdigit():
            problems.append(f"link thr:count {count!r} is not a non-negative integer")
        if not _absolute(element.get("href")):
            problems.append(f"link href {element.get('href')!r} is not an absolute URI")
        rel = element.get("rel", "alternate")
        if rel not in ATOM_LINK_RELS and not _absolute(rel):
            problems.append(f"link rel {rel!r} is not a registered relation")
        if rel == "enclosure" and not element.get("type"):
            problems.append(f"enclosure {element.get('href')} has no type")
    for element in root.iter(f"{{{THR}}}total"):
        if not (element.text or "").isdigit():
            problems.append(f"thr:total {element.text!r} is not a non-negative integer")
    generator = root.find("a:generator", ns)
    if generator is not None and generator.get("uri") and not _absolute(generator.get("uri")):
        problems.append(f"generator uri {generator.get('uri')!r} is not an absolute URI")
    problems += _check_atom_links(root, "feed", url)
    if not _absolute((root.findtext("a:id", "", ns) or "").strip()):
        problems.append(f"feed id {root.findtext('a:id', '', ns)!r} is not an absolute IRI")
    problems += _check_text_construct(root.find("a:title", ns), "feed title")
    ids: set[str] = set()
    for index, entry in enumerate(root.findall("a:entry", ns)):
        where = f"entry {index + 1}"
        entry_id = (entry.findtext("a:id", "", ns) or "").strip()
        if not _absolute(entry_id):
            problems.append(f"{where}: id {entry_id!r} is not an absolute IRI")
        if entry_id in ids:
            problems.append(f"{where}: id {entry_id} is not unique in the feed")
        ids.add(entry_id)
        if not (
            feed_authors or entry.findall("a:author", ns) or entry.findall("a:source/a:author", ns)
        ):
            problems.append(f"{where}: no atom:author, and the feed has none")
        alternate = [
            link
            for link in entry.findall("a:link", ns)
            if link.get("rel", "alternate") == "alternate"
        ]
        if not alternate and entry.find("a:content", ns) is None:
            problems.append(f"{where}: neither an alternate link nor content")
        problems += [f"{where}: {p}" for p in _check_atom_links(entry, "entry", None)]
        problems += _check_text_construct(entry.find("a:title", ns), f"{where} title")
        for category in entry.findall("a:category", ns):
            if not (category.get("term") or "").strip():
                problems.append(f"{where}: category with an empty term")
    return problems


def _check_atom_links(element: etree._Element, what: str, url: str | None) -> list[str]:
    problems = []
    links = element.findall(f"{{{ATOM}}}link")
    seen: set[tuple[str | None, str | None]] = set()
    for link in links:
        if link.get("rel", "alternate") != "alternate":
            continue
        key = (link.get("type"), link.get("hreflang"))
        if key in seen:
            problems.append(f"{what}: two alternate links with the same type and hreflang")
        seen.add(key)
    if what == "feed":
        selves = [link for link in links if link.get("rel") == "self"]
        if len(selves) != 1:
            problems.append(f"feed: {len(selves)} rel=self links, expected one")
        elif url is not None and selves[0].get("href") != url:
            problems.append(f"feed: self link {selves[0].get('href')} is not its URL {url}")
        elif selves[0].get("type") != "application/atom+xml":
            problems.append("feed: self link type is not application/atom+xml")
    return problems


def _check_text_construct(element: etree._Element | None, what: str) -> list[str]:
    if element is None:
        return []
    kind = element.get("type", "text")
    text = element.text or ""
    if kind == "text" and HTML_TAG.search(text):
        return [f"{what} {text!r} has HTML in a plain-text construct"]
    if not text.strip() and kind != "xhtml":
        return [f"{what} is empty"]
    return []


# -- RSS 2.0 ------------------------------------------------------------------------------------


def _plain_tag(element: etree._Element) -> bool:
    """An element without a namespace (comments and processing instructions are not)."""
    return isinstance(element.tag, str) and not etree.QName(element).namespace


def _rss_date(text: str | None, what: str) -> list[str]:
    value = (text or "").strip()
    if not RFC822.match(value):
        return [f"{what} {value!r} is not an RFC 822 date"]
    try:
        parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return [f"{what} {value!r} is not a real date"]
    return []


def check_rss(content: bytes, url: str | None = None) -> list[str]:
    """Problems of an RSS 2.0 document served at ``url``."""
    root, problems = _parse_xml(content)
    if root is None:
        return problems
    if root.tag != "rss" or root.get("version") != "2.0":
        return [f"root element is {root.tag} version {root.get('version')}, not rss 2.0"]
    channels = root.findall("channel")
    if len(channels) != 1:
        return [f"{len(channels)} channel elements, expected one"]
    channel = channels[0]
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        namespace = etree.QName(element).namespace
        if namespace and namespace not in RSS_NAMESPACES:
            problems.append(f"element {element.tag} uses an unknown namespace")
        for name in element.attrib:
            attribute_ns = etree.QName(name).namespace
            if attribute_ns and attribute_ns not in RSS_NAMESPACES:
                problems.append(f"attribute {name} uses an unknown namespace")
    for name in ("title", "link", "description"):
        if not (channel.findtext(name) or "").strip():
            problems.append(f"channel: required <{name}> is missing or empty")
    if not _http_url(channel.findtext("link")):
        problems.append(f"channel link {channel.findtext('link')!r} is not an http(s) URL")
    for child in channel:
        if _plain_tag(child) and child.tag not in RSS_CHANNEL_ELEMENTS:
            problems.append(f"channel: <{child.tag}> is not an RSS 2.0 element")
    if HTML_TAG.search(channel.findtext("title") or ""):
        problems.append("channel title has HTML")
    for name in ("pubDate", "lastBuildDate"):
        if channel.find(name) is not None:
            problems += _rss_date(channel.findtext(name), f"channel {name}")
    selves = [link for link in channel.findall(f"{{{ATOM}}}link") if link.get("rel") == "self"]
    if len(selves) != 1:
        problems.append(f"channel: {len(selves)} atom:link rel=self, expected one")
    elif url is not None and selves[0].get("href") != url:
        problems.append(f"channel: self link {selves[0].get('href')} is not its URL {url}")
    elif selves[0].get("type") != "application/rss+xml":
        problems.append("channel: self link type is not application/rss+xml")
    for link in channel.findall(f"{{{ATOM}}}link"):
        if not _http_url(link.get("href")):
            problems.append(f"channel: atom:link href {link.get('href')!r} is not absolute")
    guids: set[str] = set()
    for index, item in enumerate(channel.findall("item")):
        problems += [f"item {index + 1}: {p}" for p in _check_item(item, guids)]
    return problems


def _check_item(item: etree._Element, guids: set[str]) -> list[str]:
    problems = []
    title = item.findtext("title")
    if not (title or "").strip() and not (item.findtext("description") or "").strip():
        problems.append("neither a title nor a description")
    if title and HTML_TAG.search(title):
        problems.append(f"title {title!r} has HTML")
    for child in item:
        if _plain_tag(child) and child.tag not in RSS_ITEM_ELEMENTS:
            problems.append(f"<{child.tag}> is not an RSS 2.0 item element")
    for name in ("title", "link", "description", "author", "comments", "guid", "pubDate", "source"):
        if len(item.findall(name)) > 1:
            problems.append(f"more than one <{name}>")
    if item.find("link") is not None and not _absolute(item.findtext("link")):
        problems.append(f"link {item.findtext('link')!r} is not an absolute URL")
    if item.find("comments") is not None and not _absolute(item.findtext("comments")):
        problems.append(f"comments {item.findtext('comments')!r} is not an absolute URL")
    if item.find("pubDate") is not None:
        problems += _rss_date(item.findtext("pubDate"), "pubDate")
    author = item.findtext("author")
    if author is not None and "@" not in author:
        problems.append(f"author {author!r} is not an e-mail address (use dc:creator)")
    guid = item.find("guid")
    if guid is None:
        problems.append("no guid")
    else:
        value = (guid.text or "").strip()
        permalink = guid.get("isPermaLink", "true")
        if permalink not in ("true", "false"):
            problems.append(f"guid isPermaLink={permalink!r} is neither true nor false")
        if permalink == "true" and not _http_url(value):
            problems.append(f"guid {value!r} is a permalink but not an http(s) URL")
        if value in guids:
            problems.append(f"guid {value} is not unique in the channel")
        guids.add(value)
    enclosures = item.findall("enclosure")
    if len(enclosures) > 1:
        problems.append(f"{len(enclosures)} enclosures; RSS 2.0 allows one per item")
    for enclosure in enclosures:
        if not _http_url(enclosure.get("url")):
            problems.append(f"enclosure url {enclosure.get('url')!r} is not an http(s) URL")
        if not (enclosure.get("length") or "").isdigit():
            problems.append(f"enclosure length {enclosure.get('length')!r} is not an integer")
        if "/" not in (enclosure.get("type") or ""):
            problems.append(f"enclosure type {enclosure.get('type')!r} is not a media type")
    source = item.find("source")
    if source is not None and not _http_url(source.get("url")):
        problems.append(f"source url {source.get('url')!r} is not an http(s) URL")
    for category in item.findall("category"):
        if not (category.text or "").strip():
            problems.append("empty category")
    count = item.findtext("{http://purl.org/rss/1.0/modules/slash/}comments")
    if count is not None and not count.isdigit():
        problems.append(f"slash:comments {count!r} is not a non-negative integer")
    return problems


# -- JSON Feed 1.1 ------------------------------------------------------------------------------

JSON_FEED_KEYS = {
    "version", "title", "home_page_url", "feed_url", "description", "user_comment", "next_url",
    "icon", "favicon", "authors", "author", "language", "expired", "hubs", "items",
}  # fmt: skip
JSON_ITEM_KEYS = {
    "id", "url", "external_url", "title", "content_html", "content_text", "summary", "image",
    "banner_image", "date_published", "date_modified", "authors", "author", "tags", "language",
    "attachments",
}  # fmt: skip


def check_json_feed(content: bytes, url: str | None = None) -> list[str]:
    """Problems of a JSON Feed 1.1 document served at ``url``."""
    try:
        document = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        return [f"not UTF-8 JSON: {error}"]
    if not isinstance(document, dict):
        return ["the top level is not an object"]
    problems = []
    if document.get("version") != "https://jsonfeed.org/version/1.1":
        problems.append(f"version {document.get('version')!r} is not JSON Feed 1.1")
    if not isinstance(document.get("title"), str) or not document["title"].strip():
        problems.append("title is required and must be a non-empty string")
    if not isinstance(document.get("items"), list):
        return [*problems, "items is required and must be an array"]
    for key in document:
        if key not in JSON_FEED_KEYS and not key.startswith("_"):
            problems.append(f"unknown top-level key {key!r} (extensions start with '_')")
    for key in ("home_page_url", "feed_url", "next_url", "icon", "favicon"):
        if key in document and not _http_url(document[key]):
            problems.append(f"{key} {document[key]!r} is not an http(s) URL")
    if url is not None and "feed_url" in document:
        # Every page of a paged feed names the feed itself (JSON Feed 1.1, next_url).
        expected = re.sub(r"/page/\d+\.json$", ".json", url)
        if document["feed_url"] != expected:
            problems.append(f"feed_url {document['feed_url']} is not the feed's URL {expected}")
    if "next_url" in document and document["next_url"] in (document.get("feed_url"), url):
        problems.append("next_url points back at this feed")
    problems += _check_authors(document.get("authors"), "feed")
    for hub in document.get("hubs", []):
        if not isinstance(hub, dict) or not hub.get("type") or not _http_url(hub.get("url")):
            problems.append(f"hub {hub!r} needs a type and an http(s) url")
    ids: set[str] = set()
    for index, item in enumerate(document["items"]):
        problems += [f"item {index + 1}: {p}" for p in _check_json_item(item, ids)]
    return problems


def _check_authors(authors: object, what: str) -> list[str]:
    if authors is None:
        return []
    if not isinstance(authors, list):
        return [f"{what}: authors must be an array"]
    problems = []
    for author in authors:
        if not isinstance(author, dict) or not any(
            isinstance(author.get(key), str) and author[key] for key in ("name", "url", "avatar")
        ):
            problems.append(f"{what}: author {author!r} needs a name, url or avatar")
    return problems


def _check_json_item(item: object, ids: set[str]) -> list[str]:
    if not isinstance(item, dict):
        return ["not an object"]
    problems = []
    item_id = item.get("id")
    if not isinstance(item_id, str) or not item_id:
        problems.append("id is required and must be a non-empty string")
    elif item_id in ids:
        problems.append(f"id {item_id} is not unique")
    else:
        ids.add(item_id)
    if not any(isinstance(item.get(key), str) for key in ("content_html", "content_text")):
        problems.append("content_html or content_text is required")
    for key in item:
        if key not in JSON_ITEM_KEYS and not key.startswith("_"):
            problems.append(f"unknown key {key!r}")
    for key in ("url", "external_url", "image", "banner_image"):
        if key in item and not _absolute(item[key]):
            problems.append(f"{key} {item[key]!r} is not an absolute URL")
    for key in ("date_published", "date_modified"):
        if key in item and not RFC3339.match(str(item[key])):
            problems.append(f"{key} {item[key]!r} is not an RFC 3339 date-time")
    if "title" in item and (not isinstance(item["title"], str) or HTML_TAG.search(item["title"])):
        problems.append(f"title {item['title']!r} is not plain text")
    tags = item.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        problems.append("tags must be an array of strings")
    problems += _check_authors(item.get("authors"), "item")
    for attachment in item.get("attachments", []):
        if not isinstance(attachment, dict):
            problems.append("attachment is not an object")
            continue
        if not _http_url(attachment.get("url")) or not attachment.get("mime_type"):
            problems.append(f"attachment {attachment!r} needs an http(s) url and a mime_type")
        size = attachment.get("size_in_bytes")
        if size is not None and (not isinstance(size, int) or size < 0):
            problems.append(f"attachment size_in_bytes {size!r} is not a number of bytes")
    return problems


CHECKS = {".atom": check_atom, ".rss": check_rss, ".json": check_json_feed}


def check_document(path: Path, url: str) -> list[str]:
    """Check a published file by its extension."""
    return CHECKS[path.suffix](path.read_bytes(), url)
