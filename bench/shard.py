"""A plain shard writer: one shard's rows, chunk by chunk, into one zstd Parquet file.

What the floor and dask baselines map over the shards: the same rows, chunks and Parquet
settings as `steps.compute`, without its checks, summary, store or resume logic.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from bench.grid import grid_table
from steps.function import import_function
from steps.parquet import open_writer
from steps.space import Space
from steps.spec import spec_from_json


def write_shard(spec_json: str, out: str, index: int) -> int:
    """Write shard `index` of the spec into the folder `out`; return its row count."""
    spec = spec_from_json(spec_json)
    function = import_function(spec.function)
    start, stop = Space(spec).shard_range(index)
    path = Path(out) / f"shard-{index:05d}-of-{spec.shards:05d}.parquet"
    writer: pq.ParquetWriter | None = None
    try:
        for chunk_start in range(start, stop, spec.chunk_rows):
            table = grid_table(
                spec, function, chunk_start, min(chunk_start + spec.chunk_rows, stop)
            )
            if writer is None:
                writer = open_writer(path, table.schema, spec)
            writer.write_table(table, row_group_size=table.num_rows)
    finally:
        if writer is not None:
            writer.close()
    return stop - start
