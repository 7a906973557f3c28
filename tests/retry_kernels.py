"""Functions for the retry tests (tests/test_retries.py); importable by worker subprocesses.

Each records the attempt it runs in: the pid of the process calling it, one line per call, in
`$TTG_TEST_ATTEMPTS` (a file the test names), so a test counts attempts whether the run failed
(its logs kept) or succeeded (its logs removed). Every task is its own process, retries too.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np


def _record() -> None:
    with Path(os.environ["TTG_TEST_ATTEMPTS"]).open("a") as attempts:
        attempts.write(f"{os.getpid()}\n")


def raises(x: np.ndarray) -> dict[str, np.ndarray]:
    """A bug: the same rows fail the same way on every attempt."""
    _record()
    raise ZeroDivisionError("a bug in the user's function")


def killed_once(x: np.ndarray, param_id: np.ndarray) -> dict[str, np.ndarray]:
    """A hiccup: the first attempt of each shard dies of SIGKILL, as an OOM-killed or evicted
    pod does; the next one finds the marker the first left and computes."""
    _record()
    marker = Path(os.environ["TTG_TEST_ATTEMPTS"]).with_name(f"killed-{param_id[0]}")
    if not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return {"y": x * 2}


def computes(x: np.ndarray) -> dict[str, np.ndarray]:
    _record()
    return {"y": x * 2}
