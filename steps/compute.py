"""`python -m steps.compute`: one shard of a sweep -> one Parquet object in the store.

Rows are produced `chunk_rows` at a time and written in row groups of a size fixed by the
schema, aligned to the whole sweep's rows (steps/parquet.py), so memory is bounded by
`chunk_rows` and one row group whatever the shard size, and reduce can copy them as they are. The object appears atomically when complete; a shard
whose object is already complete and valid for this spec is skipped, so retries and resumed
runs recompute only what is missing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from steps import exit_codes, layout
from steps.allocator import keep_freed_memory
from steps.cli import spec_and_store, step_parser, write_outputs
from steps.fingerprint import (
    CodeFingerprint,
    FingerprintError,
    code_fingerprint,
    describe_difference,
)
from steps.function import ChunkFunction, FunctionError
from steps.keep import KeepError, RowFilter
from steps.parquet import AlignedRowGroups, open_writer, row_group_rows, writer_fingerprint
from steps.refine import STAGE_COLUMN
from steps.run_record import RunMismatchError, claim_run
from steps.shards import ShardInfo, check_pages, read_shard_info, seal_footer
from steps.space import Space, arrow_type
from steps.spec import Spec, SpecError
from steps.stages import (
    Centres,
    StageSpace,
    decode_centres,
    encode_centres,
    stage_of_shard,
    stage_space,
    total_shards,
)
from steps.store import ObjectNotFoundError, Store, StoreError
from steps.summary import ColumnStats, PartialSummary

__all__ = [
    "ShardOutcome",
    "chunk_table",
    "compute_shard",
    "existing_shard",
    "fingerprint_of",
    "input_arrays",
    "main",
    "other_code",
]


@dataclass(frozen=True)
class ShardOutcome:
    key: str
    rows: int
    seconds: float
    skipped: bool


def existing_shard(
    store: Store,
    key: str,
    spec: Spec,
    index: int,
    start: int,
    stop: int,
    code: CodeFingerprint,
    centres: str | None = None,
) -> ShardInfo | None:
    """The shard already in the store, if it is complete, belongs to this spec, was computed
    by this code (around these centres, in a zoomed stage) and would be accepted by reduce."""
    try:
        info = read_shard_info(store, key)
    except ObjectNotFoundError:
        return None
    except StoreError as exc:
        print(f"shard {index}: existing object is unusable, recomputing ({exc})", file=sys.stderr)
        return None
    problem = info.problem(spec.hash, index, total_shards(spec), start, stop, spec.keep.everything)
    if problem is None and info.centres != centres:
        problem = f"was zoomed around other points ({info.centres}, now {centres})"
    if problem is None:
        problem = other_code(info, code)
    if problem is None:
        problem = _damaged_pages(store, key)
    if problem:
        print(f"shard {index}: existing object {problem}, recomputing", file=sys.stderr)
        return None
    return info


def other_code(info: ShardInfo, code: CodeFingerprint) -> str | None:
    """Why the shard was computed by other code than `code`, if it was."""
    if info.code is None:
        return "records no code fingerprint (computed by an older TTG)"
    if info.code.digest != code.digest:
        return f"was computed by other code ({describe_difference(info.code, code)})"
    return None


def _damaged_pages(store: Store, key: str) -> str | None:
    """Why reduce would refuse the shard's pages, if it would: a shard is kept only if reduce
    would accept all of it, else every resume would fail on it again."""
    try:
        with store.open_read(key) as handle:
            check_pages(handle)
    except StoreError as exc:
        return f"is unreadable ({exc})"
    except (ValueError, OSError) as exc:  # ConcatError, ThriftError, ArrowInvalid, ArrowIOError
        return f"is damaged ({(str(exc).splitlines() or [type(exc).__name__])[0]})"
    return None


def compute_shard(
    spec: Spec, store: Store, run_id: str, index: int, centres: Centres = ()
) -> ShardOutcome:
    """Shard `index` of the run; in a zoomed stage, around the previous stage's `centres`."""
    stage = stage_of_shard(spec, index)
    space = stage_space(spec, stage, centres)
    recorded = encode_centres(centres) if stage.number else None
    start, stop = stage.shard_range(index)
    count = total_shards(spec)
    key = layout.shard_key(spec.name, run_id, index, count)
    function = ChunkFunction(spec)
    code = fingerprint_of(spec)  # here, where the shard is computed: the pod's own code
    claim_run(store, spec, run_id, code)
    done = existing_shard(store, key, spec, index, start, stop, code, recorded)
    if done is not None:
        return ShardOutcome(key, done.rows, done.seconds, skipped=True)
    began = time.perf_counter()
    summary = PartialSummary()
    rows = RowFilter(spec)
    written = 0
    with store.atomic_writer(key, durable=False) as path:  # checked at every use instead
        writer: pq.ParquetWriter | None = None
        groups: AlignedRowGroups | None = None
        try:
            for chunk_start in range(start, stop, spec.chunk_rows):
                chunk_began = time.perf_counter()
                chunk_stop = min(chunk_start + spec.chunk_rows, stop)
                table = chunk_table(
                    spec, space, function, index, chunk_start, chunk_stop, stage.number
                )
                # over every computed row, kept or not; `param_id` is [chunk_start, chunk_stop)
                ids = ColumnStats.of_ids(chunk_start, chunk_stop)
                summary.add(table, spec.objective, known={"param_id": ids})
                if writer is None:
                    writer = open_writer(path, table.schema, spec)
                    # Kept subsets are not param_id ranges: their groups just count rows.
                    first_row = start if spec.keep.everything else 0
                    groups = AlignedRowGroups(row_group_rows(table.schema), first_row)
                assert groups is not None
                kept = _kept(rows.add, table, index, chunk_start, chunk_stop)
                written += _write(writer, groups.add(kept) if kept is not None else [])
                _log_chunk(index, count, chunk_start, chunk_stop, time.perf_counter() - chunk_began)
            if writer is None or groups is None:
                raise FunctionError(f"shard {index} has no rows")
            best = rows.finish()
            written += _write(writer, groups.add(best) if best is not None else [])
            written += _write(writer, [groups.rest()])
            info = ShardInfo(
                spec_hash=spec.hash,
                index=index,
                count=count,
                first_param_id=start,
                rows=written,
                seconds=time.perf_counter() - began,
                summary=summary,
                schema=table.schema,
                param_id_range=None,
                computed_rows=stop - start,
                writer=writer_fingerprint(spec, table.schema),
                code=code,
                centres=recorded,
            )
            writer.add_key_value_metadata(info.to_metadata())
        finally:
            if writer is not None:
                writer.close()
        seal_footer(path)
    return ShardOutcome(key, written, time.perf_counter() - began, skipped=False)


def fingerprint_of(spec: Spec) -> CodeFingerprint:
    """The current code's fingerprint; a package too large to read is the user's to fix."""
    try:
        return code_fingerprint(spec)
    except (FingerprintError, OSError) as exc:
        raise FunctionError(f"cannot fingerprint the code of {spec.function}: {exc}") from None


def _kept(
    add: Callable[[pa.Table], pa.Table | None], table: pa.Table, index: int, start: int, stop: int
) -> pa.Table | None:
    try:
        return add(table)
    except KeepError as exc:
        raise FunctionError(f"shard {index}, param_id [{start}, {stop}): {exc}") from None


def _write(writer: pq.ParquetWriter, groups: list[pa.Table] | list[pa.Table | None]) -> int:
    """Write each non-empty table as one row group; the number of rows written."""
    written = 0
    for table in groups:
        if table is not None and table.num_rows:
            writer.write_table(table, row_group_size=table.num_rows)
            written += table.num_rows
    return written


def _log_chunk(index: int, count: int, start: int, stop: int, seconds: float) -> None:
    """One logfmt line per chunk, so `argo logs` (and a local task log) reads as progress."""
    rate = (stop - start) / seconds if seconds > 0 else 0.0
    print(
        f"chunk shard={index}/{count} param_id={start}..{stop - 1} rows={stop - start} "
        f"seconds={seconds:.3f} rows_per_s={rate:.0f}",
        flush=True,
    )


def chunk_table(
    spec: Spec,
    space: Space | StageSpace,
    function: ChunkFunction,
    index: int,
    start: int,
    stop: int,
    stage: int = 0,
) -> pa.Table:
    """Rows `[start, stop)` with the function's outputs; a refined sweep's rows say their stage."""
    columns = space.decode(start, stop)
    try:
        outputs = function(columns)
    except FunctionError as exc:
        raise FunctionError(
            f"shard {index}, param_id [{start}, {stop}): {spec.function} {exc}"
        ) from None
    except KeyboardInterrupt:
        raise  # an interrupt of the pod, not the function's failure
    except BaseException as exc:  # sys.exit() or any BaseException in user code: its failure
        traceback.print_exc()
        raise FunctionError(
            f"shard {index}, param_id [{start}, {stop}): {spec.function} raised {type(exc).__name__}: {exc}"
        ) from None
    stages = np.full(stop - start, stage, dtype=np.int32) if spec.refine is not None else None
    axes = input_arrays(spec, columns, stages)
    table = pa.Table.from_pydict({**axes, **{n: outputs[n] for n in outputs.column_names}})
    if spec.objective:
        problem = _objective_problem(table, spec.objective.column, spec.objective.on_nan)
        if problem:
            raise FunctionError(
                f"shard {index}, param_id [{start}, {stop}): {spec.function} {problem}"
            )
    return table


def input_arrays(
    spec: Spec, columns: dict[str, np.ndarray], stages: np.ndarray | None
) -> dict[str, pa.Array]:
    """The stored columns a row's function did not compute, in the result's order:
    `param_id`, a refined sweep's `stage` (int32) right after it, then every axis."""
    arrays = {"param_id": pa.array(columns["param_id"], type=pa.int64())}
    if stages is not None:
        arrays[STAGE_COLUMN] = pa.array(stages, type=pa.int32())
    return arrays | {a.name: pa.array(columns[a.name], type=arrow_type(a)) for a in spec.axes}


def _objective_problem(table: pa.Table, column: str, on_nan: str) -> str | None:
    """The objective drives top-k, so it must be a column of numbers (inf is a number). A row
    whose objective is NaN or null is kept and counted but never ranked; with
    `on_nan = "fail"` it fails the shard instead."""
    if column not in table.column_names:
        return f"returned no objective column '{column}' (outputs: {table.column_names})"
    values = table[column]
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        return f"returned objective column '{column}' of type {values.type}, not a number"
    if on_nan != "fail":
        return None
    missing = pc.is_null(values, nan_is_null=True)
    bad = pc.sum(missing).as_py() or 0
    if bad:
        first = table["param_id"].filter(missing)[0].as_py()
        return f"returned NaN or null in objective column '{column}' at param_id {first} ({bad} rows in this chunk)"
    return None


def _parser() -> argparse.ArgumentParser:
    parser = step_parser("python -m steps.compute", __doc__)
    parser.add_argument(
        "--shard", type=int, default=_env_int("WORKER_ID"), help="default: $WORKER_ID"
    )
    parser.add_argument(
        "--shards",
        type=int,
        default=_env_int("TOTAL_WORKERS"),
        help="default: $TOTAL_WORKERS, else the spec's",
    )
    parser.add_argument(
        "--centres",
        default="",
        help="a zoomed stage's shards: the previous stage's best points (JSON, from its reduce)",
    )
    return parser


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value is not None and value.strip().lstrip("-").isdigit() else None


def _centres(spec: Spec, shard: int, text: str) -> Centres:
    """The centres a shard of a zoomed stage needs, and only such a shard."""
    stage = stage_of_shard(spec, shard).number
    if stage == 0:
        if text:
            raise SpecError(
                "--centres", f"is for a zoomed stage's shards; shard {shard} is stage 0"
            )
        return ()
    if not text:
        raise SpecError("--centres", f"is required: shard {shard} is of zoomed stage {stage}")
    return decode_centres(spec, text)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    keep_freed_memory()
    try:
        spec, store = spec_and_store(args)
        if args.shards is not None and args.shards != spec.shards:
            spec = spec.with_fields(shards=args.shards)
        if args.shard is None:
            raise SpecError("--shard", "is required (or set WORKER_ID)")
        count = total_shards(spec)
        if not 0 <= args.shard < count:
            raise SpecError("--shard", f"must be in 0..{count - 1}, got {args.shard}")
        centres = _centres(spec, args.shard, args.centres)
    except (SpecError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.BAD_INPUT
    try:
        outcome = compute_shard(spec, store, args.run_id, args.shard, centres)
    except FunctionError as exc:  # deterministic: retried only if the spec opts in
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.USER_CODE
    except RunMismatchError as exc:  # the run id holds another spec's run: never retried
        print(f"error: shard {args.shard} of {count}: {exc}", file=sys.stderr)
        return exit_codes.BAD_INPUT
    except StoreError as exc:
        print(f"error: shard {args.shard} of {count}: {exc}", file=sys.stderr)
        return exit_codes.STORE
    # Rows written now: a shard already complete wrote none (the rows metric and `run`'s
    # rows/s count computed rows).
    write_outputs(args.outputs, {"rows": "0" if outcome.skipped else str(outcome.rows)})
    verb = "already complete, skipped" if outcome.skipped else f"computed in {outcome.seconds:.2f}s"
    print(f"shard {args.shard}/{count}: {outcome.rows} rows {verb} -> {store.url(outcome.key)}")
    return exit_codes.OK


if __name__ == "__main__":
    exit_codes.exit_now(main())
