"""Which comment system a post's page embeds, and the ``comment_system`` setting that would
follow it (issue 16, section 1). Pure: a page's bytes in, :class:`Proposal`s out; nothing is
fetched.

Read from the page's ``<script>`` elements only (their ``src``, attributes and inline code),
never from its prose, so an article about "civic discourse" proposes nothing:

* Disqus: ``disqus_shortname = "NAME"``, ``//NAME.disqus.com/embed.js`` (or ``count.js``),
  ``disqus.com/forums/NAME/embed.js`` → ``disqus`` with ``forum`` (an API key is needed);
* Discourse: ``DiscourseEmbed = {discourseUrl: ..., topicId: ...}`` → ``discourse`` with
  ``base_url`` (:func:`discourse_embed` reads the topic id for the provider);
* Isso: a ``data-isso`` script (or ``/js/embed.min.js``) → ``isso`` with ``base_url``;
* Remark42: ``remark_config = {host: ..., site_id: ...}`` → ``remark42`` with ``base_url``
  and ``site``;
* Commento: ``/js/commento.js`` → ``commento`` with ``base_url`` and ``domain``;
* giscus: ``giscus.app/client.js`` with ``data-repo`` → ``giscus`` with ``repo``,
  ``mapping`` and ``category`` (GitHub's GraphQL API needs a ``token``);
* utterances: ``utteranc.es/client.js`` with ``repo`` → ``utterances`` with ``repo`` and the
  ``mapping`` its ``issue-term`` (or ``issue-number``) gives.

Does not: decide whether a proposal can be used as it is (the registry does), or read any
comment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser, SelectolaxError

from aggregator.parse.links import _parse_html, _web_url
from aggregator.terminal import safe_text

# Code is searched this far into each inline script, and configs this long at most.
_MAX_SCRIPT = 200_000
_NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
_Q = r"[\"']"
_DISQUS_NAME = re.compile(rf"\bdisqus_shortname\s*[:=]\s*{_Q}({_NAME}){_Q}")
_DISQUS_HOST = re.compile(rf"//({_NAME})\.disqus\.com/(?:embed|count)\.js", re.IGNORECASE)
_DISQUS_FORUM = re.compile(rf"//disqus\.com/forums/({_NAME})/(?:embed|count)\.js", re.IGNORECASE)
_DISQUS_NOT_FORUMS = frozenset({"www", "disqus", "c", "a", "go", "media", "help", "blog"})
_DISCOURSE = re.compile(r"\bDiscourseEmbed\s*=\s*\{([^{}]{0,2000})\}")
_REMARK = re.compile(r"\bremark_config\s*=\s*\{([^{}]{0,2000})\}")
# utterances' issue-term values that name a way to map a page (any other is the term itself).
_UTTERANCES_TERMS = frozenset({"pathname", "url", "title", "og:title"})
_GISCUS_REPO = re.compile(r"^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$")


def _field(name: str, body: str) -> str | None:
    match = re.search(rf"\b{name}\s*:\s*{_Q}([^\"'\s]{{1,500}}){_Q}", body)
    return match.group(1) if match else None


@dataclass(frozen=True)
class Proposal:
    """A comment system found in a page: its provider name, the settings the page gives, the
    settings only the operator can give (``needs``, such as an API key) and a note."""

    type: str
    label: str
    settings: tuple[tuple[str, str], ...]
    needs: tuple[str, ...] = ()
    note: str | None = None

    def __post_init__(self) -> None:
        # Values come from a hostile page and end up in notes, `status` and the config file:
        # no escape sequences, no control characters, no line breaks, and not too long.
        clean = tuple((k, safe_text(v)[:500]) for k, v in self.settings)
        object.__setattr__(self, "settings", clean)

    def as_config(self) -> dict[str, str]:
        """The ``comment_system`` mapping proposed (without what ``needs`` names)."""
        return {"type": self.type, **dict(self.settings)}

    def describe(self) -> str:
        """``comment_system: {type: isso, base_url: https://c.example/}`` as one line, with
        what is still needed and the note."""
        pairs = ", ".join(f"{k}: {v}" for k, v in (("type", self.type), *self.settings))
        text = f"comment_system: {{{pairs}}}"
        if self.needs:
            text += f" (also needs {', '.join(self.needs)})"
        if self.note:
            text += f"; {self.note}"
        return text


@dataclass(frozen=True)
class DiscourseEmbed:
    """What a page's ``DiscourseEmbed`` code names: the forum, and the topic when it is fixed."""

    base_url: str | None
    topic_id: int | None
    embed_url: str | None


def propose(
    html: bytes | str, page_url: str, tree: LexborHTMLParser | None = None
) -> tuple[Proposal, ...]:
    """The comment systems ``html`` embeds, as proposed ``comment_system`` settings, in the
    order of the module docstring; empty when none (or the page cannot be parsed)."""
    try:
        tree = tree or _parse_html(html)
        scripts = tree.css("script")
    except (SelectolaxError, ValueError):
        return ()
    base = _web_url(page_url, None)
    code = "\n".join((node.text() or "")[:_MAX_SCRIPT] for node in scripts if not _src(node))
    sources = [
        (dict(node.attributes), _absolute(_src(node), base)) for node in scripts if _src(node)
    ]
    found: list[Proposal | None] = [
        _disqus(code, sources),
        _discourse(code, base),
        _isso(sources),
        _remark42(code, base),
        _commento(sources, base),
        _giscus(sources),
        _utterances(sources),
    ]
    return tuple(p for p in found if p is not None)


def discourse_embed(html: bytes | str, page_url: str) -> DiscourseEmbed | None:
    """The page's ``DiscourseEmbed`` settings (``discourseUrl``, ``topicId``,
    ``discourseEmbedUrl``), or ``None`` when it has none."""
    try:
        scripts = _parse_html(html).css("script")
    except (SelectolaxError, ValueError):
        return None
    code = "\n".join((node.text() or "")[:_MAX_SCRIPT] for node in scripts if not _src(node))
    match = _DISCOURSE.search(code)
    if match is None:
        return None
    body = match.group(1)
    topic = re.search(rf"\btopicId\s*:\s*{_Q}?(\d{{1,12}}){_Q}?", body)
    base = _web_url(page_url, None)
    return DiscourseEmbed(
        base_url=_absolute(_field("discourseUrl", body), base),
        topic_id=int(topic.group(1)) if topic and int(topic.group(1)) > 0 else None,
        embed_url=_absolute(_field("discourseEmbedUrl", body), base),
    )


def _src(node: object) -> str:
    return str(getattr(node, "attributes", {}).get("src") or "").strip()


def _absolute(url: str | None, base: str | None) -> str | None:
    if not url:
        return None
    if url.startswith("//"):
        url = f"{urlsplit(base or 'https://x').scheme or 'https'}:{url}"
    return _web_url(url, base)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


Sources = list[tuple[dict[str, str | None], str | None]]


def _disqus(code: str, sources: Sources) -> Proposal | None:
    names = [m.group(1) for m in _DISQUS_NAME.finditer(code)]
    for text in [code, *(url or "" for _, url in sources)]:
        names += [m.group(1) for m in _DISQUS_HOST.finditer(text)]
        names += [m.group(1) for m in _DISQUS_FORUM.finditer(text)]
    names = [n for n in names if n.lower() not in _DISQUS_NOT_FORUMS]
    if not names:
        return None
    return Proposal("disqus", "Disqus", (("forum", names[0].lower()),), needs=("api_key",))


def _discourse(code: str, base: str | None) -> Proposal | None:
    match = _DISCOURSE.search(code)
    url = _absolute(_field("discourseUrl", match.group(1)), base) if match else None
    if not url:
        return None
    return Proposal("discourse", "Discourse", (("base_url", url.rstrip("/")),))


def _isso(sources: Sources) -> Proposal | None:
    for attributes, url in sources:
        if "data-isso" in attributes or (url and re.search(r"/js/embed\.(?:min|dev)\.js$", url)):
            if not url:
                continue
            given = attributes.get("data-isso")
            base = _absolute(str(given), url) if given else re.sub(r"/js/embed\.\w+\.js$", "", url)
            if base:
                return Proposal("isso", "Isso", (("base_url", base.rstrip("/")),))
    return None


def _remark42(code: str, base: str | None) -> Proposal | None:
    match = _REMARK.search(code)
    if match is None:
        return None
    host = _absolute(_field("host", match.group(1)), base)
    if not host:
        return None
    site = _field("site_id", match.group(1)) or "remark"  # Remark42's default site id
    return Proposal("remark42", "Remark42", (("base_url", host.rstrip("/")), ("site", site)))


def _commento(sources: Sources, base: str | None) -> Proposal | None:
    for attributes, url in sources:
        if not url or not re.search(r"/js/commento\.js$", urlsplit(url).path):
            continue
        origin = _origin(url)
        if urlsplit(url).hostname == "cdn.commento.io":
            origin = "https://commento.io"  # the hosted service's API
        settings = [("base_url", origin)]
        host = urlsplit(base or "").netloc
        if host:
            settings.append(("domain", host))
        note = (
            "the page names its thread with data-page-id, which a source-wide setting cannot"
            if attributes.get("data-page-id")
            else None
        )
        return Proposal("commento", "Commento", tuple(settings), note=note)
    return None


def _giscus(sources: Sources) -> Proposal | None:
    for attributes, url in sources:
        if not url or urlsplit(url).hostname != "giscus.app":
            continue
        repo = str(attributes.get("data-repo") or "")
        if not _GISCUS_REPO.match(repo):
            continue
        settings = [("repo", repo)]
        for key in ("data-mapping", "data-category"):
            if attributes.get(key):
                settings.append((key.removeprefix("data-"), str(attributes[key])))
        return Proposal("giscus", "giscus", tuple(settings), needs=("token",))
    return None


def _utterances(sources: Sources) -> Proposal | None:
    for attributes, url in sources:
        if not url or urlsplit(url).hostname != "utteranc.es":
            continue
        repo = str(attributes.get("repo") or "")
        if not _GISCUS_REPO.match(repo):
            continue
        settings = [("repo", repo)]
        term = str(attributes.get("issue-term") or "")
        if attributes.get("issue-number"):
            settings.append(("mapping", "issue-number"))
        elif term in _UTTERANCES_TERMS:
            settings.append(("mapping", term))
        elif term:
            settings.append(("mapping", "specific"))  # a term of its own, read from each page
        return Proposal("utterances", "utterances", tuple(settings))
    return None
