"""The commands that edit the list of sources: ``add`` (find a site's feed and add it) and the
``opml`` group (``export`` the sources, ``import`` an OPML file).

Thin: discovery is :mod:`aggregator.fetch.discover`, the config file's edits
:mod:`aggregator.config.edit`, OPML :mod:`aggregator.config.opml`; this module prints and
decides only which feeds are already configured (by URL).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from aggregator.cli.common import Context, echo, handle_errors
from aggregator.errors import AggregatorError, ConfigError


@click.command()
@click.argument("url")
@click.option("--name", help="Source name (default: made from the feed's title).")
@click.option("--title", help="Title to show instead of the feed's own.")
@click.option("--tag", "tags", multiple=True, help="Tag for selecting it in outputs (repeatable).")
@click.option("--dry-run", is_flag=True, help="Show what was found; leave the config alone.")
@click.pass_obj
@handle_errors
def add(
    obj: Context,
    url: str,
    name: str | None,
    title: str | None,
    tags: tuple[str, ...],
    dry_run: bool,
) -> None:
    """Find the feed of URL (a blog's home page or a feed) and add it as a source.

    Tries the URL itself, the page's <link rel="alternate"> feeds, then the usual places
    (/feed/, /rss, /atom.xml, /index.rdf ...). Prints what it found, then appends the source to
    the config file, keeping its comments and layout. When the post pages embed a comment
    system (Isso, Remark42, Discourse, ...), its comment_system is written (or, when only you
    can complete it, printed).

    Example: aggregator add https://www.moonofalabama.org/ --tag politics
    """
    from aggregator.config.edit import NewSource, add_sources, derive_name
    from aggregator.fetch.discover import find_feed, probe_comments
    from aggregator.parse.sandbox import SandboxParser
    from aggregator.poll.resources import make_fetcher

    config = obj.config
    # Pages and feeds found are hostile input: parsed in the daemon's sandbox (issue 12).
    with make_fetcher(config) as fetcher, SandboxParser(small_workers=1) as parser:
        found = find_feed(url, fetcher, parser)
        probe = probe_comments(found, url, fetcher, parser)
    echo(f"found: {found.url} ({found.how})")
    echo(f"  title:    {found.title or '(none)'}")
    echo(f"  format:   {found.format}")
    echo(f"  entries:  {found.entries}")
    system = _usable_proposal(probe)
    echo(f"  comments: {_describe_probe(found, probe, followed=system is not None)}")
    for source in config.sources:
        if _same_url(source.url, found.url):
            raise ConfigError([f"{found.url} is already configured as source {source.name!r}"])
    taken = {source.name for source in config.sources}
    new = NewSource(
        name=name or derive_name(title or found.title, found.url, taken),
        url=found.url,
        title=title,
        tags=tags,
        comments_page=probe.comments_page,
        comment_system=tuple(system.as_config().items()) if system else (),
    )
    if probe.comments_page:
        echo(f"  writing comments_page: {probe.comments_page}")
    if system is not None:
        echo(f"  writing {system.describe()}")
    elif probe.proposals:
        echo(f"  to follow them, add to the source: {probe.proposals[0].describe()}")
    if dry_run:
        echo(f"would add source {new.name!r} to {obj.config_path} (--dry-run)")
        return
    add_sources(obj.config_path, [new])
    echo(f"added source {new.name!r} to {obj.config_path}")


def _usable_proposal(probe: Any) -> Any:
    """The first comment system proposed for the posts' pages that can be written as it is
    (a known provider, every required setting found in the page), else ``None``."""
    from aggregator.discussions.registry import parse_settings

    for proposal in probe.proposals:
        if proposal.needs or proposal.note:
            continue
        try:
            parse_settings(proposal.as_config(), "comments")
        except ValueError:
            continue  # a provider aggregator does not have, or settings it refuses
        return proposal
    return None


def _describe_probe(found: Any, probe: Any, *, followed: bool = False) -> str:
    """One line on where ``add`` would read the comments from (a :class:`CommentProbe`)."""
    if probe.kind == "feed":
        return f"{found.with_comment_feed} of {found.entries} posts carry a comment feed"
    page = f"the post page {probe.page_url}"
    if probe.kind == "page":
        count = f"{probe.comments} comment(s)" if probe.comments else "no comment yet"
        return f"no comment feeds; in the pages: {probe.detector} markup, {count} in {page}"
    if probe.kind == "script":
        how = "followed through its API" if followed else "not followed"
        return (
            f"no comment feeds; {page} loads its comments by script "
            f"({', '.join(probe.script_systems)}): not in the page, {how}"
        )
    if probe.kind == "error":
        return f"no comment feeds; {page} could not be read: {probe.error}"
    return f"no comment feeds; none found in {page}" if probe.page_url else "no comment feeds"


@click.group()
def opml() -> None:
    """Export the sources as OPML, or import sources from an OPML file.

    Example: aggregator opml export -o sources.opml
    """


@opml.command("export")
@click.option(
    "--output", "-o", "output_file", type=click.File("wb"), default="-", help="Default: stdout."
)
@click.pass_obj
@handle_errors
def opml_export(obj: Context, output_file: Any) -> None:
    """Write every configured source as an OPML 2.0 subscription list.

    Example: aggregator opml export -o sources.opml
    """
    from aggregator.config.opml import OpmlFeed, make_opml
    from aggregator.storage import Storage

    config = obj.config
    stored: dict[str, dict[str, Any]] = {}
    if config.database.exists():  # exporting must not create a database as a side effect
        with Storage(config.database) as storage:
            stored = {row["name"]: row for row in storage.list_source_rows()}
    feeds = [
        OpmlFeed(
            xml_url=source.url,
            title=source.title or stored.get(source.name, {}).get("title") or source.name,
            html_url=stored.get(source.name, {}).get("link"),
            categories=source.tags,
        )
        for source in config.sources
    ]
    output_file.write(make_opml("aggregator sources", feeds))


@opml.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tag", "tags", multiple=True, help="Add this tag to every imported source.")
@click.option("--dry-run", is_flag=True, help="Show what would be added; leave the config alone.")
@click.pass_obj
@handle_errors
def opml_import(obj: Context, file: Path, tags: tuple[str, ...], dry_run: bool) -> None:
    """Add the feeds of an OPML FILE as sources; feeds already configured are skipped.

    Names are made from the titles. Folders and categories become tags.

    Example: aggregator opml import ~/Downloads/subscriptions.opml
    """
    from aggregator.config.edit import add_sources
    from aggregator.config.opml import read_opml
    from aggregator.run.progress import show_progress

    config = obj.config
    try:
        feeds = read_opml(file.read_bytes())
    except AggregatorError as error:
        raise ConfigError([f"{file}: {error}"]) from None

    known = {_url_key(source.url): source.name for source in config.sources}
    taken = set(known.values())
    bar = show_progress(sys.stderr.isatty(), os.environ, len(feeds), long_run=100)
    progress: Any = (
        click.progressbar(feeds, label="importing", file=sys.stderr)
        if bar
        else contextlib.nullcontext(feeds)
    )
    with progress as shown:
        new, skipped = _import_feeds(shown, known, taken, tags)
    for line in skipped:
        echo(f"skipped {line}")
    if not dry_run:
        if bar:
            echo(f"writing {len(new)} source(s) to {obj.config_path} ...", err=True)
        add_sources(obj.config_path, new)
    verb = "would add" if dry_run else "added"
    echo(
        f"{verb} {len(new)} source(s) to {obj.config_path}, skipped {len(skipped)}"
        + (" (--dry-run)" if dry_run else "")
    )


def _import_feeds(
    feeds: Iterable[Any], known: dict[str, str], taken: set[str], tags: tuple[str, ...]
) -> tuple[list[Any], list[str]]:
    """The OPML feeds to add as sources (named, tagged) and the lines saying what was skipped."""
    from urllib.parse import urlsplit

    from aggregator.config.edit import NewSource, derive_name
    from aggregator.parse.sanitize import plain_text

    new: list[NewSource] = []
    skipped: list[str] = []
    for feed in feeds:
        url = feed.xml_url.replace("feed://", "http://", 1)
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            skipped.append(f"{feed.xml_url}: not an http(s) URL")
            continue
        if _url_key(url) in known:
            skipped.append(f"{url}: already configured as {known[_url_key(url)]!r}")
            continue
        title = plain_text(feed.title) or None
        name = derive_name(title, url, taken)
        taken.add(name)
        known[_url_key(url)] = name
        categories = tuple(dict.fromkeys([*feed.categories, *tags]))
        new.append(NewSource(name=name, url=url, title=title, tags=categories))
    return new, skipped


def _url_key(url: str) -> str:
    """URLs that name the same feed compare equal: no scheme, no trailing slash, lower host."""
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    return f"{parts.netloc.lower()}{parts.path.rstrip('/')}?{parts.query}"


def _same_url(a: str, b: str) -> bool:
    return _url_key(a) == _url_key(b)
