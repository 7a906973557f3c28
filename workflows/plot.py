"""`results --plot`: draw what fits a run's parameter space, in bounded memory.

- two or more grid axes with several points: a heatmap of the objective over the two with the
  most points, every other axis (and random draw) reduced to the best value per cell;
- one such axis: a line of the best value at each of its points;
- otherwise (only random axes): a histogram of the objective.

The best point is marked on each. Rows whose objective is NaN or null are never the best: a
cell (or point) where no row has a number is drawn as missing — grey, masked, never a colour
— and the colour scale spans the numbers only; the histogram counts the finite rows and says
how many it left out. A sweep may have billions of rows, so the result is never
loaded whole: only `param_id` and the plotted column are read, one row group at a time, and
each batch is folded into a grid as large as the plotted axes (cell indices come from
`param_id` by the same mixed-radix arithmetic that made the rows: exact, no float matching).
matplotlib is an optional extra, imported only here and only when a plot is asked for.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from steps.space import Space, grid_length
from steps.spec import Axis, Spec
from workflows.results import FinishedRun, ResultsError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PlotKind = Literal["heatmap", "line", "histogram"]
Goal = Literal["min", "max"]

BATCH_ROWS = 1 << 18
MAX_CELLS = 800  # per heatmap axis: a longer axis is drawn in blocks of neighbouring points
MAX_LINE_POINTS = 4000
HISTOGRAM_BINS = 100
WIDE_RANGE = 1e3  # positive data spanning more than this ratio is drawn on a log scale
INSTALL_HINT = "pip install 'ttg[plot]'"
MISSING_COLOUR = "#d0d0d0"  # heatmap cells without a number: visibly not a value of the scale


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


@dataclass(frozen=True)
class Drawn:
    """What `plot_run` drew, for the CLI to say."""

    kind: PlotKind
    path: Path
    target: Target
    axes: tuple[str, ...]
    best: Best | None
    missing: int = 0  # heatmap cells / line points without a finite value; histogram: rows
    # without a number (NaN or null)

    def describe(self) -> str:
        """One line: what was drawn over what, and what had no number to draw."""
        if self.kind == "histogram":
            return f"histogram of {self.target.column}" + (
                f" ({self.missing:,} rows without a number not counted)" if self.missing else ""
            )
        over = " and ".join(self.axes)
        unit = "cells" if self.kind == "heatmap" else "points"
        return f"{self.kind} of {self.target.goal} {self.target.column} over {over}" + (
            f" ({self.missing:,} {unit} without a finite value, drawn as missing)"
            if self.missing
            else ""
        )


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


def iter_column(run: FinishedRun, column: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(param_id, value as float64 with null as NaN) one batch at a time, through the store.

    The result is read as untrusted input: a damaged or foreign file, or a `param_id` that
    is no row of the sweep, is a PlotError naming the file, never a traceback or a wrong
    cell."""
    rows = Space(run.spec).rows
    with _reading(run), run.ref.store.open_read(run.result_key) as handle:
        # pre_buffer would fetch far ahead (measured: +110 MB on the 10M-row default sweep);
        # one row group at a time is what bounds memory.
        parquet = pq.ParquetFile(handle, pre_buffer=False, page_checksum_verification=True)
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=["param_id", column]):
            if batch.schema.field(0).type != pa.int64():
                raise ValueError(f"param_id is {batch.schema.field(0).type}, not int64")
            param_id = batch.column(0).to_numpy()
            if len(param_id) and (param_id.min() < 0 or param_id.max() >= rows):
                raise ValueError(f"it holds a param_id outside the sweep's 0..{rows - 1}")
            # Unchecked: an int64 beyond 2**53 has no exact float, and a plot needs none.
            values = pc.cast(batch.column(1), pa.float64(), safe=False)
            values = values.to_numpy(zero_copy_only=False)
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
    for param_id, values in iter_column(run, target.column):
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
    for _, values in iter_column(run, target.column):
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


# --- drawing ---------------------------------------------------------------------------------


def require_matplotlib() -> None:
    """Fail before any work, in one line, when the optional extra is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlotError(f"--plot needs matplotlib: {INSTALL_HINT}") from None


def check_plot_path(path: str | Path) -> Path:
    """Refuse, before any work, a plot that could not be written: no matplotlib, an unknown
    format (taken from the extension, as matplotlib does) or a missing folder."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    out = Path(path)
    supported = FigureCanvasAgg.get_supported_filetypes()
    if out.suffix.lower().lstrip(".") not in supported:
        others = ", ".join("." + s for s in sorted(supported) if s != "png")
        raise PlotError(f"--plot {out}: name the file .png (or {others})")
    if not out.parent.is_dir():
        raise PlotError(f"--plot {out}: folder {out.parent} does not exist")
    return out


def plot_run(run: FinishedRun, path: str | Path) -> Drawn:
    """Draw the plot that fits the run's space to `path` (format from its extension)."""
    out = check_plot_path(path)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    target = choose_target(run.spec, result_schema(run))
    kind, axes = choose_shape(run.spec)
    fig = Figure(figsize=(9, 7), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)  # render with Agg whatever backend pyplot may have elsewhere
    ax = fig.add_subplot()
    if kind == "heatmap":
        best, missing = _draw_heatmap(fig, ax, run, target, axes)
    elif kind == "line":
        best, missing = _draw_line(ax, run, target, axes[0])
    else:
        best, missing = _draw_histogram(ax, run, target)
    _title(fig, ax, run, target, kind, axes, best)
    try:
        fig.savefig(out)
    except OSError as exc:
        raise PlotError(f"cannot write plot {out}: {exc.strerror or exc}") from None
    return Drawn(kind, out, target, tuple(g.name for g in axes), best, missing)


@dataclass(frozen=True)
class _Coordinates:
    """Where point `i` of an axis sits on the plot: `first + i * step` on a uniform scale
    (log10 of the value for logspace), or position `i` of a list of categories.

    Arithmetic, not a decoded array: an axis may have a billion points.
    """

    first: float
    step: float
    labels: list[str] | None  # tick labels for categories; None for a numeric scale
    log: bool

    def at(self, index: float | np.ndarray) -> Any:
        return self.first + np.asarray(index, dtype=np.float64) * self.step


def _coordinates(g: GridAxis) -> _Coordinates:
    axis, n = g.axis, g.length
    if axis.kind in ("linspace", "logspace"):
        start, stop = float(axis.args[0]), float(axis.args[1])
        step = (stop - start) / (n - 1) if n > 1 else 1.0
        return _Coordinates(start, step, None, axis.kind == "logspace")
    if axis.kind == "range":
        return _Coordinates(float(axis.args[0]), float(axis.args[2]), None, False)
    return _Coordinates(0.0, 1.0, [_label(v) for v in axis.args], False)


def _label(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}g}" if isinstance(value, float | np.floating) else str(value)


def _best_label(target: Target, best: Best | None, run: FinishedRun, names: list[str]) -> str:
    if best is None:
        return "no finite value"
    row = Space(run.spec).decode(best.param_id, best.param_id + 1)
    where = ", ".join(f"{n}={_label(row[n][0], 6)}" for n in names)
    return f"best {target.column} = {best.value:.6g}" + (f" at {where}" if where else "")


def _wide_positive(values: np.ndarray) -> bool:
    """Positive data spanning orders of magnitude reads better on a log scale."""
    finite = values[np.isfinite(values)]
    return (
        bool(len(finite)) and float(finite.min()) > 0 and finite.max() / finite.min() > WIDE_RANGE
    )


def _norm(values: np.ndarray) -> Any:
    """A log colour/axis scale when positive data spans orders of magnitude, else linear."""
    from matplotlib.colors import LogNorm, Normalize

    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return Normalize()
    low, high = float(finite.min()), float(finite.max())
    if _wide_positive(finite):
        return LogNorm(vmin=low, vmax=high)
    return Normalize(vmin=low, vmax=high)


def _extent(c: _Coordinates, cells: int, block: int) -> tuple[float, float]:
    """Outer edges of `cells` drawn cells of `block` points each (the last may be partial)."""
    low = c.first - c.step / 2
    return low, low + c.step * block * cells


def _draw_heatmap(
    fig: Figure, ax: Axes, run: FinishedRun, target: Target, axes: list[GridAxis]
) -> tuple[Best | None, int]:
    import matplotlib

    blocks = blocks_for(axes)
    grid, best = reduce_to_grid(
        iter_column(run, target.column), run.spec.samples, axes, target.goal, blocks
    )
    cells = heatmap_cells(grid)
    missing = int(np.ma.count_masked(cells))
    cx, cy = (_coordinates(g) for g in axes)
    x0, x1 = _extent(cx, cells.shape[0], blocks[0])
    y0, y1 = _extent(cy, cells.shape[1], blocks[1])
    colours = matplotlib.colormaps["viridis" if target.goal == "min" else "viridis_r"]
    image = ax.imshow(
        cells.T,
        origin="lower",
        extent=(x0, x1, y0, y1),
        aspect="auto",
        interpolation="nearest",
        cmap=colours.with_extremes(bad=MISSING_COLOUR),  # the best end is dark
        norm=_norm(grid),  # over the finite cells only
    )
    others = [g.name for g in grid_axes(run.spec) if g not in axes]
    others += [a.name for a in run.spec.axes if a.is_random]
    over = f" over {', '.join(others)}" if others else ""
    fig.colorbar(image, ax=ax, label=f"{target.goal} {target.column} per cell{over}")
    _format_axis(ax.xaxis, cx)
    _format_axis(ax.yaxis, cy)
    ax.set_xlabel(axes[0].name)
    ax.set_ylabel(axes[1].name)
    if best is not None:
        ix, iy = (_point(best, run.spec.samples, g) for g in axes)
        _mark(ax, float(cx.at(ix)), float(cy.at(iy)))
    if missing:
        _legend_missing(ax, f"no finite value ({missing:,} cells)")
    return best, missing


def _legend_missing(ax: Axes, label: str) -> None:
    """Add a grey swatch for the missing cells to the legend (the best point's, if any)."""
    from matplotlib.patches import Patch

    handles, _ = ax.get_legend_handles_labels()
    swatch = Patch(facecolor=MISSING_COLOUR, edgecolor="0.4", label=label)
    ax.legend(handles=[*handles, swatch], loc="best")


def _point(best: Best, samples: int, g: GridAxis) -> int:
    """The best row's point on axis `g`: the same arithmetic that decoded it."""
    return (best.param_id // samples // g.stride) % g.length


def _format_axis(axis: Any, c: _Coordinates) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator

    if c.labels is not None:
        labels = c.labels
        axis.set_major_locator(
            FixedLocator(list(range(len(labels))))
            if len(labels) <= 20
            else MaxNLocator(nbins=10, integer=True)
        )
        axis.set_major_formatter(
            FuncFormatter(lambda v, _: labels[int(v)] if 0 <= int(v) < len(labels) else "")
        )
    elif c.log:
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{10**v:.3g}"))


def _mark(ax: Axes, x: float, y: float) -> None:
    ax.plot(
        [x],
        [y],
        marker="*",
        markersize=18,
        color="red",
        markeredgecolor="white",
        markeredgewidth=1.2,
        linestyle="none",
        label="best",
        zorder=5,
    )
    ax.legend(loc="best")


def _draw_line(ax: Axes, run: FinishedRun, target: Target, g: GridAxis) -> tuple[Best | None, int]:
    blocks = blocks_for([g], MAX_LINE_POINTS)
    line, best = reduce_to_grid(
        iter_column(run, target.column), run.spec.samples, [g], target.goal, blocks
    )
    line = np.where(np.isfinite(line), line, np.nan)  # a gap in the line where no number
    missing = int(np.isnan(line).sum())
    c = _coordinates(g)
    middle = np.minimum(np.arange(len(line)) * blocks[0] + (blocks[0] - 1) / 2, g.length - 1)
    x = c.at(middle)
    x = 10**x if c.log else x
    ax.plot(x, line, marker="o" if len(line) <= 60 else None, markersize=4, color="tab:blue")
    if c.log:
        ax.set_xscale("log")
    elif c.labels is not None:
        _format_axis(ax.xaxis, c)
    if _wide_positive(line):
        ax.set_yscale("log")
    reduced = run.spec.samples > 1 or len(grid_axes(run.spec)) > 1 or blocks[0] > 1
    ax.set_xlabel(g.name)
    ax.set_ylabel(f"{target.goal} {target.column}" if reduced else target.column)
    ax.grid(True, alpha=0.3)
    if best is not None:
        at = float(c.at(_point(best, run.spec.samples, g)))
        _mark(ax, 10**at if c.log else at, best.value)
    return best, missing


def _draw_histogram(ax: Axes, run: FinishedRun, target: Target) -> tuple[Best | None, int]:
    h = histogram(run, target)
    # matplotlib's transforms overflow when an axis spans more than a float holds (±1e308):
    # draw such a histogram in units of a power of ten, and say so on the axis.
    unit = 1.0
    if not h.log and not math.isfinite(float(h.edges[-1]) - float(h.edges[0])):
        unit = 10.0 ** math.floor(math.log10(max(abs(h.edges[0]), abs(h.edges[-1]))))
    ax.stairs(h.counts, h.edges / unit, fill=True, alpha=0.8, color="tab:blue")
    if h.log:
        ax.set_xscale("log")
    left_out = [f"{h.missing:,} without a number"] if h.missing else []
    if h.hidden > h.missing:
        left_out.append(f"{h.hidden - h.missing:,} infinite")
    ax.set_xlabel(
        target.column
        + (f" (in units of {unit:.0e})" if unit != 1.0 else "")
        + (f"  (rows not shown: {', '.join(left_out)})" if left_out else "")
    )
    ax.set_ylabel("rows")
    ax.grid(True, alpha=0.3)
    if h.best is not None and math.isfinite(h.best.value):
        best_at = h.best.value / unit
        ax.axvline(best_at, color="red", linewidth=2, label=f"best ({target.goal})")
        ax.legend(loc="best")
    return h.best, h.missing


def _title(
    fig: Figure,
    ax: Axes,
    run: FinishedRun,
    target: Target,
    kind: PlotKind,
    axes: list[GridAxis],
    best: Best | None,
) -> None:
    fig.suptitle(f"{run.spec.name} — {run.rows:,} rows — run {run.ref.run_id}", fontsize=13)
    shape = {
        "heatmap": f"{target.goal} {target.column} over {' and '.join(g.name for g in axes)}",
        "line": f"{target.goal} {target.column} along {axes[0].name}" if axes else "",
        "histogram": f"distribution of {target.column}",
    }[kind]
    ax.set_title(
        f"{shape}\n{_best_label(target, best, run, [a.name for a in run.spec.axes])}", fontsize=10
    )
