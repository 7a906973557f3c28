"""An axis's values in numpy and Arrow: its column type, its listed values as an array, its
values at grid positions or from uniform draws, and its extremes.

The space decodes rows with these (steps.space) and the spec's validator checks each float
axis's extremes for float64 overflow (steps.spec_validate); this module imports neither.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa

from steps.axis import Axis

__all__ = ["arrow_type", "extremes", "grid_values", "holds", "random_values", "value_array"]

_U_MAX = float((1 << 53) - 1) / float(1 << 53)  # the largest draw of steps.space.uniform01


def arrow_type(axis: Axis) -> pa.DataType:
    """The column type an axis decodes to."""
    if axis.kind in ("values", "choice"):
        first = axis.args[0]
        if isinstance(first, bool):
            return pa.bool_()
        if isinstance(first, int):
            return pa.int64()
        if isinstance(first, str):
            return pa.string()
        return pa.float64()
    return pa.int64() if axis.kind == "range" else pa.float64()


def value_array(axis: Axis) -> np.ndarray:
    """The listed values of a `values` or `choice` axis as the array its rows are taken from,
    of the column's type. Text is an object array of `str`: numpy's fixed-width unicode dtype
    would drop trailing NUL characters and pad every row to the longest value."""
    dtype = {bool: np.bool_, int: np.int64, float: np.float64}.get(type(axis.args[0]), object)
    values: np.ndarray = np.empty(len(axis.args), dtype=dtype)
    values[:] = axis.args  # not np.array(args, dtype=object): that could nest sequences
    values.flags.writeable = False
    return values


def extremes(axis: Axis) -> np.ndarray:
    """A float axis's values at the positions or draws where its float64 arithmetic reaches
    its largest magnitudes; empty for other axes. Each formula below is monotone in the
    position (or the draw, or the normal's radius and cosine), so if these values are finite,
    every value of the axis is: the spec is checked on them."""
    with np.errstate(over="ignore", invalid="ignore"):
        if axis.kind in ("linspace", "logspace"):
            num = int(axis.args[2])
            index = np.array(sorted({0, max(num - 2, 0), num - 1}), dtype=np.int64)
            return grid_values(axis, index)
        if axis.kind in ("uniform", "loguniform", "normal"):
            # normal: radius 0 and the largest radius, with cosine +1 (u2 = 0) and -1 (u2 = 0.5)
            u, u2 = np.array([0.0, _U_MAX, _U_MAX]), np.array([0.0, 0.0, 0.5])
            return random_values(axis, u, u2)
    return np.empty(0, dtype=np.float64)


def grid_values(axis: Axis, index: np.ndarray, listed: np.ndarray | None = None) -> np.ndarray:
    """Values at positions `index`, bit-identical to numpy's linspace/logspace/arange;
    `listed` is the `value_array` of a `values` axis, if the caller holds it."""
    if axis.kind == "range":
        first, _, step = (int(v) for v in axis.args)
        return first + index * step
    if axis.kind == "values":
        return (value_array(axis) if listed is None else listed)[index]
    start, stop, num = float(axis.args[0]), float(axis.args[1]), int(axis.args[2])
    values = _linspace_at(start, stop, num, index)
    return np.power(10.0, values) if axis.kind == "logspace" else values


def _linspace_at(start: float, stop: float, num: int, index: np.ndarray) -> np.ndarray:
    """`np.linspace(start, stop, num)[index]` without materialising the axis (same float ops)."""
    positions = index.astype(np.float64)
    if num == 1:
        return positions * (stop - start) + start
    div = num - 1
    delta = np.float64(stop) - np.float64(start)
    step = delta / div
    # Only the last position can overflow here (it is replaced by `stop`): the spec refuses
    # an axis with any other value that is not finite (see `extremes`).
    with np.errstate(over="ignore", invalid="ignore"):
        values = (positions / div) * delta if step == 0 else positions * step
        values += start
    values[index == num - 1] = stop
    return values


def random_values(
    axis: Axis, u: np.ndarray, u2: np.ndarray | None, listed: np.ndarray | None = None
) -> np.ndarray:
    """A random axis's values from its uniform draws `u` (and `u2`, the normal's second)."""
    if axis.kind == "uniform":
        low, high = float(axis.args[0]), float(axis.args[1])
        return low + (high - low) * u
    if axis.kind == "loguniform":
        log_low, log_high = math.log(float(axis.args[0])), math.log(float(axis.args[1]))
        return np.exp(log_low + (log_high - log_low) * u)
    if axis.kind == "normal":
        # Box-Muller on two independent streams; 1 - u lies in (0, 1], so log is finite.
        mean, std = float(axis.args[0]), float(axis.args[1])
        assert u2 is not None
        radius = np.sqrt(-2.0 * np.log1p(-u))
        return mean + std * radius * np.cos(2.0 * math.pi * u2)
    if axis.kind == "choice":
        n = len(axis.args)
        index = np.minimum((u * n).astype(np.int64), n - 1)
        return (value_array(axis) if listed is None else listed)[index]
    raise ValueError(f"{axis.kind} is not a random axis")


def holds(axis: Axis, value: Any, slack: float = 0.0) -> bool:
    """Whether `value` (a decoded JSON value) is one the axis's column can hold from its own
    arithmetic: a listed value, a point of a range, within a float axis's bounds (give or
    take `slack` of its grid step: a logspace value's log10 may round), a finite draw."""
    dtype = arrow_type(axis)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return pa.types.is_boolean(dtype) and isinstance(value, bool) and value in axis.args
    if axis.kind in ("values", "choice"):
        return type(value) is type(axis.args[0]) and value in axis.args
    if axis.kind == "range":
        start, stop, step = (int(v) for v in axis.args)
        return isinstance(value, int) and value in range(start, stop, step)
    if isinstance(value, str) or not math.isfinite(value):
        return False
    number = float(value)
    if axis.kind in ("linspace", "logspace"):
        if axis.kind == "logspace":
            if number <= 0:
                return False
            number = math.log10(number)
        low, high = sorted((float(axis.args[0]), float(axis.args[1])))
        num = int(axis.args[2])
        spacing = (high - low) / (num - 1) if num > 1 else 0.0
        return low - slack * spacing <= number <= high + slack * spacing
    if axis.kind in ("uniform", "loguniform"):
        return float(axis.args[0]) <= number <= float(axis.args[1])
    return True  # normal: any finite value
