"""The ``aggregator`` command line (click). Commands are thin: parse options, call, print.

Every error a user can cause ends as one clear line on stderr and an exit code: 2 for a bad
configuration or usage, 1 for a failed operation. No traceback for a user's mistake.

This module holds the ``main`` group (the global options) and registers the commands, which live
by topic: :mod:`~aggregator.cli.polling` (check, poll, status, prune),
:mod:`~aggregator.cli.publishing` (publish, preview, serve, run), :mod:`~aggregator.cli.sources`
(add, opml), :mod:`~aggregator.cli.comments` (comments, extract-comments) and
:mod:`~aggregator.cli.notify` (notify test); what they share is in :mod:`~aggregator.cli.common`.
"""

from __future__ import annotations

import click

from aggregator import __version__
from aggregator.cli import comments, notify, polling, publishing, sources
from aggregator.cli.common import Context


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


for _command in (
    polling.check,
    polling.poll,
    polling.prune,
    polling.status,
    publishing.publish,
    publishing.preview,
    publishing.serve,
    publishing.run,
    comments.comments,
    comments.extract_comments,
    notify.notify,
    sources.add,
    sources.opml,
):
    main.add_command(_command)
