"""How TTG writes Parquet, in one place: zstd, dictionaries only where they pay, row groups
sized for the pod.

Dictionaries only for grid axes and strings: for high-cardinality floats pyarrow's default
dictionary about doubles the cost of a write. Row groups are sized by bytes, a power of two
of rows of about ROW_GROUP_BYTES, from the schema alone, because a writer and reduce each hold
one in memory, and so the result does not depend on how the sweep was sharded. 8 MiB, not 4:
every row group costs its dictionaries anew, and at 4 MiB a shard took ~20% longer to write
(docs/scaling.md); reduce of a 10^8-row shard peaks at 126 MiB either way.
Compute writes its shard in those same row groups, aligned from `param_id` 0, each encoded from
one contiguous table, so reduce can copy them into the result byte for byte (steps/concat.py).

Row groups, as Parquet defines them: https://parquet.apache.org/docs/file-format/configurations/
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from steps.space import MAX_SHARD_ALIGNMENT, MIN_SHARD_ALIGNMENT
from steps.spec import Spec

__all__ = [
    "ASSUMED_VARIABLE_WIDTH",
    "LAYOUT_VERSION",
    "MAX_ROW_GROUP_ROWS",
    "MIN_ROW_GROUP_ROWS",
    "ROW_GROUP_BYTES",
    "AlignedRowGroups",
    "column_encodings",
    "dictionary_columns",
    "open_writer",
    "row_group_rows",
    "writer_fingerprint",
    "writer_settings",
]


def dictionary_columns(spec: Spec, schema: pa.Schema) -> list[str]:
    grid = {a.name for a in spec.axes if not a.is_random} | ({"stage"} if spec.refine else set())
    return [f.name for f in schema if f.name in grid or pa.types.is_string(f.type)]


def column_encodings(spec: Spec, schema: pa.Schema) -> dict[str, str]:
    """Encodings that shrink what zstd gets and speed it up: `param_id` as deltas (nearly
    nothing), every other float column split into byte streams. Measured on the default
    sweep's columns: 8.8 -> 5.9 bytes a row, writes 36% and reads 46% faster; on random
    floats 16.2 -> 13.8 bytes a row (docs/scaling.md)."""
    dictionary = set(dictionary_columns(spec, schema))
    encodings = {}
    for field in schema:
        if field.name in dictionary:
            continue
        if field.name == "param_id":
            encodings[field.name] = "DELTA_BINARY_PACKED"
        elif pa.types.is_float32(field.type) or pa.types.is_float64(field.type):
            encodings[field.name] = "BYTE_STREAM_SPLIT"
    return encodings


def writer_settings(spec: Spec, schema: pa.Schema) -> dict[str, Any]:
    """Page checksums let reduce verify the pages it copies without decoding them. A column
    chunk is one page of data (Arrow's defaults end one every 20,000 rows or 1 MiB): reduce
    checks every page header it copies, in Python, and seven pages a column chunk cost it
    3.5x the time of two, for files 5% larger and no faster a write (docs/scaling.md)."""
    return {
        "compression": "zstd",
        "use_dictionary": dictionary_columns(spec, schema),
        "write_page_checksum": True,
        "max_rows_per_page": MAX_ROW_GROUP_ROWS,
        "data_page_size": ROW_GROUP_BYTES,  # so a column chunk is one page of data
        "column_encoding": column_encodings(spec, schema) or None,
    }


LAYOUT_VERSION = 3  # bump when how compute cuts or encodes row groups changes


def writer_fingerprint(spec: Spec, schema: pa.Schema) -> str:
    """What decides a row group's bytes besides its rows: reduce copies a shard's row groups
    only if the shard was written with the same (a run resumed after an upgrade is not)."""
    settings = json.dumps(writer_settings(spec, schema), sort_keys=True)
    return f"ttg-layout {LAYOUT_VERSION} pyarrow {pa.__version__} {settings}"


def open_writer(where: Path | pa.NativeFile, schema: pa.Schema, spec: Spec) -> pq.ParquetWriter:
    return pq.ParquetWriter(
        str(where) if isinstance(where, Path) else where, schema, **writer_settings(spec, schema)
    )


ROW_GROUP_BYTES = 8 << 20
MIN_ROW_GROUP_ROWS = MIN_SHARD_ALIGNMENT
MAX_ROW_GROUP_ROWS = MAX_SHARD_ALIGNMENT  # shard boundaries fall on every row-group boundary
# Bytes per value of a string or binary column, whose real width is unknown until written:
# 64 keeps such a schema's groups to the rows they had at 4 MiB and 32 bytes (a 600-byte
# string output peaked compute at 231 MiB so, and at 323 MiB with twice the rows: one-off).
ASSUMED_VARIABLE_WIDTH = 64


def row_group_rows(schema: pa.Schema) -> int:
    """Rows per result row group: ~ROW_GROUP_BYTES of data, a power of two, within bounds."""
    width = sum(_value_bytes(field.type) for field in schema) or 1
    rows = 1 << max(0, int(ROW_GROUP_BYTES // width).bit_length() - 1)
    return max(MIN_ROW_GROUP_ROWS, min(MAX_ROW_GROUP_ROWS, rows))


def _value_bytes(dtype: pa.DataType) -> float:
    try:
        return max(dtype.bit_width / 8, 1 / 8)
    except ValueError:  # variable width
        return ASSUMED_VARIABLE_WIDTH


class AlignedRowGroups:
    """Consecutive rows in; row groups out that start and end on multiples of `size` rows
    counted from `param_id` 0, each one contiguous table (one chunk per column).

    Page boundaries inside a row group depend on how its input was chunked, so each group
    is combined into one chunk before it is written: then the same rows give the same bytes
    in any shard, and in reduce.
    """

    def __init__(self, size: int, first_row: int) -> None:
        self.size = size
        self.next_row = first_row  # param_id of the first row not yet released
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    @property
    def empty(self) -> bool:
        return self._pending_rows == 0

    def add(self, table: pa.Table) -> list[pa.Table]:
        """Take the next rows; return every row group they complete."""
        self._pending.append(table)
        self._pending_rows += table.num_rows
        complete: list[pa.Table] = []
        while True:
            need = self.size - self.next_row % self.size
            if self._pending_rows < need:
                return complete
            rows = pa.concat_tables(self._pending)
            complete.append(rows.slice(0, need).combine_chunks())
            rest = rows.slice(need)
            self._pending = [rest] if rest.num_rows else []
            self._pending_rows -= need
            self.next_row += need

    def skip(self, rows: int) -> None:
        """Account for a whole row group that was passed on as it was, not through `add`."""
        if not self.empty:
            raise ValueError("cannot skip rows while a partial row group is pending")
        self.next_row += rows

    def rest(self) -> pa.Table | None:
        """The rows of an unfinished last group (the end of a shard or of the sweep)."""
        if self.empty:
            return None
        rows = pa.concat_tables(self._pending).combine_chunks()
        self.next_row += self._pending_rows
        self._pending, self._pending_rows = [], 0
        return rows
