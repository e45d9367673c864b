"""Whether a command shows a progress bar (issue 18): only on a terminal, for long runs.

A pipe, a file, or a service manager (systemd sets ``INVOCATION_ID``, and ``JOURNAL_STREAM``
when output goes to the journal) gets no bar: one line per result, or nothing. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Runs of more items than this get a bar.
LONG_RUN = 10
_SERVICE_VARIABLES = ("INVOCATION_ID", "JOURNAL_STREAM")


def show_progress(
    is_terminal: bool, environ: Mapping[str, str], items: int, long_run: int = LONG_RUN
) -> bool:
    """A bar for ``items`` steps: on a terminal, outside systemd, when the run is long."""
    if not is_terminal or any(environ.get(name) for name in _SERVICE_VARIABLES):
        return False
    return items > long_run
