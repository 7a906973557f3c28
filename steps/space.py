"""The parameter space: row count, arithmetic decode of any `param_id` range, shard ranges.

Every value is a pure function of `param_id` (and the spec), so a pod computes its own rows
from its shard index alone and the result cannot depend on how the rows were split.

- Grid axes form a mixed-radix number in `itertools.product` order (last axis fastest);
  `param_id = grid_index * samples + sample_index`.
- Random axes draw from SplitMix64 keyed by `(seed, axis name, stream)` and counted by
  `param_id`: a counter-based generator, so row `p` gets the same draw in any chunk.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from steps.spec import Axis, Spec

_GOLDEN = 0x9E3779B97F4A7C15
_TWO_POW_53 = float(1 << 53)
_U_MAX = float((1 << 53) - 1) / _TWO_POW_53  # the largest draw of uniform01


def grid_length(axis: Axis) -> int:
    """Number of points on a grid axis."""
    if axis.kind in ("linspace", "logspace"):
        return int(axis.args[2])
    if axis.kind == "range":
        start, stop, step = (int(v) for v in axis.args)
        return len(range(start, stop, step))
    if axis.kind == "values":
        return len(axis.args)
    raise ValueError(f"{axis.kind} is not a grid axis")


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
            index = np.unique(np.array([0, max(num - 2, 0), num - 1], dtype=np.int64))
            return _grid_values(axis, index)
        if axis.kind in ("uniform", "loguniform", "normal"):
            # normal: radius 0 and the largest radius, with cosine +1 (u2 = 0) and -1 (u2 = 0.5)
            u, u2 = np.array([0.0, _U_MAX, _U_MAX]), np.array([0.0, 0.0, 0.5])
            return _transform(axis, u, u2)
    return np.empty(0, dtype=np.float64)


def shard_range(index: int, count: int, rows: int) -> tuple[int, int]:
    """Contiguous, balanced `[start, stop)` of shard `index`: sizes differ by at most one row."""
    if not 0 <= index < count:
        raise ValueError(f"shard index {index} is outside 0..{count - 1}")
    return index * rows // count, (index + 1) * rows // count


@dataclass(frozen=True)
class _GridAxis:
    axis: Axis
    length: int
    stride: int  # grid-index units per step of this axis


class Space:
    """Decodes rows of one spec; cheap to build, holds no per-row state."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        grid = [a for a in spec.axes if not a.is_random]
        lengths = [grid_length(a) for a in grid]
        strides = [math.prod(lengths[i + 1 :]) for i in range(len(grid))]
        self._grid = {
            a.name: _GridAxis(a, n, s) for a, n, s in zip(grid, lengths, strides, strict=True)
        }
        self.grid_rows = math.prod(lengths)
        self.rows = self.grid_rows * spec.samples
        self._listed = {a.name: value_array(a) for a in spec.axes if a.kind in ("values", "choice")}

    def shard_range(self, index: int, count: int | None = None) -> tuple[int, int]:
        return shard_range(index, self.spec.shards if count is None else count, self.rows)

    def decode(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Columns for rows `[start, stop)`: `param_id` first, then each axis in spec order."""
        if not 0 <= start <= stop <= self.rows:
            raise ValueError(f"rows [{start}, {stop}) are outside the space of {self.rows} rows")
        param_id = np.arange(start, stop, dtype=np.int64)
        grid_index = param_id // self.spec.samples if self.spec.samples > 1 else param_id
        columns: dict[str, np.ndarray] = {"param_id": param_id}
        for axis in self.spec.axes:
            listed = self._listed.get(axis.name)
            if axis.is_random:
                columns[axis.name] = _draw(axis, self.spec.seed, param_id, listed)
            else:
                g = self._grid[axis.name]
                index = (
                    (grid_index // g.stride) % g.length if g.stride > 1 else grid_index % g.length
                )
                columns[axis.name] = _grid_values(axis, index, listed)
        return columns


def _grid_values(axis: Axis, index: np.ndarray, listed: np.ndarray | None = None) -> np.ndarray:
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


def _stream_key(seed: int, axis: str, stream: int) -> int:
    digest = hashlib.sha256(f"ttg\0{seed}\0{axis}\0{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _splitmix64(key: int, counter: np.ndarray) -> np.ndarray:
    """SplitMix64 output number `counter` of the stream `key` (uint64 arithmetic wraps)."""
    z = counter.astype(np.uint64) * np.uint64(_GOLDEN) + np.uint64(key)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def uniform01(seed: int, axis: str, stream: int, param_id: np.ndarray) -> np.ndarray:
    """Uniform doubles in [0, 1) from the top 53 bits of each draw."""
    bits = _splitmix64(_stream_key(seed, axis, stream), param_id)
    return (bits >> np.uint64(11)).astype(np.float64) / _TWO_POW_53


def _draw(
    axis: Axis, seed: int, param_id: np.ndarray, listed: np.ndarray | None = None
) -> np.ndarray:
    """Row values of a random axis; `listed` is the `value_array` of a `choice` axis."""
    u = uniform01(seed, axis.name, 0, param_id)
    u2 = uniform01(seed, axis.name, 1, param_id) if axis.kind == "normal" else None
    return _transform(axis, u, u2, listed)


def _transform(
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
