"""Tiny launcher: run a command, write its wall time and rusage (from os.wait4) as JSON.

    python -S _measure.py RESULT.json -- CMD [ARGS...]

Why a launcher: on Linux a child's ru_maxrss starts at the RSS of the process it was forked from
(exec records the old address space's high-water mark), so forking the benchmark command straight
from the big harness process would report the harness's size as the command's peak. This small
process forks the command instead, so the figure is the command's own.
"""

import json
import os
import signal
import sys
import time


def main() -> int:
    out, sep, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
    assert sep == "--" and cmd, "usage: _measure.py RESULT.json -- CMD [ARGS...]"
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)
        except OSError as error:
            os.write(2, f"cannot run {cmd[0]}: {error}\n".encode())
        os._exit(127)
    # The command gets the harness's SIGTERM through the process group; we stay to report.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    with open(out, "w") as handle:
        json.dump(
            {
                "returncode": code,
                "wall": wall,
                "user": usage.ru_utime,
                "sys": usage.ru_stime,
                "maxrss_kb": usage.ru_maxrss,
            },
            handle,
        )
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
