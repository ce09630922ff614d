"""The C allocator of a serving process, set for numpy's temporaries.

A 280x280 canvas goes through the glyph path as a few dozen numpy arrays of 300-600 KB, each
made and dropped within a millisecond. glibc's ``malloc`` maps blocks that large straight from
the kernel and unmaps them when freed (its dynamic threshold raises the cut-off, but then
returns the heap's free top to the kernel as soon as it passes twice that), so every one of those
arrays paid page faults on first touch: 0.6 of the 2.0 ms that preprocessing took (bench/latency.py,
glyph preprocessing 2.0 -> 1.3 ms with this setting). Here blocks up to ``MMAP_THRESHOLD`` come
from the heap and up to ``TRIM_THRESHOLD`` of free heap top is kept for the next request: the
memory a worker holds grows by at most that much per malloc arena.

jemalloc or tcmalloc (``LD_PRELOAD``) would do the same from outside, but need a system package
and a wrapper around every start command; ``mallopt`` is glibc's own switch for exactly this."""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 4 * 1024 * 1024  # a 1000x1000 float32 array and smaller: from the heap
TRIM_THRESHOLD = 16 * 1024 * 1024  # free heap top kept for reuse


def keep_freed_memory() -> bool:
    """Set glibc's thresholds (above) for this process; False where the C library is not glibc
    (musl, macOS), which keeps its own defaults."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
