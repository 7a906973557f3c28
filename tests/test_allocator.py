"""Compute keeps the memory a chunk freed for the next one, instead of giving it back to the
kernel and faulting it in again (steps/allocator.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FREED_BYTES = """
import os, sys
import numpy as np
from steps.allocator import keep_freed_memory
if sys.argv[1] == "kept" and not keep_freed_memory():
    sys.exit("no mallopt here")
def resident() -> int:
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
array = np.ones(2 << 20)  # 16 MiB, as a wide chunk's column
before = resident()
del array
print(before - resident())
"""


def bytes_given_back(policy: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", FREED_BYTES, policy],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode:
        pytest.skip(done.stderr.strip() or "the probe failed")
    return int(done.stdout)


def test_an_array_a_chunk_frees_stays_for_the_next_chunk() -> None:
    assert bytes_given_back("kept") < 1 << 20


def test_without_the_policy_the_same_array_is_given_back() -> None:
    """What the policy changes: glibc's default unmaps so large an array when it is freed."""
    assert bytes_given_back("default") > 8 << 20
