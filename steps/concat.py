"""One Parquet file from other files' row groups, copied byte for byte.

Re-encoding every row is most of what a merge costs. A row group is self-contained (its
column chunks hold their own pages and dictionaries), and only the footer says where it is,
so a row group can be moved to another file by copying its bytes and rewriting the offsets in
its footer entry. Reduce uses this for the shards' whole row groups; the few it has to build
itself (where shards meet mid-group) are encoded by pyarrow into a small file first and then
copied the same way. The footer keeps everything pyarrow wrote (schema, key-value metadata,
statistics); only row-group offsets, ordinals and the row count change.

Field ids are parquet-format's `parquet.thrift`.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import BinaryIO, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from steps.thrift_compact import I16, I64, LIST, STRUCT, Struct, decode_struct, encode_struct

MAGIC = b"PAR1"
COPY_BYTES = 16 << 20  # largest single read while copying

# FileMetaData
FILE_NUM_ROWS, FILE_ROW_GROUPS, FILE_ENCRYPTION = 3, 4, 8
# RowGroup
GROUP_COLUMNS, GROUP_NUM_ROWS, GROUP_FILE_OFFSET, GROUP_ORDINAL = 1, 3, 5, 7
# ColumnChunk
CHUNK_FILE_PATH, CHUNK_FILE_OFFSET, CHUNK_META = 1, 2, 3
CHUNK_INDEXES = (4, 6, 8, 9)  # offset index, column index, crypto metadata, encrypted metadata
# ColumnMetaData
META_TOTAL_COMPRESSED, META_DATA_PAGE, META_INDEX_PAGE, META_DICTIONARY_PAGE = 7, 9, 10, 11
META_BLOOM_FILTER = 14


class Source(Protocol):
    """A seekable reader: a file, a store object, or a pyarrow buffer."""

    def seek(self, offset: int, whence: int = ..., /) -> int: ...

    def read(self, size: int = ..., /) -> bytes: ...


class ConcatError(ValueError):
    """A file whose row groups cannot be moved on their own (e.g. a page index or bloom
    filter stored outside them, or encryption)."""


def read_footer(source: Source) -> Struct:
    """The FileMetaData of the Parquet file `source`."""
    source.seek(-8, io.SEEK_END)
    tail = source.read(8)
    if len(tail) != 8 or tail[4:] != MAGIC:
        raise ConcatError("not a Parquet file (no PAR1 at its end)")
    (length,) = struct.unpack("<I", tail[:4])
    source.seek(-8 - length, io.SEEK_END)
    return decode_struct(source.read(length))


def row_groups(footer: Struct) -> list[Struct]:
    return list(footer[FILE_ROW_GROUPS][1][1]) if FILE_ROW_GROUPS in footer else []


def group_rows(group: Struct) -> int:
    return int(group[GROUP_NUM_ROWS][1])


def movable(group: Struct) -> bool:
    """Whether `copy` can move this row group (nothing of it lies outside its byte span)."""
    try:
        _span(group)
    except ConcatError:
        return False
    return True


def _span(group: Struct) -> tuple[int, int]:
    """Where the group's bytes lie in its file: its column chunks, which pyarrow writes
    back to back."""
    starts, stops = [], []
    for chunk in group[GROUP_COLUMNS][1][1]:
        if any(f in chunk for f in CHUNK_INDEXES) or chunk.get(CHUNK_FILE_PATH, (0, b""))[1]:
            raise ConcatError("a column chunk has a page index, encryption or an external file")
        meta = chunk[CHUNK_META][1]
        if META_BLOOM_FILTER in meta:
            raise ConcatError("a column chunk has a bloom filter")
        start = meta[META_DICTIONARY_PAGE][1] if META_DICTIONARY_PAGE in meta else 0
        start = start or meta[META_DATA_PAGE][1]
        starts.append(start)
        stops.append(start + meta[META_TOTAL_COMPRESSED][1])
    return min(starts), max(stops)


def _moved(group: Struct, shift: int, ordinal: int) -> Struct:
    """The footer entry of `group` once its bytes are `shift` bytes further on."""

    def plus(fields: Struct, field_id: int) -> None:
        if field_id in fields and fields[field_id][1]:  # 0 means "not set" in old writers
            fields[field_id] = (I64, fields[field_id][1] + shift)

    group = dict(group)
    chunks = []
    for original in group[GROUP_COLUMNS][1][1]:
        chunk, meta = dict(original), dict(original[CHUNK_META][1])
        for field_id in (META_DATA_PAGE, META_INDEX_PAGE, META_DICTIONARY_PAGE):
            plus(meta, field_id)
        chunk[CHUNK_META] = (STRUCT, meta)
        plus(chunk, CHUNK_FILE_OFFSET)
        chunks.append(chunk)
    group[GROUP_COLUMNS] = (LIST, (STRUCT, chunks))
    plus(group, GROUP_FILE_OFFSET)
    if GROUP_ORDINAL in group:
        group[GROUP_ORDINAL] = (I16, ordinal)
    return group


Writer = Callable[[pa.NativeFile], pq.ParquetWriter]


class ConcatenatedParquet:
    """Builds a Parquet file in `out` from row groups appended in order.

    `writer` opens a pyarrow writer with the result's schema, metadata and settings: the
    footer it writes for no rows is the template of the result's footer, and it encodes the
    row groups that are not copied."""

    def __init__(self, out: BinaryIO, writer: Writer) -> None:
        self.out, self.writer = out, writer
        self.template = read_footer(pa.BufferReader(_encoded(writer, None)))
        if FILE_ENCRYPTION in self.template:
            raise ConcatError("encrypted files cannot be concatenated")
        self.groups: list[Struct] = []
        self.rows = 0
        out.write(MAGIC)

    def copy(self, source: Source, group: Struct) -> None:
        """Append a row group of the Parquet file `source` (whose footer gave `group`)."""
        start, stop = _span(group)
        shift = self.out.tell() - start
        source.seek(start)
        remaining = stop - start
        while remaining:
            data = source.read(min(remaining, COPY_BYTES))
            if not data:
                raise ConcatError(f"file ends {remaining} bytes short of its row group")
            self.out.write(data)
            remaining -= len(data)
        self.groups.append(_moved(group, shift, len(self.groups)))
        self.rows += group_rows(group)

    def encode(self, table: pa.Table) -> None:
        """Append `table` as one new row group."""
        encoded = pa.BufferReader(_encoded(self.writer, table))
        (group,) = row_groups(read_footer(encoded))
        self.copy(encoded, group)

    def finish(self) -> None:
        footer = dict(self.template)
        footer[FILE_NUM_ROWS] = (I64, self.rows)
        footer[FILE_ROW_GROUPS] = (LIST, (STRUCT, self.groups))
        data = encode_struct(dict(sorted(footer.items())))
        self.out.write(data + struct.pack("<I", len(data)) + MAGIC)


def _encoded(writer: Writer, table: pa.Table | None) -> pa.Buffer:
    """A whole Parquet file holding `table` as one row group (or no rows at all)."""
    sink = pa.BufferOutputStream()
    with writer(sink) as opened:
        if table is not None:
            opened.write_table(table, row_group_size=max(1, table.num_rows))
    return sink.getvalue()
