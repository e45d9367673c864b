"""The ``aggregator`` command line (click). Commands are thin: parse options, call, print.

Every error a user can cause ends as one clear line on stderr and an exit code: 2 for a bad
configuration or usage, 1 for a failed operation. No traceback for a user's mistake.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from aggregator import __version__
from aggregator.config import AppConfig, load_config, resolve_config_path
from aggregator.errors import AggregatorError, ConfigError
from aggregator.terminal import safe_text

EXIT_FAILED = 1
EXIT_CONFIG = 2


class Context:
    """What every command receives: where the config is, and the config once loaded."""

    def __init__(self, config_path: str | None, log_level: str, log_format: str = "text"):
        self.config_path = resolve_config_path(config_path)
        self.log_level = log_level
        self.log_format = log_format
        self._config: AppConfig | None = None

    @property
    def config(self) -> AppConfig:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config


def echo(message: object = "", *, err: bool = False) -> None:
    """Print a line, without the terminal control sequences that text from outside (an error
    quoting a server, a feed's title) may carry: every command prints through here."""
    click.echo(safe_text(message, newlines=True), err=err)


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn aggregator's errors into one line on stderr and the right exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as error:
            for problem in error.problems:
                echo(problem, err=True)
            sys.exit(EXIT_CONFIG)
        except AggregatorError as error:
            echo(f"aggregator: {error}", err=True)
            sys.exit(EXIT_FAILED)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "-c",
    "config_path",
    metavar="FILE",
    help="Configuration file (default: $AGGREGATOR_CONFIG, else config/aggregator.yaml).",
)
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
@click.option(
    "--log-format",
    default="text",
    show_default=True,
    type=click.Choice(["text", "json"]),
    help="json: one JSON object per log line, for log shippers.",
)
@click.version_option(__version__, prog_name="aggregator")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, log_level: str, log_format: str) -> None:
    """Aggregate RSS/Atom feeds and their comment threads, and republish them.

    Example: aggregator --config config/aggregator.yaml run
    """
    ctx.obj = Context(config_path, log_level, log_format)


@main.command()
@click.pass_obj
@handle_errors
def check(obj: Context) -> None:
    """Validate the configuration file and print every problem found.

    Prints how many sources have their comment threads followed, and a note when
    ``server.base_url`` is unset (feeds then link to the listening address).

    Example: aggregator check
    """
    config = obj.config
    following = sum(1 for source in config.sources if config.comments_for(source))
    echo(
        f"{obj.config_path}: ok ({len(config.sources)} sources, {len(config.outputs)} outputs; "
        f"comment threads followed on {following} of {len(config.sources)} sources)"
    )
    if config.server.base_url is None:
        echo(
            f"note: server.base_url is not set: feeds and their comment links use "
            f"{config.server.public_url}, the listening address; "
            "set base_url to the URL subscribers use"
        )
    echo(f"database:  {config.database}")
    echo(f"published: {config.public_dir / 'feeds'}")
    echo(f"user agent: {config.defaults.user_agent}")


@main.command()
@click.argument("names", nargs=-1)
@click.option("--due", is_flag=True, help="Poll only the sources the schedule says are due.")
@click.option(
    "--force",
    is_flag=True,
    help="Also poll sources waiting out a Retry-After or backoff window, or retired.",
)
@click.pass_obj
@handle_errors
def poll(obj: Context, names: tuple[str, ...], due: bool, force: bool) -> None:
    """Fetch sources now (all, or those NAMES) and store what is new.

    A poll by hand is an explicit request, so it does not wait for the schedule; it still
    sends conditional requests, and it leaves alone (and names) sources that a server asked
    to wait (Retry-After), that are backing off after errors, or that are retired (410 Gone),
    unless --force. Prints one line per source. Exits 1 when any source failed.

    Example: aggregator poll --due
    """
    from aggregator.models import PollResult
    from aggregator.poll.poller import Poller, select_sources
    from aggregator.run.logs import setup_logging
    from aggregator.run.memory import tune_malloc
    from aggregator.run.progress import show_progress

    setup_logging("WARNING" if obj.log_level.upper() == "INFO" else obj.log_level, obj.log_format)
    tune_malloc()
    config = obj.config
    sources = select_sources(config, names)
    failed = False
    alerts_storage = None
    if config.notify:
        from aggregator.storage import Storage

        # Alert marks start before the poll, so what it stores is new to them.
        alerts_storage = Storage(config.database)
        with alerts_storage.transaction():
            alerts_storage.start_alert_marks(alert.name for alert in config.notify)
    with Poller(config, manual=True) as poller:
        if due:
            sources = poller.due_sources(sources)
            if not sources:
                echo("no source is due")
                return
        show_bar = show_progress(sys.stderr.isatty(), os.environ, len(sources))
        lines: list[str] = []
        if show_bar:
            with click.progressbar(length=len(sources), label="polling", file=sys.stderr) as bar:

                def advance(result: PollResult) -> None:
                    bar.update(1)
                    lines.append(result.describe())

                results = poller.poll_many(sources, force=force, on_result=advance)
        else:
            results = poller.poll_many(sources, force=force, on_result=lambda r: echo(r.describe()))
        for line in lines:
            echo(line)
        failed = any(not result.ok for result in results)
    if config.notify:
        _send_alerts(config, alerts_storage)
    sys.exit(EXIT_FAILED if failed else 0)


@main.command()
@click.pass_obj
@handle_errors
def publish(obj: Context) -> None:
    """Render every output into the public folder (atomically).

    Example: aggregator publish
    """
    from aggregator.errors import PublishError
    from aggregator.publish.publisher import Publisher
    from aggregator.publish.websub import notify_changes
    from aggregator.run.progress import show_progress
    from aggregator.storage import Storage

    config = obj.config
    with Storage(config.database) as storage:
        # Used once: keeping rendered entries for a next publish would only cost memory.
        publisher = Publisher(config, storage, fragment_bytes=0)
        bar = show_progress(sys.stderr.isatty(), os.environ, len(config.outputs), long_run=1)
        progress: Any = (
            click.progressbar(config.outputs, label="publishing", file=sys.stderr)
            if bar
            else contextlib.nullcontext(config.outputs)
        )
        changed: list[Path] = []
        failures: list[str] = []
        with progress as outputs:
            for output in outputs:  # one at a time, so a bar moves; every failure named at the end
                try:
                    changed.extend(publisher.publish([output]))
                except PublishError as error:
                    failures.append(str(error))
    if failures:
        raise PublishError("; ".join(failures))
    for output in config.outputs:
        echo(f"{output.name}: {', '.join(output.formats)} -> {config.public_dir / 'feeds'}")
    echo(f"{len(changed)} file(s) changed")
    pinged = notify_changes(config, changed)
    if pinged.notified or pinged.failed:
        echo(
            f"websub: {len(pinged.notified)} feed(s) announced to {config.server.websub_hub}"
            + (f", {len(pinged.failed)} failed" if pinged.failed else "")
        )


@main.command()
@click.option("--dry-run", is_flag=True, help="Say what would be removed; change nothing.")
@click.pass_obj
@handle_errors
def prune(obj: Context, dry_run: bool) -> None:
    """Remove entries and comments past their retention, then shrink the database.

    What an output still shows within its pages is kept. See README, "Retention".

    Example: aggregator prune --dry-run
    """
    from datetime import UTC, datetime

    from aggregator.run.prune import prune as run_prune
    from aggregator.storage import Storage

    config = obj.config
    with Storage(config.database) as storage:
        report = run_prune(config, storage, datetime.now(UTC), dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for item in report.sources:
        kept = f" (kept {item.kept_shown} still shown)" if item.kept_shown else ""
        echo(f"{item.source}: {verb} {item.entries} entries, {item.comments} comments{kept}")
    echo(f"total: {verb} {report.entries} entries, {report.comments} comments")
    if not dry_run:
        note = " (first run: VACUUM switched on incremental vacuum)" if report.vacuumed else ""
        echo(f"database: {report.bytes_before:,} -> {report.bytes_after:,} bytes{note}")


@main.command()
@click.argument("output")
@click.option(
    "--explain", is_flag=True, help="Also show every candidate and why it was kept or dropped."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_obj
@handle_errors
def preview(obj: Context, output: str, explain: bool, as_json: bool) -> None:
    """Print what OUTPUT would contain now, without writing anything.

    With --explain, every candidate entry follows, each with the rule that kept or dropped
    it, the field and the text that matched, and the rule's line in the config file.

    Example: aggregator preview syria --explain
    """
    from aggregator.errors import NotFoundError
    from aggregator.select.chooser import OutputChooser
    from aggregator.storage import Storage

    config = obj.config
    try:
        chosen = config.output(output)
    except KeyError:
        names = ", ".join(o.name for o in config.outputs) or "none"
        raise NotFoundError(f"no output named {output!r} (outputs: {names})") from None
    from aggregator.select.preview import preview_json, preview_text

    with Storage(config.database) as storage:
        chooser = OutputChooser(config, storage)
        # The entries come from the same query publish uses; --explain's own pass (without
        # SQL shortcuts, so every candidate meets the rules) supplies the reasons.
        shown = chooser.select(chosen)
        explained = chooser.select(chosen, explain=True) if explain else None
    where = str(obj.config_path)
    if as_json:
        echo(preview_json(config, chosen, shown, explained, where))
    else:
        for line in preview_text(config, chosen, shown, explained, where):
            echo(line)


@main.command()
@click.option("--host", help="Listen address (default: server.host from the config).")
@click.option("--port", type=int, help="Listen port (default: server.port from the config).")
@click.pass_obj
@handle_errors
def serve(obj: Context, host: str | None, port: int | None) -> None:
    """Serve the published feeds over HTTP (without polling).

    Example: aggregator serve --port 8080
    """
    from aggregator.run.daemon import make_server
    from aggregator.run.logs import setup_logging

    setup_logging(obj.log_level, obj.log_format)
    config = _with_server(obj.config, host, port)
    echo(f"serving {config.public_dir} on {config.server.public_url}/", err=True)
    make_server(config).run()


@main.command()
@click.option("--host", help="Listen address (default: server.host from the config).")
@click.option("--port", type=int, help="Listen port (default: server.port from the config).")
@click.pass_obj
@handle_errors
def run(obj: Context, host: str | None, port: int | None) -> None:
    """Run the daemon: poll on schedule, republish, and serve, until SIGTERM or Ctrl-C.

    SIGHUP reloads the configuration file (a broken one is refused and the running one kept).
    Only one daemon may run on a database; a second one exits with an error.

    Example: aggregator --config /etc/aggregator/aggregator.yaml run
    """
    from aggregator.run.daemon import Daemon
    from aggregator.run.logs import setup_logging

    setup_logging(obj.log_level, obj.log_format)
    config = _with_server(obj.config, host, port)
    sys.exit(Daemon(config, config_path=obj.config_path, loaded=obj.config).run())


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_obj
@handle_errors
def status(obj: Context, as_json: bool) -> None:
    """Show each source's state, last poll and HTTP status, counts, next poll, errors and
    redirects. On a terminal, failing and retired sources come first and the table fits the
    terminal's width (long errors are cut); --json prints everything, by name.

    Example: aggregator status --json
    """
    from aggregator.serve.status import source_state, status_rows, status_table
    from aggregator.storage import Storage

    config = obj.config
    with Storage(config.database) as storage:
        rows = storage.list_source_rows()
    data = status_rows(rows, {source.name for source in config.sources})
    if as_json:
        echo(json.dumps(data, indent=2))
        return
    now = datetime.now(UTC)
    states = [source_state(row, now, config.defaults.stale_after) for row in rows]
    # A terminal's width ($COLUMNS first, as shutil reads it); in a pipe nothing is cut.
    width = shutil.get_terminal_size((120, 24)).columns if sys.stdout.isatty() else 100_000
    for line in status_table(data, states, width):
        echo(line)


@main.command()
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


def _send_alerts(config: AppConfig, storage: Any) -> None:
    """Send what the poll stored to the ``notify:`` targets, then close ``storage``."""
    from aggregator.alerts import AlertDispatcher

    dispatcher = AlertDispatcher(config)
    try:
        dispatcher.run_now(storage)
    finally:
        dispatcher.webhooks.close()
        storage.close()


@main.group()
def notify() -> None:
    """Alerts: the ``notify:`` items of the configuration.

    Example: aggregator notify test my-webhook
    """


@notify.command("test")
@click.argument("name")
@click.pass_obj
@handle_errors
def notify_test(obj: Context, name: str) -> None:
    """Send a sample notification to the notify item NAME (its target, as configured).

    Example: aggregator notify test my-webhook
    """
    from aggregator.alerts import send_test
    from aggregator.errors import NotFoundError

    try:
        send_test(obj.config, name)
    except KeyError:
        raise NotFoundError(f"no notify item named {name!r}") from None
    echo(f"sent a sample notification to {name}")


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


@main.command()
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
    the config file, keeping its comments and layout.

    Example: aggregator add https://www.moonofalabama.org/ --tag politics
    """
    from aggregator.config.edit import NewSource, add_sources, derive_name
    from aggregator.fetch.discover import find_feed, probe_comments
    from aggregator.parse.sandbox import SandboxParser
    from aggregator.poll.poller import make_fetcher

    config = obj.config
    # Pages and feeds found are hostile input: parsed in the daemon's sandbox (issue 12).
    with make_fetcher(config) as fetcher, SandboxParser(small_workers=1) as parser:
        found = find_feed(url, fetcher, parser)
        probe = probe_comments(found, url, fetcher, parser)
    echo(f"found: {found.url} ({found.how})")
    echo(f"  title:    {found.title or '(none)'}")
    echo(f"  format:   {found.format}")
    echo(f"  entries:  {found.entries}")
    echo(f"  comments: {_describe_probe(found, probe)}")
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
    )
    if probe.comments_page:
        echo(f"  writing comments_page: {probe.comments_page}")
    if dry_run:
        echo(f"would add source {new.name!r} to {obj.config_path} (--dry-run)")
        return
    add_sources(obj.config_path, [new])
    echo(f"added source {new.name!r} to {obj.config_path}")


def _describe_probe(found: Any, probe: Any) -> str:
    """One line on where ``add`` would read the comments from (a :class:`CommentProbe`)."""
    if probe.kind == "feed":
        return f"{found.with_comment_feed} of {found.entries} posts carry a comment feed"
    page = f"the post page {probe.page_url}"
    if probe.kind == "page":
        count = f"{probe.comments} comment(s)" if probe.comments else "no comment yet"
        return f"no comment feeds; in the pages: {probe.detector} markup, {count} in {page}"
    if probe.kind == "script":
        return (
            f"no comment feeds; {page} loads its comments by script "
            f"({', '.join(probe.script_systems)}): not in the page, not followed"
        )
    if probe.kind == "error":
        return f"no comment feeds; {page} could not be read: {probe.error}"
    return f"no comment feeds; none found in {page}" if probe.page_url else "no comment feeds"


@main.command("extract-comments")
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
    from datetime import UTC, datetime

    from aggregator.comments.detect import canonical_url, read_comments
    from aggregator.fetch.addresses import Provenance

    now = datetime.now(UTC)
    if target.startswith(("http://", "https://")):
        from aggregator.poll.poller import make_fetcher

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


@main.group()
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


def _with_server(config: AppConfig, host: str | None, port: int | None) -> AppConfig:
    updates = {key: value for key, value in (("host", host), ("port", port)) if value is not None}
    if not updates:
        return config
    return config.model_copy(update={"server": config.server.model_copy(update=updates)})
