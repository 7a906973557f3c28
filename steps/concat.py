"""One Parquet file from other files' row groups, copied byte for byte.

Re-encoding every row is most of what a merge costs. A row group is self-contained (its
column chunks hold their own pages and dictionaries), and only the footer says where it is,
so a row group can be moved to another file by copying its bytes and rewriting the offsets in
its footer entry. Reduce uses this for the shards' whole row groups; the few it has to build
itself (where shards meet mid-group) are encoded by pyarrow into a small file first and then
copied the same way. The footer keeps everything pyarrow wrote (schema, key-value metadata,
statistics); only row-group offsets, ordinals and the row count change.

Field ids are parquet-format's `parquet.thrift`.

Parquet's file layout: https://parquet.apache.org/docs/file-format/
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import BinaryIO, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from steps.kernel_copy import KernelCopy
from steps.thrift_compact import (
    I16,
    I64,
    LIST,
    STRUCT,
    Encoded,
    Struct,
    decode_struct,
    encode_struct,
)

__all__ = [
    "CHUNK_INDEXES",
    "MAGIC",
    "META_ENCODING_STATS",
    "ConcatError",
    "ConcatenatedParquet",
    "Source",
    "Writer",
    "chunk_start",
    "group_rows",
    "movable",
    "read_footer",
    "read_footer_at",
    "row_groups",
    "span",
]

MAGIC = b"PAR1"

# FileMetaData
FILE_NUM_ROWS, FILE_ROW_GROUPS, FILE_ENCRYPTION = 3, 4, 8
# RowGroup
GROUP_COLUMNS, GROUP_NUM_ROWS, GROUP_FILE_OFFSET, GROUP_ORDINAL = 1, 3, 5, 7
# ColumnChunk
CHUNK_FILE_PATH, CHUNK_FILE_OFFSET, CHUNK_META = 1, 2, 3
CHUNK_INDEXES = (4, 6, 8, 9)  # offset index, column index, crypto metadata, encrypted metadata
# ColumnMetaData
META_ENCODINGS, META_PATH, META_NUM_VALUES = 2, 3, 5
META_TOTAL_UNCOMPRESSED, META_TOTAL_COMPRESSED = 6, 7
META_DATA_PAGE, META_INDEX_PAGE, META_DICTIONARY_PAGE, META_BLOOM_FILTER = 9, 10, 11, 14
META_ENCODING_STATS = 13
# PageHeader: sizes, checksum, and the sub-header of each kind (field 1: number of values)
PAGE_UNCOMPRESSED_SIZE, PAGE_COMPRESSED_SIZE, PAGE_CRC = 2, 3, 4
PAGE_DATA_V1, PAGE_DICTIONARY, PAGE_DATA_V2 = 5, 7, 8


class Source(Protocol):
    """A seekable reader: a file, a store object, or a pyarrow buffer."""

    def seek(self, offset: int, whence: int = ..., /) -> int: ...

    def read(self, size: int = ..., /) -> bytes: ...


class ConcatError(ValueError):
    """A file, footer or row group that cannot be copied as it is: damaged, or with parts
    stored outside its row groups (page index, bloom filter, encryption)."""


def read_footer(source: Source) -> Struct:
    """The FileMetaData of the Parquet file `source`."""
    return read_footer_at(source)[1]


def read_footer_at(source: Source) -> tuple[int, Struct]:
    """Where the footer of `source` begins, and the FileMetaData it holds."""
    size = source.seek(0, io.SEEK_END)
    if size < 12:
        raise ConcatError("not a Parquet file (too short)")
    source.seek(-8, io.SEEK_END)
    tail = source.read(8)
    if len(tail) != 8 or tail[4:] != MAGIC:
        raise ConcatError("not a Parquet file (no PAR1 at its end)")
    (length,) = struct.unpack("<I", tail[:4])
    if length > size - 12:
        raise ConcatError(f"footer length {length} does not fit in a file of {size} bytes")
    start = source.seek(-8 - length, io.SEEK_END)
    return start, decode_struct(source.read(length))


def row_groups(footer: Struct) -> list[Struct]:
    """The footer's row groups, each checked to have what copying one needs."""
    groups = list(footer[FILE_ROW_GROUPS][1][1]) if FILE_ROW_GROUPS in footer else []
    for group in groups:
        try:
            group_rows(group)
            for chunk in group[GROUP_COLUMNS][1][1]:
                meta = chunk[CHUNK_META][1]
                for field in (META_ENCODINGS, META_PATH, META_NUM_VALUES, META_TOTAL_COMPRESSED):
                    meta[field][1]
                chunk_start(meta)
        except (KeyError, TypeError, IndexError, ValueError):
            raise ConcatError("the footer's row groups are not well formed") from None
    return groups


def group_rows(group: Struct) -> int:
    return int(group[GROUP_NUM_ROWS][1])


def movable(group: Struct) -> bool:
    """Whether `copy` can move this row group (nothing of it lies outside its byte span)."""
    try:
        span(group)
    except ConcatError:
        return False
    return True


def span(group: Struct) -> tuple[int, int]:
    """Where the group's bytes lie in its file: its column chunks, which pyarrow writes
    back to back."""
    starts, stops = [], []
    for chunk in group[GROUP_COLUMNS][1][1]:
        if any(f in chunk for f in CHUNK_INDEXES) or chunk.get(CHUNK_FILE_PATH, (0, b""))[1]:
            raise ConcatError("a column chunk has a page index, encryption or an external file")
        meta = chunk[CHUNK_META][1]
        if META_BLOOM_FILTER in meta:
            raise ConcatError("a column chunk has a bloom filter")
        start = chunk_start(meta)
        starts.append(start)
        stops.append(start + meta[META_TOTAL_COMPRESSED][1])
    return min(starts), max(stops)


def chunk_start(meta: Struct) -> int:
    """A column chunk begins with its dictionary page, if any, else its first data page."""
    start = meta[META_DICTIONARY_PAGE][1] if META_DICTIONARY_PAGE in meta else 0
    return int(start or meta[META_DATA_PAGE][1])


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
    row groups that are not copied. Each appended group's footer entry is kept encoded
    (~0.4 KB for four columns), so a result of many thousand groups stays small in memory.
    Every part is written at its own offset, so the kernel may still be copying earlier
    groups (steps/kernel_copy.py) while later ones are written; `finish` waits for it. Used
    as a context manager, an error stops the copies (the file is then to be discarded)."""

    def __init__(self, out: BinaryIO, writer: Writer) -> None:
        self.out, self.writer = out, writer
        self.template = read_footer(pa.BufferReader(_encoded(writer, None)))
        if FILE_ENCRYPTION in self.template:
            raise ConcatError("encrypted files cannot be concatenated")
        self.groups: list[Encoded] = []
        self.rows = 0
        self.size = len(MAGIC)  # bytes of the result so far, footer not included
        self._copier: KernelCopy | None = None
        out.write(MAGIC)

    def __enter__(self) -> ConcatenatedParquet:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._copier is not None:
            self._copier.abandon()

    def append(self, data: bytes, group: Struct) -> None:
        """Append a row group: `data` from `read_group`, `group` its footer entry."""
        self.out.seek(self.size)
        self.place(group)
        self.out.write(data)

    def append_copy(self, source: int, group: Struct, name: str) -> bool:
        """Append a row group that lies, checked (`check_group`), in the file `source` (a
        descriptor), copied by the kernel: the bytes never pass through this process (up
        to 12x faster than reading and writing them, measured: docs/scaling.md). False,
        with nothing appended, if the kernel cannot copy between these two files. `name`
        is the source's, for a copy that fails later (CopyError, from `finish`)."""
        if self._copier is None:
            self.out.flush()
            self._copier = KernelCopy(self.out.fileno())
        start, stop = span(group)
        if not self._copier.copy(source, start, stop, self.size, name):
            return False
        self.place(group)
        return True

    def place(self, group: Struct) -> None:
        """Enter `group` in the footer as the next bytes of the result, without writing
        them: the caller puts them there (a server-side copy, steps/compose.py)."""
        start, stop = span(group)
        self.groups.append(
            Encoded(encode_struct(_moved(group, self.size - start, len(self.groups))))
        )
        self.rows += group_rows(group)
        self.size += stop - start

    def encode(self, table: pa.Table) -> None:
        """Append `table` as one new row group."""
        data = _encoded(self.writer, table)
        (group,) = row_groups(read_footer(pa.BufferReader(data)))
        start, stop = span(group)  # bytes pyarrow just wrote: nothing to check
        self.append(data[start:stop].to_pybytes(), group)

    def footer(self) -> bytes:
        """The result's footer: FileMetaData, its length and the closing magic."""
        footer = dict(self.template)
        footer[FILE_NUM_ROWS] = (I64, self.rows)
        footer[FILE_ROW_GROUPS] = (LIST, (STRUCT, self.groups))
        data = encode_struct(dict(sorted(footer.items())))
        return data + struct.pack("<I", len(data)) + MAGIC

    def finish(self) -> None:
        """Write the footer and wait for the kernel's copies (CopyError if one failed)."""
        self.out.seek(self.size)
        self.out.write(self.footer())
        if self._copier is not None:
            self._copier.finish()


def _encoded(writer: Writer, table: pa.Table | None) -> pa.Buffer:
    """A whole Parquet file holding `table` as one row group (or no rows at all)."""
    sink = pa.BufferOutputStream()
    with writer(sink) as opened:
        if table is not None:
            opened.write_table(table, row_group_size=max(1, table.num_rows))
    return sink.getvalue()
