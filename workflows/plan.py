"""`plan SPEC`: what a sweep will cost before anything is spent, from one timed sample.

The real function runs here on a sample of the space (a few slices spread over it, each a
contiguous `param_id` range, as compute's chunks are), and the rows it returns are encoded
as compute encodes them (steps/parquet.py). Bytes per row, seconds per row and the share of
rows `keep` keeps then scale to the whole space, and the capacity model of docs/scaling.md
turns them into pod-hours and wall time at the spec's resources and a `parallelism`.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from steps.compute import chunk_table
from steps.function import ChunkFunction
from steps.keep import RowFilter
from steps.parquet import open_writer, row_group_rows
from steps.space import Space
from steps.spec import Spec
from steps.stages import Stage, stages_of, total_rows, total_shards

__all__ = ["Plan", "Sample", "estimate", "stdout_to_stderr", "take_sample"]

SAMPLE_ROWS = 65_536  # rows timed in all, at most
SLICES = 16  # spread over the space, so a grid's outer axes vary in the sample too
PROBE_ROWS = 16  # rows that pay the first calls' costs, then say how long a row takes
REPEATS = 3  # timings of a quick slice, the fastest kept
QUICK_SLICE_SECONDS = 0.05
START_SECONDS = 5.0  # S of docs/scaling.md: a pod's start-up, image cached on the node
REDUCE_BYTES_PER_SECOND = 100e6  # b of docs/scaling.md: S3 down and up through one pod
FOOTER_BYTES_PER_GROUP = 400  # ~0.4 KB of footer per row group (docs/scaling.md)


@dataclass(frozen=True)
class Sample:
    rows: int
    seconds_per_row: float  # the function, the table around it and its encoding, as in compute
    seconds_per_chunk: float  # what a call costs whatever its rows: paid once per chunk_rows
    encoded_bytes: int  # of those rows, written as compute writes a shard
    empty_bytes: int  # of a file of none of them: its schema and footer
    kept: int  # of those rows, how many `keep` would keep (before a top-k cut)
    group_rows: int  # rows per row group of the result, from its schema


@dataclass(frozen=True)
class Plan:
    rows: int
    shards: int
    rows_per_shard: int  # the largest shard's
    kept_rows: int
    result_bytes: int
    core_seconds: float
    pod_seconds: float  # one compute pod, start-up included
    pod_hours: float  # compute pods and the reduce pod
    compute_wall_seconds: float
    reduce_wall_seconds: float
    wall_seconds: float
    parallelism: int
    cpu_limit: float  # cores
    sample_rows: int
    kept_rows_at_most: bool = False  # a refined sweep's `where`: zoomed rows all counted

    def document(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """File descriptor 1 is stderr meanwhile: `plan --json` keeps stdout for its document,
    whatever the user's code writes there (print, or os.write(1, ...) from C)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def take_sample(
    spec: Spec, seconds: float, tick: Callable[[int], None] = lambda rows: None
) -> Sample:
    """Time the function on up to SAMPLE_ROWS rows in SLICES slices; `tick` after each.

    A probe of PROBE_ROWS (one row, for a function slower than the budget spares) says how
    long a row takes, so a slow function is timed on fewer and smaller slices, within about
    `seconds` in all. A slice that takes milliseconds is timed up to REPEATS times and its
    fastest kept (noise only ever adds); the median slice stands for the space. If the
    function fails, only the one line of its FunctionError is said."""
    space = Space(spec)
    function = ChunkFunction(spec)
    failure_output = io.StringIO()  # a traceback compute would log: the error says it
    with contextlib.redirect_stderr(failure_output):
        first = min(PROBE_ROWS, space.rows)
        warm = _timed_slice(spec, space, function, 0, 1, 1)  # pays the first call's costs
        # One row at a time while a row costs more than the budget can spare.
        slow = warm.seconds * first > seconds / SLICES
        probe = _timed_slice(spec, space, function, 0, 1 if slow else first, 1 if slow else REPEATS)
        size = min(SAMPLE_ROWS, space.rows) // SLICES or 1
        size = max(1, min(size, int(seconds / SLICES / max(probe.seconds_per_row, 1e-9))))
        count = max(1, min(SLICES, int(seconds / max(probe.seconds_per_row * size, 1e-9))))
        starts = sorted({(space.rows - size) * k // max(count - 1, 1) for k in range(count)})
        slices = []
        for start in starts:
            slices.append(_timed_slice(spec, space, function, start, min(start + size, space.rows)))
            tick(slices[-1].table.num_rows)
    table = pa.concat_tables([t.table for t in slices]).combine_chunks()
    kept = RowFilter(spec).add(table) if spec.keep.where is not None else None
    # Two sizes give a line: the probe's few rows and each slice's many. Its slope is a row's
    # cost, what is left of the probe's time a call's fixed cost.
    small = probe.table.num_rows
    per_row = statistics.median(
        max(t.seconds - probe.seconds, 0.0) / (t.table.num_rows - small)
        if t.table.num_rows > small
        else t.seconds_per_row
        for t in slices
    )
    return Sample(
        rows=table.num_rows,
        seconds_per_row=per_row,
        seconds_per_chunk=max(probe.seconds - small * per_row, 0.0),
        encoded_bytes=_encoded_bytes(table, spec),
        empty_bytes=_encoded_bytes(table.slice(0, 0), spec),
        kept=table.num_rows if kept is None else kept.num_rows,
        group_rows=row_group_rows(table.schema),
    )


@dataclass(frozen=True)
class _Slice:
    table: pa.Table
    seconds: float  # its fastest timing

    @property
    def seconds_per_row(self) -> float:
        return self.seconds / self.table.num_rows


def _timed_slice(
    spec: Spec, space: Space, function: ChunkFunction, start: int, stop: int, repeats: int = REPEATS
) -> _Slice:
    """Rows [start, stop) computed and encoded as a pod would, timed at their fastest."""
    index = next(i for i in range(spec.shards) if space.shard_range(i)[1] > start)
    timings: list[float] = []
    while len(timings) < repeats and (not timings or sum(timings) < QUICK_SLICE_SECONDS):
        began = time.perf_counter()
        table = chunk_table(spec, space, function, index, start, stop)
        _encoded_bytes(table, spec)
        timings.append(time.perf_counter() - began)
    return _Slice(table, min(timings))


def _encoded_bytes(table: pa.Table, spec: Spec) -> int:
    sink = pa.BufferOutputStream()
    writer = open_writer(sink, table.schema, spec)
    writer.write_table(table, row_group_size=row_group_rows(table.schema))
    writer.close()
    return len(sink.getvalue())


def _shards_of(stage: Stage) -> range:
    return range(stage.first_shard, stage.first_shard + stage.shards)


def estimate(spec: Spec, sample: Sample, parallelism: int, cpu_limit: float) -> Plan:
    """The model of docs/scaling.md, fed with the sample: each chunk of `chunk_rows` costs
    the sample's fixed cost per call plus its cost per row. A pod runs at its CPU limit, at
    most one core: a function that uses one thread (most numpy code) gains nothing from a
    larger limit."""
    rows = total_rows(spec)
    stages = stages_of(spec)
    shard_rows = [
        [stop - start for start, stop in map(stage.shard_range, _shards_of(stage))]
        for stage in stages
    ]

    def work(count: int) -> float:  # seconds of one core for `count` rows of one shard
        chunks = -(-count // spec.chunk_rows)
        return count * sample.seconds_per_row + chunks * sample.seconds_per_chunk

    core_seconds = sum(work(count) for counts in shard_rows for count in counts)
    rows_per_shard = max(max(counts) for counts in shard_rows)
    pod_seconds = START_SECONDS + work(rows_per_shard) / min(cpu_limit, 1.0)
    # Stages run one after another, each waiting for its slowest pod, then a zoom pod.
    stage_pods = [START_SECONDS + work(max(counts)) / min(cpu_limit, 1.0) for counts in shard_rows]
    compute_wall = (
        sum(
            math.ceil(stage.shards / parallelism) * pod
            for stage, pod in zip(stages, stage_pods, strict=True)
        )
        + (len(stages) - 1) * START_SECONDS
    )
    pod_total = sum(stage.shards * pod for stage, pod in zip(stages, stage_pods, strict=True))
    pod_total += (len(stages) - 1) * START_SECONDS
    if spec.keep.top_k is not None:
        kept_rows = min(spec.keep.top_k, rows)
    else:
        first = stages[0].rows  # the sample's stage; a zoomed stage is near the best, so
        # `where` may keep any share of it: the estimate is an upper bound there
        kept_rows = round(first * sample.kept / sample.rows) + rows - first
    groups = math.ceil(kept_rows / sample.group_rows)
    per_row = (sample.encoded_bytes - sample.empty_bytes) / sample.rows
    result_bytes = sample.empty_bytes + round(per_row * kept_rows) + FOOTER_BYTES_PER_GROUP * groups
    reduce_wall = START_SECONDS + result_bytes / REDUCE_BYTES_PER_SECOND
    return Plan(
        rows=rows,
        shards=total_shards(spec),
        rows_per_shard=rows_per_shard,
        kept_rows=kept_rows,
        kept_rows_at_most=spec.refine is not None and spec.keep.where is not None,
        result_bytes=result_bytes,
        core_seconds=core_seconds,
        pod_seconds=pod_seconds,
        pod_hours=(pod_total + reduce_wall) / 3600,
        compute_wall_seconds=compute_wall,
        reduce_wall_seconds=reduce_wall,
        wall_seconds=compute_wall + reduce_wall,
        parallelism=parallelism,
        cpu_limit=cpu_limit,
        sample_rows=sample.rows,
    )
