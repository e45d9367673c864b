"""Units of the configuration file: durations (``90s``, ``15m``, ``2h``, ``1d``, ``1w``) and
sizes (``512KB``, ``10MB``), as pydantic field types (``Duration``, ``PositiveDuration``, ``Size``).

Pure. Does not: know any section of the file (see :mod:`.schema` and the section modules).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> timedelta:
    """Read ``90s``, ``15m``, ``2h``, ``1d``, ``1w`` (or a bare number of seconds) as a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 15m, 2h or 1d")
    if isinstance(value, int | float):
        return timedelta(seconds=float(value))
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            number, unit = match.groups()
            return timedelta(seconds=float(number) * _UNITS[unit or "s"])
    raise ValueError(f"{value!r} is not a duration such as 15m, 2h or 1d")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|k|mb|m|gb|g)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
}


def parse_size(value: Any) -> int:
    """Read ``10MB``, ``512KB``, ``1GB`` (binary units) or a bare number of bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 10MB or 512KB")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (match := _SIZE.match(value)):
        number, unit = match.groups()
        size = int(float(number) * _SIZE_UNITS[(unit or "b").lower()])
    else:
        raise ValueError(f"{value!r} is not a size such as 10MB or 512KB")
    if size < 1024:
        raise ValueError(f"{value!r} is too small: use at least 1KB")
    return size


Size = Annotated[int, BeforeValidator(parse_size)]


def _check_positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero")
    return value


# An interval or timeout of zero would poll in a tight loop (APScheduler quietly turns 0 into 1s)
# or fail every request at once.
PositiveDuration = Annotated[Duration, AfterValidator(_check_positive)]
