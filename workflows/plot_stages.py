"""A refined run on its heatmap: the first stage's grid as cells, and each later stage's boxes
drawn over it as outlines, one colour per stage, with the best point of all stages marked.

The boxes come from the summary's stage centres by the zoom rule itself (steps/refine.py),
which `verify` holds against the result's rows; cells stay the first stage's, whose rows are
the only ones on a grid of the spec's axes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from steps.axis import Axis
from steps.refine import stage_boxes, zoomable
from workflows.plot_data import Best, GridAxis
from workflows.results import FinishedRun

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["draw_refined", "draw_stages", "overall_best"]

INSET_STAGE = 2  # the inset shows this stage's boxes (the first zoomed one's are on the map)


def overall_best(run: FinishedRun) -> tuple[Best, dict[str, Any]] | None:
    """The best row of every stage (the summary's first), and its values."""
    rows = run.best_rows
    objective = run.spec.objective
    if not rows or objective is None:
        return None
    row = rows[0]
    value = row.get(objective.column)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return Best(float(value), int(row["param_id"])), row


def draw_refined(
    ax: Axes, run: FinishedRun, axes: list[GridAxis], mark: Callable[[Axes, float, float], None]
) -> Best | None:
    """The zoomed stages' boxes, also in an inset around a later stage's, and the best of
    every stage marked (by `mark`) where it is."""
    found = overall_best(run)
    if found is None or not draw_stages(ax, run, axes):
        return None
    best, row = found
    x, y = (
        math.log10(float(row[g.name])) if g.axis.kind == "logspace" else float(row[g.name])
        for g in axes
    )
    mark(ax, x, y)
    inset = ax.inset_axes((0.64, 0.04, 0.34, 0.34))
    draw_stages(inset, run, axes, zoomed=True)
    inset.plot([x], [y], marker="*", markersize=10, color="red", linestyle="none")
    inset.tick_params(labelsize=7)
    return best


def draw_stages(ax: Axes, run: FinishedRun, axes: list[GridAxis], zoomed: bool = False) -> int:
    """Outline every zoomed box on the heatmap over `axes`; how many were drawn. `zoomed`:
    an inset, unlabelled, its limits INSET_STAGE's boxes (or the last stage's) and half
    again."""
    import matplotlib
    from matplotlib.patches import Rectangle

    spec = run.spec
    assert spec.refine is not None
    if not all(zoomable(g.axis) for g in axes):
        return 0  # a box is a span only on the float axes it zoomed
    entries = run.summary.get("stages") or []
    colours = matplotlib.colormaps["autumn"]
    drawn = 0
    spans: list[tuple[float, float, float, float]] = []
    for entry in entries[1:]:
        number = int(entry["stage"])
        best = [dict(point) for point in entry.get("centres") or []]
        colour = colours((number - 1) / max(len(entries) - 2, 1))
        for i, box in enumerate(stage_boxes(spec.axes, best, number, spec.refine.points)):
            (x0, x1), (y0, y1) = (_span(box, g.name) for g in axes)
            if number == min(INSET_STAGE, len(entries) - 1):
                spans.append((x0, x1, y0, y1))
            ax.add_patch(
                Rectangle(
                    (x0, y0),
                    x1 - x0,
                    y1 - y0,
                    fill=False,
                    edgecolor=colour,
                    linewidth=1.2,
                    label=f"stage {number}" if i == 0 and not zoomed else None,
                    zorder=4,
                )
            )
            drawn += 1
    if zoomed and spans:
        for low, high, axis_limits in (
            (min(s[0] for s in spans), max(s[1] for s in spans), ax.set_xlim),
            (min(s[2] for s in spans), max(s[3] for s in spans), ax.set_ylim),
        ):
            pad = (high - low) / 4
            axis_limits(low - pad, high + pad)
    return drawn


def _span(box: tuple[Axis, ...], name: str) -> tuple[float, float]:
    """The box's extent on one zoomed axis, in the heatmap's coordinates (for logspace the
    exponents, as the heatmap draws it)."""
    axis = next(a for a in box if a.name == name)
    return float(axis.args[0]), float(axis.args[1])
