"""The console script's entry (aggregator.launch): modules load with the collector paused."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap

import pytest

from aggregator.launch import collector_paused


def test_the_collector_is_paused_in_the_block_and_resumed_after_it() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():  # nested: still paused, and not resumed early
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ValueError), collector_paused():
        raise ValueError("a failed import")
    assert gc.isenabled(), "an error while loading left the collector off"


def test_a_launched_command_runs_with_the_collector_on_and_what_it_loaded_frozen() -> None:
    """``aggregator --version`` through the entry point: afterwards the collector runs again
    and the command line's modules are frozen (out of later collections' way); a test process
    that merely calls collector_paused freezes nothing."""
    script = textwrap.dedent(
        """
        import atexit, gc, sys
        frozen_before = gc.get_freeze_count()
        atexit.register(lambda: print("enabled", gc.isenabled(), "frozen",
                                      gc.get_freeze_count() > frozen_before + 10000))
        sys.argv = ["aggregator", "--version"]
        from aggregator.launch import main
        main()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert "aggregator, version" in done.stdout, done.stderr[-2000:]
    assert "enabled True frozen True" in done.stdout
    before = gc.get_freeze_count()
    with collector_paused():
        pass
    assert gc.get_freeze_count() == before
