"""What every command shares: the :class:`Context` it receives (the config, loaded once), ``echo``
(every line printed goes through it, cleaned of terminal escapes) and ``handle_errors`` (an
error a user can cause becomes one line on stderr and an exit code: 2 for a bad configuration
or usage, 1 for a failed operation).

No command lives here: the ``main`` group is in :mod:`aggregator.cli`, the commands in its
topic modules.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click

from aggregator.config.loading import load_config, resolve_config_path
from aggregator.config.schema import AppConfig
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
