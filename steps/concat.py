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
import zlib
from collections.abc import Callable
from typing import BinaryIO, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from steps.thrift_compact import (
    I16,
    I32,
    I64,
    LIST,
    STRUCT,
    TRUE,
    Encoded,
    Struct,
    ThriftError,
    decode_struct,
    decode_struct_at,
    encode_struct,
)

__all__ = [
    "BYTE_ARRAY",
    "CHUNK_INDEXES",
    "CODECS",
    "ENCODING_FIELD",
    "FIXED_WIDTHS",
    "HEADER_FIELDS",
    "LEVEL_ENCODINGS",
    "MAGIC",
    "META_ENCODING_STATS",
    "PAGE_KINDS",
    "SUB_HEADER_FIELDS",
    "ConcatError",
    "ConcatenatedParquet",
    "Source",
    "Writer",
    "group_rows",
    "movable",
    "read_footer",
    "read_footer_at",
    "read_group",
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
                _chunk_start(meta)
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
        start = _chunk_start(meta)
        starts.append(start)
        stops.append(start + meta[META_TOTAL_COMPRESSED][1])
    return min(starts), max(stops)


def _chunk_start(meta: Struct) -> int:
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


def read_group(source: Source, group: Struct) -> bytes:
    """A row group's bytes from `source`, checked without decoding a value: every page's
    header parses, pages fill their column chunk exactly, their values add up to the
    footer's count, and a page that carries a checksum matches it."""
    start, stop = span(group)
    source.seek(start)
    data = source.read(stop - start)
    if len(data) != stop - start:
        raise ConcatError(f"file ends {stop - start - len(data)} bytes short of a row group")
    view = memoryview(data)
    for chunk in group[GROUP_COLUMNS][1][1]:
        meta = chunk[CHUNK_META][1]
        _check_pages(view, _chunk_start(meta) - start, meta)
    return data


def _check_pages(data: memoryview, offset: int, meta: Struct) -> None:
    column = b".".join(meta[META_PATH][1][1]).decode(errors="replace")
    encodings = set(meta[META_ENCODINGS][1][1])
    end = offset + meta[META_TOTAL_COMPRESSED][1]
    values = uncompressed = 0
    kinds: dict[tuple[int, int], int] = {}  # (page type, encoding) -> pages
    while offset < end:
        try:
            header, body = decode_struct_at(data, offset)
        except ThriftError as exc:
            raise ConcatError(f"column {column}: damaged page header ({exc})") from None
        page = _checked_header(header, column, encodings)
        size = header[PAGE_COMPRESSED_SIZE][1]
        if body + size > end:
            raise ConcatError(f"column {column}: a page overruns its column chunk")
        if zlib.crc32(data[body : body + size]) != header[PAGE_CRC][1] & 0xFFFFFFFF:
            raise ConcatError(f"column {column}: page checksum mismatch (damaged data)")
        if page == PAGE_DICTIONARY:
            _check_dictionary(data[body : body + size], header, meta, column)
        else:
            values += header[page][1][1][1]
        kind = (header[1][1], header[page][1][ENCODING_FIELD[page]][1])
        kinds[kind] = kinds.get(kind, 0) + 1
        uncompressed += body - offset + header[PAGE_UNCOMPRESSED_SIZE][1]
        offset = body + size
    if values != meta[META_NUM_VALUES][1] or uncompressed != meta[META_TOTAL_UNCOMPRESSED][1]:
        raise ConcatError(
            f"column {column}: pages hold {values} values in {uncompressed} bytes, the footer "
            f"says {meta[META_NUM_VALUES][1]} in {meta[META_TOTAL_UNCOMPRESSED][1]}"
        )
    if META_ENCODING_STATS in meta:
        stats = meta[META_ENCODING_STATS][1][1]
        recorded = {(s[1][1], s[2][1]): s[3][1] for s in stats}
        if recorded != kinds:
            raise ConcatError(f"column {column}: page encodings unlike the footer's count of them")


# Parquet physical types of a fixed width (parquet.thrift `Type`), in bytes.
FIXED_WIDTHS = {1: 4, 2: 8, 3: 12, 4: 4, 5: 8}
BYTE_ARRAY = 6
CODECS = {0: None, 1: "snappy", 2: "gzip", 4: "brotli", 5: "lz4_raw", 6: "zstd", 7: "lz4_raw"}


def _check_dictionary(body: memoryview, header: Struct, meta: Struct, column: str) -> None:
    """A dictionary page holds exactly the number of entries its header says (the CRC covers
    the entries, not that count, and a wrong count makes every index into it wrong)."""
    count = header[PAGE_DICTIONARY][1][1][1]
    size = header[PAGE_UNCOMPRESSED_SIZE][1]
    physical = meta[1][1]
    if physical in FIXED_WIDTHS:
        if size != count * FIXED_WIDTHS[physical]:
            raise ConcatError(f"column {column}: a dictionary page's size and count disagree")
        return
    if physical != BYTE_ARRAY or meta[4][1] not in CODECS:
        return
    codec = CODECS[meta[4][1]]
    try:
        plain = bytes(body) if codec is None else pa.Codec(codec).decompress(bytes(body), size)
    except (OSError, ValueError):  # pyarrow's ArrowIOError / ArrowInvalid
        raise ConcatError(f"column {column}: a dictionary page does not decompress") from None
    view, position = memoryview(plain), 0
    for _ in range(count):
        if position + 4 > len(view):
            break
        position += 4 + int.from_bytes(view[position : position + 4], "little")
    if position != len(view) or len(view) != size:
        raise ConcatError(f"column {column}: a dictionary page's entries and count disagree")


# What a page header may hold, by field id and type, as parquet.thrift defines it (a CRC is
# required: TTG writes one on every page). The checksum covers a page's data, not its
# header, so the header is held to its definition field by field.
HEADER_FIELDS = {1: I32, 2: I32, 3: I32, PAGE_CRC: I32, 5: STRUCT, 7: STRUCT, 8: STRUCT}
PAGE_KINDS = {0: PAGE_DATA_V1, 2: PAGE_DICTIONARY, 3: PAGE_DATA_V2}  # page type -> sub-header
SUB_HEADER_FIELDS = {
    PAGE_DATA_V1: {1: I32, 2: I32, 3: I32, 4: I32, 5: STRUCT},
    PAGE_DICTIONARY: {1: I32, 2: I32, 3: TRUE},
    PAGE_DATA_V2: {1: I32, 2: I32, 3: I32, 4: I32, 5: I32, 6: I32, 7: TRUE, 8: STRUCT},
}
ENCODING_FIELD = {PAGE_DATA_V1: 2, PAGE_DICTIONARY: 2, PAGE_DATA_V2: 4}
LEVEL_ENCODINGS = {3}  # RLE: what pyarrow writes for v1 levels (BIT_PACKED is deprecated)


def _checked_header(header: Struct, column: str, encodings: set[int]) -> int:
    """The page's kind (its sub-header's field id), once the header is shown well-formed."""

    def bad(why: str) -> ConcatError:
        return ConcatError(f"column {column}: damaged page header ({why})")

    if any(HEADER_FIELDS.get(f) != kind for f, (kind, _) in header.items()):
        raise bad("unexpected field")
    if not all(f in header for f in (1, 2, PAGE_COMPRESSED_SIZE, PAGE_CRC)):
        raise bad("a required field is missing")
    page = PAGE_KINDS.get(header[1][1])
    if page is None or [f for f in PAGE_KINDS.values() if f in header] != [page]:
        raise bad("page type and sub-header disagree")
    sub = header[page][1]
    expected = SUB_HEADER_FIELDS[page]
    if any(expected.get(f) != kind for f, (kind, _) in sub.items()):
        raise bad("unexpected field in its sub-header")
    required = (1, ENCODING_FIELD[page], *((3, 4) if page == PAGE_DATA_V1 else ()))
    if not all(field in sub for field in required):
        raise bad("no value count or encoding")
    if sub[ENCODING_FIELD[page]][1] not in encodings:
        raise bad("an encoding the column chunk does not list")
    sizes = (header[PAGE_UNCOMPRESSED_SIZE][1], header[PAGE_COMPRESSED_SIZE][1], sub[1][1])
    if min(sizes) < 0:
        raise bad("a negative size or count")
    if page == PAGE_DATA_V2 and sub.get(5, (I32, 0))[1] + sub.get(6, (I32, 0))[1] > sizes[1]:
        raise bad("level lengths exceed the page")
    if page == PAGE_DATA_V1 and not {sub[3][1], sub[4][1]} <= LEVEL_ENCODINGS:
        raise bad("levels in an encoding levels cannot have")
    return page


Writer = Callable[[pa.NativeFile], pq.ParquetWriter]


class ConcatenatedParquet:
    """Builds a Parquet file in `out` from row groups appended in order.

    `writer` opens a pyarrow writer with the result's schema, metadata and settings: the
    footer it writes for no rows is the template of the result's footer, and it encodes the
    row groups that are not copied. Each appended group's footer entry is kept encoded
    (~0.4 KB for four columns), so a result of many thousand groups stays small in memory."""

    def __init__(self, out: BinaryIO, writer: Writer) -> None:
        self.out, self.writer = out, writer
        self.template = read_footer(pa.BufferReader(_encoded(writer, None)))
        if FILE_ENCRYPTION in self.template:
            raise ConcatError("encrypted files cannot be concatenated")
        self.groups: list[Encoded] = []
        self.rows = 0
        self.size = len(MAGIC)  # bytes of the result so far, footer not included
        out.write(MAGIC)

    def append(self, data: bytes, group: Struct) -> None:
        """Append a row group: `data` from `read_group`, `group` its footer entry."""
        self.place(group)
        self.out.write(data)

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
        encoded = pa.BufferReader(_encoded(self.writer, table))
        (group,) = row_groups(read_footer(encoded))
        self.append(read_group(encoded, group), group)

    def footer(self) -> bytes:
        """The result's footer: FileMetaData, its length and the closing magic."""
        footer = dict(self.template)
        footer[FILE_NUM_ROWS] = (I64, self.rows)
        footer[FILE_ROW_GROUPS] = (LIST, (STRUCT, self.groups))
        data = encode_struct(dict(sorted(footer.items())))
        return data + struct.pack("<I", len(data)) + MAGIC

    def finish(self) -> None:
        self.out.write(self.footer())


def _encoded(writer: Writer, table: pa.Table | None) -> pa.Buffer:
    """A whole Parquet file holding `table` as one row group (or no rows at all)."""
    sink = pa.BufferOutputStream()
    with writer(sink) as opened:
        if table is not None:
            opened.write_table(table, row_group_size=max(1, table.num_rows))
    return sink.getvalue()
