"""`sweep.py verify RUN_OR_URI`: recompute a random sample of a finished run's rows with its
function and compare them bit for bit with the stored result; check the summary against it.

TTG's results are reproducible row by row — every value is a function of `param_id` and the
spec — so any row can be recomputed alone and must come out identical. That makes an audit
possible that no sweep tool without that property can offer. It costs a sample, not a scan:

- rows sampled from the result are recomputed in chunks of another size and order than the
  sweep's (a function whose values depend on its chunk is not reproducible, and shows);
- with `keep`, rows sampled from the whole sweep are recomputed too: the result must hold
  exactly those the keep rule keeps;
- the summary is held to the result's footer and best rows (workflows/verify_summary.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from steps.compute import fingerprint_of, input_arrays
from steps.fingerprint import describe_difference
from steps.function import ChunkFunction
from steps.keep import RowFilter
from steps.refine import STAGE_COLUMN
from steps.spec import Spec
from steps.stages import Centres, RunSpace
from workflows.results import FinishedRun, ResultsError
from workflows.verify_stages import StageCentresError, run_centres
from workflows.verify_summary import rank_key, rows_by_id, summary_problems

__all__ = ["VerifyError", "VerifyReport", "verify_run"]

Progress = Callable[[int], None]  # advance by n rows read or recomputed


class VerifyError(ResultsError):
    """The run cannot be verified as asked (bad input: one line, exit 2)."""


class _RecomputeError(Exception):
    """The function fails now on rows it once computed: nothing of them can match."""


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
    spec = _spec_as_run(run)
    _check_code(run, spec, force)
    with run.ref.store.open_read(run.result_key) as handle:
        try:
            result = pq.ParquetFile(handle, page_checksum_verification=True)
            report = VerifyReport(sampled=0, rows=result.metadata.num_rows)
            positions = _positions(result.metadata.num_rows, sample, seed)
            stored = pa.concat_tables(list(_take(result, positions, advance)))
            report.sampled = stored.num_rows
            try:
                centres, report.problems = run_centres(spec, result, run.summary)
                checker = _Checker(spec, result.schema_arrow, centres)
                report.problems += checker.compare(stored, positions, advance)
                if not spec.keep.everything:
                    report.problems += checker.keep_problems(result, sample, seed, advance)
            except _RecomputeError as exc:
                report.problems.append(str(exc))
            except StageCentresError as exc:  # no stage's points known: nothing recomputed
                report.problems.append(f"stages: {exc}; no row was recomputed")
            report.problems += summary_problems(run, result)
        except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise VerifyError(f"{run.result_url} cannot be read: {first}") from None
    return report


def _spec_as_run(run: FinishedRun) -> Spec:
    """The spec with the `code_version` its shards were computed with: a resume after a
    bump keeps spec.json (the hash is the same) but computes with the new version."""
    recorded = run.code
    if recorded is None or recorded.parts.get("code_version") == run.spec.code_version:
        return run.spec
    return run.spec.with_fields(code_version=recorded.parts.get("code_version"))


def _check_code(run: FinishedRun, spec: Spec, force: bool) -> None:
    recorded = run.code
    current = fingerprint_of(spec)  # imports the function: a module that fails is exit 2
    if force:
        return
    if recorded is None:
        raise VerifyError(
            f"run {run.ref.run_id} records no code fingerprint (made by an older TTG): "
            "--force compares with the current code anyway"
        )
    if current.digest != recorded.digest:
        raise VerifyError(
            f"the current code's fingerprint differs from the run's "
            f"({describe_difference(recorded, current)}): its rows would differ for that reason "
            "alone; --force compares anyway"
        )


# --- the sample -------------------------------------------------------------------------------


def _positions(rows: int, sample: int, seed: int) -> np.ndarray:
    """`sample` distinct row positions of `rows`, ascending (all of them if there are fewer)."""
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
            table = result.read_row_group(group, use_threads=False)
            yield table.take(pa.array(inside - start)).combine_chunks()
            advance(len(inside))
        start = stop


class _Checker:
    """Recomputes rows of one run and holds them against the stored ones."""

    def __init__(self, spec: Spec, schema: pa.Schema, centres: list[Centres]) -> None:
        self.spec, self.space, self.schema = spec, RunSpace(spec, centres), schema
        axes = self.axes = {"param_id", *(a.name for a in spec.axes)}
        if spec.refine is not None:
            axes.add(STAGE_COLUMN)
        self.outputs = pa.schema([f for f in schema if f.name not in axes])
        self.function = ChunkFunction(spec, self.outputs)  # the result's types, not a chunk's

    def column_problems(self, param_id: int) -> list[str]:
        """The function's output columns against the result's, from one row recomputed."""
        self.function, stored = ChunkFunction(self.spec), self.function
        try:
            returned = self._table(np.array([param_id], dtype=np.int64)).column_names
        finally:
            self.function = stored
        outputs = [n for n in returned if n not in self.axes]
        problems = [
            f"column {n}: the function returns it, the result lacks it"
            for n in outputs
            if n not in self.outputs.names
        ]
        return problems + [
            f"column {n}: the result holds it, the function does not return it"
            for n in self.outputs.names
            if n not in outputs
        ]

    def compare(self, stored: pa.Table, positions: np.ndarray, advance: Progress) -> list[str]:
        param_id = stored["param_id"].to_numpy()
        outside = (param_id < 0) | (param_id >= self.space.rows)
        if outside.any():
            return [
                f"param_id: {int(outside.sum()):,} sampled rows hold a param_id outside the sweep"
            ]
        if self.spec.keep.everything and not np.array_equal(param_id, positions):
            # With every row kept, the row at position p is the sweep's row p.
            return ["param_id: the result's rows are not the sweep's rows in param_id order"]
        if np.any(np.diff(param_id) <= 0):
            return ["param_id: the result's rows are not in strictly ascending param_id order"]
        if len(param_id):
            columns = self.column_problems(int(param_id[0]))
            if columns:
                return columns
        recomputed = self.recompute(param_id, advance)
        problems: dict[str, list[int]] = {}
        firsts: dict[str, tuple[Any, Any]] = {}
        for name in recomputed.column_names:
            if stored[name].type != recomputed[name].type:
                return [
                    f"column {name}: stored as {stored[name].type}, "
                    f"recomputed as {recomputed[name].type}"
                ]
            differs = _unequal(stored[name], recomputed[name])
            rows = [int(i) for i in np.flatnonzero(differs)]
            if rows:
                problems[name] = [int(param_id[i]) for i in rows]
                firsts[name] = (stored[name][rows[0]].as_py(), recomputed[name][rows[0]].as_py())
        return [_describe(n, ids, firsts[n], stored.num_rows) for n, ids in problems.items()]

    def recompute(self, param_id: np.ndarray, advance: Progress) -> pa.Table:
        """The rows of `param_id`, recomputed in chunks of another size than the sweep's and
        each in reverse order, then put back in the given order."""
        size = max(1, self.spec.chunk_rows // 2 + 1)
        parts = []
        for begin in range(0, len(param_id), size):
            ids = param_id[begin : begin + size][::-1].astype(np.int64)
            parts.append(self._table(ids).take(pa.array(np.arange(len(ids))[::-1])))
            advance(len(ids))
        if not parts:
            return self._table(param_id.astype(np.int64))
        return pa.concat_tables(parts).combine_chunks()

    def _table(self, ids: np.ndarray) -> pa.Table:
        columns = self.space.decode_ids(ids)
        try:
            outputs = self.function(columns)
        except (Exception, SystemExit) as exc:  # the function's own failure, as in compute
            raise _RecomputeError(
                f"recompute: {self.spec.function} fails now on param_id {int(ids[0]) if len(ids) else '-'}"
                f"..: {type(exc).__name__}: {str(exc)[:160]}"
            ) from None
        stages = self.space.stage_of_ids(ids) if self.space.refined else None
        axes = input_arrays(self.spec, columns, stages)
        return pa.Table.from_pydict({**axes, **{n: outputs[n] for n in outputs.column_names}})

    def keep_problems(
        self, result: pq.ParquetFile, sample: int, seed: int, advance: Progress
    ) -> list[str]:
        """Rows sampled from the whole sweep: the result holds exactly those `keep` keeps."""
        ids = _positions(self.space.rows, sample, seed + 1)
        recomputed = self.recompute(ids, advance)
        expected = self._kept(recomputed, result)
        present = set(rows_by_id(result, [int(i) for i in ids]))
        missing = sorted(expected - present)
        unexpected = sorted(present - expected)
        problems = []
        if missing:
            problems.append(
                f"keep: {len(missing):,} of {len(ids):,} rows sampled from the sweep should be "
                f"kept and are not in the result (param_id {', '.join(map(str, missing[:5]))})"
            )
        if unexpected:
            problems.append(
                f"keep: {len(unexpected):,} rows sampled from the sweep are in the result but "
                f"the keep rule drops them (param_id {', '.join(map(str, unexpected[:5]))})"
            )
        return problems

    def _kept(self, recomputed: pa.Table, result: pq.ParquetFile) -> set[int]:
        keep, objective = self.spec.keep, self.spec.objective
        if keep.where is not None:
            kept = RowFilter(self.spec).add(recomputed)
            return set() if kept is None else set(kept["param_id"].to_pylist())
        assert objective is not None and keep.top_k is not None
        # The worst kept row of the result bounds the ranks that must be kept.
        stored = result.read(columns=["param_id", objective.column], use_threads=False).to_pylist()
        keys = [rank_key(r[objective.column], r["param_id"], objective.goal) for r in stored]
        ranked = [k for k in keys if k is not None]
        # Fewer rows with a number than N: every row with one is kept.
        worst = None if len(ranked) < keep.top_k else max(ranked)
        chosen = set()
        for row in recomputed.select(["param_id", objective.column]).to_pylist():
            key = rank_key(row[objective.column], row["param_id"], objective.goal)
            if key is not None and (worst is None or key <= worst):
                chosen.add(row["param_id"])
        return chosen


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
    elif pa.types.is_integer(a.type):
        va = a.fill_null(0).to_numpy(zero_copy_only=False)
        vb = b.fill_null(0).to_numpy(zero_copy_only=False)
    else:  # booleans and strings: as Python values
        va = np.array(a.to_pylist(), dtype=object)
        vb = np.array(b.to_pylist(), dtype=object)
    return np.asarray((nulls_a != nulls_b) | (~nulls_a & (va != vb)), dtype=bool)


def _nulls(array: pa.Array) -> np.ndarray:
    return np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _describe(name: str, ids: list[int], first: tuple[Any, Any], sampled: int) -> str:
    shown = ", ".join(str(i) for i in ids[:5]) + (", ..." if len(ids) > 5 else "")
    stored, recomputed = first
    return (
        f"column {name}: {len(ids):,} of {sampled:,} sampled rows differ (param_id "
        f"{shown}); first: stored {stored!r:.40}, recomputed {recomputed!r:.40}"
    )
