"""Run a Python script in a private network namespace of its own, for tests that need "public"
addresses (issue 12): ``unshare -n --mount`` (as root) brings up a loopback interface that
carries the addresses asked for, and bind-mounts a hosts file over ``/etc/hosts``, so names
resolve as the test says without any real network. Nothing leaves the namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SETUP = """
set -e
ip link set lo up
for address in $ADDRESSES; do ip addr add "$address/32" dev lo; done
mount --bind "$HOSTS" /etc/hosts
exec "$PYTHON" "$SCRIPT"
"""


def namespace_unavailable() -> str | None:
    """Why no namespace can be made here, or ``None`` when one can."""
    if os.geteuid() != 0:
        return "private network namespaces need root (unshare -n)"
    for tool in ("unshare", "ip", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = subprocess.run(
        ["unshare", "-n", "--mount", "sh", "-c", "ip link set lo up"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode != 0:
        return f"cannot create a network namespace: {probe.stderr.strip()[:200]}"
    return None


def run_in_namespace(
    script: str, *, folder: Path, addresses: list[str], hosts: str, timeout: float = 120
) -> Any:
    """Run ``script`` (Python source) in a fresh namespace; return the JSON it prints last.

    ``folder`` holds the script and the hosts file (the script may rewrite ``HOSTS_FILE``
    in place to change what a name resolves to). Skips the test when no namespace can be made.
    """
    reason = namespace_unavailable()
    if reason is not None:
        pytest.skip(f"needs a private network namespace: {reason}")
    hosts_file = folder / "hosts"
    hosts_file.write_text("127.0.0.1 localhost\n" + hosts, encoding="utf-8")
    script_file = folder / "script.py"
    script_file.write_text(script, encoding="utf-8")
    env = dict(
        os.environ,
        ADDRESSES=" ".join(addresses),
        HOSTS=str(hosts_file),
        HOSTS_FILE=str(hosts_file),
        PYTHON=sys.executable,
        SCRIPT=str(script_file),
        WORK=str(folder),
    )
    done = subprocess.run(
        ["unshare", "-n", "--mount", "sh", "-c", SETUP],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=folder,
    )
    assert done.returncode == 0, f"namespace script failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])
