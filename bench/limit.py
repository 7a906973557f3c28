"""*limit*: the best one-process implementation of the sweep, the yardstick for the others.

numpy over all rows at once, the function called once, then one zstd Parquet write with the
pipeline's own settings (dictionaries where they pay, the result's row-group size). No
orchestration, no checks, no summary: nothing a real run could do less than.
With `--chunked`, the same one process and one file, but computed and written
`chunk_rows` at a time (cache-sized arrays instead of 80 MB temporaries).
"""

from __future__ import annotations

import time

from bench import child
from bench.grid import grid_table
from steps.function import import_function
from steps.parquet import open_writer, row_group_rows
from steps.space import Space


def main() -> None:
    parser = child.parser(__doc__.splitlines()[0])
    parser.add_argument("--chunked", action="store_true", help="compute chunk_rows at a time")
    args = parser.parse_args()
    spec = child.load(args)
    function = import_function(spec.function)
    rows = Space(spec).rows
    step = spec.chunk_rows if args.chunked else rows
    began = time.perf_counter()
    computing = writing = 0.0
    writer = None
    try:
        for start in range(0, rows, step):
            chunk_began = time.perf_counter()
            table = grid_table(spec, function, start, min(start + step, rows))
            computed = time.perf_counter()
            if writer is None:
                writer = open_writer(args.out / "result.parquet", table.schema, spec)
            writer.write_table(table, row_group_size=row_group_rows(table.schema))
            computing += computed - chunk_began
            writing += time.perf_counter() - computed
    finally:
        if writer is not None:
            writer.close()
    child.report(
        {
            "rows": rows,
            "compute_seconds": computing,
            "write_seconds": writing,
            "seconds": time.perf_counter() - began,
        }
    )


if __name__ == "__main__":
    main()
