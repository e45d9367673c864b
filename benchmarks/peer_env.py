"""Create / check the peer's own venv (``benchmarks/.venv-peer``) with ``reader`` installed.

reader is never installed into the project's venv. The venv is made with the Python that runs the
harness (reader needs Python >= 3.11) and ``pip install reader`` from PyPI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness import BENCH_DIR

PEER_VENV = BENCH_DIR / ".venv-peer"
PEER_REQUIREMENT = "reader>=3.13,<4"  # 3.13 added update_feeds(scheduled=...)
# reader vendors a feedparser that does ``import sgmllib``; current feedparser no longer pulls in
# the package that provides it (sgmllib3k), so install it explicitly.
PEER_EXTRA = ("sgmllib3k",)


def peer_python() -> Path:
    return PEER_VENV / "bin" / "python"


def _versions(python: Path) -> dict | None:
    probe = (
        "import json, importlib, importlib.util, importlib.metadata as m; "
        "importlib.util.find_spec('reader._vendor.feedparser') and "
        "importlib.import_module('reader._vendor.feedparser'); "
        "print(json.dumps({n: m.version(n) for n in ('reader', 'feedparser', 'requests')}))"
    )
    result = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
    if result.returncode != 0:
        return None
    return json.loads(result.stdout)


def ensure_peer_venv(log: Path) -> dict:
    """Make sure the peer venv exists with reader; return the installed versions."""
    python = peer_python()
    if python.exists():
        versions = _versions(python)
        if versions:
            return versions
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        if not python.exists():
            print(f"  creating {PEER_VENV} ...", flush=True)
            subprocess.run(
                [sys.executable, "-m", "venv", str(PEER_VENV)],
                stdout=out,
                stderr=subprocess.STDOUT,
                check=True,
            )
        print(
            f"  pip install '{PEER_REQUIREMENT}' {' '.join(PEER_EXTRA)} into {PEER_VENV.name} ...",
            flush=True,
        )
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
        result = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", PEER_REQUIREMENT, *PEER_EXTRA],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    versions = _versions(python)
    if result.returncode != 0 or not versions:
        raise RuntimeError(f"could not install {PEER_REQUIREMENT} into {PEER_VENV}; see {log}")
    return versions
