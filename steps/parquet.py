"""How TTG writes Parquet, in one place: zstd, and dictionaries only where they pay.

pyarrow dictionary-encodes every column by default; for high-cardinality floats that about
doubles the cost of a write. Grid axes (few distinct values) and strings compress well with
dictionaries, so only they get one.
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
