"""*dask*: a `dask.distributed` LocalCluster (worker processes, one thread each) mapping the
plain shard writer over the spec's shards. Needs the `bench` extra."""

from __future__ import annotations

import importlib
import time

from bench import child
from bench.shard import write_shard


def main() -> None:
    # Imported by name: the `bench` extra is optional, and mypy checks this file without it.
    distributed = importlib.import_module("dask.distributed")

    parser = child.parser(__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
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
    child.report(
        {
            "rows": rows,
            "startup_seconds": started - began,
            "map_seconds": mapped - started,
            "shutdown_seconds": time.perf_counter() - mapped,
        }
    )


if __name__ == "__main__":
    main()
