"""OPML 2.0 subscription lists: write them (sources, outputs) and read them (import).

Pure: bytes in, dataclasses out, and back. Reading refuses entities and external DTDs, so a
hostile file can neither expand to gigabytes nor reach the network. An outline with an
``xmlUrl`` is a feed; the ``text`` of the folders around it and its ``category`` attribute
become its categories (OPML 2.0 section "category": comma-separated, slash-delimited).

Does not: touch the configuration file (see :mod:`aggregator.config.edit`) or fetch feeds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from lxml import etree

from aggregator.errors import ParseError

OPML_DOCS = "http://opml.org/spec2.opml"


@dataclass(frozen=True)
class OpmlFeed:
    """One subscription of an OPML file."""

    xml_url: str
    title: str | None = None
    html_url: str | None = None
    categories: tuple[str, ...] = ()
    description: str | None = None


def make_opml(title: str, feeds: Iterable[OpmlFeed]) -> bytes:
    """An OPML 2.0 document listing ``feeds``, in order (deterministic: no creation date)."""
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    etree.SubElement(head, "docs").text = OPML_DOCS
    body = etree.SubElement(root, "body")
    for feed in feeds:
        outline = etree.SubElement(body, "outline")
        name = feed.title or feed.xml_url
        outline.set("text", name)
        outline.set("title", name)
        outline.set("type", "rss")  # OPML 2.0: "rss" for any feed format
        outline.set("xmlUrl", feed.xml_url)
        if feed.html_url:
            outline.set("htmlUrl", feed.html_url)
        if feed.description:
            outline.set("description", feed.description)
        if feed.categories:
            outline.set("category", ",".join(f"/{c}" for c in feed.categories))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def read_opml(content: bytes) -> list[OpmlFeed]:
    """The feeds of an OPML document (1.0 or 2.0), in document order.

    Raises :class:`ParseError` when the bytes are not an OPML document.
    """
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(content, parser)
    except etree.XMLSyntaxError as error:
        raise ParseError(f"not an OPML file: {error}") from None
    name = etree.QName(root)  # .text is the parsed tag, "{namespace}local" or "local"
    if name.localname.lower() != "opml":
        raise ParseError(f"not an OPML file: the root element is <{name.text}>, not <opml>")
    body = next((child for child in root if _local(child) == "body"), None)
    if body is None:
        raise ParseError("not an OPML file: it has no <body>")
    return list(_walk(body, ()))


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname.lower() if isinstance(element.tag, str) else ""


def _walk(parent: etree._Element, folders: Sequence[str]) -> Iterator[OpmlFeed]:
    for outline in parent:
        if _local(outline) != "outline":
            continue
        attributes = {key.lower(): value.strip() for key, value in outline.attrib.items()}
        text = attributes.get("title") or attributes.get("text") or None
        url = attributes.get("xmlurl")
        if url:
            categories = [*folders, *_categories(attributes.get("category", ""))]
            yield OpmlFeed(
                xml_url=url,
                title=text,
                html_url=attributes.get("htmlurl") or None,
                categories=tuple(dict.fromkeys(c for c in categories if c)),
                description=attributes.get("description") or None,
            )
        yield from _walk(outline, [*folders, text] if text and not url else folders)


def _categories(value: str) -> list[str]:
    # "/Boston/Weather,/Harvard" -> ["Boston/Weather", "Harvard"]
    return [part.strip().strip("/") for part in value.split(",") if part.strip().strip("/")]
