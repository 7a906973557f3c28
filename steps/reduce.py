"""`python -m steps.reduce`: verify every shard, then merge them into one result and summary.

Everything is checked from the shards' footers before a single byte of output is written:
a missing, unreadable, foreign, short or misplaced shard, or an object that should not be
there, fails the reduce with a message naming it, and no result is written. The result has
row groups of a size fixed by its columns, so it does not depend on how the sweep was
sharded or chunked. When every row is kept, whole row groups are copied from the shards byte
for byte (their page checksums checked) and only the rows where two shards meet are decoded
and re-encoded (steps/concat.py); kept subsets are re-encoded. Memory is bounded by one row
group, plus ~0.4 KB of footer per result row group (30 MB at 10^10 rows).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from steps import compose, exit_codes, layout
from steps.best_rows import check_result
from steps.cli import spec_and_store, step_parser, write_outputs
from steps.concat import (
    ConcatenatedParquet,
    group_rows,
    movable,
    read_footer,
    read_group,
    row_groups,
)
from steps.keep import RowFilter
from steps.parquet import AlignedRowGroups, open_writer, row_group_rows, writer_fingerprint
from steps.read_ahead import read_ahead
from steps.result_summary import build_summary
from steps.shard_check import verify_shards
from steps.shards import ShardError, ShardInfo
from steps.spec import Spec, SpecError
from steps.stages import (
    StageError,
    centres_of,
    encode_centres,
    stage_summaries,
    stages_of,
    total_shards,
)
from steps.store import (
    Store,
    StoreError,
    UnsupportedError,
)
from steps.thrift_compact import Struct

__all__ = [
    "DAMAGE",
    "READ_BYTES",
    "ReduceOutcome",
    "concatenate_shards",
    "main",
    "merge_shards",
    "output_parameters",
    "reduce_run",
    "reencode_shards",
    "verify_shards",
]

_T = TypeVar("_T")


@dataclass(frozen=True)
class ReduceOutcome:
    rows: int
    summary: dict[str, Any]


def merge_shards(store: Store, spec: Spec, run_id: str, infos: list[ShardInfo], path: Path) -> int:
    """All shards, in order, into one Parquet file at `path` with fixed-size row groups."""
    if spec.keep.everything:
        return concatenate_shards(store, spec, run_id, infos, path)
    return reencode_shards(store, spec, run_id, infos, path)


def concatenate_shards(
    store: Store, spec: Spec, run_id: str, infos: list[ShardInfo], path: Path
) -> int:
    """Copy each row group that is already a whole row group of the result; decode and
    re-encode only the pieces where two shards meet (at most one group per shard).

    Compute writes its row groups aligned to the result's, so the copied bytes are the
    bytes re-encoding would have produced: the file is the same either way, only faster.
    A shard written with other writer settings or another pyarrow (a run resumed after an
    upgrade) is decoded instead, so that holds there too. Copied pages are checked against
    their checksums (steps/concat.py): a damaged shard fails the reduce, naming it.
    """
    schema = infos[0].schema.with_metadata(_result_metadata(spec, infos))
    total = sum(info.rows for info in infos)
    groups = AlignedRowGroups(row_group_rows(schema), first_row=0)
    writer = writer_fingerprint(spec, infos[0].schema)
    with path.open("wb") as out:
        result = ConcatenatedParquet(out, lambda sink: open_writer(sink, schema, spec))
        for info in infos:
            key = layout.shard_key(spec.name, run_id, info.index, info.count)
            with store.open_read(key, version=info.version) as handle:
                shard = _ShardReader(handle, store.url(key), copyable=info.writer == writer)
                _append_shard(result, groups, shard, info.first_param_id, total)
        last = groups.rest()
        if last is not None:
            result.encode(last)
        result.finish()
    return result.rows


class _ShardReader:
    """Reads one shard for the merge; anything wrong with its bytes is a ShardError
    naming it (one line), never an error blamed on the result being written."""

    def __init__(self, handle: BinaryIO, url: str, copyable: bool) -> None:
        self.handle, self.url, self.copyable = handle, url, copyable
        self.groups = self._read(lambda: row_groups(read_footer(handle)))
        self._decoder: pq.ParquetFile | None = None

    def bytes_of(self, group: Struct) -> bytes:
        return self._read(lambda: read_group(self.handle, group))

    def table_of(self, index: int) -> pa.Table:
        if self._decoder is None:
            self._decoder = self._read(lambda: _verified(self.handle))
        decoder = self._decoder
        return self._read(lambda: decoder.read_row_group(index, use_threads=False))

    def _read(self, read: Callable[[], _T]) -> _T:
        try:
            return read()
        except DAMAGE as exc:
            raise _damaged(self.url, exc) from None


# What reading a damaged shard raises: our own checks (ConcatError, ThriftError), pyarrow's
# (ArrowInvalid is a ValueError, ArrowIOError an OSError) and the file system's. Not memory
# errors, nor what a bug of ours would raise (KeyError, TypeError): those are not the shard's.
DAMAGE = (ValueError, OSError)


def _damaged(url: str, exc: BaseException) -> ShardError:
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return ShardError(f"{url} is damaged: {first_line}")


def _verified(handle: BinaryIO) -> pq.ParquetFile:
    """A shard opened so that decoding checks every page against its checksum."""
    return pq.ParquetFile(handle, page_checksum_verification=True)


def _append_shard(
    result: ConcatenatedParquet,
    groups: AlignedRowGroups,
    shard: _ShardReader,
    first: int,
    total: int,
) -> None:
    """Copy the shard's whole result row groups; pass the rest through `groups`."""
    for index, group in enumerate(shard.groups):
        rows = group_rows(group)
        whole = first % groups.size == 0 and rows == min(groups.size, total - first)
        if shard.copyable and groups.empty and whole and movable(group):
            result.append(shard.bytes_of(group), group)
            groups.skip(rows)
        else:
            for table in groups.add(shard.table_of(index)):
                result.encode(table)
        first += rows


def _result_metadata(spec: Spec, infos: list[ShardInfo]) -> dict[str, str]:
    return {"ttg.spec_hash": spec.hash, "ttg.rows": str(sum(i.rows for i in infos))}


def reencode_shards(
    store: Store, spec: Spec, run_id: str, infos: list[ShardInfo], path: Path
) -> int:
    """Stream every row of every shard through a new writer (for kept subsets, whose rows
    are not the result's row groups), in row groups of the result's size, each one
    contiguous table so its bytes do not depend on how the shards were cut."""
    schema = infos[0].schema
    groups = AlignedRowGroups(row_group_rows(schema), first_row=0)
    written = 0
    with open_writer(path, schema.with_metadata(_result_metadata(spec, infos)), spec) as writer:
        batches = _kept(read_ahead(_shard_batches(store, spec, run_id, infos, groups.size)), spec)
        for batch in batches:
            for table in groups.add(pa.Table.from_batches([batch], schema=schema)):
                writer.write_table(table, row_group_size=table.num_rows)
                written += table.num_rows
        last = groups.rest()
        if last is not None:
            writer.write_table(last, row_group_size=last.num_rows)
            written += last.num_rows
    return written


def _shard_batches(
    store: Store, spec: Spec, run_id: str, infos: list[ShardInfo], batch_rows: int
) -> Iterator[pa.RecordBatch]:
    for info in infos:
        key = layout.shard_key(spec.name, run_id, info.index, info.count)
        with store.open_read(key, version=info.version) as handle:
            try:
                reader = _verified(handle)
                for groups in _read_runs(reader.metadata):
                    yield from reader.iter_batches(
                        batch_size=batch_rows, row_groups=groups, use_threads=False
                    )
            except DAMAGE as exc:
                raise _damaged(store.url(key), exc) from None


READ_BYTES = 16 << 20  # compressed bytes pyarrow may pre-buffer per read


def _read_runs(metadata: pq.FileMetaData) -> Iterator[list[int]]:
    """Row groups in runs of about READ_BYTES: asked for all of a shard at once, pyarrow
    pre-buffers the whole shard (a 10M-row shard: +86 MiB peak RSS); one row group per read
    would mean many small requests to S3."""
    run: list[int] = []
    size = 0
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        run.append(index)
        size += sum(group.column(c).total_compressed_size for c in range(group.num_columns))
        if size >= READ_BYTES:
            yield run
            run, size = [], 0
    if run:
        yield run


def _kept(batches: Iterator[pa.RecordBatch], spec: Spec) -> Iterator[pa.RecordBatch]:
    """Shards already hold only kept rows; for top-k the result keeps the best of them all."""
    if spec.keep.top_k is None:
        yield from batches
        return
    rows = RowFilter(spec)
    for batch in batches:
        rows.add(pa.Table.from_batches([batch]))
    best = rows.finish()
    if best is not None:
        yield from best.to_batches()


def reduce_run(store: Store, spec: Spec, run_id: str) -> ReduceOutcome:
    """Verify, merge, summarise; `_SUCCESS` is written last and only if all else succeeded."""
    began = time.perf_counter()
    store.remove_stale_temps(layout.run_prefix(spec.name, run_id))  # of writers killed earlier
    infos = verify_shards(store, spec, run_id)
    verified = time.perf_counter()
    rows, merge = _merge(store, spec, run_id, infos)
    merged = time.perf_counter()
    timings = {
        "verify_seconds": verified - began,
        "merge_seconds": merged - verified,
        "reduce_seconds": merged - began,
    }
    summary = build_summary(spec, run_id, infos, rows, timings)
    summary["merge"] = merge
    code = infos[0].code  # every shard's, by verify_shards
    summary["code"] = None if code is None else {"fingerprint": code.digest, "parts": code.parts}
    store.put_bytes(layout.summary_key(spec.name, run_id), json.dumps(summary, indent=2).encode())
    success = {"rows": rows, "spec_hash": spec.hash, "finished_at": summary["finished_at"]}
    store.put_bytes(layout.success_key(spec.name, run_id), json.dumps(success).encode())
    return ReduceOutcome(rows, summary)


def _merge(
    store: Store, spec: Spec, run_id: str, infos: list[ShardInfo]
) -> tuple[int, dict[str, Any]]:
    """The result, composed by the store from the shards' bytes where it can be
    (steps/compose.py), else streamed through this process; and how it was merged."""
    key = layout.result_key(spec.name, run_id)
    schema = infos[0].schema.with_metadata(_result_metadata(spec, infos))
    composition = compose.plan(store, spec, run_id, infos, schema)
    if isinstance(composition, compose.ComposePlan):
        try:
            compose.compose_result(store, key, composition, spec, run_id, infos)
        except UnsupportedError as exc:
            composition = f"the store cannot compose objects ({exc})"
        else:
            sources = len(composition.ranges) + 1  # copied shard ranges, then the footer
            written = len(composition.footer)
            return composition.rows, {
                "mode": "compose",
                "sources": sources,
                "bytes_written": written,
            }
    with store.atomic_writer(key) as path:
        rows = merge_shards(store, spec, run_id, infos, path)
        check_result(path, store, spec, run_id, infos)
        written = path.stat().st_size
    return rows, {"mode": "stream", "reason": composition, "bytes_written": written}


def output_parameters(outcome: ReduceOutcome) -> dict[str, str]:
    """What the Argo UI shows for the run: rows, and the best value and its row."""
    objective = outcome.summary.get("objective") or {}
    best = (objective.get("best") or [None])[0]
    best_value = "" if best is None else json.dumps(best[objective["column"]])
    return {
        "rows": str(outcome.rows),
        "best_value": best_value,
        "best": json.dumps(best, separators=(",", ":")),
    }


def zoom_outputs(store: Store, spec: Spec, run_id: str, stage: int) -> dict[str, str]:
    """A refined sweep's reduce of a stage before the last: its shards (and every earlier
    stage's) verified, it writes nothing but its outputs, the next stage's centres."""
    assert spec.objective is not None
    infos = verify_shards(store, spec, run_id, through=stage)
    top = stage_summaries(spec, infos)[stage].top
    centres = centres_of(spec, top, stage)
    return {
        "centres": encode_centres(centres),
        "best_value": json.dumps(top[0][spec.objective.column]),
        "best": json.dumps(top[0], separators=(",", ":")),
    }


def _parser() -> argparse.ArgumentParser:
    parser = step_parser("python -m steps.reduce", __doc__)
    parser.add_argument(
        "--stage",
        type=int,
        default=None,
        help="a refined sweep's stage: before the last, only pick the next stage's centres",
    )
    return parser


def _zoom_stage(spec: Spec, stage: int | None) -> int | None:
    """The stage to zoom from, or None for the whole reduce (the last stage's, or a flat run's)."""
    if stage is None:
        return None
    last = len(stages_of(spec)) - 1
    if not 0 <= stage <= last:
        raise SpecError("--stage", f"must be in 0..{last}, got {stage}")
    return stage if stage < last else None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        spec, store = spec_and_store(args)
        zoom = _zoom_stage(spec, args.stage)
    except (SpecError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.BAD_INPUT
    try:
        if zoom is not None:
            outputs = zoom_outputs(store, spec, args.run_id, zoom)
            write_outputs(args.outputs, outputs)
            print(
                f"stage {zoom}: best {outputs['best_value']}; next stage zooms around {outputs['centres']}"
            )
            return exit_codes.OK
        outcome = reduce_run(store, spec, args.run_id)
    except (ShardError, StageError) as exc:
        what = "reduce refused" if zoom is None else f"stage {zoom} cannot be zoomed"
        print(f"error: {what}, no result written: {exc}", file=sys.stderr)
        return exit_codes.FAILED
    except StoreError as exc:
        print(f"error: reduce failed: {exc}", file=sys.stderr)
        return exit_codes.STORE
    write_outputs(args.outputs, output_parameters(outcome))
    print(
        f"reduce: {outcome.rows} rows from {total_shards(spec)} shards -> {store.url(layout.result_key(spec.name, args.run_id))}"
    )
    return exit_codes.OK


if __name__ == "__main__":
    exit_codes.exit_now(main())
