"""Plain numpy rows of a grid sweep: what a hand-written script would do, no TTG machinery.

Every grid axis is a block of repeated values (`np.repeat`) or a tiled cycle (`np.tile`) in
`itertools.product` order, sliced to the `param_id` range asked for; the spec's function is
called once on the whole range. The baselines (limit, floor, dask) share it, so they differ
only in how they spread the work.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from steps.space import arrow_type, grid_length
from steps.spec import Axis, Spec


def axis_values(axis: Axis) -> np.ndarray:
    """All the points of a grid axis, as numpy makes them."""
    if axis.kind == "linspace":
        return np.linspace(float(axis.args[0]), float(axis.args[1]), int(axis.args[2]))
    if axis.kind == "logspace":
        return np.logspace(float(axis.args[0]), float(axis.args[1]), int(axis.args[2]))
    if axis.kind == "range":
        return np.arange(int(axis.args[0]), int(axis.args[1]), int(axis.args[2]), dtype=np.int64)
    if axis.kind == "values":
        return np.asarray(axis.args)
    raise ValueError(f"the plain baselines handle grid axes only, not '{axis.kind}'")


def axis_column(values: np.ndarray, stride: int, start: int, stop: int) -> np.ndarray:
    """The column of an axis whose value changes every `stride` rows, for rows [start, stop)."""
    n = len(values)
    if stride == 1:
        offset = start % n
        reps = -(-(offset + stop - start) // n)
        return np.tile(values, reps)[offset : offset + stop - start]
    first, last = start // stride, (stop - 1) // stride
    edges = np.clip(np.arange(first, last + 2, dtype=np.int64) * stride, start, stop)
    return np.repeat(values[np.arange(first, last + 1) % n], np.diff(edges))


def grid_columns(spec: Spec, start: int, stop: int) -> dict[str, np.ndarray]:
    """`param_id` and every axis for rows [start, stop) of a pure grid spec."""
    if spec.samples != 1:
        raise ValueError("the plain baselines handle pure grid sweeps only (samples = 1)")
    lengths = [grid_length(a) for a in spec.axes]
    columns = {"param_id": np.arange(start, stop, dtype=np.int64)}
    for i, axis in enumerate(spec.axes):
        stride = math.prod(lengths[i + 1 :])
        columns[axis.name] = axis_column(axis_values(axis), stride, start, stop)
    return columns


def grid_table(spec: Spec, function: Callable[..., Any], start: int, stop: int) -> pa.Table:
    """Rows [start, stop) with the function's outputs: param_id, axes, outputs."""
    columns = grid_columns(spec, start, stop)
    outputs = function(**{a.name: columns[a.name] for a in spec.axes})
    types = {"param_id": pa.int64(), **{a.name: arrow_type(a) for a in spec.axes}}
    arrays = {name: pa.array(columns[name], type=dtype) for name, dtype in types.items()}
    return pa.table({**arrays, **{name: pa.array(v) for name, v in outputs.items()}})
