"""Process-wide memory settings for the long runs: the daemon and a poll by hand."""

from __future__ import annotations

import ctypes
import ctypes.util


def tune_malloc() -> None:
    """Keep glibc from hoarding freed memory in a process of many threads and big buffers.

    Each thread gets its own malloc arena, and after a large buffer is freed glibc raises its
    mmap threshold so that the next ones come from those arenas and are never given back: with
    a 10 MB body per poll thread, RSS climbs by hundreds of MB. A fixed threshold keeps large
    buffers in mmap (returned on free) and two arenas bound the rest. No-op off glibc.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_mmap_threshold, m_arena_max = -3, -8  # from glibc's malloc.h
    mallopt(m_mmap_threshold, 128 * 1024)
    mallopt(m_arena_max, 2)
