"""Adaptive refinement's `[refine]` table and its zoom rule: from one stage's best points, the
next stage's grids. The stages' rows and shards are steps/stages.py; docs/refine.md says why.

- Stage 0 is the spec's space. Each float grid axis (`linspace`, and `logspace` in exponent
  space) of `num` >= 2 points has a nominal step h0 = (stop - start) / (num - 1).
- Stage s >= 1 has one box per best distinct point of the stage before (steps.stages.
  centres_of): on each float grid axis a `linspace` (or `logspace`) of `points` points over
  [c - h, c + h] clipped to the axis's original bounds, where c is the point's value and
  h = h0 * (2 / (points - 1)) ** (s - 1) is the previous stage's nominal step; every other
  axis (`range`, `values`, random, a float axis of one point) keeps the point's value.
- So the step shrinks by (points - 1) / 2 a stage (10 for 21 points), and each box depends
  only on the spec and the previous stage's best points: never on shards or chunks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from steps.axis import Axis, Scalar
from steps.spec_error import SpecError, shown
from steps.spec_keys import REFINE_KEYS, reject_unknown
from steps.spec_parts import Objective
from steps.spec_validate import int_in

__all__ = [
    "MAX_CENTRES_BYTES",
    "MAX_POINTS",
    "MAX_REFINE_TOP_K",
    "MAX_STAGES",
    "MIN_POINTS",
    "STAGE_COLUMN",
    "Refine",
    "box_rows",
    "centres_bytes",
    "nominal_step",
    "parse_refine",
    "stage_boxes",
    "zoom_axis",
    "zoomable",
]

ZOOMED_KINDS = ("linspace", "logspace")
STAGE_COLUMN = "stage"  # the result's int column saying which stage computed a row
MAX_STAGES = 10
MAX_REFINE_TOP_K = 16  # the best points travel as one small Workflow parameter
MIN_POINTS = 4  # 3 points over [c - h, c + h] have step h: the grid would never get finer
MAX_POINTS = 1001
MAX_CENTRES_BYTES = 64 << 10  # one pod argument, as the spec (steps/spec_limits.py)
_NUMBER_BYTES = 24  # the longest JSON a float64 or int64 takes


@dataclass(frozen=True)
class Refine:
    stages: int  # 2..10, stage 0 included
    top_k: int  # best points of a stage the next one zooms around
    points: int | None  # per float axis of a zoomed grid; None: the axis's own num

    def canonical(self) -> dict[str, Any]:
        return {"stages": self.stages, "top_k": self.top_k, "points": self.points}


def zoomable(axis: Axis) -> bool:
    """A float grid axis of at least two distinct points: the axes a stage zooms."""
    return (
        axis.kind in ZOOMED_KINDS
        and int(axis.args[2]) >= 2
        and float(axis.args[0]) != float(axis.args[1])
    )


def box_rows(axes: Sequence[Axis], refine: Refine) -> int:
    """Rows of one zoomed box: every box of every stage has the same shape."""
    return math.prod(
        refine.points if refine.points is not None else int(a.args[2]) for a in axes if zoomable(a)
    )


def _value_bytes(axis: Axis) -> int:
    if axis.kind in ("values", "choice"):
        return max(len(json.dumps(v, ensure_ascii=False).encode()) for v in axis.args)
    return _NUMBER_BYTES


def centres_bytes(axes: Sequence[Axis], top_k: int) -> int:
    """The most bytes `top_k` best points can take as compact JSON (steps.stages.encode_centres)."""
    return 2 + top_k * (2 + sum(_value_bytes(a) + 1 for a in axes))


def parse_refine(
    data: Any, axes: Sequence[Axis], objective: Objective | None, first_rows: int
) -> Refine | None:
    """The `[refine]` table, refused in one line where stages could not zoom as asked."""
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise SpecError("refine", f"must be a table (stages, top_k, points), got {shown(data)}")
    reject_unknown(data, REFINE_KEYS, "refine")
    if "stages" not in data:
        raise SpecError("refine.stages", "is required: how many stages, the first included")
    stages = int_in(data["stages"], "refine.stages", 2, MAX_STAGES)
    top_k = int_in(data.get("top_k", 1), "refine.top_k", 1, MAX_REFINE_TOP_K)
    points = data.get("points")
    if points is not None:
        points = int_in(points, "refine.points", MIN_POINTS, MAX_POINTS)
    if objective is None:
        raise SpecError("refine", "needs an [objective]: it is what ranks each stage's best points")
    if top_k * top_k > objective.top_k:
        raise SpecError(
            "refine.top_k",
            f"is {top_k}, so each stage's best distinct points are sought among its best "
            f"{top_k * top_k} rows (boxes overlap: a point can be a row of each of {top_k} "
            f"boxes), but the objective ranks only its best {objective.top_k}: raise "
            f"objective.top_k to at least {top_k * top_k}",
        )
    zoomed = [a for a in axes if zoomable(a)]
    if not zoomed:
        raise SpecError(
            "refine",
            "needs a float grid axis to zoom into (a linspace or logspace of at least two "
            "distinct points); the space has none",
        )
    if points is None:
        short = next((a for a in zoomed if int(a.args[2]) < MIN_POINTS), None)
        if short is not None:
            raise SpecError(
                "refine.points",
                f"is unset, so stages zoom with the axes' own num, but space.{short.name} has "
                f"only {int(short.args[2])} points: a zoomed grid needs at least {MIN_POINTS}, "
                "or its step would not shrink (set refine.points)",
            )
    if any(a.name == STAGE_COLUMN for a in axes):
        raise SpecError(f"space.{STAGE_COLUMN}", "is the stage column of a refined sweep")
    size = centres_bytes(axes, top_k)
    if size > MAX_CENTRES_BYTES:
        widest = max(axes, key=lambda a: _value_bytes(a))
        raise SpecError(
            "refine.top_k",
            f"is {top_k}, and that many best points of this space can take {size:,} bytes as "
            f"one pod argument, over the limit of {MAX_CENTRES_BYTES:,} (space.{widest.name} "
            "has long values): lower top_k or shorten the values",
        )
    if first_rows < top_k:
        raise SpecError(
            "refine.top_k", f"is {top_k} but the first stage has only {first_rows} rows"
        )
    return Refine(stages=stages, top_k=top_k, points=points)


def nominal_step(axis: Axis, stage: int, points: int) -> float:
    """The nominal grid step of a zoomable axis at `stage` (in exponent space for logspace)."""
    if points < MIN_POINTS:
        raise ValueError(f"a zoomed grid needs at least {MIN_POINTS} points, got {points}")
    start, stop, num = float(axis.args[0]), float(axis.args[1]), int(axis.args[2])
    return abs(stop - start) / (num - 1) * (2 / (points - 1)) ** stage


def zoom_axis(axis: Axis, value: Scalar, stage: int, points: int | None) -> Axis:
    """The axis of one box of `stage` (>= 1) around a best point's `value` on it."""
    if not zoomable(axis):
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
