"""The commands that poll and report: ``check`` (the config), ``poll`` (sources now, then the
``notify:`` alerts), ``status`` (each source's state) and ``prune`` (retention).

Thin: each parses options, calls the pipeline (:mod:`aggregator.poll`, :mod:`aggregator.run`,
:mod:`aggregator.serve.status`) and prints. The daemon's ``run`` is in
:mod:`aggregator.cli.publishing`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from datetime import UTC, datetime
from typing import Any

import click

from aggregator.cli.common import EXIT_FAILED, Context, echo, handle_errors
from aggregator.config.schema import AppConfig
from aggregator.launch import collector_paused


@click.command()
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


@click.command()
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
    with collector_paused():
        from aggregator.models import PollResult
        from aggregator.poll.poller import Poller
        from aggregator.poll.resources import select_sources
        from aggregator.run.logs import setup_logging
        from aggregator.run.memory import tune_malloc
        from aggregator.run.progress import show_progress

        setup_logging(
            "WARNING" if obj.log_level.upper() == "INFO" else obj.log_level, obj.log_format
        )
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
        # After the Poller: its parse workers' fork server keeps glibc's own malloc settings.
        tune_malloc()
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


def _send_alerts(config: AppConfig, storage: Any) -> None:
    """Send what the poll stored to the ``notify:`` targets, then close ``storage``."""
    from aggregator.alerts import AlertDispatcher

    dispatcher = AlertDispatcher(config)
    try:
        dispatcher.run_now(storage)
    finally:
        dispatcher.webhooks.close()
        storage.close()


@click.command()
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


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_obj
@handle_errors
def status(obj: Context, as_json: bool) -> None:
    """Show each source's state, last poll and HTTP status, counts, next poll, errors,
    redirects, WebSub subscription and full text. On a terminal, failing and retired sources come first and the table fits the
    terminal's width (long errors are cut); --json prints everything, by name.

    Example: aggregator status --json
    """
    from aggregator.serve.status import source_state, status_rows, status_table
    from aggregator.storage import Storage

    config = obj.config
    with Storage(config.database) as storage:
        rows = storage.list_source_rows(details=True)
    now = datetime.now(UTC)
    data = status_rows(rows, {source.name for source in config.sources}, now=now)
    if as_json:
        echo(json.dumps(data, indent=2))
        return
    states = [source_state(row, now, config.defaults.stale_after) for row in rows]
    # A terminal's width ($COLUMNS first, as shutil reads it); in a pipe nothing is cut.
    width = shutil.get_terminal_size((120, 24)).columns if sys.stdout.isatty() else 100_000
    for line in status_table(data, states, width):
        echo(line)
