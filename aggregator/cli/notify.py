"""The ``notify`` command group: alerts (the ``notify:`` items), today ``notify test NAME``.

Sending the alerts after a poll is :mod:`aggregator.alerts`' job (and ``poll``'s, in
:mod:`aggregator.cli.polling`); this module only sends a sample to one item.
"""

from __future__ import annotations

import click

from aggregator.cli.common import Context, echo, handle_errors


@click.group()
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
