"""Mergeable statistics and top-k.

Each shard stores a partial summary in its Parquet footer; reduce merges them in O(shards)
without rereading rows. Statistics are associative (count, nulls, NaNs, min, max, sum), and
top-k is kept as whole rows ordered by (objective, param_id), so merging partials gives the
same rows whatever the sharding. Only numbers are ranked: a row whose objective is NaN or
null is counted (`nans`, `nulls`) and never joins the top k, whatever the goal. The mean is
sum/count over the numbers that are not NaN (nulls and NaNs excluded): it may differ in the
last bits between shardings, because float addition is not associative.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from steps.spec import Objective

__all__ = [
    "ColumnStats",
    "PartialSummary",
    "SummaryFormatError",
    "json_safe",
    "ranked",
    "ranked_rows",
    "top_rows",
]


@dataclass
class ColumnStats:
    type: str
    count: int = 0  # valid values: not null, not NaN
    nulls: int = 0
    nans: int = 0
    min: Any = None
    max: Any = None
    sum: float | None = None  # None for non-numeric columns

    @classmethod
    def of(cls, column: pa.ChunkedArray | pa.Array) -> ColumnStats:
        if column.null_count == 0 and _is_number(column.type):
            return cls._of_numbers(column)
        stats = cls(type=str(column.type), nulls=column.null_count)
        if pa.types.is_floating(column.type):
            nan = pc.is_nan(column)
            stats.nans = int(pc.sum(nan).as_py() or 0)
            if stats.nans:
                column = pc.filter(column, pc.invert(nan))
        stats.count = len(column) - column.null_count
        if stats.count:
            low_high = pc.min_max(column)
            stats.min, stats.max = low_high["min"].as_py(), low_high["max"].as_py()
            if _is_numeric(column.type):
                # Not a checked cast: int64 beyond 2**53 has no exact float, and the sum
                # only feeds the mean, which is approximate anyway.
                as_float = pc.cast(column, pa.float64(), safe=False)
                stats.sum = float(pc.sum(as_float).as_py())
        elif _is_numeric(column.type):
            stats.sum = 0.0
        return stats

    @classmethod
    def of_ids(cls, start: int, stop: int) -> ColumnStats:
        """The statistics of `param_id` over the rows [start, stop), which a chunk of a
        sweep is, by arithmetic: a pass over the column would cost a quarter of a summary.
        The sum is exact (the pass rounds as floats only beyond 2**53)."""
        rows = stop - start
        if rows <= 0:
            return cls(type="int64", sum=0.0)
        return cls(
            type="int64",
            count=rows,
            min=start,
            max=stop - 1,
            sum=float((start + stop - 1) * rows // 2),
        )

    @classmethod
    def _of_numbers(cls, column: pa.ChunkedArray | pa.Array) -> ColumnStats:
        """The same statistics through numpy, for a column of numbers without nulls (every
        axis and most outputs): pyarrow's NaN-aware min_max costs 5x numpy's on float64.
        A finite sum means no NaN (a NaN makes any sum NaN), so NaNs are looked for only
        when it is not: most columns never pay for that pass."""
        values = np.asarray(column.to_numpy())
        stats = cls(type=str(column.type))
        # Every value as float64 (an int64 beyond 2**53 rounds), in numpy's pairwise order: the
        # last bits may differ from pyarrow's sum, as they do between shardings (the mean is
        # approximate, module docstring); so may the sign of a zero min or max of 0.0 and -0.0
        with np.errstate(invalid="ignore", over="ignore"):  # inf + -inf: NaN; 1e308 + 1e308: inf
            total = values.sum(dtype=np.float64)
            if values.dtype.kind == "f" and not np.isfinite(total):
                nan = np.isnan(values)
                stats.nans = int(np.count_nonzero(nan))
                if stats.nans:
                    values = values[~nan]
                    total = values.sum(dtype=np.float64)
        stats.count = len(values)
        if stats.count:
            stats.min, stats.max = values.min().item(), values.max().item()
        stats.sum = float(total) if stats.count else 0.0
        return stats

    def merge(self, other: ColumnStats) -> ColumnStats:
        if self.type != other.type:
            raise ValueError(f"column type {other.type} does not match {self.type}")
        return ColumnStats(
            type=self.type,
            count=self.count + other.count,
            nulls=self.nulls + other.nulls,
            nans=self.nans + other.nans,
            min=_pick(min, self.min, other.min),
            max=_pick(max, self.max, other.max),
            sum=None if self.sum is None or other.sum is None else self.sum + other.sum,
        )

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.sum is not None and self.count else None


def _is_number(dtype: pa.DataType) -> bool:
    return bool(pa.types.is_integer(dtype) or pa.types.is_floating(dtype))


def _is_numeric(dtype: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_boolean(dtype)
    )


def _may_join(stats: ColumnStats | None, objective: Objective, worst: Any) -> bool:
    """Whether a row of a chunk could join a top k whose k-th value is `worst`: not if the
    chunk's best number is worse (most chunks, once k rows are known), which its statistics
    tell without another pass over the column."""
    if worst is None or stats is None or not ranked(worst):
        return True
    if stats.count == 0:  # no number at all: nothing to rank
        return False
    best = stats.min if objective.goal == "min" else stats.max
    if not ranked(best):
        return True
    return bool(best <= worst) if objective.goal == "min" else bool(best >= worst)


def _pick(choose: Any, a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return choose(a, b)


@dataclass
class PartialSummary:
    """Statistics and best rows of some rows of a sweep; `merge` combines two."""

    rows: int = 0
    columns: dict[str, ColumnStats] = field(default_factory=dict)
    top: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        table: pa.Table,
        objective: Objective | None,
        known: Mapping[str, ColumnStats] = MappingProxyType({}),
    ) -> None:
        """Take `table`'s rows into the summary; `known`: statistics of some of its columns
        the caller already has (`ColumnStats.of_ids`), which are not computed again."""
        worst = None  # once k rows are known, only rows at least as good can join them
        if objective and len(self.top) >= objective.top_k:
            worst = self.top[objective.top_k - 1][objective.column]
        columns = {
            name: known[name] if name in known else ColumnStats.of(table[name])
            for name in table.column_names
        }
        chunk = PartialSummary(rows=table.num_rows, columns=columns)
        if objective and _may_join(columns.get(objective.column), objective, worst):
            chunk.top = top_rows(table, objective, worst)
        merged = self.merge(chunk, objective)
        self.rows, self.columns, self.top = merged.rows, merged.columns, merged.top

    def merge(self, other: PartialSummary, objective: Objective | None) -> PartialSummary:
        columns = dict(self.columns)
        for name, stats in other.columns.items():
            columns[name] = columns[name].merge(stats) if name in columns else stats
        top = _best(self.top + other.top, objective) if objective else []
        return PartialSummary(rows=self.rows + other.rows, columns=columns, top=top)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "columns": {name: asdict(stats) for name, stats in self.columns.items()},
            "top": self.top,
        }

    @classmethod
    def from_json(cls, data: Any) -> PartialSummary:
        """Read back `to_json`'s output from a footer: untrusted input, checked field by field
        (SummaryFormatError names the first that is wrong)."""
        document = _typed(data, dict, "the partial summary")
        columns = _typed(document.get("columns"), dict, "columns")
        top = _typed(document.get("top"), list, "top")
        for i, row in enumerate(top):
            if not isinstance(row, dict) or not all(isinstance(k, str) for k in row):
                raise SummaryFormatError(f"top[{i}] is not a row (an object of columns)")
        return cls(
            rows=_count(document.get("rows"), "rows"),
            columns={str(name): _column_stats(stats, str(name)) for name, stats in columns.items()},
            top=top,
        )


class SummaryFormatError(ValueError):
    """A stored partial summary that is not what `PartialSummary.to_json` writes."""


def _typed(value: Any, kind: type, what: str) -> Any:
    if not isinstance(value, kind):
        raise SummaryFormatError(f"{what} is not a JSON {kind.__name__}")
    return value


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SummaryFormatError(f"{what} is not a count")
    return value


_SCALAR = (type(None), bool, int, float, str)


def _column_stats(data: Any, name: str) -> ColumnStats:
    fields = _typed(data, dict, f"columns.{name}")
    if set(fields) != set(ColumnStats.__dataclass_fields__):
        raise SummaryFormatError(f"columns.{name} has fields {sorted(fields)}")
    if not isinstance(fields["type"], str):
        raise SummaryFormatError(f"columns.{name}.type is not a string")
    for key in ("min", "max", "sum"):
        if not isinstance(fields[key], _SCALAR):
            raise SummaryFormatError(f"columns.{name}.{key} is not a number, string or null")
    if fields["sum"] is not None and not isinstance(fields["sum"], int | float):
        raise SummaryFormatError(f"columns.{name}.sum is not a number")
    return ColumnStats(
        type=fields["type"],
        count=_count(fields["count"], f"columns.{name}.count"),
        nulls=_count(fields["nulls"], f"columns.{name}.nulls"),
        nans=_count(fields["nans"], f"columns.{name}.nans"),
        min=fields["min"],
        max=fields["max"],
        sum=fields["sum"],
    )


def _sort_key(objective: Objective) -> Any:
    """Best first, ties by `param_id`. Integers stay integers: as floats, two values beyond
    2**53 could compare equal and be ranked by `param_id` instead of by value."""
    sign = 1 if objective.goal == "min" else -1
    return lambda row: (sign * row[objective.column], row["param_id"])


def ranked(value: Any) -> bool:
    """Whether an objective value takes part in ranking: a number that is not NaN (infinities
    are numbers). A NaN or null objective is kept and counted, never ranked, whatever the goal."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not (isinstance(value, float) and math.isnan(value))


def _best(rows: list[dict[str, Any]], objective: Objective) -> list[dict[str, Any]]:
    """The k best of `rows`; a row without a number (from a footer: untrusted) is never one."""
    candidates = [row for row in rows if ranked(row.get(objective.column))]
    return sorted(candidates, key=_sort_key(objective))[: objective.top_k]


def top_rows(
    table: pa.Table, objective: Objective, worst: float | None = None
) -> list[dict[str, Any]]:
    """The k best rows of a table by the objective, ties broken by `param_id`; with `worst`,
    only rows whose objective is at least that good are considered (those that could still
    join a top k whose k-th value is `worst`). Rows whose objective is NaN or null are never
    among them, for either goal: they are filtered out before anything is ranked, rather
    than left to where Arrow's sort places them (after the numbers, in pyarrow 26), so fewer
    than k rows come back when fewer than k rows have a number."""
    if objective.column not in table.column_names:
        raise KeyError(objective.column)
    column = table[objective.column]
    if worst is not None:  # a comparison drops nulls and NaNs too, and most rows at once
        better = pc.less_equal if objective.goal == "min" else pc.greater_equal
        # NaN compares false, null is dropped; `worst` typed as the column (a uint64 beyond
        # int64's range is no int64 scalar)
        kept = better(column, pa.scalar(worst, column.type))
        if not pc.any(kept).as_py():  # most chunks, once k rows are known: nothing to filter
            return []
        table = table.filter(kept)
    else:
        table = ranked_rows(table, objective.column)
    order = "ascending" if objective.goal == "min" else "descending"
    best = pc.select_k_unstable(
        table.select([objective.column, "param_id"]),
        k=min(objective.top_k, table.num_rows),
        sort_keys=[(objective.column, order), ("param_id", "ascending")],
    )
    return _best(table.take(best).to_pylist(), objective)


def ranked_rows(table: pa.Table, column: str) -> pa.Table:
    """The rows of `table` whose `column` is a number: not null, not NaN (a cheap no-op when
    every row is). What top-k ranks, in the summary and in `keep = { top_k = N }` alike."""
    values = table[column]
    valid = pc.is_valid(values)
    if pa.types.is_floating(values.type):
        valid = pc.and_kleene(valid, pc.invert(pc.is_nan(values)))  # null: not valid
    if pc.all(valid).as_py() is False:
        return table.filter(valid)
    return table


def json_safe(value: Any) -> Any:
    """JSON has no NaN or infinities: spell them as strings rather than emit invalid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
