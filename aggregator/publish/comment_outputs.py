"""Publish an output's comment documents other than its entries' threads: the latest-comments
feed (``/feeds/{output}/comments.*``) and, for an output of ``items: comments``, the output
itself and its pages 2..N.

Called by :class:`aggregator.publish.publisher.Publisher` with its write-if-changed (``write``)
and its fragment cache; the comments are chosen by
:class:`aggregator.select.chooser.OutputChooser` and rendered by
:func:`aggregator.publish.render_comments.render_comments`. The feeds of each entry's thread are
written by the publisher itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

from aggregator.config.outputs import OutputConfig
from aggregator.models import StoredComment, StoredEntry
from aggregator.publish.commentitems import item_title
from aggregator.publish.fragments import FragmentCache
from aggregator.publish.links import EXTENSIONS, FeedLinks, Page
from aggregator.publish.render_comments import render_comments, shown_comments, shown_comments_with
from aggregator.select.chooser import OutputChooser
from aggregator.select.filters import keep_comment

LATEST_COMMENTS = 50
LATEST_SCAN_MAX = 5000  # comments read back at most to fill the latest-comments feed

#: The publisher's write-if-changed: path, signature, renderer, list of changed paths.
Write = Callable[[Path, tuple[object, ...], Callable[[], bytes], list[Path]], None]


def publish_comment_items(
    chooser: OutputChooser,
    output: OutputConfig,
    links: FeedLinks,
    folder: Path,
    write: Write,
    fragments: FragmentCache | None,
) -> list[Path]:
    """Write an output whose items are comments: the feed and its pages 2..N."""
    parent_links: dict[str, str] = {}  # permalinks of parent comments
    items = shown_comments_with(output, chooser.comment_items(output, parent_links))
    size = output.limit
    chunks = [items[i : i + size] for i in range(0, len(items), size)] or [[]]
    count = len(chunks)
    changed: list[Path] = []
    feed_id = uuid.uuid5(uuid.NAMESPACE_URL, f"aggregator:output:{output.name}").urn
    configured = output.model_dump_json()
    for number, chunk in enumerate(chunks, start=1):
        comments = [comment for comment, _ in chunk]
        entries = {entry.id: entry for _, entry in chunk}
        parents = {
            c.parent_public_id: parent_links[c.parent_public_id]
            for c in comments
            if c.parent_public_id in parent_links
        }
        page = Page(number, count)
        signature = (
            links,
            configured,
            page,
            tuple(comments),
            tuple(sorted((e.id, e.title, e.link) for e in entries.values())),
            tuple(sorted(parents.items())),
        )
        for fmt in output.formats:
            path = (
                folder / f"{output.name}.{EXTENSIONS[fmt]}"
                if number == 1
                else folder / output.name / "page" / f"{number}.{EXTENSIONS[fmt]}"
            )
            write(
                path,
                signature,
                partial(
                    render_comments,
                    output.display_title,
                    feed_id,
                    comments,
                    entries,
                    links.feed_page(fmt, page.number),
                    links.web_page(),
                    fmt,
                    hub=links.hub,
                    fragments=fragments,
                    title_of=item_title,
                    page=page,
                    page_links=links,
                    parent_links=parents,
                ),
                changed,
            )
    page_folder = folder / output.name / "page"
    for path in page_folder.glob("*.*") if page_folder.is_dir() else ():
        if path.stem.isdigit() and int(path.stem) > count:
            path.unlink(missing_ok=True)
    return changed


def publish_latest_comments(
    chooser: OutputChooser,
    output: OutputConfig,
    entries: list[StoredEntry],
    links: FeedLinks,
    folder: Path,
    write: Write,
    fragments: FragmentCache | None,
) -> list[Path]:
    """Write the output's latest-comments feeds: its newest :data:`LATEST_COMMENTS` visible
    comments, of ``entries`` and of any other entry the output's rules keep."""
    names = [source.name for source in chooser.config.sources_for(output)]
    by_id = {entry.id: entry for entry in entries}

    def shown(comment: StoredComment) -> bool:
        if comment.entry_id not in by_id:
            by_id[comment.entry_id] = chooser.storage.get_entry(comment.entry_public_id)
        rules = chooser.comment_rules(output, by_id[comment.entry_id].source_name)
        return keep_comment(rules, comment)

    # Read further back while killfiles and rules hide too many of the newest comments.
    limit = LATEST_COMMENTS * 2
    while True:
        recent = chooser.storage.list_recent_comments(names, limit)
        candidates = [c for c in recent if shown(c)]
        kept = chooser.passes_rules(output, [by_id[c.entry_id] for c in candidates])
        visible = [c for c in candidates if c.entry_id in kept][:LATEST_COMMENTS]
        if len(visible) == LATEST_COMMENTS or len(recent) < limit or limit >= LATEST_SCAN_MAX:
            break
        limit *= 4
    visible = shown_comments(output, visible)
    changed: list[Path] = []
    title = f"{output.display_title}: latest comments"
    feed_id = uuid.uuid5(uuid.NAMESPACE_URL, f"aggregator:latest-comments:{output.name}").urn
    # What the bytes depend on: the comments and, of their entries, what a comment shows.
    signature = (
        links,
        title,
        tuple(visible),
        tuple((by_id[c.entry_id].title, by_id[c.entry_id].link) for c in visible),
    )
    for fmt in output.formats:
        write(
            folder / output.name / f"comments.{EXTENSIONS[fmt]}",
            signature,
            partial(
                render_comments,
                title,
                feed_id,
                visible,
                by_id,
                links.latest_comments(fmt),
                links.page(),
                fmt,
                hub=links.hub,
                fragments=fragments,
            ),
            changed,
        )
    return changed
