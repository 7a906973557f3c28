"""The stages of a sweep, as one `param_id` space: which rows and shards each stage holds, and
the rows of a zoomed stage.

A sweep without `[refine]` is one stage: the spec's space in `spec.shards` shards. A refined
sweep appends, per later stage, `refine.top_k` boxes of the same shape (steps/refine.py), so
every stage's size is known from the spec alone. Its rows take the `param_id`s after the
previous stage's and its shards the indexes after the previous stage's, so a refined run is
one run of `total_shards` shards over `total_rows` rows, ordered by (stage, `param_id`), and
reduce, resume and verify treat it as they treat any run. A stage has about as many rows per
shard as the first (docs/refine.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from steps.axis import Axis, Scalar, space_rows
from steps.axis_values import holds
from steps.refine import box_rows, nominal_step, stage_boxes, zoomable
from steps.shards import ShardInfo
from steps.space import Space, arrow_type, shard_range
from steps.spec import Spec, SpecError
from steps.summary import PartialSummary

__all__ = [
    "Centres",
    "RunSpace",
    "Stage",
    "StageError",
    "StageSpace",
    "centres_of",
    "centres_problem",
    "decode_centres",
    "encode_centres",
    "next_centres",
    "stage_of_shard",
    "stage_space",
    "stage_summaries",
    "stages_of",
    "total_rows",
    "total_shards",
]

# The best points a stage zooms around, in rank order: each one's values in axis order.
Centres = tuple[tuple[Scalar, ...], ...]


class StageError(ValueError):
    """A stage that cannot be zoomed from what the previous one found."""


@dataclass(frozen=True)
class Stage:
    number: int
    offset: int  # its first param_id
    rows: int
    first_shard: int
    shards: int

    def shard_range(self, index: int) -> tuple[int, int]:
        """The global `[start, stop)` of the run's shard `index`, one of this stage's."""
        start, stop = shard_range(index - self.first_shard, self.shards, self.rows)
        return self.offset + start, self.offset + stop


def stages_of(spec: Spec) -> tuple[Stage, ...]:
    """Arithmetic on the spec alone: cheap enough to call once per shard."""
    first = Stage(0, 0, space_rows(spec.axes, spec.samples), 0, spec.shards)
    if spec.refine is None:
        return (first,)
    rows = spec.refine.top_k * box_rows(spec.axes, spec.refine)
    shards = min(spec.shards, rows, max(1, math.ceil(rows * spec.shards / first.rows)))
    stages = [first]
    for number in range(1, spec.refine.stages):
        previous = stages[-1]
        offset, first_shard = (
            previous.offset + previous.rows,
            previous.first_shard + previous.shards,
        )
        stages.append(Stage(number, offset, rows, first_shard, shards))
    return tuple(stages)


def total_rows(spec: Spec) -> int:
    last = stages_of(spec)[-1]
    return last.offset + last.rows


def total_shards(spec: Spec) -> int:
    last = stages_of(spec)[-1]
    return last.first_shard + last.shards


def stage_of_shard(spec: Spec, index: int) -> Stage:
    for stage in stages_of(spec):
        if stage.first_shard <= index < stage.first_shard + stage.shards:
            return stage
    raise ValueError(f"shard index {index} is outside 0..{total_shards(spec) - 1}")


def centres_of(spec: Spec, top: list[dict[str, Any]], stage: int) -> Centres:
    """The next stage's centres: the `refine.top_k` best distinct points of `stage` (from its
    merged summary's top rows, ranked by the objective, ties by `param_id`), each as its axis
    values. Boxes around close points overlap, so a point can be a row of several; a row
    within a quarter grid step of a better one on every zoomed axis (and equal on the
    others) is the same point. If the top rows hold fewer distinct points, the best rows skipped
    fill the rest, in rank order, so a stage always has `top_k` boxes."""
    assert spec.refine is not None
    k = spec.refine.top_k
    if len(top) < k:
        raise StageError(
            f"stage {stage} ranked {len(top)} row(s), fewer than refine.top_k = {k}: the "
            "others' objective was NaN or null"
        )
    points = [tuple(row[a.name] for a in spec.axes) for row in top]
    distinct: list[int] = []
    for i, point in enumerate(points):
        if len(distinct) < k and not any(
            _same_point(spec, stage, point, points[j]) for j in distinct
        ):
            distinct.append(i)
    chosen = distinct + [i for i in range(len(points)) if i not in distinct][: k - len(distinct)]
    return tuple(points[i] for i in sorted(chosen))


def _same_point(spec: Spec, stage: int, a: tuple[Scalar, ...], b: tuple[Scalar, ...]) -> bool:
    assert spec.refine is not None
    for axis, u, v in zip(spec.axes, a, b, strict=True):
        if not zoomable(axis):
            if u != v:
                return False
            continue
        count = spec.refine.points or int(axis.args[2])
        x, y = float(u), float(v)
        if axis.kind == "logspace":
            x, y = math.log10(x), math.log10(y)
        # a box's points lie at least half a step apart (a clipped box: half), copies of
        # a point in two boxes a rounding error: a quarter step tells them apart
        if abs(x - y) >= nominal_step(axis, stage, count) / 4:
            return False
    return True


def encode_centres(centres: Centres) -> str:
    """Compact JSON: the Workflow parameter that carries them to the next stage's pods."""
    return json.dumps([list(point) for point in centres], separators=(",", ":"), ensure_ascii=False)


def decode_centres(spec: Spec, text: str) -> Centres:
    """Centres given on a command line: untrusted, checked against the spec's axes."""
    assert spec.refine is not None
    try:
        data = json.loads(text)
    except ValueError:
        raise SpecError("--centres", "is not JSON") from None
    if not isinstance(data, list) or len(data) != spec.refine.top_k:
        raise SpecError("--centres", f"must be a list of {spec.refine.top_k} points")
    points = []
    for point in data:
        if not isinstance(point, list) or len(point) != len(spec.axes):
            raise SpecError("--centres", f"each point needs a value per axis ({len(spec.axes)})")
        points.append(
            tuple(_value(axis, value) for axis, value in zip(spec.axes, point, strict=True))
        )
    return tuple(points)


def _value(axis: Axis, value: Any) -> Scalar:
    """A centre's value on one axis: of its type, and one the axis can take."""
    if not holds(axis, value, slack=1.0):
        raise SpecError("--centres", f"{value!r:.40} is not a value of axis {axis.name}")
    return float(value) if str(arrow_type(axis)) == "double" else value


class StageSpace:
    """Decodes the rows of a zoomed stage, by global `param_id`: box after box."""

    def __init__(self, spec: Spec, stage: Stage, centres: Centres) -> None:
        assert spec.refine is not None and stage.number >= 1
        best = [dict(zip((a.name for a in spec.axes), point, strict=True)) for point in centres]
        boxes = stage_boxes(spec.axes, best, stage.number, spec.refine.points)
        self.stage, self.box_rows = stage, box_rows(spec.axes, spec.refine)
        self.rows = stage.rows
        self._boxes = [
            Space(replace(spec, axes=axes, samples=1, shards=1, refine=None)) for axes in boxes
        ]

    def decode(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Columns for global rows `[start, stop)` of this stage: `param_id` first, then each
        axis in spec order, as `Space.decode`."""
        offset = self.stage.offset
        if not offset <= start <= stop <= offset + self.rows:
            raise ValueError(f"rows [{start}, {stop}) are outside stage {self.stage.number}")
        parts: list[dict[str, np.ndarray]] = []
        local = start - offset
        while local < stop - offset:
            box, within = divmod(local, self.box_rows)
            end = min(self.box_rows, within + stop - offset - local)
            columns = self._boxes[box].decode(within, end)
            columns["param_id"] = columns["param_id"] + (offset + box * self.box_rows)
            parts.append(columns)
            local += end - within
        if not parts:
            return self._boxes[0].decode(0, 0)
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}

    def decode_ids(self, param_id: np.ndarray) -> dict[str, np.ndarray]:
        """Columns for any global rows of this stage, in the order given (`Space.decode_ids`)."""
        local = param_id - self.stage.offset
        if len(local) and not (int(local.min()) >= 0 and int(local.max()) < self.rows):
            raise ValueError(f"a param_id is outside stage {self.stage.number}")
        box = local // self.box_rows

        def decode(b: int, ids: np.ndarray) -> dict[str, np.ndarray]:
            columns = self._boxes[b].decode_ids(ids - b * self.box_rows)
            columns["param_id"] = columns["param_id"] + (self.stage.offset + b * self.box_rows)
            return columns

        return _grouped(local, box, decode)


def _grouped(
    ids: np.ndarray,
    groups: np.ndarray,
    decode: Callable[[int, np.ndarray], dict[str, np.ndarray]],
) -> dict[str, np.ndarray]:
    """`decode` applied to the ids of each group, the columns put back in the ids' order."""
    order = np.argsort(groups, kind="stable")
    parts = [
        decode(int(group), ids[order][groups[order] == group]) for group in np.unique(groups)
    ] or [decode(0, ids)]
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return {name: np.concatenate([p[name] for p in parts])[inverse] for name in parts[0]}


class RunSpace:
    """Decodes any rows of a whole run, whatever their stages (what `verify` recomputes):
    `centres[s]` are the points stage s zoomed around (none for stage 0)."""

    def __init__(self, spec: Spec, centres: Sequence[Centres]) -> None:
        self.stages = stages_of(spec)
        self.refined = spec.refine is not None
        self.rows = total_rows(spec)
        self._offsets = np.array([stage.offset for stage in self.stages], dtype=np.int64)
        self._spaces = [
            stage_space(spec, stage, tuple(points))
            for stage, points in zip(self.stages, centres, strict=True)
        ]

    def stage_of_ids(self, param_id: np.ndarray) -> np.ndarray:
        return np.searchsorted(self._offsets, param_id, side="right").astype(np.int32) - 1

    def decode_ids(self, param_id: np.ndarray) -> dict[str, np.ndarray]:
        if len(param_id) and not (int(param_id.min()) >= 0 and int(param_id.max()) < self.rows):
            raise ValueError(f"a param_id is outside the run's {self.rows} rows")
        return _grouped(
            param_id,
            self.stage_of_ids(param_id),
            lambda stage, ids: self._spaces[stage].decode_ids(ids),
        )


def stage_space(spec: Spec, stage: Stage, centres: Centres) -> Space | StageSpace:
    """The space a shard of `stage` decodes its rows from."""
    if stage.number == 0:
        return Space(spec)
    return StageSpace(spec, stage, centres)


def stage_summaries(spec: Spec, infos: list[ShardInfo]) -> list[PartialSummary]:
    """Each stage's merged partial summary, for the stages `infos` (verified shards) reach."""
    merged: list[PartialSummary] = []
    for info in infos:
        number = stage_of_shard(spec, info.index).number
        while len(merged) <= number:
            merged.append(PartialSummary())
        merged[number] = merged[number].merge(info.summary, spec.objective)
    return merged


def next_centres(spec: Spec, summaries: list[PartialSummary], stage: int) -> str:
    """The encoded centres stage `stage + 1` zooms around, from the merged `summaries` of
    each stage (`stage_summaries`): what a zoom outputs, and what every check expects."""
    return encode_centres(centres_of(spec, summaries[stage].top, stage))


def centres_problem(spec: Spec, infos: list[ShardInfo]) -> str | None:
    """Why a shard was not zoomed around its previous stage's best points, if one was not:
    each stage's centres are derived again from the sealed summaries of the stage before."""
    summaries = stage_summaries(spec, infos)
    expected: dict[int, str | None] = {0: None}
    for info in infos:
        number = stage_of_shard(spec, info.index).number
        if number not in expected:
            try:
                expected[number] = next_centres(spec, summaries, number - 1)
            except StageError as exc:
                return str(exc)
        if number == 0 and info.centres is not None:
            return f"shard {info.index} is of stage 0 but records zoom centres"
        if info.centres != expected[number]:
            return (
                f"shard {info.index} (stage {number}) was zoomed around {info.centres}, but "
                f"the best points of stage {number - 1} are {expected[number]}"
            )
    return None
