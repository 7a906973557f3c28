"""Which rows are kept: all, the best N by the objective, or those where a condition holds.

A 10^10-row sweep can return just what matters. Compute filters each shard as it streams;
reduce applies the same filter across shards (for top-k: the best N of the shards' best N).
Both choices are properties of rows alone — a condition per row, or a total order by
(objective, param_id) — so the kept rows do not depend on the sharding.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from steps.spec import Spec

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
            self.best = self._top(
                table if self.best is None else pa.concat_tables([self.best, table])
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
        return pc.fill_null(getattr(pc, OPERATORS[op])(values, number), False)

    def _top(self, table: pa.Table) -> pa.Table:
        assert self.objective is not None and self.keep.top_k is not None
        order = "ascending" if self.objective.goal == "min" else "descending"
        chosen = pc.select_k_unstable(
            table,
            k=min(self.keep.top_k, table.num_rows),
            sort_keys=[(self.objective.column, order), ("param_id", "ascending")],
        )
        return table.take(chosen)
