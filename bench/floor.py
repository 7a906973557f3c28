"""*floor*: the two-core floor. A `multiprocessing` pool of two maps the plain shard writer
over the spec's shards (the same rows and Parquet settings: zstd, dictionaries only on grid
axes): computing and writing the shards, no merge, no checks. Nothing a run could do less."""

from __future__ import annotations

import functools
import multiprocessing
import time

from bench import child
from bench.shard import write_shard


def main() -> None:
    parser = child.parser(__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    spec = child.load(args)
    began = time.perf_counter()
    job = functools.partial(write_shard, spec.to_json(), str(args.out))
    with multiprocessing.Pool(args.workers) as pool:
        started = time.perf_counter()
        rows = sum(pool.map(job, range(spec.shards), chunksize=1))
    child.report(
        {
            "rows": rows,
            "startup_seconds": started - began,
            "map_seconds": time.perf_counter() - started,
        }
    )


if __name__ == "__main__":
    main()
