"""The summary of a finished run held against its result, for `verify`, without a scan.

summary.json says how many rows there are, what each column holds and which rows are best.
Each of those claims is checked against what the result itself records — its footer's row
count and per-column statistics (nulls, min, max), its schema, and the best rows looked up by
`param_id` — and against the summary's other claims (counts that must add up).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from steps.stages import total_rows
from workflows.results import FinishedRun

__all__ = ["rank_key", "rows_by_id", "summary_problems"]


def summary_problems(run: FinishedRun, result: pq.ParquetFile) -> list[str]:
    summary, spec = run.summary, run.spec
    rows, sweep = result.metadata.num_rows, total_rows(spec)
    problems = []
    if summary["rows"] != sweep:
        problems.append(f"summary: rows {summary['rows']:,}, the sweep has {sweep:,}")
    kept = summary.get("kept_rows", summary["rows"])
    if kept != rows or (spec.keep.everything and rows != sweep):
        problems.append(f"summary: kept_rows {kept:,}, the result holds {rows:,} of {sweep:,}")
    names = result.schema_arrow.names
    if list(summary["columns"]) != names:
        problems.append(f"summary: columns {list(summary['columns'])}, the result has {names}")
    stats = _footer_statistics(result)
    problems += _ordered_groups(result)
    for name, column in summary["columns"].items():
        problems += _column_problems(name, column, summary["rows"])
        if spec.keep.everything and name in stats:
            problems += _against_statistics(name, column, stats[name])
    problems += _objective_problems(run, result, stats)
    return problems


def _column_problems(name: str, column: dict[str, Any], rows: int) -> list[str]:
    """What one column's statistics must satisfy among themselves."""
    counted = column.get("count", 0) + column.get("nans", 0) + column.get("nulls", 0)
    if counted != rows:
        return [f"summary: column {name} counts {counted:,} rows of {rows:,}"]
    low, high, mean = (_number(column.get(k)) for k in ("min", "max", "mean"))
    if None not in (low, high, mean) and not low <= mean <= high:  # type: ignore[operator]
        return [f"summary: column {name} has a mean outside its min and max"]
    return []


@dataclass(frozen=True)
class _Stats:
    nulls: int
    low: Any  # None when some row group has no min/max
    high: Any


def _footer_statistics(result: pq.ParquetFile) -> dict[str, _Stats]:
    """Per column, from the result's footer: nulls, and min/max over every row group."""
    meta = result.metadata
    found: dict[str, _Stats] = {}
    for c in range(meta.num_columns):
        name = meta.schema.column(c).name
        nulls, lows, highs, complete = 0, [], [], True
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(c).statistics
            if stats is None or not stats.has_null_count:
                break
            nulls += stats.null_count
            if stats.has_min_max:
                lows.append(stats.min)
                highs.append(stats.max)
            elif stats.null_count != meta.row_group(g).num_rows:
                complete = False
        else:
            ok = complete and lows
            found[name] = _Stats(nulls, min(lows) if ok else None, max(highs) if ok else None)
    return found


def _ordered_groups(result: pq.ParquetFile) -> list[str]:
    """Row groups follow each other in param_id order, without overlap (statistics)."""
    meta, last = result.metadata, None
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(0).statistics
        if stats is None or not stats.has_min_max:
            return []
        if last is not None and stats.min <= last:
            return ["param_id: the result's row groups overlap or are out of order"]
        last = stats.max
    return []


def _against_statistics(name: str, column: dict[str, Any], stats: _Stats) -> list[str]:
    problems = []
    if column.get("nulls", 0) != stats.nulls:
        problems.append(
            f"summary: column {name} has {column.get('nulls')} nulls, the result {stats.nulls}"
        )
    for key, value in (("min", stats.low), ("max", stats.high)):
        if value is not None and not _same_number(column.get(key), value):
            problems.append(
                f"summary: column {name} {key} {column.get(key)!r:.40}, the result {value!r:.40}"
            )
    return problems


def _same_number(summary: Any, footer: Any) -> bool:
    if isinstance(summary, str) and isinstance(footer, float):  # JSON spells inf as text
        return summary == str(footer)
    return bool(summary == footer)


def _objective_problems(
    run: FinishedRun, result: pq.ParquetFile, stats: dict[str, _Stats]
) -> list[str]:
    """The best rows: numbers, in order, as many as there should be, rows of the result
    with the same values, and (with every row kept) none better in the result."""
    objective, spec = run.summary.get("objective"), run.spec
    if not objective or spec.objective is None:
        return []
    column, goal, best = objective["column"], objective["goal"], run.best_rows
    stats_of = run.summary["columns"].get(column, {})
    problems = []
    for key in ("nans", "nulls"):
        if key in objective and objective[key] != stats_of.get(key):
            problems.append(f"summary: objective.{key} disagrees with column {column}'s")
    keys = [rank_key(row.get(column), row.get("param_id"), goal) for row in best]
    if None in keys:
        return [*problems, f"summary: a best row has no number in {column}"]
    if keys != sorted(keys):  # type: ignore[type-var]
        return [
            *problems,
            f"summary: the best rows are not in order of {goal} {column}, then param_id",
        ]
    expected = min(spec.objective.top_k, stats_of.get("count", 0))
    if len(best) != expected:
        problems.append(
            f"summary: {len(best)} best rows, {expected} rows with a number were ranked"
        )
    found = rows_by_id(result, [row["param_id"] for row in best])
    for rank, row in enumerate(best):
        stored = found.get(row["param_id"])
        if stored is None:
            if spec.keep.everything:
                problems.append(
                    f"summary: best row {rank} (param_id {row['param_id']}) is not in the result"
                )
        elif list(row) != list(stored) or any(
            not _same_value(row[k], v) for k, v in stored.items()
        ):
            problems.append(
                f"summary: best row {rank} (param_id {row['param_id']}) differs from the result's row"
            )
    extreme = stats.get(column)
    if spec.keep.everything and extreme is not None and best:
        edge = extreme.low if goal == "min" else extreme.high
        edge_key = rank_key(edge, -1, goal)
        if edge_key is not None and keys[0] is not None and edge_key[0] < keys[0][0]:
            problems.append(
                f"summary: the result holds {column}={edge!r} better than the best row's"
            )
    return problems


def rank_key(value: Any, param_id: Any, goal: str) -> tuple[Any, Any] | None:
    """How a row ranks (smaller is better), exactly: integers stay integers; None when the
    value is no number (null, NaN, text other than JSON's spelling of an infinity)."""
    sign = 1 if goal == "min" else -1
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        value = {"inf": math.inf, "-inf": -math.inf}.get(value)
        if value is None:
            return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if not isinstance(value, int | float):
        return None
    return (sign * value, param_id)


def _number(value: Any) -> float | None:
    key = rank_key(value, 0, "min")
    return None if key is None else float(key[0])


def _same_value(summary: Any, stored: Any) -> bool:
    """A summary value against the result's: summary.json spells NaN and infinities as text
    (JSON has none), so those compare by their spelling."""
    if isinstance(stored, float) and not math.isfinite(stored):
        return summary == str(stored)
    if isinstance(summary, float) and isinstance(stored, float):
        return summary == stored and math.copysign(1, summary) == math.copysign(1, stored)
    return type(summary) is type(stored) and bool(summary == stored)


def rows_by_id(result: pq.ParquetFile, ids: list[Any]) -> dict[Any, dict[str, Any]]:
    """The rows holding `ids`, reading only row groups whose param_id statistics may hold one."""
    wanted = sorted({i for i in ids if isinstance(i, int) and not isinstance(i, bool)})
    found: dict[Any, dict[str, Any]] = {}
    if not wanted:
        return found
    meta = result.metadata
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(0).statistics
        if stats is not None and stats.has_min_max:
            at = bisect.bisect_left(wanted, stats.min)
            if at == len(wanted) or wanted[at] > stats.max:
                continue
        table = result.read_row_group(g, use_threads=False)
        chosen = table.filter(pc.is_in(table["param_id"], pa.array(wanted, pa.int64())))
        for row in chosen.to_pylist():
            found[row["param_id"]] = row
    return found
