"""Imported by a parse worker in tests/test_sandbox.py as its ``preload``: a worker whose start
takes longer than the parse time limit (as a fresh worker on a loaded machine does)."""

import time

time.sleep(1.5)
