"""`sweep.py verify RUN_OR_URI`: recompute a random sample of a finished run's rows with its
function and compare them bit for bit with the stored result; check the summary against it.

TTG's results are reproducible row by row — every value is a function of `param_id` and the
spec — so any row can be recomputed alone and must come out identical. That makes an audit
possible that no sweep tool without that property can offer. The summary is checked from the
result's own footer (row counts, null counts, min and max from Parquet statistics) and by
looking up its best rows, so the check costs a sample, not a scan.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from steps.fingerprint import code_fingerprint, describe_difference
from steps.function import ChunkFunction
from steps.space import Space, arrow_type
from workflows.results import FinishedRun, ResultsError

__all__ = ["VerifyError", "VerifyReport", "verify_run"]

Progress = Callable[[int], None]  # advance by n rows read or recomputed


class VerifyError(ResultsError):
    """The run cannot be verified as asked (bad input: one line, exit 2)."""


@dataclass
class VerifyReport:
    sampled: int
    rows: int
    problems: list[str] = field(default_factory=list)  # one line per kind of mismatch

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_run(
    run: FinishedRun, sample: int, seed: int, force: bool = False, progress: Progress | None = None
) -> VerifyReport:
    """Recompute `sample` rows chosen with `seed` (every row if `sample` >= rows)."""
    advance = progress or (lambda n: None)
    _check_code(run, force)
    with run.ref.store.open_read(run.result_key) as handle:
        try:
            result = pq.ParquetFile(handle, page_checksum_verification=True)
            report = VerifyReport(sampled=0, rows=result.metadata.num_rows)
            positions = _positions(result.metadata.num_rows, sample, seed)
            stored = pa.concat_tables(list(_take(result, positions, advance)))
            report.sampled = stored.num_rows
            report.problems += _compare(run, stored, positions, advance)
            report.problems += _summary_problems(run, result)
        except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise VerifyError(f"{run.result_url} cannot be read: {first}") from None
    return report


def _check_code(run: FinishedRun, force: bool) -> None:
    recorded = run.code
    if force:
        return
    if recorded is None:
        raise VerifyError(
            f"run {run.ref.run_id} records no code fingerprint (made by an older TTG): "
            "--force compares with the current code anyway"
        )
    current = code_fingerprint(run.spec)
    if current.digest != recorded.digest:
        raise VerifyError(
            f"the current code's fingerprint differs from the run's "
            f"({describe_difference(recorded, current)}): its rows would differ for that reason "
            "alone; --force compares anyway"
        )


# --- the sample -------------------------------------------------------------------------------


def _positions(rows: int, sample: int, seed: int) -> np.ndarray:
    """`sample` distinct row positions of the result, ascending (all of them if it has fewer)."""
    if sample >= rows:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, size=sample, replace=False))


def _take(result: pq.ParquetFile, positions: np.ndarray, advance: Progress) -> Iterator[pa.Table]:
    start = 0
    yield result.schema_arrow.empty_table()
    for group in range(result.metadata.num_row_groups):
        stop = start + result.metadata.row_group(group).num_rows
        inside = positions[(positions >= start) & (positions < stop)]
        if len(inside):
            table = result.read_row_group(group)
            yield table.take(pa.array(inside - start)).combine_chunks()
            advance(len(inside))
        start = stop


def _compare(
    run: FinishedRun, stored: pa.Table, positions: np.ndarray, advance: Progress
) -> list[str]:
    """The sampled rows, recomputed chunk by chunk, against the stored ones, column by column."""
    spec, space = run.spec, Space(run.spec)
    param_id = stored["param_id"].to_numpy()
    outside = (param_id < 0) | (param_id >= space.rows)
    if outside.any():
        return [f"param_id: {int(outside.sum()):,} sampled rows hold a param_id outside the sweep"]
    if spec.keep.everything and not np.array_equal(param_id, positions):
        # With every row kept, the row at position p is the sweep's row p.
        return ["param_id: the result's rows are not the sweep's rows in param_id order"]
    function = ChunkFunction(spec)
    problems: dict[str, list[int]] = {}
    firsts: dict[str, tuple[Any, Any]] = {}
    for begin in range(0, stored.num_rows, spec.chunk_rows):
        part = stored.slice(begin, spec.chunk_rows)
        recomputed = _recompute(spec, space, function, part["param_id"].to_numpy())
        for name in stored.column_names:
            if name not in recomputed.column_names:
                problems.setdefault(name, []).append(-1)
                continue
            differs = _unequal(part[name], recomputed[name])
            if differs.any():
                rows = [int(i) for i in np.flatnonzero(differs)]
                if name not in firsts:
                    firsts[name] = (part[name][rows[0]].as_py(), recomputed[name][rows[0]].as_py())
                problems.setdefault(name, []).extend(int(part["param_id"][i].as_py()) for i in rows)
        advance(part.num_rows)
    return [
        _describe(name, ids, firsts.get(name), stored.num_rows) for name, ids in problems.items()
    ]


def _recompute(spec: Any, space: Space, function: ChunkFunction, ids: np.ndarray) -> pa.Table:
    columns = space.decode_ids(ids.astype(np.int64))
    outputs = function(columns)
    types = {"param_id": pa.int64(), **{a.name: arrow_type(a) for a in spec.axes}}
    axes = {name: pa.array(columns[name], type=dtype) for name, dtype in types.items()}
    return pa.Table.from_pydict({**axes, **{n: outputs[n] for n in outputs.column_names}})


def _unequal(stored: pa.ChunkedArray, recomputed: pa.ChunkedArray) -> np.ndarray:
    """Rows whose values differ, bit for bit (NaN equals NaN of the same bits; -0.0 != 0.0;
    null equals only null); another type differs in every row."""
    a, b = stored.combine_chunks(), recomputed.combine_chunks()
    if a.type != b.type:
        return np.ones(len(a), dtype=bool)
    nulls_a, nulls_b = _nulls(a), _nulls(b)
    if pa.types.is_floating(a.type):
        bits = np.uint64 if a.type.bit_width == 64 else np.uint32
        va = np.asarray(a.fill_null(0.0).to_numpy(zero_copy_only=False)).view(bits)
        vb = np.asarray(b.fill_null(0.0).to_numpy(zero_copy_only=False)).view(bits)
    elif pa.types.is_integer(a.type) or pa.types.is_boolean(a.type):
        va = a.fill_null(0).to_numpy(zero_copy_only=False)
        vb = b.fill_null(0).to_numpy(zero_copy_only=False)
    else:
        va = np.array(a.to_pylist(), dtype=object)
        vb = np.array(b.to_pylist(), dtype=object)
    return np.asarray((nulls_a != nulls_b) | (~nulls_a & (va != vb)), dtype=bool)


def _nulls(array: pa.Array) -> np.ndarray:
    return np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _describe(name: str, ids: list[int], first: tuple[Any, Any] | None, sampled: int) -> str:
    if ids == [-1]:
        return f"column {name}: the function no longer returns it"
    shown = ", ".join(str(i) for i in ids[:5]) + (", ..." if len(ids) > 5 else "")
    stored, recomputed = first if first is not None else (None, None)
    return (
        f"column {name}: {len(ids):,} of {sampled:,} sampled rows differ (param_id {shown}); "
        f"first: stored {stored!r:.40}, recomputed {recomputed!r:.40}"
    )


# --- the summary against the result -------------------------------------------------------------


def _summary_problems(run: FinishedRun, result: pq.ParquetFile) -> list[str]:
    summary, spec = run.summary, run.spec
    rows = result.metadata.num_rows
    problems = []
    if summary["rows"] != Space(spec).rows:
        problems.append(f"summary: rows {summary['rows']:,}, the sweep has {Space(spec).rows:,}")
    kept = summary.get("kept_rows", summary["rows"])
    if kept != rows:
        problems.append(f"summary: kept_rows {kept:,}, the result holds {rows:,}")
    stats = _footer_statistics(result)
    for name, column in summary["columns"].items():
        counted = column.get("count", 0) + column.get("nans", 0) + column.get("nulls", 0)
        if counted != summary["rows"]:
            problems.append(
                f"summary: column {name} counts {counted:,} rows of {summary['rows']:,}"
            )
        if spec.keep.everything and name in stats:
            problems += _against_statistics(name, column, stats[name])
    problems += _best_problems(run, result, stats)
    return problems


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


def _best_problems(run: FinishedRun, result: pq.ParquetFile, stats: dict[str, _Stats]) -> list[str]:
    """The best rows are rows of the result, in order, and (with every row kept) the first is
    the extreme the footer's statistics show."""
    objective = run.summary.get("objective")
    if not objective or not run.best_rows:
        return []
    column, goal, best = objective["column"], objective["goal"], run.best_rows
    sign = 1 if goal == "min" else -1
    keys = [(sign * _as_number(row.get(column)), row.get("param_id")) for row in best]
    if keys != sorted(keys):
        return [f"summary: the best rows are not in order of {goal} {column}, then param_id"]
    problems = []
    found = _rows_by_id(result, [row["param_id"] for row in best])
    for rank, row in enumerate(best):
        stored = found.get(row["param_id"])
        if stored is None:
            if run.spec.keep.everything:
                problems.append(
                    f"summary: best row {rank} (param_id {row['param_id']}) is not in the result"
                )
            continue
        if any(not _same_value(row.get(k), v) for k, v in stored.items()):
            problems.append(
                f"summary: best row {rank} (param_id {row['param_id']}) differs from the result's row"
            )
    extreme = stats.get(column)
    if run.spec.keep.everything and extreme is not None:
        edge = extreme.low if goal == "min" else extreme.high
        if edge is not None and sign * _as_number(edge) < sign * _as_number(best[0].get(column)):
            problems.append(
                f"summary: the result holds {column}={edge!r} better than the best row's"
            )
    return problems


def _as_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return math.nan
    try:
        return float(value)
    except ValueError:
        return math.nan


def _same_value(summary: Any, stored: Any) -> bool:
    """A summary value against the result's: summary.json spells NaN and infinities as text
    (JSON has none), so those compare by their spelling."""
    if isinstance(stored, float) and not math.isfinite(stored):
        return summary == str(stored)
    if isinstance(summary, float) and isinstance(stored, float):
        return summary == stored and math.copysign(1, summary) == math.copysign(1, stored)
    return type(summary) is type(stored) and bool(summary == stored)


def _rows_by_id(result: pq.ParquetFile, ids: list[Any]) -> dict[Any, dict[str, Any]]:
    """The rows holding `ids`, reading only row groups whose param_id statistics may hold one."""
    wanted = {i for i in ids if isinstance(i, int) and not isinstance(i, bool)}
    found: dict[Any, dict[str, Any]] = {}
    meta = result.metadata
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(0).statistics
        may_hold = stats is None or not stats.has_min_max
        if not may_hold and not any(stats.min <= i <= stats.max for i in wanted):
            continue
        table = result.read_row_group(g)
        for row in table.filter(pc.is_in(table["param_id"], pa.array(sorted(wanted)))).to_pylist():
            found[row["param_id"]] = row
    return found
