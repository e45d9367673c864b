"""The commands that publish and serve: ``publish`` (render the outputs), ``preview`` (what an
output would show, and why), ``serve`` (HTTP only) and ``run`` (the daemon).

Thin: each parses options, calls :mod:`aggregator.publish`, :mod:`aggregator.select` or
:mod:`aggregator.run`, and prints. Polling by hand is in :mod:`aggregator.cli.polling`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from aggregator.cli.common import Context, echo, handle_errors
from aggregator.config.schema import AppConfig
from aggregator.launch import collector_paused

if TYPE_CHECKING:
    from aggregator.config.sources import SourceConfig
    from aggregator.models import SourceRewrites


@click.command()
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


@click.command()
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
    it, the field and the text that matched, and the rule's line in the config file; then
    each source's rewrite rules and what they change in its feed (fetched now, not stored).

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
    rewrites = _rewrites_now(config, config.sources_for(chosen)) if explain else []
    where = str(obj.config_path)
    if as_json:
        echo(preview_json(config, chosen, shown, explained, where, rewrites))
    else:
        for line in preview_text(config, chosen, shown, explained, where, rewrites):
            echo(line)


def _rewrites_now(config: AppConfig, sources: tuple[SourceConfig, ...]) -> list[SourceRewrites]:
    """What each source's rewrite rules change in its feed now (fetched and parsed in the
    sandbox only for sources that have rules)."""
    if not any(config.rewrite_for(source) for source in sources):
        return []
    from aggregator.parse.sandbox import SandboxParser
    from aggregator.poll.resources import make_fetcher, utc_now
    from aggregator.poll.rewrites import explain_rewrites

    with make_fetcher(config) as fetcher, SandboxParser(small_workers=1) as parser:
        return explain_rewrites(config, sources, fetcher, parser, utc_now())


@click.command()
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


@click.command()
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
    with collector_paused():
        from aggregator.run.daemon import Daemon
        from aggregator.run.logs import setup_logging

    setup_logging(obj.log_level, obj.log_format)
    config = _with_server(obj.config, host, port)
    sys.exit(Daemon(config, config_path=obj.config_path, loaded=obj.config).run())


def _with_server(config: AppConfig, host: str | None, port: int | None) -> AppConfig:
    updates = {key: value for key, value in (("host", host), ("port", port)) if value is not None}
    if not updates:
        return config
    return config.model_copy(update={"server": config.server.model_copy(update=updates)})
