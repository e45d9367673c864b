"""The commands that read comments: ``comments`` (a stored entry's thread or its history) and
``extract-comments`` (the comments found in one page, for trying a detector or preset).

Thin: they read :mod:`aggregator.storage` or call :mod:`aggregator.comments.detect`, and print.
Following threads during polls is :mod:`aggregator.comments`' job, not theirs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from aggregator.cli.common import Context, echo, handle_errors
from aggregator.errors import ConfigError
from aggregator.terminal import safe_text


@click.command()
@click.argument("entry")
@click.option(
    "--history", is_flag=True, help="Print the thread's changes: edited and vanished comments."
)
@click.pass_obj
@handle_errors
def comments(obj: Context, entry: str, history: bool) -> None:
    """Print an entry's comment thread. ENTRY is its id (as in feed URLs) or its link.

    With --history, print instead what changed in it, newest first: each edit (the text
    before and after, removed words as [-...-], added ones as {+...+}) and each comment that
    vanished from the source (its last text).

    Example: aggregator comments https://blog.example.org/2018/06/a-post.html --history
    """
    from aggregator.parse.sanitize import plain_text
    from aggregator.storage import Storage

    with Storage(obj.config.database) as storage:
        stored = storage.find_entry(entry)
        thread = storage.list_comments(stored.id)
        revisions = storage.list_entry_revisions(stored.id) if history else []
    if history:
        _print_history(stored.title, stored.link, revisions)
        return
    click.echo(click.style(safe_text(stored.title) or "(untitled)", bold=True))
    echo(f"{stored.link or ''}  [{stored.source_name}]  {len(thread)} comment(s)")
    by_id = {comment.public_id: comment for comment in thread}
    for comment in thread:
        depth, parent = 0, by_id.get(comment.parent_public_id or "")
        while parent is not None and depth < 8:
            depth, parent = depth + 1, by_id.get(parent.parent_public_id or "")
        indent = "    " * depth
        when = (
            comment.published_at.strftime("%Y-%m-%d %H:%M UTC")
            if comment.published_at
            else "undated"
        )
        number = f"#{comment.number} " if comment.number is not None else ""
        gone = "  (gone from the source)" if comment.gone_at else ""
        replied = by_id.get(comment.parent_public_id or "")
        reply = (
            f"  (reply to {replied.author or 'anonymous'})"
            if replied
            else "  (reply)"
            if comment.parent_public_id
            else ""
        )
        echo("")
        click.echo(
            indent
            + click.style(
                safe_text(f"{number}{comment.author or 'anonymous'} | {when}{reply}{gone}"),
                fg="cyan",
            )
        )
        echo(indent + plain_text(comment.content))


def _print_history(title: str | None, link: str | None, revisions: list[Any]) -> None:
    from aggregator.parse.sanitize import plain_text
    from aggregator.publish.changefeed import terminal_difference

    click.echo(click.style(safe_text(title) or "(untitled)", bold=True))
    echo(f"{link or ''}  {len(revisions)} change(s)")
    for change in revisions:
        when = change.recorded_at.strftime("%Y-%m-%d %H:%M UTC")
        who = change.author or "anonymous"
        echo("")
        if change.kind == "gone":
            click.echo(click.style(safe_text(f"{when}  {who}: vanished"), fg="red"))
            echo("    last text: " + plain_text(change.old_content))
            continue
        click.echo(click.style(safe_text(f"{when}  {who}: edited"), fg="yellow"))
        echo("    before: " + plain_text(change.old_content))
        echo("    after:  " + plain_text(change.new_content or ""))
        echo("    diff:   " + terminal_difference(change.old_content, change.new_content or ""))


@click.command("extract-comments")
@click.argument("target", metavar="PATH_OR_URL")
@click.option(
    "--preset",
    default="auto",
    show_default=True,
    help="auto (find the thread), or a preset: typepad, wordpress, blogger, drupal, wpdiscuz.",
)
@click.option("--timezone", help="The blog's IANA zone, for dates printed without one.")
@click.option("--url", "page_url", help="The page's URL, for links of a local file.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array for scripts.")
@click.pass_obj
@handle_errors
def extract_comments(
    obj: Context,
    target: str,
    preset: str,
    timezone: str | None,
    page_url: str | None,
    as_json: bool,
) -> None:
    """Print the comments found in one blog post's page (a local file or a URL).

    A URL is fetched under the rules of any URL found in a feed (no private addresses unless
    the config allows them). Says which detector matched and names comment systems the page
    loads by script (Disqus, Facebook...), whose comments are not in the page.

    Example: aggregator extract-comments https://blog.example/2019/03/post/ --json
    """

    from aggregator.comments.detect import canonical_url, read_comments
    from aggregator.fetch.addresses import Provenance

    now = datetime.now(UTC)
    if target.startswith(("http://", "https://")):
        from aggregator.poll.resources import make_fetcher

        with make_fetcher(obj.config) as fetcher:
            # Found, not configured: same-origin leniency must not follow from the URL itself.
            fetched = fetcher.fetch(target, provenance=Provenance(source_url="", configured=False))
        html, url = fetched.content or b"", fetched.final_url
    else:
        path = Path(target)
        try:
            html = path.read_bytes()
        except OSError as error:
            raise ConfigError([f"{target}: {error.strerror or error}"]) from error
        url = page_url or canonical_url(html) or path.resolve().as_uri()
    try:
        found = read_comments(html, url, preset, timezone, now=now)
    except ValueError as error:
        raise ConfigError([f"extract-comments: {error}"]) from error
    if as_json:
        echo(json.dumps([_comment_json(c) for c in found.comments], indent=1))
    else:
        echo(f"detector: {found.detector or 'none matched'}")
        for comment in found.comments:
            when = comment.published_at.isoformat() if comment.published_at else "(undated)"
            reply = f" (reply to {comment.parent_key})" if comment.parent_key else ""
            echo(f"- {comment.author or '(no name)'}, {when}{reply}: {_snippet(comment)}")
        echo(f"{len(found.comments)} comments, {found.undated} without a readable date")
    if found.script_systems:
        echo(
            f"comments loaded by script, not in the page: {', '.join(found.script_systems)}",
            err=as_json,
        )


def _comment_json(comment: Any) -> dict[str, Any]:
    from aggregator.parse.sanitize import plain_text

    return {
        "author": comment.author,
        "published": comment.published_at.isoformat().replace("+00:00", "Z")
        if comment.published_at
        else None,
        "text": plain_text(comment.content),
        "key": comment.key,
        "parent": comment.parent_key,
    }


def _snippet(comment: Any) -> str:
    from aggregator.parse.sanitize import plain_text

    text = " ".join(plain_text(comment.content).split())
    return text if len(text) <= 70 else text[:69] + "…"
