"""Reduce copies the shards' row groups into the result byte for byte; the result must be the
very file that decoding and re-encoding every row would have written."""

from __future__ import annotations

import contextlib
import dataclasses
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steps import concat, exit_codes, layout, page_check, parquet, reduce
from steps.compute import compute_shard
from steps.concat import ConcatenatedParquet, ConcatError, read_footer
from steps.parquet import AlignedRowGroups
from steps.shards import UNSEALED, seal_footer
from steps.spec import Spec, parse_spec
from steps.store import Store, open_store
from steps.thrift_compact import (
    Struct,
    ThriftError,
    decode_struct,
    decode_struct_at,
    encode_struct,
)
from tests.test_pipeline import MIXED, data_bytes, mixed, run_all

GROUP = 64  # the result's row group size in these tests: 560 rows make 9 groups


@pytest.fixture(autouse=True)
def small_row_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parquet, "MIN_ROW_GROUP_ROWS", GROUP)
    monkeypatch.setattr(parquet, "MAX_ROW_GROUP_ROWS", GROUP)


def footer_bytes(blob: bytes) -> bytes:
    length = int.from_bytes(blob[-8:-4], "little")
    return blob[-8 - length : -8]


def compute_all(store: Store, spec: Spec, run_id: str) -> list[reduce.ShardInfo]:
    for index in range(spec.shards):
        compute_shard(spec, store, run_id, index)
    return reduce.verify_shards(store, spec, run_id)


def test_a_parquet_footer_decodes_and_encodes_back_to_the_same_bytes(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    run_all(store, mixed(3, 50), "r")  # strings, bools, dictionaries, statistics, metadata
    files = sorted(tmp_path.glob("mixed/r/**/*.parquet"))
    assert len(files) == 4
    for path in files:
        footer = footer_bytes(path.read_bytes())
        assert encode_struct(decode_struct(footer)) == footer, path.name


@pytest.mark.parametrize("cut", [1, 100, -1])
def test_a_damaged_footer_is_a_thrift_error_not_a_crash(tmp_path: Path, cut: int) -> None:
    pq.write_table(pa.table({"a": [1, 2, 3]}), tmp_path / "t.parquet")
    footer = footer_bytes((tmp_path / "t.parquet").read_bytes())
    with pytest.raises(ThriftError):
        decode_struct(footer[:cut])
    with pytest.raises(ThriftError):
        decode_struct(footer + b"\x00")


@pytest.mark.parametrize("shards,chunk_rows", [(1, 560), (3, 50), (7, 13), (9, 200), (40, 7)])
def test_copying_row_groups_writes_the_file_re_encoding_would(
    tmp_path: Path, shards: int, chunk_rows: int
) -> None:
    store = open_store(str(tmp_path))
    spec = mixed(shards, chunk_rows)
    infos = compute_all(store, spec, "r")
    copied, encoded = tmp_path / "copied.parquet", tmp_path / "encoded.parquet"
    assert reduce.concatenate_shards(store, spec, "r", infos, copied) == 560
    assert reduce.reencode_shards(store, spec, "r", infos, encoded) == 560
    assert copied.read_bytes() == encoded.read_bytes()
    metadata = pq.ParquetFile(copied).metadata
    assert [metadata.row_group(i).num_rows for i in range(9)] == [GROUP] * 8 + [560 - 8 * GROUP]
    assert pq.read_table(copied).column("param_id").to_pylist() == list(range(560))


class Counting:
    """Counts what ConcatenatedParquet did: groups appended, and how many it encoded."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.appended = self.encoded = self.copied = 0
        append, encode = ConcatenatedParquet.append, ConcatenatedParquet.encode
        append_copy = ConcatenatedParquet.append_copy

        def counting_append(result: ConcatenatedParquet, data: bytes, group: Struct) -> None:
            self.appended += 1
            append(result, data, group)

        def counting_copy(
            result: ConcatenatedParquet, source: int, group: Struct, name: str
        ) -> bool:
            copied = append_copy(result, source, group, name)
            self.appended += copied
            self.copied += copied
            return copied

        def counting_encode(result: ConcatenatedParquet, table: pa.Table) -> None:
            self.encoded += 1
            encode(result, table)

        monkeypatch.setattr(ConcatenatedParquet, "append", counting_append)
        monkeypatch.setattr(ConcatenatedParquet, "encode", counting_encode)
        monkeypatch.setattr(ConcatenatedParquet, "append_copy", counting_copy)


def test_whole_row_groups_are_copied_and_only_the_seams_between_shards_re_encoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(str(tmp_path))
    spec = mixed(3, 50)  # shards [0, 186) [186, 373) [373, 560): 3 seams inside a group
    infos = compute_all(store, spec, "r")
    calls = Counting(monkeypatch)
    reduce.concatenate_shards(store, spec, "r", infos, tmp_path / "result.parquet")
    # groups [128,192) [320,384) hold a seam; [512,560) is the sweep's own short tail
    assert calls.encoded == 2
    assert calls.appended == 9  # 7 straight from the shards, plus the 2 encoded ones
    assert calls.copied == 7  # by the kernel: the shards are files of this machine


def test_shards_of_another_writer_are_decoded_so_a_resumed_run_matches_a_fresh_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run resumed after an upgrade (another pyarrow, other writer settings) has shards
    whose bytes the current writer would not produce: none of their groups is copied."""
    store = open_store(str(tmp_path))
    spec = mixed(3, 50)
    infos = compute_all(store, spec, "r")
    reduce.concatenate_shards(store, spec, "r", infos, tmp_path / "fresh.parquet")
    older = [dataclasses.replace(info, writer="pyarrow 0.1 {}") for info in infos]
    calls = Counting(monkeypatch)
    reduce.concatenate_shards(store, spec, "r", older, tmp_path / "resumed.parquet")
    assert calls.encoded == calls.appended == 9
    assert (tmp_path / "fresh.parquet").read_bytes() == (tmp_path / "resumed.parquet").read_bytes()


def _damage(path: Path, group: int, column: int) -> None:
    """Flip bytes inside the data of one page of the shard at `path`, leaving headers intact."""
    meta = pq.ParquetFile(path).metadata.row_group(group).column(column)
    blob = bytearray(path.read_bytes())
    at = meta.data_page_offset + meta.total_compressed_size - 8  # the tail of the last page
    blob[at : at + 4] = bytes(b ^ 0xFF for b in blob[at : at + 4])
    path.write_bytes(bytes(blob))


@pytest.mark.parametrize(
    "group,keep",
    [(1, "all"), (0, "all"), (0, {"where": "score > -100"})],
    ids=["copied-group", "seam-group", "kept-rows"],
)
def test_a_damaged_page_fails_the_reduce_naming_the_shard_and_writes_nothing(
    tmp_path: Path, group: int, keep: object
) -> None:
    store = open_store(str(tmp_path))
    # shard 1's group 0 is [186, 192), a seam; group 1 is [192, 256); kept rows are re-encoded
    spec = parse_spec(MIXED | {"shards": 3, "chunk_rows": 50, "keep": keep})
    compute_all(store, spec, "r")
    key = layout.shard_key("mixed", "r", 1, 3)
    _damage(tmp_path / key, group, column=6)  # `score`: plain float64 pages
    with pytest.raises(reduce.ShardError, match=f"{key} is damaged"):
        reduce.reduce_run(store, spec, "r")
    run = tmp_path / "mixed" / "r"
    assert not (run / "result.parquet").exists() and not (run / "_SUCCESS").exists()


def test_a_damaged_page_header_fails_the_reduce_though_checksums_cover_only_page_data(
    tmp_path: Path,
) -> None:
    store = open_store(str(tmp_path))
    spec = mixed(3, 50)
    compute_all(store, spec, "r")
    key = layout.shard_key("mixed", "r", 1, 3)
    path = tmp_path / key
    first_page = pq.ParquetFile(path).metadata.row_group(1).column(6).data_page_offset
    blob = bytearray(path.read_bytes())
    assert blob[first_page : first_page + 2] == b"\x15\x00"  # field 1 (type), i32: data page
    blob[first_page + 1] = 0x02  # zigzag 1: an index page, with a data page's sub-header
    path.write_bytes(bytes(blob))
    with pytest.raises(reduce.ShardError, match="damaged page header"):
        reduce.reduce_run(store, spec, "r")
    assert not (tmp_path / "mixed/r/result.parquet").exists()


def test_a_dictionary_page_whose_count_is_wrong_fails_the_reduce_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The count a dictionary header gives is outside its checksum: a wrong one is damage,
    said in one line naming the shard (not a traceback from closing the shard's map while
    the error still held a view of it)."""
    store = open_store(str(tmp_path))
    spec = mixed(3, 50)
    compute_all(store, spec, "r")
    key = layout.shard_key("mixed", "r", 1, 3)
    path = tmp_path / key
    blob = bytearray(path.read_bytes())
    metadata = pq.ParquetFile(path).metadata.row_group(1)
    offset = next(
        metadata.column(c).dictionary_page_offset
        for c in range(metadata.num_columns)
        if metadata.column(c).has_dictionary_page
    )
    header, end = decode_struct_at(bytes(blob), offset)
    sub = dict(header[7][1])
    sub[1] = (sub[1][0], sub[1][1] + 1)  # DictionaryPageHeader.num_values, one too many
    damaged = encode_struct(header | {7: (header[7][0], sub)})
    assert len(damaged) == end - offset
    blob[offset:end] = damaged
    path.write_bytes(bytes(blob))
    argv = ["--spec", spec.to_json(), "--store", str(tmp_path), "--run-id", "r"]
    assert reduce.main(argv) == exit_codes.FAILED
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{key} is damaged" in err and "dictionary page" in err
    assert not (tmp_path / "mixed/r/result.parquet").exists()


def test_a_data_page_header_whose_statistics_were_edited_fails_the_reduce(
    tmp_path: Path,
) -> None:
    """A page's min and max lie outside its checksum. A column chunk TTG writes is one data
    page, whose statistics are then the chunk's, which the footer seal covers: an edit of
    the page's is refused, not copied into a result re-encoding would not have written."""
    store = open_store(str(tmp_path))
    spec = mixed(3, 50)
    compute_all(store, spec, "r")
    key = layout.shard_key("mixed", "r", 1, 3)
    path = tmp_path / key
    column = pq.ParquetFile(path).metadata.row_group(1).column(6)  # `score`, copied whole
    blob = bytearray(path.read_bytes())
    header, body = decode_struct_at(bytes(blob), column.data_page_offset)
    statistics = header[5][1][page_check.STATISTICS_FIELD[5]][1]
    max_value = statistics[5][1]  # Statistics.max_value
    at = bytes(blob).index(max_value, column.data_page_offset, body)
    blob[at] ^= 0x40
    path.write_bytes(bytes(blob))
    with pytest.raises(reduce.ShardError, match=f"{key} is damaged: .*statistics unlike"):
        reduce.reduce_run(store, spec, "r")
    assert not (tmp_path / "mixed/r/result.parquet").exists()


@pytest.mark.parametrize("shards,chunk_rows", [(3, 50), (7, 13)])
def test_kept_rows_are_byte_identical_even_where_dictionaries_fall_back_to_plain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shards: int, chunk_rows: int
) -> None:
    """With a tiny dictionary page limit a column switches to plain encoding partway through
    a row group, at a point that depends on how its input was chunked, unless each row group
    is written from one contiguous table."""
    settings = parquet.writer_settings
    monkeypatch.setattr(
        parquet,
        "writer_settings",
        lambda spec, schema: {**settings(spec, schema), "dictionary_pagesize_limit": 64},
    )
    keep = {"keep": {"where": "score > 1.0"}}

    def kept(folder: str, shards: int, chunk_rows: int) -> bytes:
        spec = parse_spec(MIXED | keep | {"shards": shards, "chunk_rows": chunk_rows})
        run_all(open_store(str(tmp_path / folder)), spec, "r")
        return data_bytes(tmp_path / folder / "mixed/r/result.parquet")

    assert kept("one", 1, 560) == kept("many", shards, chunk_rows)


@pytest.mark.parametrize("page_index", [False, True], ids=["cut-by-chunk", "page-index"])
def test_shard_row_groups_that_cannot_be_copied_are_decoded_into_the_same_file(
    tmp_path: Path, page_index: bool
) -> None:
    """Shards from before aligned row groups (one group per chunk), or with a page index
    outside their row groups, are decoded and re-cut: the result is the same file."""
    store = open_store(str(tmp_path))
    spec = mixed(3, 50)
    infos = compute_all(store, spec, "r")
    reduce.concatenate_shards(store, spec, "r", infos, tmp_path / "aligned.parquet")
    for info in infos:
        path = tmp_path / layout.shard_key("mixed", "r", info.index, info.count)
        table = pq.read_table(path)
        footer = pq.ParquetFile(path).metadata.metadata
        claims = {k.decode(): v.decode() for k, v in footer.items() if k.startswith(b"ttg.")}
        claims["ttg.footer_sha256"] = UNSEALED  # the last entry, sealed anew below
        # with a page index: the result's row groups; without: groups at 186, 236, ...
        cutter = (
            AlignedRowGroups(GROUP, info.first_param_id) if page_index else AlignedRowGroups(50, 0)
        )
        groups = [*cutter.add(table), cutter.rest()]
        with pq.ParquetWriter(path, table.schema, write_page_index=page_index) as writer:
            for group in groups:
                if group is not None:
                    writer.write_table(group)
            writer.add_key_value_metadata(claims)
        seal_footer(path)  # as compute does
    again = reduce.verify_shards(store, spec, "r")
    reduce.concatenate_shards(store, spec, "r", again, tmp_path / "rewritten.parquet")
    assert (tmp_path / "aligned.parquet").read_bytes() == (
        tmp_path / "rewritten.parquet"
    ).read_bytes()


def test_a_row_group_with_a_page_index_outside_it_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "indexed.parquet"
    pq.write_table(pa.table({"a": list(range(100))}), path, write_page_index=True)
    with path.open("rb") as source:
        (group,) = concat.row_groups(read_footer(source))
        assert not concat.movable(group)
        with pytest.raises(ConcatError, match="page index"):
            page_check.read_group(source, group)


def test_a_file_that_is_not_parquet_is_refused() -> None:
    with pytest.raises(ConcatError, match="not a Parquet file"):
        read_footer(io.BytesIO(b"x" * 100))


@settings(max_examples=200, deadline=None)
@given(
    first=st.integers(0, 500),
    chunks=st.lists(st.integers(0, 90), min_size=1, max_size=12),
    size=st.sampled_from([1, 7, 16, 64]),
)
def test_aligned_row_groups_cut_exactly_at_multiples_of_their_size(
    first: int, chunks: list[int], size: int
) -> None:
    groups = AlignedRowGroups(size, first)
    out: list[pa.Table] = []
    row = first
    for rows in chunks:
        out += groups.add(pa.table({"param_id": pa.array(range(row, row + rows), pa.int64())}))
        row += rows
    rest = groups.rest()
    out += [rest] if rest is not None else []
    assert [i for table in out for i in table.column("param_id").to_pylist()] == list(
        range(first, row)
    )
    for table in out:
        ids = table.column("param_id")
        assert ids.num_chunks == 1  # one contiguous table: the same bytes wherever encoded
        start, stop = ids[0].as_py(), ids[-1].as_py() + 1
        assert start // size == (stop - 1) // size  # never crosses a multiple of `size`
        assert stop % size == 0 or stop == row  # ends on one, unless the rows ran out


def test_page_header_damage_is_refused_or_harmless_never_wrong_values(tmp_path: Path) -> None:
    """The checksum covers page data, not headers, so headers are checked field by field.
    Flipping bits of every header byte of a row group: a flip either makes the copy refuse,
    or leaves pages that decode to the same values; none gets past into unreadable pages or
    wrong values. (Before dictionary pages were held to their entry count and page encodings
    to the footer's count of them, 2 of 1,029 flips of bits 0, 3 and 7 got through.)"""
    n = 4096
    table = pa.table(
        {
            "param_id": pa.array(range(n), pa.int64()),
            "x": pa.array([float(i % 16) for i in range(n)]),
            "s": pa.array([f"s{i % 5}" for i in range(n)]),
            "f": pa.array([((i * 7919) % 10007) / 10007 for i in range(n)]),
            "ok": pa.array([i % 3 == 0 for i in range(n)]),
        }
    )
    sink = io.BytesIO()
    pq.write_table(
        table, sink, compression="zstd", use_dictionary=["x", "s"], write_page_checksum=True
    )
    blob = sink.getvalue()
    (group,) = concat.row_groups(read_footer(io.BytesIO(blob)))
    headers: list[int] = []
    for chunk in group[1][1][1]:
        meta = chunk[3][1]
        offset, end = concat.chunk_start(meta), concat.chunk_start(meta) + meta[7][1]
        while offset < end:
            header, body = decode_struct_at(memoryview(blob), offset)
            headers += range(offset, body)
            offset = body + header[3][1]
    outcomes: dict[str, int] = {"refused": 0, "harmless": 0, "unreadable": 0, "wrong": 0}
    for position in headers:
        for bit in (0, 1, 3, 7):
            damaged = bytearray(blob)
            damaged[position] ^= 1 << bit
            try:
                page_check.read_group(io.BytesIO(bytes(damaged)), group)
            except ConcatError:
                outcomes["refused"] += 1
                continue
            try:
                same = pq.read_table(io.BytesIO(bytes(damaged))).equals(table)
            except (OSError, ValueError):
                outcomes["unreadable"] += 1
                continue
            outcomes["harmless" if same else "wrong"] += 1
    flips = 4 * len(headers)
    assert outcomes["wrong"] == 0, outcomes
    assert outcomes["unreadable"] == 0, outcomes
    assert outcomes["refused"] > flips // 2, outcomes


def test_footer_and_header_integers_are_held_to_their_width_and_shortest_form() -> None:
    """Bytes reduce copies without a checksum over them (page headers) must have one
    reading: an i32 that does not fit 32 bits, or a varint padded with continuation bytes,
    decodes to a number a stricter reader would refuse, so neither is accepted."""
    from steps.thrift_compact import I32, ThriftError, decode_struct, encode_struct

    assert decode_struct(encode_struct({1: (I32, -(2**31))})) == {1: (I32, -(2**31))}
    too_wide = bytes([0x15]) + bytes([0x80, 0x80, 0x80, 0x80, 0x10]) + b"\x00"  # 2**31 zigzagged
    with pytest.raises(ThriftError, match="does not fit an i32"):
        decode_struct(too_wide)
    padded = bytes([0x15, 0x82, 0x00, 0x00])  # 1, as two varint bytes
    with pytest.raises(ThriftError, match="shortest form"):
        decode_struct(padded)


def test_a_struct_has_one_reading_field_ids_ascend_and_fit_an_i16() -> None:
    """pyarrow's Thrift keeps 16 bits of a field id and the last of two equal ones: a footer
    with either would read one way here and another there, so neither is accepted."""
    from steps.thrift_compact import I32, ThriftError, decode_struct, encode_struct

    assert decode_struct(encode_struct({1: (I32, 1), 32767: (I32, 1)})) == {
        1: (I32, 1),
        32767: (I32, 1),
    }
    beyond = encode_struct({1: (I32, 1)})[:-1] + bytes([I32, 0x80, 0x80, 0x04, 0x02, 0x00])
    with pytest.raises(ThriftError, match="does not fit an i16"):
        decode_struct(beyond)  # field 32768 (zigzag 65536), which 16 bits would read as -32768
    repeated = bytes([0x15, 0x02]) + bytes([I32, 0x02, 0x04]) + b"\x00"  # field 1, field 1 again
    with pytest.raises(ThriftError, match="ids must ascend"):
        decode_struct(repeated)


def test_nesting_deeper_than_thrifts_limit_is_refused_not_a_recursion_error() -> None:
    from steps.thrift_compact import MAX_DEPTH, ThriftError, decode_struct, encode_struct

    def nested(depth: int) -> bytes:  # field 1: a list of one struct, whose field 1 ... ends
        return b"\x19\x1c" * depth + b"\x00" * (depth + 1)

    assert encode_struct(decode_struct(nested(MAX_DEPTH // 2))) == nested(MAX_DEPTH // 2)
    for depth in (MAX_DEPTH, 400, 5000):
        with pytest.raises(ThriftError, match="nested too deeply"):
            decode_struct(nested(depth))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8))
def test_a_footer_with_bytes_changed_decodes_or_is_a_thrift_error(
    edits: list[tuple[int, int]],
) -> None:
    """Whatever bytes of a real footer change, decoding either reads a struct or says the
    bytes are not one: never another exception, never a hang (reduce decodes footers and
    page headers of shards it did not write)."""
    sink = io.BytesIO()
    pq.write_table(pa.table({"a": [1, 2, 3], "s": ["x", "y", "z"]}), sink)
    footer = bytearray(footer_bytes(sink.getvalue()))
    for at, value in edits:
        footer[at % len(footer)] = value
    with contextlib.suppress(ThriftError):
        decode_struct(bytes(footer))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=20_000), st.integers(0, 2**32 - 1))
def test_the_page_checksum_is_zlibs_crc32(data: bytes, start: int) -> None:
    """Parquet's page CRC is zlib's CRC-32; isal computes it faster, and must agree."""
    import zlib

    from isal.isal_zlib import crc32

    assert crc32(data, start) == zlib.crc32(data, start)
    assert crc32(memoryview(data)[1:]) == zlib.crc32(data[1:])
