"""Match a site-wide comment feed's comments to the entries they belong to. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urldefrag

from aggregator.models import CommentData, ThreadState


def match_comments_to_threads(
    comments: Sequence[CommentData], threads: Sequence[ThreadState]
) -> list[tuple[ThreadState, list[CommentData]]]:
    """Group a site-wide feed's comments by entry.

    A comment names its entry through ``thr:in-reply-to`` (its ``ref``, the post's guid, or its
    ``href``, the post's URL), else through its link (WordPress: ``<post-url>#comment-123``), else
    through its guid (WordPress: ``https://blog/?p=3#comment-123``, the post's guid plus the
    comment's anchor). A reply's ``thr:in-reply-to`` names its parent comment, whose URL without
    the fragment is the post's again. Comments that match no entry are left out.
    """
    by_ref: dict[str, ThreadState] = {}
    for thread in threads:
        for ref in (thread.guid, thread.link, thread.key):
            if ref:
                by_ref.setdefault(ref, thread)
                by_ref.setdefault(_strip(ref), thread)
    groups: dict[int, tuple[ThreadState, list[CommentData]]] = {}
    for comment in comments:
        found: ThreadState | None = None
        for ref in (comment.in_reply_to, comment.in_reply_to_href, comment.link, comment.guid):
            if ref:
                found = by_ref.get(ref) or by_ref.get(_strip(ref))
            if found is not None:
                break
        if found is not None:
            groups.setdefault(found.entry_id, (found, []))[1].append(comment)
    return list(groups.values())


def _strip(url: str) -> str:
    return urldefrag(url)[0].rstrip("/")
