"""Seconds spent in each stage of a publish (:attr:`aggregator.publish.publisher.Publisher.times`),
for the publish benchmarks (``benchmarks/``) and the daemon's debug log. Owns nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class StageTimes:
    """Seconds spent in each stage of a publish, for ``benchmarks/publish.py`` and debug logs.

    A stage's time excludes the stages nested in it, so the stages add up to the whole. Reading
    the clock is all it costs (a few hundred calls per publish).
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self.seconds: dict[str, float] = {}
        self._clock = clock
        self._stack: list[str] = []
        self._mark = 0.0

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._switch()
        self._stack.append(name)
        try:
            yield
        finally:
            self._switch()
            self._stack.pop()

    def _switch(self) -> None:
        now = self._clock()
        if self._stack:
            name = self._stack[-1]
            self.seconds[name] = self.seconds.get(name, 0.0) + now - self._mark
        self._mark = now
