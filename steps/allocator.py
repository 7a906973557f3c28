"""Compute's malloc policy: recycle a chunk's arrays for the next chunk.

A numpy function allocates its arrays anew for every chunk (the inputs' copies, each
temporary, each output: 2 MiB apiece at the default 262,144 rows). glibc serves an array
that large with a fresh `mmap` and unmaps it when freed, or trims the heap under it, so every
chunk faults in and zeroes its memory again: Rosenbrock's call took 5.1 ms a chunk that way
and 0.9 ms with its arrays recycled (one-off timings; the bench entry that backs the whole is
`run` against the floor, docs/scaling.md). The policy is bounded so that memory is not:
arrays over MMAP_THRESHOLD are still mapped and given back at once, and at most
TRIM_THRESHOLD of freed heap stays (tests/test_allocator.py). Peak RSS of a function of many
temporaries, one-off: 153 MiB instead of 151 at the default chunk_rows, 232 instead of 238
at 2,000,000.
"""

from __future__ import annotations

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "keep_freed_memory"]

# glibc's mallopt parameters (malloc.h) and the values set.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 4 << 20  # arrays up to this size come from the heap, and are recycled
TRIM_THRESHOLD = 32 << 20  # a free heap top up to this size is kept for the next chunk


def keep_freed_memory() -> bool:
    """Apply the policy to this process; False where the C library has no `mallopt`
    (not glibc), which then keeps its own."""
    import ctypes  # here: `python -m steps.compute --help` need not load it (3 ms)

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, TypeError):  # TypeError: no CDLL(None) on Windows
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
