"""Secrets in the configuration: values that must never be printed (pure; no IO but reading).

A secret is written in the YAML as ``${ENV_VAR}`` (the variable's value; ``${VAR}`` may also sit
inside a longer string such as ``Bearer ${TOKEN}``) or as ``!file path`` (the file's content,
trailing newline removed, the path relative to the config file's folder). Plain strings are
accepted too, and are then just as masked.

:class:`Secret` holds the value; its ``str`` and ``repr`` are ``"***"``, so a secret passed to a
log line, an error message, ``status``, ``check``, a template or an OPML document shows only the
mask. Code that must send it calls :meth:`Secret.reveal`, and only :mod:`aggregator.fetch.fetcher` does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MASK = "***"
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# A secret file larger than this is a mistake (a key file is a few hundred bytes).
MAX_SECRET_FILE = 64 * 1024


class Secret:
    """A string that shows as ``***`` everywhere but :meth:`reveal`.

    Hashable and comparable (the configuration is), without ever printing the value.
    """

    __slots__ = ("_value", "indirect")

    def __init__(self, value: str, *, indirect: bool = False):
        self._value = value
        # Written as ${VAR} or !file: the operator marked it as a credential.
        self.indirect = indirect

    def reveal(self) -> str:
        """The value itself, for the one place that sends it."""
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class FileRef:
    """What the YAML tag ``!file path`` reads as, until the config's folder is known."""

    path: str


def read_secret(
    value: Any, *, folder: Path | None, environ: Mapping[str, str] | None = None
) -> Secret:
    """A :class:`Secret` from a config value: ``${VAR}`` expanded, ``!file`` read, text kept.

    Raises ``ValueError`` (one line, never the value) for an unset variable, an unreadable file
    or a value that is not text.
    """
    if isinstance(value, Secret):
        return value
    if isinstance(value, FileRef):
        path = Path(os.path.expanduser(value.path))
        if not path.is_absolute() and folder is not None:
            path = folder / path
        try:
            if path.stat().st_size > MAX_SECRET_FILE:
                raise ValueError(f"!file {value.path}: larger than {MAX_SECRET_FILE // 1024}KB")
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ValueError(f"!file {value.path}: no such file") from None
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or type(error).__name__
            raise ValueError(f"!file {value.path}: cannot read: {reason}") from None
        return Secret(text.rstrip("\r\n"), indirect=True)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("expected text, ${ENV_VAR} or !file path")
    text = str(value)
    env = os.environ if environ is None else environ
    missing = [name for name in _VARIABLE.findall(text) if name not in env]
    if missing:
        raise ValueError(f"environment variable {missing[0]} is not set")
    indirect = bool(_VARIABLE.search(text))
    return Secret(_VARIABLE.sub(lambda match: env[match.group(1)], text), indirect=indirect)
