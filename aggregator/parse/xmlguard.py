"""Defuse a feed's DOCTYPE before any XML parser sees it: no entity bombs, no external entities.

What feedparser does by itself (feedparser 6.0, expat 2.5): it deletes ``<!ENTITY>``
declarations with a regular expression over the text before the first ``<letter``, keeps the
ones whose value is plain text, and turns off external general entities in expat. That falls
short in three ways, each shown by a test in ``tests/test_xmlguard.py``:

* a comment holding ``<x`` before the DOCTYPE ends feedparser's "head" early, so expat gets the
  whole internal subset and expands a billion-laughs bomb until its amplification limit trips
  (seconds of CPU and tens of MB per document);
* a "plain text" entity is kept and expanded without limit: a 50 KB entity referenced 50,000
  times becomes 2.5 GB (the quadratic blowup), in expat and in feedparser's loose parser alike;
* declarations that share a line with the DOCTYPE escape the line-anchored expression.

So aggregator rewrites the DOCTYPE first (:func:`defuse`): the internal subset is dropped, and
only simple text entities (``<!ENTITY name "text">``, no ``&``, ``%`` or ``<`` in the text) are
put back, and only while everything they could expand to stays under
:data:`MAX_EXPANSION` characters. Parameter entities, external (``SYSTEM``/``PUBLIC``)
entities and every other declaration are removed, so nothing is ever fetched. A reference to a
removed entity is left as text by feedparser's loose parser. Pure: no IO.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

MAX_ENTITIES = 64
MAX_ENTITY_CHARS = 1024
#: The most characters that kept entity references may add to a document.
MAX_EXPANSION = 1_000_000

_SIMPLE_ENTITY = re.compile(r'<!ENTITY\s+([A-Za-z_][\w.-]*)\s+(?:"([^"&%<]*)"|\'([^\'&%<]*)\')\s*>')
# Any <!ENTITY ...> left where feedparser would still look for one (its "head").
_ANY_ENTITY = re.compile(r"<!ENTITY\b[^>]*>", re.IGNORECASE)
_GENERAL_ENTITY_NAME = re.compile(r"<!ENTITY\s+([A-Za-z_:][\w.:-]*)", re.IGNORECASE)
_REFERENCE = re.compile(r"&([A-Za-z_:][\w.:-]*);")
_PREDEFINED = {"amp", "lt", "gt", "quot", "apos"}
_FIRST_ELEMENT = re.compile(r"<\w")
# Character references to UTF-16 surrogates (&#xD800; ... &#57343;) crash feedparser's loose
# parser with UnicodeEncodeError, losing the whole feed; they become U+FFFD instead.
_SURROGATE_REF = re.compile(
    r"&#(?:[xX]0*[dD][89a-fA-F][0-9a-fA-F]{2}|0*5(?:5[2-9]\d\d|[67]\d{3}));"
)

# Byte patterns that identify encodings in which "<" is not the byte 0x3C (XML 1.0 appendix F).
_SNIFF = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (b"\x00\x00\x00\x3c", "utf-32-be"),
    (b"\x3c\x00\x00\x00", "utf-32-le"),
    (b"\x00\x3c", "utf-16-be"),
    (b"\x3c\x00", "utf-16-le"),
    (b"\x4c\x6f\xa7\x94", "cp037"),  # "<?xm" in EBCDIC
)


@dataclass(frozen=True)
class Defused:
    """A document made safe to parse, and what was removed from it (``None``: nothing)."""

    content: bytes
    warning: str | None = None


def defuse(content: bytes) -> Defused:
    """Rewrite ``content``'s DOCTYPE so that no entity can explode or reach outside.

    Documents without a DOCTYPE internal subset or entity declaration come back unchanged.
    """
    codec, bom = _sniff(content)
    if codec is None:
        # ASCII-compatible encodings (UTF-8, Latin-1, Shift_JIS ...): markup bytes are ASCII,
        # and latin-1 maps every byte to one character and back, so this is lossless.
        text = content.decode("latin-1")
        result, warning = _defuse_text(text)
        if result == text:
            return Defused(content)
        return Defused(result.encode("latin-1"), warning)
    text = content[len(bom) :].decode(codec, errors="replace")
    result, warning = _defuse_text(text)
    if result == text:
        return Defused(content)
    return Defused(bom + result.encode(codec, errors="replace"), warning)


def _sniff(content: bytes) -> tuple[str | None, bytes]:
    for prefix, codec in _SNIFF:
        if content.startswith(prefix):
            is_bom = prefix in (
                codecs.BOM_UTF32_LE,
                codecs.BOM_UTF32_BE,
                codecs.BOM_UTF16_LE,
                codecs.BOM_UTF16_BE,
            )
            return codec, prefix if is_bom else b""
    return None, b""


def _defuse_text(text: str) -> tuple[str, str | None]:
    text = _SURROGATE_REF.sub(_surrogate_ref, text)
    removed = False
    dropped: set[str] = set()  # names of general entities whose declaration was removed
    keep_from = keep_to = 0  # the rebuilt DOCTYPE, which the stray scan below leaves alone
    span = _doctype_span(text)
    if span is not None:
        start, subset_start, subset_end, end = span
        subset = text[subset_start + 1 : subset_end]
        kept = _safe_entities(subset, text[end:])
        dropped.update(_GENERAL_ENTITY_NAME.findall(subset))
        dropped.difference_update(name for name, _ in kept)
        head = text[start:subset_start].rstrip()
        declarations = "".join(f'\n<!ENTITY {name} "{value}">' for name, value in kept)
        doctype = f"{head} [{declarations}\n]>" if kept else f"{head}>"
        removed = len(kept) != _count_declarations(subset)
        text = text[:start] + doctype + text[end:]
        keep_from, keep_to = start, start + len(doctype)
    # feedparser also collects <!ENTITY> lines anywhere before the first "<letter" (even in
    # comments or after junk that ends the prolog): remove every one outside the DOCTYPE.
    first = _FIRST_ELEMENT.search(text, keep_to)
    head_end = first.start() if first else len(text)
    stray = [
        match
        for match in _ANY_ENTITY.finditer(text, 0, head_end)
        if not keep_from <= match.start() < keep_to
    ]
    for match in reversed(stray):
        dropped.update(_GENERAL_ENTITY_NAME.findall(match.group(0)))
        text = text[: match.start()] + text[match.end() :]
    if not removed and not stray:
        return text, None
    dropped -= _PREDEFINED
    if dropped:
        # A reference to a removed entity becomes its own text, "&name;", so the document
        # stays well-formed for expat instead of falling to feedparser's loose parser, which
        # handles each reference in Python (a million of them would take a minute).
        body_from = keep_to  # after the rebuilt DOCTYPE, else the whole text
        text = text[:body_from] + _REFERENCE.sub(
            lambda m: f"&amp;{m.group(1)};" if m.group(1) in dropped else m.group(0),
            text[body_from:],
        )
    return text, "DOCTYPE declarations removed (entity expansion and external entities are off)"


def _surrogate_ref(match: re.Match[str]) -> str:
    ref = match.group(0)[2:-1]
    number = int(ref[1:], 16) if ref[:1] in "xX" else int(ref)
    return "&#xFFFD;" if 0xD800 <= number <= 0xDFFF else match.group(0)


def _count_declarations(subset: str) -> int:
    return len(re.findall(r"<!(?!--)", subset))


def _safe_entities(subset: str, body: str) -> list[tuple[str, str]]:
    """The simple text entities worth keeping, or none if together they could expand too far."""
    found: dict[str, str] = {}
    for match in _SIMPLE_ENTITY.finditer(subset):
        name, value = (
            match.group(1),
            match.group(2) if match.group(2) is not None else match.group(3),
        )
        if len(value) <= MAX_ENTITY_CHARS and '"' not in value and name not in found:
            found[name] = value
    if not found or len(found) > MAX_ENTITIES:
        return []
    expansion = 0
    for name, value in found.items():
        expansion += body.count(f"&{name};") * len(value)
        if expansion > MAX_EXPANSION:
            return []
    return list(found.items())


def _doctype_span(text: str) -> tuple[int, int, int, int] | None:
    """Where the prolog's DOCTYPE with an internal subset is: (start, "[", "]", end).

    Walks the prolog as XML defines it (XML declaration, comments, processing instructions,
    white space) so that a ``<`` inside a comment cannot hide the DOCTYPE.
    """
    i = 0
    n = len(text)
    while i < n:
        if text[i] in " \t\r\n\ufeff":
            i += 1
        elif text.startswith("<?", i):
            close = text.find("?>", i + 2)
            if close < 0:
                return None
            i = close + 2
        elif text.startswith("<!--", i):
            close = text.find("-->", i + 4)
            if close < 0:
                return None
            i = close + 3
        elif text[i : i + 9].upper() == "<!DOCTYPE":
            return _internal_subset(text, i)
        else:
            return None
    return None


def _internal_subset(text: str, start: int) -> tuple[int, int, int, int] | None:
    i = start + 9
    n = len(text)
    # The name and external id, up to "[" or ">", skipping quoted literals.
    while i < n and text[i] not in "[>":
        if text[i] in "\"'":
            close = text.find(text[i], i + 1)
            if close < 0:
                return None
            i = close + 1
        else:
            i += 1
    if i >= n or text[i] == ">":
        return None
    subset_start = i
    i += 1
    # The internal subset, up to its "]", skipping literals, comments and PIs.
    while i < n:
        char = text[i]
        if char in "\"'":
            close = text.find(char, i + 1)
            if close < 0:
                return None
            i = close + 1
        elif text.startswith("<!--", i):
            close = text.find("-->", i + 4)
            if close < 0:
                return None
            i = close + 3
        elif text.startswith("<?", i):
            close = text.find("?>", i + 2)
            if close < 0:
                return None
            i = close + 2
        elif char == "]":
            close = text.find(">", i + 1)
            if close < 0 or text[i + 1 : close].strip():
                return None
            return start, subset_start, i, close + 1
        else:
            i += 1
    return None
