"""`results --plot`: draw what fits a run's parameter space, in bounded memory.

A heatmap of the objective over the two grid axes with the most points (every other axis
reduced to the best value per cell), a line for one such axis, else a histogram; the best
point marked, cells with no finite objective drawn as missing. The data, read one row group
at a time, is workflows/plot_data.py; this module draws. matplotlib is an optional extra,
imported only here and only when a plot is asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from steps.space import Space
from workflows.plot_data import (
    MAX_LINE_POINTS,
    Best,
    BestTracker,
    GridAxis,
    PlotError,
    PlotKind,
    Target,
    blocks_for,
    choose_shape,
    choose_target,
    grid_axes,
    heatmap_cells,
    histogram,
    iter_column,
    reduce_to_grid,
    result_schema,
)
from workflows.plot_stages import draw_refined, overall_best
from workflows.results import FinishedRun

__all__ = [
    "Best",
    "BestTracker",
    "Drawn",
    "PlotError",
    "Target",
    "blocks_for",
    "check_plot_path",
    "choose_shape",
    "choose_target",
    "grid_axes",
    "heatmap_cells",
    "histogram",
    "iter_column",
    "plot_run",
    "reduce_to_grid",
]


if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


WIDE_RANGE = 1e3  # positive data spanning more than this ratio is drawn on a log scale
INSTALL_HINT = "pip install 'ttg[plot]'"
MISSING_COLOUR = "#d0d0d0"  # heatmap cells without a number: visibly not a value of the scale


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

    schema = result_schema(run)
    target = choose_target(run.spec, schema)
    kind, axes = choose_shape(run.spec)
    fig = Figure(figsize=(9, 7), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)  # render with Agg whatever backend pyplot may have elsewhere
    ax = fig.add_subplot()
    if kind == "heatmap":
        refined = run.spec.refine is not None and target == choose_target(run.spec, schema)
        best, missing = _draw_heatmap(fig, ax, run, target, axes, mark=not refined)
        if refined:
            overall, inset = draw_refined(ax, run, axes, _mark, _position)
            best = overall or best
            for axis, g in ((inset.xaxis, axes[0]), (inset.yaxis, axes[1])) if inset else ():
                _format_axis(axis, _coordinates(g))
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


def _position(g: GridAxis, value: Any) -> float:
    """Where a value of axis `g` sits on the plot (a category: its position in the list)."""
    c = _coordinates(g)
    if c.labels is not None:
        return float(list(g.axis.args).index(value)) if value in g.axis.args else 0.0
    return math.log10(float(value)) if c.log else float(value)


def _label(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}g}" if isinstance(value, float | np.floating) else str(value)


def _best_label(target: Target, best: Best | None, run: FinishedRun, names: list[str]) -> str:
    if best is None:
        return "no finite value"
    space = Space(run.spec)
    if best.param_id < space.rows:
        row = {n: v[0] for n, v in space.decode(best.param_id, best.param_id + 1).items()}
    else:  # a refined run's zoomed row: its values are the summary's
        row = (overall_best(run) or (best, {}))[1]
    where = ", ".join(f"{n}={_label(row[n], 6)}" for n in names if n in row)
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
    fig: Figure, ax: Axes, run: FinishedRun, target: Target, axes: list[GridAxis], mark: bool
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
    if best is not None and mark:
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
    found = overall_best(run) if run.spec.refine is not None else None
    if found is not None:  # a refined run's best: in a zoomed stage, off the grid drawn
        best = found[0]
        _mark(ax, float(found[1][g.name]), best.value)
    elif best is not None:
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
