"""Functions the tests sweep over; importable by worker subprocesses as `tests.kernels`."""

from __future__ import annotations

import os
import time

import numpy as np
import pyarrow as pa


def mixed(
    g: np.ndarray, s: np.ndarray, u: np.ndarray, w: np.ndarray, c: np.ndarray, param_id: np.ndarray
) -> dict[str, np.ndarray]:
    """Every column type an output can have, depending on every axis kind and on param_id."""
    score = g * u + w + (s == "b") + (c == 2) * 0.5
    return {
        "score": score,
        "parity": param_id % 2,
        "label": np.where(score > 1, "high", "low"),
        "big": score > 2,
    }


def as_table(x: np.ndarray) -> pa.Table:
    return pa.table({"double": x * 2})


def scalar(n: int, k: float) -> dict[str, float]:
    return {"value": n * k}


def fails_on_seven(x: np.ndarray) -> dict[str, np.ndarray]:
    if np.any(x == 7):
        raise ValueError("seven is unlucky")
    return {"y": x}


def wrong_length(x: np.ndarray) -> dict[str, np.ndarray]:
    return {"y": x[:-1]}


def clashes_with_axis(x: np.ndarray) -> dict[str, np.ndarray]:
    return {"x": x}


def returns_a_list(x: np.ndarray) -> list[float]:
    return list(x)


def nan_at_three(x: np.ndarray) -> dict[str, np.ndarray]:
    return {"y": np.where(x == 3, np.nan, x * 1.0)}


def text_objective(x: np.ndarray) -> dict[str, np.ndarray]:
    return {"y": np.array([f"v{v}" for v in x])}


def slow_square(x: np.ndarray) -> dict[str, np.ndarray]:
    """Takes a while per chunk, so a test can kill or starve a run in the middle."""
    time.sleep(float(os.environ.get("TTG_TEST_CHUNK_SECONDS", "0.1")))
    return {"y": x * x}
