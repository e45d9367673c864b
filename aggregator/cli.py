"""The ``aggregator`` command line (click). Commands are thin: parse options, call, print.

Every error a user can cause ends as one clear line on stderr and an exit code: 2 for a bad
configuration or usage, 1 for a failed operation. No traceback for a user's mistake.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import click

from aggregator import __version__
from aggregator.config import AppConfig, load_config, resolve_config_path
from aggregator.errors import AggregatorError, ConfigError

EXIT_FAILED = 1
EXIT_CONFIG = 2


class Context:
    """What every command receives: where the config is, and the config once loaded."""

    def __init__(self, config_path: str | None, log_level: str):
        self.config_path = resolve_config_path(config_path)
        self.log_level = log_level
        self._config: AppConfig | None = None

    @property
    def config(self) -> AppConfig:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn aggregator's errors into one line on stderr and the right exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as error:
            for problem in error.problems:
                click.echo(problem, err=True)
            sys.exit(EXIT_CONFIG)
        except AggregatorError as error:
            click.echo(f"aggregator: {error}", err=True)
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
@click.version_option(__version__, prog_name="aggregator")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, log_level: str) -> None:
    """Aggregate RSS/Atom feeds and their comment threads, and republish them.

    Example: aggregator --config config/aggregator.yaml run
    """
    ctx.obj = Context(config_path, log_level)


@main.command()
@click.pass_obj
@handle_errors
def check(obj: Context) -> None:
    """Validate the configuration file and print every problem found.

    Example: aggregator check
    """
    config = obj.config
    click.echo(
        f"{obj.config_path}: ok ({len(config.sources)} sources, {len(config.outputs)} outputs)"
    )


@main.command()
@click.argument("names", nargs=-1)
@click.pass_obj
@handle_errors
def poll(obj: Context, names: tuple[str, ...]) -> None:
    """Fetch sources now (all, or those NAMES) and store what is new.

    Prints one line per source. Exits 1 when any source failed.

    Example: aggregator poll moa
    """
    from aggregator.daemon import setup_logging
    from aggregator.update import Poller, select_sources

    setup_logging("WARNING" if obj.log_level.upper() == "INFO" else obj.log_level)
    config = obj.config
    sources = select_sources(config, names)
    failed = False
    with Poller(config, manual=True) as poller:
        show_bar = sys.stderr.isatty() and len(sources) > 10
        lines: list[str] = []
        if show_bar:
            with click.progressbar(length=len(sources), label="polling", file=sys.stderr) as bar:
                results = poller.poll_many(
                    sources, on_result=lambda r: (bar.update(1), lines.append(r.describe()))
                )
        else:
            results = poller.poll_many(sources, on_result=lambda r: click.echo(r.describe()))
        for line in lines:
            click.echo(line)
        failed = any(not result.ok for result in results)
    sys.exit(EXIT_FAILED if failed else 0)


@main.command()
@click.pass_obj
@handle_errors
def publish(obj: Context) -> None:
    """Render every output into the public folder (atomically).

    Example: aggregator publish
    """
    from aggregator.publish import Publisher
    from aggregator.storage import Storage

    config = obj.config
    with Storage(config.database) as storage:
        changed = Publisher(config, storage).publish()
    for output in config.outputs:
        click.echo(f"{output.name}: {', '.join(output.formats)} -> {config.public_dir / 'feeds'}")
    click.echo(f"{len(changed)} file(s) changed")


@main.command()
@click.option("--host", help="Listen address (default: server.host from the config).")
@click.option("--port", type=int, help="Listen port (default: server.port from the config).")
@click.pass_obj
@handle_errors
def serve(obj: Context, host: str | None, port: int | None) -> None:
    """Serve the published feeds over HTTP (without polling).

    Example: aggregator serve --port 8080
    """
    import uvicorn

    from aggregator.daemon import setup_logging
    from aggregator.server import SERVER_LIMITS, create_app

    setup_logging(obj.log_level)
    config = _with_server(obj.config, host, port)
    click.echo(f"serving {config.public_dir} on {config.server.public_url}/", err=True)
    uvicorn.run(
        create_app(config),
        host=config.server.host,
        port=config.server.port,
        log_level="warning",
        lifespan="off",
        **SERVER_LIMITS,  # type: ignore[arg-type]
    )


@main.command()
@click.option("--host", help="Listen address (default: server.host from the config).")
@click.option("--port", type=int, help="Listen port (default: server.port from the config).")
@click.pass_obj
@handle_errors
def run(obj: Context, host: str | None, port: int | None) -> None:
    """Run the daemon: poll on schedule, republish, and serve, until SIGTERM or Ctrl-C.

    Example: aggregator --config /etc/aggregator/aggregator.yaml run
    """
    from aggregator.daemon import Daemon, setup_logging

    setup_logging(obj.log_level)
    config = _with_server(obj.config, host, port)
    Daemon(config).run()


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_obj
@handle_errors
def status(obj: Context, as_json: bool) -> None:
    """Show each source's last poll, counts and errors.

    Example: aggregator status --json
    """
    from aggregator.storage import Storage

    config = obj.config
    with Storage(config.database) as storage:
        rows = storage.list_source_rows()
    configured = {source.name for source in config.sources}
    keys = [
        "name",
        "url",
        "last_polled_at",
        "last_status",
        "entry_count",
        "comment_total",
        "next_poll_at",
        "error_count",
        "last_error",
    ]
    data = [
        {key: row.get(key) for key in keys} | {"configured": row["name"] in configured}
        for row in rows
    ]
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    header = f"{'source':20} {'last poll':25} {'http':>4} {'entries':>7} {'comments':>8} {'errors':>6}  next poll / last error"
    click.echo(header)
    for row in data:
        tail = row["last_error"] or row["next_poll_at"] or ""
        click.echo(
            f"{row['name'][:20]:20} {row['last_polled_at'] or 'never':25} {row['last_status'] or '-':>4} "
            f"{row['entry_count']:>7} {row['comment_total']:>8} {row['error_count']:>6}  {tail}"
        )


@main.command()
@click.argument("entry")
@click.pass_obj
@handle_errors
def comments(obj: Context, entry: str) -> None:
    """Print an entry's comment thread. ENTRY is its id (as in feed URLs) or its link.

    Example: aggregator comments https://blog.example.org/2018/06/a-post.html
    """
    from aggregator.sanitize import plain_text
    from aggregator.storage import Storage

    with Storage(obj.config.database) as storage:
        stored = storage.find_entry(entry)
        thread = storage.list_comments(stored.id)
    click.echo(click.style(stored.title or "(untitled)", bold=True))
    click.echo(f"{stored.link or ''}  [{stored.source_name}]  {len(thread)} comment(s)")
    for comment in thread:
        when = (
            comment.published_at.strftime("%Y-%m-%d %H:%M UTC")
            if comment.published_at
            else "undated"
        )
        number = f"#{comment.number} " if comment.number is not None else ""
        gone = "  (gone from the source)" if comment.gone_at else ""
        reply = "  (reply)" if comment.parent_public_id else ""
        click.echo("")
        click.echo(
            click.style(f"{number}{comment.author or 'anonymous'} | {when}{reply}{gone}", fg="cyan")
        )
        click.echo(plain_text(comment.content))


def _with_server(config: AppConfig, host: str | None, port: int | None) -> AppConfig:
    updates = {key: value for key, value in (("host", host), ("port", port)) if value is not None}
    if not updates:
        return config
    return config.model_copy(update={"server": config.server.model_copy(update=updates)})
