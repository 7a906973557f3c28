"""A refined run on its heatmap: the first stage's grid as cells, and each later stage's boxes
drawn over it as outlines, one colour per stage, with the best point of all stages marked.

The boxes come from the summary's stage centres by the zoom rule itself (steps/refine.py),
which `verify` holds against the result's rows; cells stay the first stage's, whose rows are
the only ones on a grid of the spec's axes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from steps.axis import Axis
from steps.axis_values import arrow_type
from steps.refine import stage_boxes, zoomable
from workflows.plot_data import Best, GridAxis, PlotError
from workflows.results import FinishedRun
from workflows.verify_stages import StageCentresError, claimed_centres

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["draw_refined", "draw_stages", "overall_best"]

INSET_STAGE = 2  # the inset shows this stage's boxes (the first zoomed one's are on the map)


def overall_best(run: FinishedRun) -> tuple[Best, dict[str, Any]] | None:
    """The best row of every stage (the summary's first) and its values, if it has them."""
    rows = run.best_rows
    objective = run.spec.objective
    if not rows or objective is None or not isinstance(rows[0], dict):
        return None
    row = rows[0]
    value, param_id = row.get(objective.column), row.get("param_id")
    numbers = [value, *(row.get(a.name) for a in run.spec.axes if str(arrow_type(a)) != "string")]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers):
        return None
    if not isinstance(param_id, int) or isinstance(param_id, bool):
        return None
    assert isinstance(value, int | float)
    return Best(float(value), param_id), row


def draw_refined(
    ax: Axes,
    run: FinishedRun,
    axes: list[GridAxis],
    mark: Callable[[Axes, float, float], None],
    position: Callable[[GridAxis, Any], float],
) -> tuple[Best | None, Axes | None]:
    """The zoomed stages' boxes (and an inset around a later stage's, returned for its ticks),
    and the best of every stage marked (by `mark`) where `position` puts it."""
    found = overall_best(run)
    if found is None:
        return None, None
    best, row = found
    x, y = (position(g, row[g.name]) for g in axes)
    mark(ax, x, y)
    if not draw_stages(ax, run, axes):
        return best, None
    inset = ax.inset_axes((0.64, 0.04, 0.34, 0.34))
    draw_stages(inset, run, axes, zoomed=True)
    inset.plot([x], [y], marker="*", markersize=10, color="red", linestyle="none")
    inset.tick_params(labelsize=7)
    return best, inset


def draw_stages(ax: Axes, run: FinishedRun, axes: list[GridAxis], zoomed: bool = False) -> int:
    """Outline every zoomed box on the heatmap over `axes`; how many were drawn. `zoomed`:
    an inset, unlabelled, its limits INSET_STAGE's boxes (or the last stage's) and a quarter
    again either side. The centres are the summary's, checked as a pod checks them."""
    import matplotlib
    from matplotlib.patches import Rectangle

    spec = run.spec
    assert spec.refine is not None
    if not all(zoomable(g.axis) for g in axes):
        return 0  # a box is a span only on the float axes it zoomed
    try:
        stages = claimed_centres(spec, run.summary)
    except StageCentresError as exc:
        raise PlotError(f"{run.result_url} cannot be plotted: its summary {exc}") from None
    names = [a.name for a in spec.axes]
    colours = matplotlib.colormaps["autumn"]
    drawn = 0
    spans: list[tuple[float, float, float, float]] = []
    for number, centres in enumerate(stages[1:], start=1):
        best = [dict(zip(names, point, strict=True)) for point in centres]
        colour = colours((number - 1) / max(len(stages) - 2, 1))
        for i, box in enumerate(stage_boxes(spec.axes, best, number, spec.refine.points)):
            (x0, x1), (y0, y1) = (_span(box, g.name) for g in axes)
            if number == min(INSET_STAGE, len(stages) - 1):
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
