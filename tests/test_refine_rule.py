"""The zoom rule of adaptive refinement (steps/refine.py), ahead of the staged Workflow: its
boxes, and that it reaches issue 16's target when applied in process to a 3-D bowl."""

from __future__ import annotations

import math

import numpy as np
import pytest

from steps.axis import Axis, grid_length
from steps.axis_values import grid_values
from steps.refine import nominal_step, stage_boxes, zoom_axis

X = Axis("x", "linspace", (-2.0, 2.0, 21))
LR = Axis("lr", "logspace", (-5.0, -1.0, 5))
N = Axis("n", "range", (1, 10, 1))


def test_a_box_spans_one_previous_step_either_side() -> None:
    assert nominal_step(X, 0, 21) == pytest.approx(0.2)
    zoomed = zoom_axis(X, 0.4, 1, 21)
    assert (zoomed.name, zoomed.kind) == ("x", "linspace")
    assert zoomed.args == (pytest.approx(0.2), pytest.approx(0.6), 21)
    assert zoom_axis(X, 0.4, 2, 21).args[:2] == (pytest.approx(0.38), pytest.approx(0.42))


def test_a_box_is_clipped_to_the_original_bounds() -> None:
    assert zoom_axis(X, 2.0, 1, 21).args == (pytest.approx(1.8), 2.0, 21)
    assert zoom_axis(X, -2.0, 1, 11).args == (-2.0, pytest.approx(-1.8), 11)


def test_logspace_zooms_in_exponent_space() -> None:
    zoomed = zoom_axis(LR, 1e-3, 1, 5)
    assert zoomed.kind == "logspace" and zoomed.args == (
        pytest.approx(-4.0),
        pytest.approx(-2.0),
        5,
    )


def test_other_axes_keep_the_best_points_value() -> None:
    assert zoom_axis(N, 7, 1, 21) == Axis("n", "values", (7,))
    assert zoom_axis(Axis("u", "uniform", (0.0, 1.0)), 0.25, 3, 21) == Axis("u", "values", (0.25,))
    assert zoom_axis(Axis("c", "linspace", (1.0, 1.0, 1)), 1.0, 1, 21) == Axis(
        "c", "values", (1.0,)
    )


def test_one_box_per_best_point_in_rank_order_and_stage_zero_is_the_spec() -> None:
    boxes = stage_boxes([X, N], [{"x": 0.0, "n": 3}, {"x": 1.0, "n": 4}], 1, None)
    assert [b[1].args for b in boxes] == [(3,), (4,)]
    assert [b[0].args[2] for b in boxes] == [21, 21]
    with pytest.raises(ValueError):
        stage_boxes([X], [{"x": 0.0}], 0, None)
    with pytest.raises(ValueError):
        zoom_axis(X, 0.0, 1, 2)


MINIMUM = np.array([math.sqrt(2) - 1, math.pi / 4, -math.e / 3])


def bowl(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    return (x - MINIMUM[0]) ** 2 + 2 * (y - MINIMUM[1]) ** 2 + 3 * (z - MINIMUM[2]) ** 2


def evaluate(box: tuple[Axis, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Every point of a box, as the space decodes a grid: the last axis fastest."""
    lengths = [grid_length(a) for a in box]
    index = np.arange(math.prod(lengths))
    columns, stride = [], math.prod(lengths)
    for axis, length in zip(box, lengths, strict=True):
        stride //= length
        columns.append(grid_values(axis, (index // stride) % length))
    points = np.stack(columns, axis=1)
    return points, bowl(*columns)


def test_five_stages_of_21_points_around_the_best_2_reach_1e6_under_200k_evaluations() -> None:
    axes = (
        Axis("x", "linspace", (-2.0, 2.0, 21)),
        Axis("y", "linspace", (-2.0, 2.0, 21)),
        Axis("z", "linspace", (-2.0, 2.0, 21)),
    )
    boxes: list[tuple[Axis, ...]] = [axes]
    best: list[dict[str, float]] = []
    evaluations, best_value = 0, math.inf
    for stage in range(5):
        if stage:
            boxes = stage_boxes(axes, best, stage, 21)
        points, values = zip(*(evaluate(box) for box in boxes), strict=True)
        everything, scores = np.concatenate(points), np.concatenate(values)
        evaluations += len(scores)
        order = np.argsort(scores, kind="stable")[:2]  # ties: the earlier row, as top-k
        best = [dict(zip("xyz", map(float, everything[i]), strict=True)) for i in order]
        best_value = min(best_value, float(scores[order[0]]))
    assert evaluations < 200_000
    assert best_value < 1e-6, best_value
