"""*old worker*: the per-parameter loop TTG replaced, on a sample of the rows.

As the old project's `worker.py` did: one Python call per parameter returning one dict
(`param_id`, its values, the result, `worker_id`), a progress line every BATCH_SIZE = 100
parameters, the dicts collected and written out at the end (here as Parquet). The driver
extrapolates the loop's time to the whole sweep, and labels the figure so: running 10M
rows this way takes minutes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from bench import child
from bench.grid import axis_values
from steps.function import import_function
from steps.parquet import open_writer
from steps.space import Space
from steps.spec import Spec

BATCH_SIZE = 100
WORKER_ID = 0


def parameter_worker(spec: Spec) -> Callable[[int], dict[str, Any]]:
    """`_compute_parameter(param_id)`: decode one parameter, call the function on it."""
    function = import_function(spec.function)
    axes = [(a.name, axis_values(a).tolist()) for a in reversed(spec.axes)]

    def compute_parameter(param_id: int) -> dict[str, Any]:
        params: dict[str, Any] = {}
        rest = param_id
        for name, values in axes:  # the last axis varies fastest
            rest, position = divmod(rest, len(values))
            params[name] = values[position]
        return {"param_id": param_id, **params, **function(**params), "worker_id": WORKER_ID}

    return compute_parameter


def main() -> None:
    parser = child.parser(__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=100_000, help="rows to run (from row 0)")
    args = parser.parse_args()
    spec = child.load(args)
    rows = Space(spec).rows
    sample = min(args.sample, rows)
    compute_parameter = parameter_worker(spec)
    began = time.perf_counter()
    results: list[dict[str, Any]] = []
    for param_id in range(sample):
        results.append(compute_parameter(param_id))
        if (param_id + 1) % BATCH_SIZE == 0:
            print(f"worker {WORKER_ID}: processed {param_id + 1}/{rows} parameters")
    table = pa.Table.from_pylist(results)
    with open_writer(args.out / "result.parquet", table.schema, spec) as writer:
        writer.write_table(table)
    child.report({"rows": sample, "total_rows": rows, "work_seconds": time.perf_counter() - began})


if __name__ == "__main__":
    main()
