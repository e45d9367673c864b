"""What changed in comment threads (issue 15, item 3): the ``comment-changes`` feeds.

An output with ``comment_changes: true`` publishes ``/feeds/{output}/comment-changes.{atom,rss,
json}``: one item per edit of a comment (its text before and after, the difference marked with
``<del>``/``<ins>``) and per vanished comment (its last text and when it vanished), newest
first, at most :data:`CHANGES_LIMIT`. Revisions are recorded by storage
(:mod:`aggregator.storage.history`) in the transaction that changes the comment.

:func:`mark_difference` and :func:`terminal_difference` are pure; :func:`publish_changes` is
called by :class:`~aggregator.publish.publisher.Publisher` and writes the files (the sources
and the database come from its :class:`~aggregator.select.chooser.OutputChooser`).
"""

from __future__ import annotations

import difflib
import html
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from aggregator.config.outputs import OutputConfig
from aggregator.models import CommentRevision
from aggregator.parse.sanitize import plain_text
from aggregator.publish.links import EXTENSIONS, FeedLinks
from aggregator.publish.render import json_bytes, new_generator, serialize

if TYPE_CHECKING:
    from aggregator.select.chooser import OutputChooser

CHANGES_LIMIT = 50  # items in a comment-changes feed (or the output's limit, when smaller)
_WORDS = re.compile(r"\s+|[^\s]+")


def _words(text: str) -> list[str]:
    return _WORDS.findall(text)


def mark_difference(old_html: str, new_html: str) -> str:
    """The new text of a comment as HTML, what was removed in ``<del>`` and what was added in
    ``<ins>`` (word by word, with :mod:`difflib`); both texts are read as plain text."""
    old, new = _words(plain_text(old_html)), _words(plain_text(new_html))
    parts: list[str] = []
    for op, a1, a2, b1, b2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if op == "equal":
            parts.append(html.escape("".join(old[a1:a2])))
            continue
        if op in ("delete", "replace"):
            parts.append(f"<del>{html.escape(''.join(old[a1:a2]))}</del>")
        if op in ("insert", "replace"):
            parts.append(f"<ins>{html.escape(''.join(new[b1:b2]))}</ins>")
    return "".join(parts)


def terminal_difference(old_html: str, new_html: str) -> str:
    """The same difference as plain text for a terminal: ``[-removed-]{+added+}`` (wdiff's
    notation)."""
    old, new = _words(plain_text(old_html)), _words(plain_text(new_html))
    parts: list[str] = []
    for op, a1, a2, b1, b2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if op == "equal":
            parts.append("".join(old[a1:a2]))
            continue
        if op in ("delete", "replace"):
            parts.append(f"[-{''.join(old[a1:a2])}-]")
        if op in ("insert", "replace"):
            parts.append(f"{{+{''.join(new[b1:b2])}+}}")
    return "".join(parts)


def change_title(change: CommentRevision) -> str:
    """``AUTHOR edited a comment on POST`` or ``AUTHOR's comment on POST vanished``."""
    who = change.author or "anonymous"
    post = change.entry_title or "(untitled)"
    if change.kind == "edit":
        return f"{who} edited a comment on {post}"
    return f"{who}'s comment on {post} vanished"


def change_html(change: CommentRevision) -> str:
    """An item's content: before, after and the difference; or the last text of a vanished
    comment and when it vanished. Stored comment text is already sanitized HTML."""
    when = change.recorded_at.strftime("%Y-%m-%d %H:%M UTC")
    if change.kind == "gone":
        return (
            f"<p>This comment vanished from its thread at {when}. Its last text:</p>"
            f"<blockquote>{change.old_content}</blockquote>"
        )
    return (
        f"<p>Edited at {when}. The difference:</p>"
        f"<p>{mark_difference(change.old_content, change.new_content or '')}</p>"
        f"<p>Before:</p><blockquote>{change.old_content}</blockquote>"
        f"<p>After:</p><blockquote>{change.new_content or ''}</blockquote>"
    )


def change_id(change: CommentRevision) -> str:
    """A stable id for one recorded change."""
    return uuid.uuid5(
        uuid.NAMESPACE_URL, f"aggregator:comment-change:{change.comment_public_id}:{change.id}"
    ).urn


def change_link(change: CommentRevision) -> str | None:
    return change.comment_link or change.entry_link


def render_changes(
    output: OutputConfig, changes: Sequence[CommentRevision], links: FeedLinks, fmt: str
) -> bytes:
    """One comment-changes document (Atom, RSS or JSON Feed), items newest first."""
    title = f"{output.display_title}: comment changes"
    description = f"Edited and vanished comments in {output.display_title}"
    self_url = changes_url(links, fmt)
    if fmt == "json":
        document: dict[str, object] = {
            "version": "https://jsonfeed.org/version/1.1",
            "title": title,
            "home_page_url": links.web_page(),
            "feed_url": self_url,
            "description": description,
            "items": [
                {
                    "id": change_id(change),
                    "url": change_link(change),
                    "title": change_title(change),
                    "content_html": change_html(change),
                    "date_published": change.recorded_at.isoformat(),
                    "authors": [{"name": change.author or "anonymous"}],
                    "_aggregator": {
                        "kind": change.kind,
                        "comment": change.comment_public_id,
                        "entry": change.entry_public_id,
                    },
                }
                for change in changes
            ],
        }
        return json_bytes(document)
    updated = changes[0].recorded_at if changes else datetime(2000, 1, 1).astimezone()
    feed_id = uuid.uuid5(uuid.NAMESPACE_URL, f"aggregator:comment-changes:{output.name}").urn
    generator = new_generator(feed_id, title, description, self_url, fmt, updated, links.web_page())
    # feedgen's add_entry prepends: add the oldest first so the document reads newest first.
    for change in reversed(changes):
        item = generator.add_entry()
        item.id(change_id(change))
        item.guid(change_id(change), permalink=False)
        item.title(change_title(change))
        link = change_link(change)
        if link:
            item.link(href=link, rel="alternate")
        item.author({"name": change.author or "anonymous"})
        item.content(change_html(change), type="CDATA" if fmt == "rss" else "html")
        if fmt == "rss":
            item.description(change_html(change))
        item.published(change.recorded_at)
        item.updated(change.recorded_at)
    return serialize(generator, fmt)


def changes_url(links: FeedLinks, fmt: str) -> str:
    return f"{links.base_url}/feeds/{links.output}/comment-changes.{EXTENSIONS[fmt]}"


def publish_changes(
    chooser: OutputChooser,
    output: OutputConfig,
    links: FeedLinks,
    folder: Path,
    write: Callable[[Path, tuple[object, ...], Callable[[], bytes], list[Path]], None],
) -> list[Path]:
    """Write the output's comment-changes feeds when what they show changed; return the paths
    written. Changes on comments of every entry of the output's followed sources are shown."""
    config = chooser.config
    names = [s.name for s in config.sources_for(output) if config.comments_for(s)]
    changes = chooser.storage.list_comment_changes(names, min(output.limit, CHANGES_LIMIT))
    changed: list[Path] = []
    signature = (links, output.display_title, tuple(changes))
    for fmt in output.formats:
        write(
            folder / output.name / f"comment-changes.{EXTENSIONS[fmt]}",
            signature,
            partial(render_changes, output, changes, links, fmt),
            changed,
        )
    return changed
