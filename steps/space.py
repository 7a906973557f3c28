"""The parameter space: row count, arithmetic decode of any `param_id` range, shard ranges.

Every value is a pure function of `param_id` (and the spec), so a pod computes its own rows
from its shard index alone and the result cannot depend on how the rows were split.

- Grid axes form a mixed-radix number in `itertools.product` order (last axis fastest);
  `param_id = grid_index * samples + sample_index`.
- Random axes draw from SplitMix64 keyed by `(seed, axis name, stream)` and counted by
  `param_id`: a counter-based generator, so row `p` gets the same draw in any chunk.

An axis's own arithmetic (its values at grid positions, from uniform draws) is in
steps.axis_values; this module combines the axes of a spec.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from steps.axis import Axis, grid_length, space_rows
from steps.axis_values import arrow_type, extremes, grid_values, random_values, value_array
from steps.spec import Spec

# arrow_type, extremes, grid_length, value_array: re-exported, as callers import them from here
__all__ = [
    "MAX_SHARD_ALIGNMENT",
    "MAX_TABLED_POINTS",
    "MIN_SHARD_ALIGNMENT",
    "Space",
    "arrow_type",
    "extremes",
    "grid_length",
    "shard_alignment",
    "shard_range",
    "uniform01",
    "value_array",
]

_GOLDEN = 0x9E3779B97F4A7C15
_TWO_POW_53 = float(1 << 53)


# Shards start on multiples of a power of two of at most this many rows, the largest row
# group the result can have (steps/parquet.py): then, once shards hold four row groups or
# more, no result row group straddles two shards, and reduce can copy every shard whole,
# on S3 server-side (steps/compose.py). Alignment costs balance only: at most 1/4. Four, not
# eight: with row groups twice as large the same shards stay seamless (docs/scaling.md).
# Below the smallest row group (MIN_SHARD_ALIGNMENT rows) alignment would gain nothing.
MAX_SHARD_ALIGNMENT, MIN_SHARD_ALIGNMENT = 1 << 20, 1 << 10
SHARD_ALIGNMENT_UNITS = 4  # alignment units per shard, at least
MAX_TABLED_POINTS = 1 << 17  # an axis this long or shorter is decoded from a table of its points


def shard_alignment(count: int, rows: int) -> int:
    """The power of two every shard boundary is a multiple of (1 for small shards)."""
    per_shard = rows // (SHARD_ALIGNMENT_UNITS * count)
    unit = min(MAX_SHARD_ALIGNMENT, 1 << max(0, per_shard.bit_length() - 1))
    return unit if unit >= MIN_SHARD_ALIGNMENT else 1


def shard_range(index: int, count: int, rows: int) -> tuple[int, int]:
    """Contiguous `[start, stop)` of shard `index`, on multiples of `shard_alignment`: shards
    differ by at most one alignment unit (at most a quarter of a shard), and by at most
    one row where the space is too small to align."""
    if not 0 <= index < count:
        raise ValueError(f"shard index {index} is outside 0..{count - 1}")
    unit = shard_alignment(count, rows)
    units = -(-rows // unit)
    return (
        min(rows, index * units // count * unit),
        min(rows, (index + 1) * units // count * unit),
    )


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
        self.rows = space_rows(spec.axes, spec.samples)
        self._listed = {a.name: value_array(a) for a in spec.axes if a.kind in ("values", "choice")}
        # Every point of a short numeric axis, computed once: a row's value is then a gather,
        # the same floats `grid_values` gives position by position (it is elementwise).
        self._points = {
            a.name: grid_values(a, np.arange(n, dtype=np.int64))
            for a, n in zip(grid, lengths, strict=True)
            if a.kind in ("linspace", "logspace", "range") and n <= MAX_TABLED_POINTS
        }
        self._runs = {**self._points, **{n: v for n, v in self._listed.items() if n in self._grid}}

    def shard_range(self, index: int, count: int | None = None) -> tuple[int, int]:
        return shard_range(index, self.spec.shards if count is None else count, self.rows)

    def decode(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Columns for rows `[start, stop)`: `param_id` first, then each axis in spec order.

        A contiguous range of a tabled axis is runs of its points: repeated or tiled, which
        is the gather `decode_ids` does, without an index per row."""
        if not 0 <= start <= stop <= self.rows:
            raise ValueError(f"rows [{start}, {stop}) are outside the space of {self.rows} rows")
        columns = self.decode_ids(np.arange(start, stop, dtype=np.int64), skip=self._runs)
        for name in self._runs:
            g, points = self._grid[name], self._runs[name]
            columns[name] = _runs_of(points, g.stride * self.spec.samples, start, stop)
        return {
            "param_id": columns["param_id"],
            **{a.name: columns[a.name] for a in self.spec.axes},
        }

    def decode_ids(
        self, param_id: np.ndarray, skip: Mapping[str, object] = MappingProxyType({})
    ) -> dict[str, np.ndarray]:
        """Columns for any rows, given as an int64 array of `param_id`s (e.g. a sample of the
        sweep, which `verify` recomputes): the same arithmetic, row by row. The axes in `skip`
        are left out (`decode` makes those its own way)."""
        if len(param_id) and not (int(param_id.min()) >= 0 and int(param_id.max()) < self.rows):
            raise ValueError(f"a param_id is outside the space of {self.rows} rows")
        grid_index = param_id // self.spec.samples if self.spec.samples > 1 else param_id
        columns: dict[str, np.ndarray] = {"param_id": param_id}
        for axis in self.spec.axes:
            if axis.name in skip:
                continue
            listed = self._listed.get(axis.name)
            if axis.is_random:
                columns[axis.name] = _draw(axis, self.spec.seed, param_id, listed)
            else:
                g = self._grid[axis.name]
                index = (
                    (grid_index // g.stride) % g.length if g.stride > 1 else grid_index % g.length
                )
                points = self._points.get(axis.name)
                columns[axis.name] = (
                    points[index] if points is not None else grid_values(axis, index, listed)
                )
        return columns


def _runs_of(points: np.ndarray, stride: int, start: int, stop: int) -> np.ndarray:
    """`points[(p // stride) % len(points)]` for `p` in `[start, stop)`, as runs: each point
    repeated over the rows it holds (or, at stride 1, the points tiled)."""
    n = len(points)
    if stop <= start:
        return points[:0]
    if stride == 1:
        offset = start % n
        return np.tile(points, -(-(offset + stop - start) // n))[offset : offset + stop - start]
    first, last = start // stride, (stop - 1) // stride
    edges = np.clip(np.arange(first, last + 2, dtype=np.int64) * stride, start, stop)
    return np.repeat(points[np.arange(first, last + 1) % n], np.diff(edges))


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
    return random_values(axis, u, u2, listed)
