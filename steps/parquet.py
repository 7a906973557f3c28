"""How TTG writes Parquet, in one place: zstd, dictionaries only where they pay, row groups
sized for the pod.

pyarrow dictionary-encodes every column by default; for high-cardinality floats that about
doubles the cost of a write. Grid axes (few distinct values) and strings compress well with
dictionaries, so only they get one.

A Parquet writer holds a whole row group in memory, and reduce also holds one being read,
so the result's row groups are sized by bytes, not rows: about ROW_GROUP_BYTES of data each,
a power of two of rows. The schema alone decides it, so the result does not depend on how
the sweep was sharded. (Measured on the default sweep: 2^20-row groups peaked reduce at
294 MB, over the pod's 256Mi limit; 2^17 at 171 MB.)
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from steps.spec import Spec


def dictionary_columns(spec: Spec, schema: pa.Schema) -> list[str]:
    grid = {a.name for a in spec.axes if not a.is_random}
    return [f.name for f in schema if f.name in grid or pa.types.is_string(f.type)]


def open_writer(path: Path, schema: pa.Schema, spec: Spec) -> pq.ParquetWriter:
    return pq.ParquetWriter(
        str(path), schema, compression="zstd", use_dictionary=dictionary_columns(spec, schema)
    )


ROW_GROUP_BYTES = 4 << 20
MIN_ROW_GROUP_ROWS = 1 << 10
MAX_ROW_GROUP_ROWS = 1 << 20
ASSUMED_VARIABLE_WIDTH = 32  # bytes per value of a string or binary column


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
