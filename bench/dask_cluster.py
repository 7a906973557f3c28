"""*dask*: a `dask.distributed` LocalCluster (worker processes, one thread each) mapping the
plain shard writer over the spec's shards. Needs the `bench` extra.

With `--merge`, the client then merges the shards into one Parquet file, as a script using
dask would to hand back one table like TTG's result: row group by row group through a
pyarrow writer with the pipeline's settings (re-encoding, which is what pyarrow offers).
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import pyarrow.parquet as pq

from bench import child
from bench.shard import write_shard
from steps.parquet import open_writer
from steps.spec import Spec


def main() -> None:
    # Imported by name: the `bench` extra is optional, and mypy checks this file without it.
    distributed = importlib.import_module("dask.distributed")

    parser = child.parser(__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--merge", action="store_true", help="then merge into one file")
    args = parser.parse_args()
    spec = child.load(args)
    began = time.perf_counter()
    with (
        distributed.LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        started = time.perf_counter()
        futures = client.map(
            write_shard,
            [spec.to_json()] * spec.shards,
            [str(args.out)] * spec.shards,
            range(spec.shards),
            pure=False,
        )
        rows = sum(client.gather(futures))
        mapped = time.perf_counter()
    if args.merge:
        merge_shards(spec, args.out)
    child.report(
        {
            "rows": rows,
            "startup_seconds": started - began,
            "map_seconds": mapped - started,
            "shutdown_seconds": time.perf_counter() - mapped,
        }
    )


def merge_shards(spec: Spec, out: Path) -> None:
    """The shards, in order, into `out/result.parquet`; the shard files are removed."""
    shards = [out / f"shard-{i:05d}-of-{spec.shards:05d}.parquet" for i in range(spec.shards)]
    schema = pq.read_schema(shards[0])
    with open_writer(out / "result.parquet", schema, spec) as writer:
        for path in shards:
            shard = pq.ParquetFile(path)
            for group in range(shard.num_row_groups):
                writer.write_table(shard.read_row_group(group))
            path.unlink()


if __name__ == "__main__":
    main()
