"""Which rows are kept: all, the best N by the objective, or those where a condition holds.

A 10^10-row sweep can return just what matters. Compute filters each shard as it streams;
reduce applies the same filter across shards (for top-k: the best N of the shards' best N).
Both choices are properties of rows alone — a condition per row, or a total order by
(objective, param_id) — so the kept rows do not depend on the sharding.

A NaN or null is no number: it never satisfies a condition (not even `!=`, which IEEE would
grant NaN), and a row whose objective is NaN or null is never among the best N, whatever the
goal. When fewer than N rows have a number, `top_k = N` keeps just those (fewer than N rows).
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from steps.spec import Spec
from steps.summary import ranked_rows

__all__ = ["OPERATORS", "KeepError", "RowFilter"]

OPERATORS = {
    "<": "less",
    "<=": "less_equal",
    ">": "greater",
    ">=": "greater_equal",
    "==": "equal",
    "!=": "not_equal",
}


class KeepError(ValueError):
    """The keep condition cannot apply to the rows the function returned."""


class RowFilter:
    """Feed tables in with `add`; write what it returns, then what `finish` returns."""

    def __init__(self, spec: Spec) -> None:
        self.keep = spec.keep
        self.objective = spec.objective
        self.best: pa.Table | None = None

    def add(self, table: pa.Table) -> pa.Table | None:
        if self.keep.where is not None:
            return table.filter(self._condition(table))
        if self.keep.top_k is not None:
            assert self.objective is not None
            candidates = ranked_rows(table, self.objective.column)  # no NaN, no null
            self.best = self._top(
                candidates if self.best is None else pa.concat_tables([self.best, candidates])
            )
            return None
        return table

    def finish(self) -> pa.Table | None:
        """For top-k: the best rows, back in param_id order."""
        if self.best is None:
            return None
        return self.best.sort_by("param_id")

    def _condition(self, table: pa.Table) -> pa.ChunkedArray:
        assert self.keep.where is not None
        column, op, number = self.keep.where
        if column not in table.column_names:
            raise KeepError(
                f"keep.where: no column '{column}' (columns: {', '.join(table.column_names)})"
            )
        values = table[column]
        if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
            raise KeepError(f"keep.where: column '{column}' is {values.type}, not a number")
        matches = _compare(values, op, number)
        if pa.types.is_floating(values.type):  # NaN != x is true in IEEE: not a match here
            matches = pc.and_kleene(matches, pc.invert(pc.is_nan(values)))
        return pc.fill_null(matches, False)

    def _top(self, table: pa.Table) -> pa.Table:
        """The best N of `table`, whose objective has no NaN or null (`add` filtered them:
        Arrow would place them after the numbers, and so keep them when fewer than N rows
        have a number)."""
        assert self.objective is not None and self.keep.top_k is not None
        order = "ascending" if self.objective.goal == "min" else "descending"
        chosen = pc.select_k_unstable(
            table,
            k=min(self.keep.top_k, table.num_rows),
            sort_keys=[(self.objective.column, order), ("param_id", "ascending")],
        )
        return table.take(chosen)


def _compare(values: pa.ChunkedArray, op: str, number: int | float) -> pa.ChunkedArray:
    """`values op number`, exactly. An integer column is compared with an integer of its own
    type: compared with a float, Arrow would cast the column to float64 (checked, so int64
    beyond 2**53 raises; unchecked, it would round)."""
    if not pa.types.is_integer(values.type):
        return getattr(pc, OPERATORS[op])(values, float(number))
    op, whole = _as_integer_bound(op, number)
    info = np.iinfo(values.type.to_pandas_dtype())
    if whole < int(info.min) or whole > int(info.max):  # beyond the type: one answer for all
        above = whole > int(info.max)
        answer = op == "!=" or (op in ("<", "<=") if above else op in (">", ">="))
        return pa.chunked_array([pa.array([answer] * len(values), pa.bool_())])
    return getattr(pc, OPERATORS[op])(values, pa.scalar(whole, values.type))


def _as_integer_bound(op: str, number: int | float) -> tuple[str, int]:
    """The same condition on integers: `g < 2.5` is `g <= 2`, `g > 2.5` is `g >= 3`; an
    integer never equals 2.5, so `==` holds nowhere and `!=` everywhere (a bound beyond
    every integer type gives that answer)."""
    if isinstance(number, int) or float(number).is_integer():
        return op, int(number)
    below, above = math.floor(number), math.ceil(number)
    if op in ("<", "<="):
        return "<=", below
    if op in (">", ">="):
        return ">=", above
    return op, 2**64
