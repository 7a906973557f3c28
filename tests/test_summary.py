"""Top-k built chunk by chunk is the top-k of all the rows: ties by param_id, no NaN or null,
in the summary and in `keep`; statistics count NaN and null apart from the numbers."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steps.keep import RowFilter
from steps.spec import Objective, Spec, parse_spec
from steps.summary import ColumnStats, PartialSummary

values = st.one_of(st.none(), st.just(math.nan), st.sampled_from([-1.0, 0.0, 0.5, 2.0, math.inf]))


def summary_over_chunks(column: list[Any], cuts: list[int], objective: Objective) -> PartialSummary:
    """The summary of `column` as `f`, `param_id` its position, added chunk by chunk where
    `cuts` says."""
    table = pa.table({"param_id": pa.array(range(len(column)), pa.int64()), "f": column})
    summary = PartialSummary()
    start = 0
    for stop in [*sorted(c for c in cuts if c < len(column)), len(column)]:
        summary.add(table.slice(start, stop - start), objective)
        start = stop
    return summary


@settings(max_examples=300, deadline=None)
@given(
    column=st.lists(values, min_size=1, max_size=60),
    cuts=st.lists(st.integers(1, 60), max_size=6),
    goal=st.sampled_from(["min", "max"]),
    k=st.integers(1, 8),
)
def test_top_k_over_chunks_equals_top_k_over_all_rows(
    column: list[float | None], cuts: list[int], goal: Literal["min", "max"], k: int
) -> None:
    summary = summary_over_chunks(column, cuts, Objective(column="f", goal=goal, top_k=k))
    sign = 1 if goal == "min" else -1
    ranked = sorted(
        (sign * f, i) for i, f in enumerate(column) if f is not None and not math.isnan(f)
    )
    assert [row["param_id"] for row in summary.top] == [i for _, i in ranked[:k]]


numbers = st.sampled_from([-1.0, 0.0, 0.5, 2.0, math.inf, -math.inf, math.nan])
integers = st.sampled_from([-(2**63), -1, 0, 2**53, 2**53 + 1, 2**63 - 1])


@settings(max_examples=300, deadline=None)
@given(
    column=st.one_of(
        st.lists(numbers, min_size=1, max_size=60), st.lists(integers, min_size=1, max_size=60)
    ),
    cuts=st.lists(st.integers(1, 60), max_size=6),
    goal=st.sampled_from(["min", "max"]),
    k=st.integers(1, 8),
)
def test_top_k_of_columns_without_nulls_equals_top_k_over_all_rows(
    column: list[float] | list[int], cuts: list[int], goal: Literal["min", "max"], k: int
) -> None:
    """Infinities rank, NaN never does, and integers beyond 2**53 compare exactly (as floats,
    two of them could tie and be ranked by `param_id` instead)."""
    summary = summary_over_chunks(column, cuts, Objective(column="f", goal=goal, top_k=k))
    ranked = sorted((-f if goal == "max" else f, i) for i, f in enumerate(column) if f == f)
    assert [row["param_id"] for row in summary.top] == [i for _, i in ranked[:k]]


def spec_keeping(keep: dict[str, Any], goal: str = "min") -> Spec:
    return parse_spec(
        {
            "name": "k",
            "function": "m:f",
            "space": {"x": {"range": [0, 1]}},
            "objective": {"column": "f", "goal": goal},
            "keep": keep,
        }
    )


@settings(max_examples=300, deadline=None)
@given(
    column=st.lists(values, min_size=1, max_size=60),
    cuts=st.lists(st.integers(1, 60), max_size=6),
    goal=st.sampled_from(["min", "max"]),
    k=st.integers(1, 70),
)
def test_keep_top_k_over_chunks_keeps_the_best_numbers_and_never_a_nan_or_null(
    column: list[float | None], cuts: list[int], goal: Literal["min", "max"], k: int
) -> None:
    """Fewer than k rows with a number: just those are kept, never NaN or null filling in."""
    rows = RowFilter(spec_keeping({"top_k": k}, goal))
    table = pa.table({"param_id": pa.array(range(len(column)), pa.int64()), "f": column})
    start = 0
    for stop in [*sorted(c for c in cuts if c < len(column)), len(column)]:
        assert rows.add(table.slice(start, stop - start)) is None
        start = stop
    kept = rows.finish()
    sign = 1 if goal == "min" else -1
    ranked = sorted(
        (sign * f, i) for i, f in enumerate(column) if f is not None and not math.isnan(f)
    )
    assert kept is not None
    assert kept["param_id"].to_pylist() == sorted(i for _, i in ranked[:k])


@pytest.mark.parametrize(
    ("op", "expected"),
    [("<", [2]), ("<=", [2, 3]), (">", [4]), (">=", [3, 4]), ("==", [3]), ("!=", [2, 4])],
)
def test_keep_where_never_matches_nan_or_null_whatever_the_operator(
    op: str, expected: list[int]
) -> None:
    """f = [NaN, null, 0, 1, 2] against 1: `!=` too leaves NaN out, though IEEE says NaN != 1."""
    rows = RowFilter(spec_keeping({"where": f"f {op} 1"}))
    table = pa.table(
        {"param_id": pa.array(range(5), pa.int64()), "f": [math.nan, None, 0.0, 1.0, 2.0]}
    )
    kept = rows.add(table)
    assert kept is not None and kept["param_id"].to_pylist() == expected


def test_a_footer_naming_a_nan_or_null_best_row_never_puts_it_in_the_top() -> None:
    """Partial summaries come from footers (untrusted): merging ranks only numbers."""
    objective = Objective(column="f", goal="max", top_k=3)
    footer = PartialSummary(
        rows=4,
        top=[
            {"param_id": 0, "f": math.nan},
            {"param_id": 1, "f": None},
            {"param_id": 2, "f": 1.0},
            {"param_id": 3, "f": "high"},
        ],
    )
    merged = footer.merge(PartialSummary(), objective)
    assert merged.top == [{"param_id": 2, "f": 1.0}]


def test_column_statistics_count_nan_and_null_apart_and_leave_them_out_of_min_max_mean() -> None:
    first = ColumnStats.of(pa.array([math.nan, None, 1.0, 3.0]))
    second = ColumnStats.of(pa.array([None, None, math.nan], pa.float64()))
    stats = first.merge(second)
    assert (stats.count, stats.nans, stats.nulls) == (2, 2, 3)
    assert (stats.min, stats.max, stats.mean) == (1.0, 3.0, 2.0)
    assert second.mean is None and second.min is None


@pytest.mark.parametrize(
    "values",
    [
        [1.5, float("nan"), -float("inf"), 3.0, float("nan")],
        [float("nan")] * 4,
        [0.25] * 7,
        [2**62, 2**62 + 1, -(2**63)],
        np.arange(1, 1_000_001, dtype=np.float32).tolist(),
    ],
)
def test_statistics_of_numbers_agree_with_pyarrow_compute(values: list) -> None:
    """Null-free numbers take numpy's path: it must count, and find extremes, as pyarrow's
    NaN-aware kernels do (the oracle here), and sum every value as float64."""
    column = pa.array(values, type=pa.float32() if len(values) > 1000 else None)
    stats = ColumnStats.of(column)
    floats = pa.types.is_floating(column.type)
    nan = pc.is_nan(column) if floats else pa.array([False] * len(column))
    numbers = pc.filter(column, pc.invert(nan))
    assert stats.nans == int(pc.sum(nan).as_py() or 0) and stats.nulls == 0
    assert stats.count == len(numbers)
    if len(numbers):
        extremes = pc.min_max(numbers)
        assert (stats.min, stats.max) == (extremes["min"].as_py(), extremes["max"].as_py())
        assert type(stats.min) is type(extremes["min"].as_py())
        expected = float(pc.sum(pc.cast(numbers, pa.float64(), safe=False)).as_py())
        assert stats.sum == pytest.approx(expected, rel=1e-12)
    else:
        assert (stats.min, stats.max, stats.sum) == (None, None, 0.0)


@pytest.mark.parametrize("start,stop", [(0, 0), (0, 1), (5, 262_149), (10**9, 10**9 + 262_144)])
def test_param_id_statistics_by_arithmetic_are_those_of_the_column(start: int, stop: int) -> None:
    column = pa.array(np.arange(start, stop, dtype=np.int64))
    assert ColumnStats.of_ids(start, stop) == ColumnStats.of(column)


def test_param_id_sums_are_exact_where_a_float_pass_would_round() -> None:
    start, stop = 2**50, 2**50 + 4096  # partial sums beyond 2**53
    assert ColumnStats.of_ids(start, stop).sum == float(sum(range(start, stop)))


@pytest.mark.parametrize("goal", ["min", "max"])
def test_top_k_of_uint64_beyond_int64_is_ranked_not_a_traceback(
    goal: Literal["min", "max"],
) -> None:
    values = [2**63 + v for v in (5, 1, 7, 3, 9, 0, 2**63 - 1, 4)]
    table = pa.table(
        {"param_id": pa.array(range(len(values)), pa.int64()), "f": pa.array(values, pa.uint64())}
    )
    objective = Objective(column="f", goal=goal, top_k=3)
    summary = PartialSummary()
    for start in range(0, len(values), 2):
        summary.add(table.slice(start, 2), objective)
    best = sorted(values, reverse=goal == "max")[:3]
    assert [row["f"] for row in summary.top] == best
