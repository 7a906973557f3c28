"""Compute recycles the memory a chunk freed for the next one, instead of giving it back to
the kernel and faulting it in again, and holds no more than it bounds (steps/allocator.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from steps.allocator import MMAP_THRESHOLD

ROOT = Path(__file__).resolve().parents[1]

FREED_BYTES = """
import os, sys
import numpy as np
from steps.allocator import keep_freed_memory
if sys.argv[1] == "kept" and not keep_freed_memory():
    sys.exit("no mallopt here")
def resident() -> int:
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
array = np.ones(int(sys.argv[2]) // 8)
before = resident()
del array
print(before - resident())
"""


def bytes_given_back(policy: str, size: int) -> int:
    """How much of a freed array of `size` bytes the process gave back to the kernel."""
    done = subprocess.run(
        [sys.executable, "-c", FREED_BYTES, policy, str(size)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode:
        pytest.skip(done.stderr.strip() or "the probe failed")
    return int(done.stdout)


CHUNK_COLUMN = 3 << 20  # 393,216 float64


def test_a_chunks_freed_array_stays_for_the_next_chunk() -> None:
    assert bytes_given_back("kept", CHUNK_COLUMN) < 1 << 19


def test_without_the_policy_the_same_array_is_given_back() -> None:
    """What the policy changes: glibc's default unmaps so large an array when it is freed."""
    assert bytes_given_back("default", CHUNK_COLUMN) > 2 << 20


def test_an_array_beyond_the_threshold_is_still_given_back() -> None:
    """A wide chunk's arrays are not held: what the policy keeps is bounded."""
    assert bytes_given_back("kept", 8 * MMAP_THRESHOLD) > 4 * MMAP_THRESHOLD
