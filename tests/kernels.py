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


def zeroes_its_inputs(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Computes from its inputs, then (wrongly) reuses their memory as scratch space."""
    f = x + y
    x[:] = 0
    return {"f": f}


_KEPT: list[np.ndarray] = []


def meddles_later(x: np.ndarray, y: np.ndarray, param_id: np.ndarray) -> dict[str, np.ndarray]:
    """Keeps its inputs and overwrites them on the next call, after they were stored, and
    scrambles its param_id: whatever it does to the arrays it was given, nothing stored moves."""
    for kept in _KEPT:
        kept[:] = -1
    _KEPT[:] = [x, y, param_id]
    f = x + y
    param_id[:] = param_id[::-1].copy()
    if x.base is not None:  # reaching behind a view: there must be nothing behind it
        x.base[:] = 42
    return {"f": f}


def copies_before_changing(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """The documented way to change an input: a copy."""
    x = x.copy()
    x *= 2
    return {"f": x + y}


def nanoseconds(t: np.ndarray) -> dict[str, np.ndarray]:
    """Nanosecond timestamps as int64: beyond 2**53, where floats stop being exact."""
    return {"stamp": t * 1_000_000_000 + 7, "late": t > 1_700_000_000}


def typed_outputs(x: np.ndarray) -> pa.Table:
    """One output column of the Arrow type named by TTG_TEST_OUTPUT_TYPE."""
    import datetime
    import decimal

    kind = os.environ.get("TTG_TEST_OUTPUT_TYPE", "bool")
    n = len(x)
    columns: dict[str, pa.Array] = {
        "bool": pa.array(x % 2 == 0),
        "large_string": pa.array([f"v{v}" for v in x], type=pa.large_string()),
        "uint64": pa.array((x.astype(np.uint64) + np.uint64(2**63)), type=pa.uint64()),
        "float32": pa.array(x.astype(np.float32) / 3),
        "int8": pa.array(x.astype(np.int8)),
        "timestamp": pa.array([datetime.datetime(2026, 1, 1)] * n, type=pa.timestamp("ns")),
        "date": pa.array([datetime.date(2026, 1, 1)] * n),
        "decimal": pa.array([decimal.Decimal("1.5")] * n),
        "binary": pa.array([b"\x00"] * n),
        "list": pa.array([[1]] * n),
        "null": pa.nulls(n),
        "dictionary": pa.array(["a"] * n).dictionary_encode(),
        "float16": pa.array(x.astype(np.float16)),
    }
    return pa.table({"out": columns[kind], "f": pa.array(x * 1.0)})


def part_nan(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> pa.Table:
    """An objective `f = x + y/10 + z/100` with holes: NaN for every row with x == 4, NaN for
    x == 6 and z == 0, null for x == 8 and z == 1. On x in 0..9, y in 0..4, z in {0, 1}
    (100 rows; param_id = 10x + 2y + z) that is 15 NaN and 5 null rows, and 80 numbers.
    `g` is NaN in the best row for goal max (x=9, y=4, z=1), to carry a NaN that is not the
    objective through the best rows and summary.json."""
    f = x + y / 10 + z / 100
    f = np.where((x == 4) | ((x == 6) & (z == 0)), np.nan, f)
    g = np.where((x == 9) & (z == 1), np.nan, (x * y).astype(np.float64))
    return pa.table({"f": pa.array(f, mask=(x == 8) & (z == 1)), "g": pa.array(g)})


def mostly_nan(x: np.ndarray) -> dict[str, np.ndarray]:
    """A number only where x is a multiple of 7; NaN everywhere else."""
    return {"f": np.where(x % 7 == 0, -1.0 * x, np.nan)}


def none_below_five(x: int) -> dict[str, float | None]:
    """A scalar function with no answer for part of the space."""
    return {"f": None if x < 5 else float(x)}


def extremes(u: np.ndarray) -> dict[str, np.ndarray]:
    """Values at both ends of the float range: their span overflows a float."""
    return {"f": np.where(u > 0.5, 1e308, -1e308)}


def none_then_text(x: int) -> dict[str, str | None]:
    """No value for the first rows, text after: a type an all-None chunk cannot know."""
    return {"s": None if x < 5 else "1.5"}


def text_then_number(x: int) -> dict[str, str | float]:
    """Text for the first rows, numbers after: the type changes kind."""
    return {"s": "1.5" if x < 5 else 1.5}


def centred(x: np.ndarray) -> dict[str, np.ndarray]:
    """Depends on which rows share its chunk: not reproducible row by row."""
    return {"f": x - x.mean()}


def fails_when_told(x: np.ndarray) -> dict[str, np.ndarray]:
    """Works, until TTG_TEST_FAIL_NOW is set (a function that broke after its run)."""
    if os.environ.get("TTG_TEST_FAIL_NOW"):
        raise RuntimeError("broken now")
    return {"f": x * 1.0}


class Halt(BaseException):
    """Not an Exception: what a careless `raise` of a BaseException subclass looks like."""


def raises_a_base_exception(x: np.ndarray) -> dict[str, np.ndarray]:
    raise Halt("stop")


def only_at_zero(x: np.ndarray) -> dict[str, np.ndarray]:
    """A number only where x == 0, NaN elsewhere: one ranked row where refinement needs two."""
    return {"f": np.where(x == 0, 0.0, np.nan)}


def bowl_with_noise(x: np.ndarray, y: np.ndarray, u: np.ndarray) -> dict[str, np.ndarray]:
    """A 2-D bowl plus a random axis's small contribution."""
    return {"f": (x - 0.3) ** 2 + (y + 0.2) ** 2 + 0.01 * u}


def parabola(x: np.ndarray) -> dict[str, np.ndarray]:
    """One axis, a minimum between grid points: a refined line plot's function."""
    return {"y": (x - 0.123456) ** 2}
