"""Top-k built chunk by chunk is the top-k of all the rows: ties by param_id, no NaN or null."""

from __future__ import annotations

import math
from typing import Literal

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from steps.spec import Objective
from steps.summary import PartialSummary

values = st.one_of(st.none(), st.just(math.nan), st.sampled_from([-1.0, 0.0, 0.5, 2.0, math.inf]))


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
    objective = Objective(column="f", goal=goal, top_k=k)
    table = pa.table({"param_id": pa.array(range(len(column)), pa.int64()), "f": column})
    summary = PartialSummary()
    start = 0
    for stop in [*sorted(c for c in cuts if c < len(column)), len(column)]:
        summary.add(table.slice(start, stop - start), objective)
        start = stop
    sign = 1 if goal == "min" else -1
    ranked = sorted(
        (sign * f, i) for i, f in enumerate(column) if f is not None and not math.isnan(f)
    )
    assert [row["param_id"] for row in summary.top] == [i for _, i in ranked[:k]]
