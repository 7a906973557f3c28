"""A row group's pages checked without decoding a value: every page header parses and is
what `parquet.thrift` allows, pages fill their column chunk exactly, their values add up to
the footer's count, a dictionary holds what it says, and a page that carries a checksum
matches it. What reduce applies to every page it copies (docs/integrity.md).

Parquet's pages and their headers: https://parquet.apache.org/docs/file-format/data-pages/
"""

from __future__ import annotations

import pyarrow as pa
from isal.isal_zlib import crc32  # zlib's CRC-32, 4x faster (pyproject.toml)

from steps.concat import (
    CHUNK_META,
    GROUP_COLUMNS,
    META_ENCODING_STATS,
    META_ENCODINGS,
    META_NUM_VALUES,
    META_PATH,
    META_TOTAL_COMPRESSED,
    META_TOTAL_UNCOMPRESSED,
    PAGE_COMPRESSED_SIZE,
    PAGE_CRC,
    PAGE_DATA_V1,
    PAGE_DATA_V2,
    PAGE_DICTIONARY,
    PAGE_UNCOMPRESSED_SIZE,
    ConcatError,
    Source,
    chunk_start,
    span,
)
from steps.thrift_compact import I32, STRUCT, TRUE, Struct, ThriftError, decode_struct_at

__all__ = [
    "BYTE_ARRAY",
    "CODECS",
    "ENCODING_FIELD",
    "FIXED_WIDTHS",
    "HEADER_FIELDS",
    "LEVEL_ENCODINGS",
    "PAGE_KINDS",
    "STATISTICS_FIELD",
    "SUB_HEADER_FIELDS",
    "check_group",
    "read_group",
]


def read_group(source: Source, group: Struct) -> bytes:
    """A row group's bytes from `source`, checked without decoding a value: every page's
    header parses, pages fill their column chunk exactly, their values add up to the
    footer's count, and a page that carries a checksum matches it."""
    start, stop = span(group)
    source.seek(start)
    data = source.read(stop - start)
    check_group(memoryview(data), group)
    return data


def check_group(data: memoryview, group: Struct) -> None:
    """`read_group`'s checks on a row group's bytes, `data` (a slice of a mapped file, say)."""
    start, stop = span(group)
    if len(data) != stop - start:
        raise ConcatError(f"file ends {stop - start - len(data)} bytes short of a row group")
    for chunk in group[GROUP_COLUMNS][1][1]:
        meta = chunk[CHUNK_META][1]
        _check_pages(data, chunk_start(meta) - start, meta)


def _check_pages(data: memoryview, offset: int, meta: Struct) -> None:
    column = b".".join(meta[META_PATH][1][1]).decode(errors="replace")
    encodings = set(meta[META_ENCODINGS][1][1])
    end = offset + meta[META_TOTAL_COMPRESSED][1]
    values = uncompressed = 0
    kinds: dict[tuple[int, int], int] = {}  # (page type, encoding) -> pages
    statistics = []  # each data page's, from its header (None where it has none)
    while offset < end:
        try:
            header, body = decode_struct_at(data, offset)
        except ThriftError as exc:
            raise ConcatError(f"column {column}: damaged page header ({exc})") from None
        page = _checked_header(header, column, encodings)
        size = header[PAGE_COMPRESSED_SIZE][1]
        if body + size > end:
            raise ConcatError(f"column {column}: a page overruns its column chunk")
        if crc32(data[body : body + size]) != header[PAGE_CRC][1] & 0xFFFFFFFF:
            raise ConcatError(f"column {column}: page checksum mismatch (damaged data)")
        if page == PAGE_DICTIONARY:
            _check_dictionary(data[body : body + size], header, meta, column)
        else:
            values += header[page][1][1][1]
            statistics.append(header[page][1].get(STATISTICS_FIELD[page]))
        kind = (header[1][1], header[page][1][ENCODING_FIELD[page]][1])
        kinds[kind] = kinds.get(kind, 0) + 1
        uncompressed += body - offset + header[PAGE_UNCOMPRESSED_SIZE][1]
        offset = body + size
    if values != meta[META_NUM_VALUES][1] or uncompressed != meta[META_TOTAL_UNCOMPRESSED][1]:
        raise ConcatError(
            f"column {column}: pages hold {values} values in {uncompressed} bytes, the footer "
            f"says {meta[META_NUM_VALUES][1]} in {meta[META_TOTAL_UNCOMPRESSED][1]}"
        )
    # A page's statistics lie outside its checksum; the footer's, of the whole chunk, are
    # sealed. Of a chunk of one data page (what TTG writes) they are the same.
    chunk = meta.get(META_STATISTICS)
    if len(statistics) == 1 and None not in (chunk, statistics[0]) and statistics[0] != chunk:
        raise ConcatError(f"column {column}: a page's statistics unlike its column chunk's")
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
STATISTICS_FIELD = {PAGE_DATA_V1: 5, PAGE_DATA_V2: 8}
META_STATISTICS = 12  # ColumnMetaData.statistics
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
