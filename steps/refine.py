"""The zoom rule of adaptive refinement (issue 16): from one stage's best points, the next
stage's grids. Groundwork: the spec does not accept `[refine]` yet, and no Workflow has stages.

The rule, exactly (docs/refine.md says why):

- Stage 0 is the spec's space. Each float grid axis (`linspace`, and `logspace` in exponent
  space) of `num` >= 2 points has a nominal step h0 = (stop - start) / (num - 1).
- Stage s >= 1 has, for each of the previous stage's `top_k` best points (ranked as top-k
  ranks: by the objective, ties by `param_id`), one box: on each float grid axis a
  `linspace` (or `logspace`) of `points` points over [c - h, c + h] clipped to the axis's
  original bounds, where c is the point's value and h = h0 * (2 / (points - 1)) ** (s - 1) is
  the previous stage's nominal step; every other axis (integer `range`, `values`, random, or
  a float axis of one point) keeps the point's value, as a one-value `values` axis.
- So the step shrinks by (points - 1) / 2 a stage (10 for 21 points), and each box depends
  only on the spec and the previous stage's best points: never on shards or chunks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from steps.axis import Axis, Scalar

__all__ = ["Refine", "nominal_step", "stage_boxes", "zoom_axis"]

ZOOMED_KINDS = ("linspace", "logspace")


@dataclass(frozen=True)
class Refine:
    stages: int  # 2..10, stage 0 included
    top_k: int  # best points of a stage the next one zooms around
    points: int | None  # per float axis of a zoomed grid; None: the axis's own num


def _zoomable(axis: Axis) -> bool:
    return axis.kind in ZOOMED_KINDS and int(axis.args[2]) >= 2


def nominal_step(axis: Axis, stage: int, points: int) -> float:
    """The nominal grid step of a zoomable axis at `stage` (in exponent space for logspace)."""
    if points < 3:
        raise ValueError(f"a zoomed grid needs at least 3 points, got {points}")
    start, stop, num = float(axis.args[0]), float(axis.args[1]), int(axis.args[2])
    return abs(stop - start) / (num - 1) * (2 / (points - 1)) ** stage


def zoom_axis(axis: Axis, value: Scalar, stage: int, points: int | None) -> Axis:
    """The axis of one box of `stage` (>= 1) around a best point's `value` on it."""
    if not _zoomable(axis):
        return Axis(axis.name, "values", (value,))
    count = points if points is not None else int(axis.args[2])
    centre = math.log10(float(value)) if axis.kind == "logspace" else float(value)
    half = nominal_step(axis, stage - 1, count)
    low, high = sorted((float(axis.args[0]), float(axis.args[1])))
    start, stop = max(low, centre - half), min(high, centre + half)
    return Axis(axis.name, axis.kind, (start, stop, count))


def stage_boxes(
    axes: Sequence[Axis], best: Sequence[Mapping[str, Scalar]], stage: int, points: int | None
) -> list[tuple[Axis, ...]]:
    """The boxes of `stage`, one per best point of the previous stage, in rank order."""
    if stage < 1:
        raise ValueError("stage 0 is the spec's own space")
    return [tuple(zoom_axis(a, point[a.name], stage, points) for a in axes) for point in best]
