"""Compute's malloc policy: keep freed memory for the next chunk.

A numpy function allocates its arrays anew for every chunk (the inputs' copies, each
temporary, each output: 2 MiB apiece at the default 262,144 rows). glibc serves an array
that large with a fresh `mmap` and returns it to the kernel when freed, or trims the heap
under it, so every chunk faults in and zeroes its memory again: Rosenbrock's chunk took
5.1 ms that way, 0.8 ms with the freed memory kept (docs/scaling.md). Peak memory is
unchanged (what is kept was in use before); it is only not given back until the pod ends.
"""

from __future__ import annotations

import ctypes

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "keep_freed_memory"]

# glibc's mallopt parameters (malloc.h) and the values set: arrays below MMAP_THRESHOLD come
# from the heap (32 MiB is glibc's largest), and a free heap top below TRIM_THRESHOLD stays.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 128 << 20


def keep_freed_memory() -> bool:
    """Apply the policy to this process; False where the C library has no `mallopt`
    (not glibc), which then keeps its own."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
