"""The ``aggregator`` console script's entry point: the command line, loaded with the cyclic
garbage collector paused.

Loading the command line and what a poll needs (pydantic's models, aiohttp, sqlite-utils, a few
hundred modules) allocates hundreds of thousands of objects that live as long as the process,
and the collector walks them again and again while they are created: about a fifth of the
start-up's CPU time for no garbage. So the collector is paused while modules load
(:func:`collector_paused`, around the command line's import here and around the heavy imports of
``poll`` and ``run``), and what they loaded is then moved out of its sight (``gc.freeze``), so
that later collections walk only what the work allocates.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: True in a process started by :func:`main`: only there are loaded modules frozen (a test
#: process that calls the commands keeps its collector as it was).
_launched = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic collector while the block loads modules; resume it afterwards (and, in
    a launched process, freeze what was loaded). Nested or repeated uses are harmless."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if _launched:
                gc.freeze()
            gc.enable()


def main() -> None:
    """Run the command line (``aggregator ...``)."""
    global _launched
    _launched = True
    with collector_paused():
        from aggregator.cli import main as command_line
    command_line()
