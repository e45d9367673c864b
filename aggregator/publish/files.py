"""Files written whole or not at all, and the temporary files a killed writer leaves behind.

:func:`write_atomic` writes ``.{name}.XXXXXXXX`` next to the target (``tempfile.mkstemp``),
then renames it over the target, so a reader never sees half a file. A process killed between
the two (``kill -9``, OOM killer, power cut) leaves that temporary file behind for good;
:func:`remove_leftovers` removes them (issue 12). Each temporary file is held under an
exclusive ``flock`` while it is written: the kernel releases the lock when the writer dies in
any way, so a leftover is exactly a temporary file that nobody holds, and a publish running
at the same time in another process (``aggregator publish`` next to the daemon) keeps its own.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from pathlib import Path

from aggregator.errors import PublishError

# mkstemp's names: the prefix, then 8 characters of "abcdefghijklmnopqrstuvwxyz0123456789_".
_TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}")


def write_atomic(path: Path, content: bytes) -> bool:
    """Write ``content`` to ``path`` via a temp file and rename; skip when already identical.

    Returns True when the file changed. A reader never sees a half-written file.
    """
    try:
        if path.exists() and path.read_bytes() == content:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # "in use": see remove_leftovers
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
                os.chmod(temp, 0o644)
                os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as error:
        raise PublishError(f"cannot write {path}: {error.strerror or error}") from error
    return True


def is_temporary_name(name: str, suffixes: tuple[str, ...]) -> bool:
    """Whether ``name`` is one :func:`write_atomic` gives the temporary file of a target
    ending in one of ``suffixes`` (``.all.json.k3x_9a0q`` for ``all.json``). Pure."""
    if not _TEMP_NAME.fullmatch(name):
        return False
    target = name[1:-9]
    return any(target.endswith(suffix) and len(target) > len(suffix) for suffix in suffixes)


def remove_leftovers(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Remove, under ``folder`` (recursively, symlinks not followed), the temporary files of
    :func:`write_atomic` for targets ending in one of ``suffixes`` that no writer holds.

    Returns what was removed. A folder that is missing or unreadable is skipped: this is
    cleaning up, never a reason for a publish to fail.
    """
    removed: list[Path] = []
    pending = [folder]
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
                    elif (
                        entry.is_file(follow_symlinks=False)
                        and is_temporary_name(entry.name, suffixes)
                        and _remove_unless_held(Path(entry.path))
                    ):
                        removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _remove_unless_held(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a writer is at work on it
        path.unlink()
        return True
    except OSError:  # gone meanwhile (renamed into place by its writer), or not ours to remove
        return False
    finally:
        os.close(fd)
