"""What `results --plot` draws, and the data for it, read in bounded memory: only
`param_id` and the plotted column, one row group at a time, folded into a grid as large as
the plotted axes (cell indices from `param_id` by the same mixed-radix arithmetic that made
the rows). numpy and pyarrow only; the drawing is workflows/plot.py.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from steps.space import Space, grid_length
from steps.spec import Axis, Spec
from steps.stages import total_rows
from workflows.results import FinishedRun, ResultsError

__all__ = [
    "BATCH_ROWS",
    "HISTOGRAM_BINS",
    "MAX_CELLS",
    "MAX_LINE_POINTS",
    "WIDE_RANGE",
    "Best",
    "BestTracker",
    "Goal",
    "GridAxis",
    "Histogram",
    "PlotError",
    "PlotKind",
    "Target",
    "blocks_for",
    "cell_index",
    "choose_shape",
    "choose_target",
    "grid_axes",
    "grid_shape",
    "heatmap_cells",
    "histogram",
    "iter_column",
    "reduce_to_grid",
    "result_schema",
]

PlotKind = Literal["heatmap", "line", "histogram"]
Goal = Literal["min", "max"]

BATCH_ROWS = 1 << 18
MAX_CELLS = 800  # per heatmap axis: a longer axis is drawn in blocks of neighbouring points
MAX_LINE_POINTS = 4000
HISTOGRAM_BINS = 100
WIDE_RANGE = 1e3  # positive data spanning more than this ratio is drawn on a log scale


class PlotError(ResultsError):
    """A plot that cannot be drawn (matplotlib missing, nothing numeric, unwritable file)."""


@dataclass(frozen=True)
class Target:
    """The column drawn and which way is better."""

    column: str
    goal: Goal


@dataclass(frozen=True)
class GridAxis:
    """A grid axis with its place in the mixed-radix `param_id`."""

    axis: Axis
    length: int
    stride: int  # grid-index units per step along this axis

    @property
    def name(self) -> str:
        return self.axis.name


@dataclass(frozen=True)
class Best:
    value: float
    param_id: int


# --- what to draw ----------------------------------------------------------------------------


def grid_axes(spec: Spec) -> list[GridAxis]:
    """Every grid axis, in spec order, with its stride in the grid index."""
    grid = [a for a in spec.axes if not a.is_random]
    lengths = [grid_length(a) for a in grid]
    return [
        GridAxis(a, n, math.prod(lengths[i + 1 :]))
        for i, (a, n) in enumerate(zip(grid, lengths, strict=True))
    ]


def choose_shape(spec: Spec) -> tuple[PlotKind, list[GridAxis]]:
    """Heatmap over the two grid axes with most points, a line for one, else a histogram.

    Axes of a single point carry no shape and are ignored; ties go to the earlier axis, and
    the two heatmap axes keep spec order (the first is horizontal).
    """
    spread = [g for g in grid_axes(spec) if g.length > 1]
    chosen = sorted(spread, key=lambda g: -g.length)[:2]
    chosen.sort(key=lambda g: spec.axes.index(g.axis))
    if len(chosen) == 2:
        return "heatmap", chosen
    if len(chosen) == 1:
        return "line", chosen
    return "histogram", []


def choose_target(spec: Spec, schema: pa.Schema) -> Target:
    """The objective; without one, the first numeric output column, lower is better."""
    if spec.objective is not None:
        return Target(spec.objective.column, spec.objective.goal)
    axes = {a.name for a in spec.axes}
    for field in schema:
        if field.name == "param_id" or field.name in axes:
            continue
        if pa.types.is_integer(field.type) or pa.types.is_floating(field.type):
            return Target(field.name, "min")
    raise PlotError("nothing to plot: the spec has no objective and no output column is numeric")


# --- reading, in bounded memory --------------------------------------------------------------


def iter_column(
    run: FinishedRun, column: str, grid_only: bool = True
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(param_id, value as float64 with null as NaN) one batch at a time, through the store;
    with `grid_only`, only the rows of the spec's grid (a refined run's first stage).

    The result is read as untrusted input: a damaged or foreign file, or a `param_id` that
    is no row of the sweep, is a PlotError naming the file, never a traceback or a wrong
    cell."""
    rows = total_rows(run.spec)
    grid_rows = Space(run.spec).rows  # a refined run's zoomed rows are not on the grid
    with _reading(run), run.ref.store.open_read(run.result_key) as handle:
        # pre_buffer would fetch far ahead (measured: +110 MB on the 10M-row default sweep);
        # one row group at a time is what bounds memory.
        parquet = pq.ParquetFile(handle, pre_buffer=False, page_checksum_verification=True)
        for batch in parquet.iter_batches(
            batch_size=BATCH_ROWS, columns=["param_id", column], use_threads=False
        ):
            if batch.schema.field(0).type != pa.int64():
                raise ValueError(f"param_id is {batch.schema.field(0).type}, not int64")
            param_id = batch.column(0).to_numpy()
            if len(param_id) and (param_id.min() < 0 or param_id.max() >= rows):
                raise ValueError(f"it holds a param_id outside the sweep's 0..{rows - 1}")
            # Unchecked: an int64 beyond 2**53 has no exact float, and a plot needs none.
            values = pc.cast(batch.column(1), pa.float64(), safe=False)
            values = values.to_numpy(zero_copy_only=False)
            if grid_only and grid_rows < rows:
                on_grid = param_id < grid_rows
                param_id, values = param_id[on_grid], values[on_grid]
            yield param_id, values


def result_schema(run: FinishedRun) -> pa.Schema:
    with _reading(run), run.ref.store.open_read(run.result_key) as handle:
        return pq.ParquetFile(handle).schema_arrow


@contextlib.contextmanager
def _reading(run: FinishedRun) -> Iterator[None]:
    """What reading a damaged result raises (pyarrow's ArrowInvalid is a ValueError, its
    ArrowIOError an OSError; a missing column a KeyError), as one line naming the file."""
    try:
        yield
    except (ValueError, OSError, KeyError, TypeError, pa.ArrowException) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise PlotError(f"{run.result_url} cannot be plotted: {first}") from None


class BestTracker:
    """The best value seen and its `param_id`; ties keep the smallest `param_id`, as top-k does.
    NaN (and null, read as NaN) is never the best, whatever the goal; infinities are numbers."""

    def __init__(self, goal: Goal) -> None:
        self.goal = goal
        self.best: Best | None = None

    def update(self, param_id: np.ndarray, values: np.ndarray) -> None:
        (numbers,) = np.nonzero(~np.isnan(values))
        if not len(numbers):
            return
        # Among the numbers only: a NaN stand-in of +-inf could tie with a real infinity.
        chosen = values[numbers]
        i = int(numbers[np.argmin(chosen) if self.goal == "min" else np.argmax(chosen)])
        value = float(values[i])
        if self.best is None or (
            value < self.best.value if self.goal == "min" else value > self.best.value
        ):
            self.best = Best(value, int(param_id[i]))


def blocks_for(axes: list[GridAxis], limit: int = MAX_CELLS) -> tuple[int, ...]:
    """Neighbouring points per drawn cell along each axis: 1 up to `limit` points.

    This is what bounds memory: the grid has at most `limit` cells per axis whatever the
    sweep (a billion-row 2-D sweep would otherwise need an 8 GB grid), and a screen could
    not show more anyway. A block keeps its best value, so the best cell is never lost.
    """
    return tuple(max(1, -(-g.length // limit)) for g in axes)


def grid_shape(axes: list[GridAxis], blocks: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(-(-g.length // b) for g, b in zip(axes, blocks, strict=True))


def cell_index(
    param_id: np.ndarray, samples: int, axes: list[GridAxis], blocks: tuple[int, ...]
) -> np.ndarray:
    """Flat index into the (blocked) grid of `axes`, row-major, of each row."""
    grid_index = param_id // samples if samples > 1 else param_id
    flat = np.zeros(len(param_id), dtype=np.int64)
    for g, block, cells in zip(axes, blocks, grid_shape(axes, blocks), strict=True):
        point = (grid_index // g.stride) % g.length
        flat = flat * cells + (point // block if block > 1 else point)
    return flat


def reduce_to_grid(
    batches: Iterator[tuple[np.ndarray, np.ndarray]],
    samples: int,
    axes: list[GridAxis],
    goal: Goal,
    blocks: tuple[int, ...] | None = None,
) -> tuple[np.ndarray, Best | None]:
    """The best value in each cell (block of points) of the grid of `axes`, NaN where no row
    had a number, and the best row overall.

    Memory is the grid plus one batch, whatever the number of rows.
    """
    blocks = blocks or (1,) * len(axes)
    shape = grid_shape(axes, blocks)
    grid = np.full(math.prod(shape), np.nan)
    fold = np.fmin if goal == "min" else np.fmax  # NaN-ignoring: a NaN row never wins a cell
    tracker = BestTracker(goal)
    for param_id, values in batches:
        fold.at(grid, cell_index(param_id, samples, axes, blocks), values)
        tracker.update(param_id, values)
    return grid.reshape(shape), tracker.best


def heatmap_cells(grid: np.ndarray) -> np.ma.MaskedArray:
    """The grid as drawn: a cell where no row had a finite number (only NaN or null
    objectives, or infinities) is masked, so it is drawn as missing, never as a colour."""
    return np.ma.masked_invalid(grid)


@dataclass(frozen=True)
class Histogram:
    counts: np.ndarray
    edges: np.ndarray
    log: bool
    hidden: int  # rows not drawn: NaN, null or infinite
    best: Best | None
    missing: int = 0  # of those, rows without a number (NaN or null)


def histogram(run: FinishedRun, target: Target, bins: int = HISTOGRAM_BINS) -> Histogram:
    """Counts of the finite values in fixed bins; the range comes from summary.json if finite."""
    low, high = _finite_range(run, target)
    log = low > 0 and high / low > WIDE_RANGE
    if log:
        edges = np.geomspace(low, high, bins + 1)
    elif low == high:
        edges = np.linspace(low - 0.5, high + 0.5, bins + 1)
    else:  # as weights, not low + step * i: high - low overflows for a span like ±1e308
        t = np.linspace(0.0, 1.0, bins + 1)
        edges = low * (1.0 - t) + high * t
        edges[0], edges[-1] = low, high
    counts = np.zeros(bins, dtype=np.int64)
    tracker = BestTracker(target.goal)
    hidden = missing = 0
    for param_id, values in iter_column(run, target.column, grid_only=False):
        finite = values[np.isfinite(values)]
        hidden += len(values) - len(finite)
        missing += int(np.isnan(values).sum())
        if len(finite) and (finite.min() < edges[0] or finite.max() > edges[-1]):
            raise PlotError(
                f"{run.result_url}: values of '{target.column}' lie outside the min and max "
                "summary.json gives for it (the summary does not match the result)"
            )
        counts += np.histogram(finite, bins=edges)[0]
        tracker.update(param_id, values)
    return Histogram(counts, edges, log, hidden, tracker.best, missing)


def _finite_range(run: FinishedRun, target: Target) -> tuple[float, float]:
    stats = run.summary.get("columns", {}).get(target.column, {})
    low, high = _as_float(stats.get("min")), _as_float(stats.get("max"))
    if math.isfinite(low) and math.isfinite(high) and low <= high:
        return low, high
    low, high = math.inf, -math.inf  # infinities in the data: one extra pass for the range
    for _, values in iter_column(run, target.column, grid_only=False):
        finite = values[np.isfinite(values)]
        if len(finite):
            low, high = min(low, float(finite.min())), max(high, float(finite.max()))
    if not math.isfinite(low):
        raise PlotError(f"nothing to plot: column '{target.column}' has no finite value")
    return low, high


def _as_float(value: Any) -> float:
    """A summary number; JSON spells infinities and NaN as strings."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
