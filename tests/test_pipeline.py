"""Compute and reduce, in-process, on the folder store and on a real S3 server over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from steps import layout, parquet, reduce
from steps.compute import RunMismatchError, compute_shard
from steps.function import FunctionError
from steps.reduce import ShardError, reduce_run
from steps.shards import UNSEALED, read_shard_info, seal_footer
from steps.spec import Spec, parse_spec
from steps.store import Store, open_store
from tests.conftest import S3Server

MIXED = {
    "name": "mixed",
    "function": "tests.kernels:mixed",
    "seed": 3,
    "samples": 40,
    "space": {
        "g": {"range": [1, 8]},
        "s": {"values": ["a", "b"]},
        "u": {"uniform": [0.0, 2.0]},
        "w": {"normal": [0.0, 1.0]},
        "c": {"choice": [1, 2, 3]},
    },
    "objective": {"column": "score", "goal": "max", "top_k": 7},
}  # 7 * 2 * 40 = 560 rows


def mixed(shards: int, chunk_rows: int) -> Spec:
    return parse_spec(MIXED | {"shards": shards, "chunk_rows": chunk_rows})


def run_all(store: Store, spec: Spec, run_id: str) -> reduce.ReduceOutcome:
    for index in range(spec.shards):
        compute_shard(spec, store, run_id, index)
    return reduce_run(store, spec, run_id)


def data_bytes(path: Path) -> bytes:
    """A Parquet file without its footer: the data pages only."""
    blob = path.read_bytes()
    footer = int.from_bytes(blob[-8:-4], "little")
    return blob[: len(blob) - 8 - footer]


def test_result_row_groups_are_sized_by_bytes_not_rows() -> None:
    narrow = pa.schema(
        [("param_id", pa.int64()), ("x", pa.float64()), ("y", pa.float64()), ("f", pa.float64())]
    )
    wide = pa.schema([(f"c{i}", pa.float64()) for i in range(64)])
    assert parquet.row_group_rows(narrow) == 1 << 18  # 32 bytes a row, ~8 MiB a group
    assert parquet.row_group_rows(wide) == 1 << 14
    assert (
        parquet.row_group_rows(pa.schema([("s", pa.string())] * 4096)) == parquet.MIN_ROW_GROUP_ROWS
    )
    # a string's width is a guess (64 bytes): a schema with text keeps the groups of 2^16
    # rows it had with 4 MiB groups and 32-byte strings, whose memory was measured
    texts = pa.schema([("param_id", pa.int64()), ("x", pa.float64()), ("s", pa.string())])
    assert parquet.row_group_rows(texts) == 1 << 16


def test_the_result_holds_every_row_in_param_id_order_with_typed_columns(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    outcome = run_all(store, mixed(3, 50), "r1")
    table = pq.read_table(tmp_path / "mixed/r1/result.parquet")
    assert outcome.rows == table.num_rows == 560
    assert table.column("param_id").to_pylist() == list(range(560))
    assert table.schema.names == [
        "param_id",
        "g",
        "s",
        "u",
        "w",
        "c",
        "score",
        "parity",
        "label",
        "big",
    ]
    types = [str(t) for t in table.schema.types]
    assert types == [
        "int64",
        "int64",
        "string",
        "double",
        "double",
        "int64",
        "double",
        "int64",
        "string",
        "bool",
    ]
    for name in ("spec.json", "summary.json", "_SUCCESS"):
        assert (tmp_path / "mixed/r1" / name).is_file()


@pytest.mark.parametrize("shards,chunk_rows", [(1, 1000), (3, 50), (7, 50), (7, 13)])
def test_shard_invariance_the_result_data_is_byte_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shards: int, chunk_rows: int
) -> None:
    monkeypatch.setattr(parquet, "MIN_ROW_GROUP_ROWS", 64)  # several result row groups
    monkeypatch.setattr(parquet, "MAX_ROW_GROUP_ROWS", 64)
    baseline = tmp_path / "baseline"
    run_all(open_store(str(baseline)), mixed(1, 560), "r")
    other = tmp_path / "other"
    run_all(open_store(str(other)), mixed(shards, chunk_rows), "r")
    a, b = baseline / "mixed/r/result.parquet", other / "mixed/r/result.parquet"
    assert pq.read_table(a).equals(pq.read_table(b))
    assert data_bytes(a) == data_bytes(b)
    assert pq.ParquetFile(b).metadata.num_row_groups == 9


def test_the_summary_merges_shard_statistics_and_top_k(tmp_path: Path) -> None:
    outcome = run_all(open_store(str(tmp_path)), mixed(7, 13), "r")
    summary = json.loads((tmp_path / "mixed/r/summary.json").read_text())
    table = pq.read_table(tmp_path / "mixed/r/result.parquet")
    score = table.column("score").to_numpy()
    assert summary["rows"] == 560 and summary["shards"] == 7 and summary == outcome.summary
    stats = summary["columns"]["score"]
    assert (stats["count"], stats["nulls"], stats["nans"]) == (560, 0, 0)
    assert stats["min"] == score.min() and stats["max"] == score.max()
    assert stats["mean"] == pytest.approx(score.mean(), rel=1e-12)
    assert summary["columns"]["label"]["min"] == "high"
    best = summary["objective"]["best"]
    order = np.lexsort((table.column("param_id").to_numpy(), -score))[:7]
    assert [row["param_id"] for row in best] == table.column("param_id").to_numpy()[order].tolist()
    assert best[0] == table.slice(int(order[0]), 1).to_pylist()[0]
    assert set(summary["versions"]) == {"ttg", "numpy", "pyarrow", "python"}
    assert summary["timings"]["reduce_seconds"] > 0


def test_each_shard_carries_its_identity_and_partial_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parquet, "MIN_ROW_GROUP_ROWS", 64)  # the result's row groups: 64 rows
    monkeypatch.setattr(parquet, "MAX_ROW_GROUP_ROWS", 64)
    store = open_store(str(tmp_path))
    spec = mixed(3, 50)
    compute_shard(spec, store, "r", 1)
    key = layout.shard_key("mixed", "r", 1, 3)
    info = read_shard_info(store, key)
    assert (info.spec_hash, info.index, info.count, info.first_param_id, info.rows) == (
        spec.hash,
        1,
        3,
        186,
        187,
    )
    assert info.summary.rows == 187 and info.param_id_range == (186, 372)
    metadata = pq.ParquetFile(tmp_path / key).metadata
    # rows [186, 373) in the result's row groups, cut where they are: at multiples of 64
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert sizes == [192 - 186, 64, 64, 373 - 320]
    assert metadata.row_group(0).column(0).compression == "ZSTD"


def test_a_complete_shard_is_skipped_and_a_damaged_one_recomputed(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    spec = mixed(2, 100)
    first = compute_shard(spec, store, "r", 0)
    path = tmp_path / first.key
    stamp = path.stat().st_mtime_ns
    again = compute_shard(spec, store, "r", 0)
    assert again.skipped and path.stat().st_mtime_ns == stamp
    path.write_bytes(path.read_bytes()[:-100])  # truncated
    healed = compute_shard(spec, store, "r", 0)
    assert not healed.skipped and read_shard_info(store, first.key).rows == 280


def test_a_run_refuses_shards_of_another_spec(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    compute_shard(mixed(2, 100), store, "r", 0)
    changed = parse_spec(MIXED | {"shards": 2, "seed": 4})
    with pytest.raises(RunMismatchError, match="hash"):
        compute_shard(changed, store, "r", 1)
    assert not (tmp_path / layout.shard_key("mixed", "r", 1, 2)).exists()


def _damage_missing(root: Path, key: str) -> None:
    (root / key).unlink()


def _damage_truncate(root: Path, key: str) -> None:
    (root / key).write_bytes((root / key).read_bytes()[:500])


def _damage_garbage(root: Path, key: str) -> None:
    (root / key).write_bytes(b"not parquet at all" * 10)


def _damage_foreign(root: Path, key: str) -> None:
    other = parse_spec(MIXED | {"shards": 3, "chunk_rows": 50, "seed": 99})
    compute_shard(other, open_store(str(root / "elsewhere")), "r", 1)
    (root / "elsewhere" / key).replace(root / key)


def _damage_short(root: Path, key: str) -> None:
    """The claims stay, the rows go (and the footer is sealed again, as compute would)."""
    _rewrite(root, key, pq.read_table(root / key).slice(0, 10))


def _rewrite(root: Path, key: str, table: pa.Table, **claims: str) -> None:
    """Rewrite a shard with the given rows, keeping its footer except for `claims`, sealed
    anew: a forger who knows the seal gets past it, and the checks behind it must hold."""
    footer = dict(pq.read_metadata(root / key).metadata)
    footer[b"ttg.footer_sha256"] = UNSEALED.encode()  # to be sealed anew
    footer.update({f"ttg.{k}".encode(): v.encode() for k, v in claims.items()})
    pq.write_table(table.replace_schema_metadata(footer), root / key)
    seal_footer(root / key)


def _damage_claim(root: Path, key: str) -> None:
    """One claim changed in place, the seal left as it was."""
    blob = (root / key).read_bytes()
    (root / key).write_bytes(blob.replace(b'"rows":187', b'"rows":188', 1))


def _damage_overlap(root: Path, key: str) -> None:
    """Claims to start 5 rows early: its range overlaps shard 0's."""
    _rewrite(root, key, pq.read_table(root / key), first_param_id="181")


def _damage_gap(root: Path, key: str) -> None:
    """Its footer is right, but it holds rows shifted by 5: a gap before, an overlap after."""
    table = pq.read_table(root / key)
    shifted = pc.add(table["param_id"], 5)
    _rewrite(root, key, table.set_column(0, "param_id", shifted))


def _damage_stray(root: Path, key: str) -> None:
    (root / key).with_name("shard-00009-of-00009.parquet").write_bytes(b"x")


DAMAGES = {
    "missing": (_damage_missing, "shard 1 is missing"),
    "truncated": (_damage_truncate, "shard 1"),
    "unreadable": (_damage_garbage, "shard 1"),
    "foreign": (_damage_foreign, "belongs to another spec"),
    "short": (_damage_short, "has 10 rows, expected 187"),
    "altered claim": (_damage_claim, "footer was altered or damaged"),
    "overlapping range": (_damage_overlap, "starts at param_id 181, expected 186"),
    "gapped range": (_damage_gap, "holds param_id 191..377, expected 186..372"),
    "stray object": (_damage_stray, "shard-00009-of-00009.parquet is not a shard of this run"),
}


@pytest.mark.parametrize("damage,message", DAMAGES.values(), ids=DAMAGES.keys())
def test_reduce_refuses_a_bad_shard_naming_it_and_writes_nothing(
    tmp_path: Path, damage: object, message: str
) -> None:
    store = open_store(str(tmp_path))
    spec = mixed(3, 50)
    for index in range(3):
        compute_shard(spec, store, "r", index)
    damage(tmp_path, layout.shard_key("mixed", "r", 1, 3))  # type: ignore[operator]
    with pytest.raises(ShardError, match=message):
        reduce_run(store, spec, "r")
    assert not any(
        (tmp_path / "mixed/r" / name).exists()
        for name in ("result.parquet", "summary.json", "_SUCCESS")
    )


@pytest.mark.parametrize(
    "function,message",
    [
        (
            "tests.kernels:fails_on_seven",
            r"shard 0, param_id \[5, 10\): tests.kernels:fails_on_seven raised ValueError: seven is unlucky",
        ),
        ("tests.kernels:wrong_length", "returned 4 values for column 'y', expected 5"),
        ("tests.kernels:clashes_with_axis", "column 'x', which is the name of an axis"),
        ("tests.kernels:returns_a_list", "must return a mapping of columns"),
        (  # only with on_nan = "fail": by default NaN rows are kept (tests/test_nan_objective.py)
            "tests.kernels:nan_at_three",
            r"param_id \[0, 5\).*NaN or null in objective column 'y' at param_id 3",
        ),
        ("tests.kernels:text_objective", "objective column 'y' of type string, not a number"),
        ("tests.kernels:as_table", "returned no objective column 'y'"),
    ],
)
def test_a_failing_or_misbehaving_function_names_shard_and_rows_and_leaves_no_shard(
    tmp_path: Path, function: str, message: str
) -> None:
    document = {
        "name": "f",
        "function": function,
        "chunk_rows": 5,
        "space": {"x": {"range": [0, 20]}},
    }
    strict = {"on_nan": "fail"} if function == "tests.kernels:nan_at_three" else {}
    spec = parse_spec(document | {"objective": {"column": "y", **strict}})
    with pytest.raises(FunctionError, match=message):
        compute_shard(spec, open_store(str(tmp_path)), "r", 0)
    assert not list((tmp_path / "f/r").rglob("*.parquet")) and not list(
        (tmp_path / "f/r").rglob(".*")
    )


def test_a_scalar_function_and_a_table_returning_function_both_work(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    scalar = parse_spec(
        {
            "name": "s",
            "function": "tests.kernels:scalar",
            "vectorized": False,
            "shards": 2,
            "chunk_rows": 3,
            "space": {"n": {"range": [0, 4]}, "k": {"values": [0.5, 2.0]}},
        }
    )
    run_all(store, scalar, "r")
    table = pq.read_table(tmp_path / "s/r/result.parquet")
    assert table.column("value").to_pylist() == [n * k for n in range(4) for k in (0.5, 2.0)]
    vector = parse_spec(
        {"name": "t", "function": "tests.kernels:as_table", "space": {"x": {"linspace": [0, 1, 5]}}}
    )
    run_all(store, vector, "r")
    assert pq.read_table(tmp_path / "t/r/result.parquet").column("double").to_pylist() == [
        0,
        0.5,
        1.0,
        1.5,
        2.0,
    ]


def test_the_placeholder_sweep_carries_over_the_old_per_parameter_worker(tmp_path: Path) -> None:
    from steps.spec import load_spec
    from tests.conftest import SWEEPS

    spec = load_spec(SWEEPS / "placeholder.toml")
    assert not spec.vectorized and spec.shards == 3
    run_all(open_store(str(tmp_path)), spec, "r")
    table = pq.read_table(tmp_path / "placeholder/r/result.parquet")
    assert table.num_rows == 10_000 and table.column("param").to_pylist() == list(range(10_000))
    assert table.column("result")[9].as_py() == pytest.approx(3 * np.sin(9))


def test_compute_and_reduce_against_an_s3_server(s3_env: S3Server, tmp_path: Path) -> None:
    bucket = s3_env.new_bucket()
    store = open_store(f"s3://{bucket}/sweeps")
    spec = mixed(3, 50)
    run_all(store, spec, "r")
    keys = store.list("mixed/r")
    assert keys == [
        "mixed/r/_SUCCESS",
        "mixed/r/result.parquet",
        *[f"mixed/r/shards/shard-0000{i}-of-00003.parquet" for i in range(3)],
        "mixed/r/spec.json",
        "mixed/r/summary.json",
    ]
    local = tmp_path / "local"
    run_all(open_store(str(local)), spec, "r")
    (tmp_path / "from-s3.parquet").write_bytes(store.get_bytes("mixed/r/result.parquet"))
    assert pq.read_table(tmp_path / "from-s3.parquet").equals(
        pq.read_table(local / "mixed/r/result.parquet")
    )
    again = compute_shard(spec, store, "r", 2)
    assert again.skipped  # the footer was read back with ranged GETs


def test_s3_errors_name_the_bucket_and_the_endpoint(
    s3_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from steps.store import StoreError

    with pytest.raises(StoreError, match="bucket 'no-such-bucket' does not exist") as missing:
        open_store("s3://no-such-bucket/x").put_bytes("k", b"v")
    assert s3_env.endpoint in str(missing.value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("TTG_S3_ATTEMPTS", "2")
    with pytest.raises(StoreError, match=r"127.0.0.1:9.*gave up after 2 attempts"):
        open_store("s3://some-bucket/x").put_bytes("k", b"v")


def test_unsupported_store_schemes_are_refused() -> None:
    from steps.store import StoreError

    for uri in (
        "gs://bucket/x",
        "http://example/x",
        "file://host/x",
        "",
        "s3://",
        "s3://Bad_Bucket/x",
    ):
        with pytest.raises(StoreError):
            open_store(uri)


def test_folder_writes_are_atomic_and_leave_no_temp_files(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    with pytest.raises(RuntimeError), store.atomic_writer("a/b.bin") as path:
        path.write_bytes(b"half")
        raise RuntimeError("crash mid-write")
    assert list(tmp_path.rglob("*")) == [tmp_path / "a"]
    store.put_bytes("a/b.bin", b"whole")
    assert store.get_bytes("a/b.bin") == b"whole" and store.list("a") == ["a/b.bin"]
    assert isinstance(pa.__version__, str)


# --- keep: less than all rows -------------------------------------------------------------


@pytest.mark.parametrize(
    "keep", [{"top_k": 25}, {"where": "score > 2.5"}, {"where": "parity == 1"}]
)
def test_kept_rows_are_what_filtering_the_full_result_gives_whatever_the_sharding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep: dict
) -> None:
    monkeypatch.setattr(parquet, "MIN_ROW_GROUP_ROWS", 16)  # several result row groups
    monkeypatch.setattr(parquet, "MAX_ROW_GROUP_ROWS", 16)
    run_all(open_store(str(tmp_path / "all")), mixed(1, 560), "r")
    full = pq.read_table(tmp_path / "all/mixed/r/result.parquet")
    if "top_k" in keep:
        order = np.lexsort((full["param_id"].to_numpy(), -full["score"].to_numpy()))[:25]
        expected = full.take(np.sort(order))
    else:
        column, op, number = keep["where"].split()
        values = full[column].to_numpy()
        expected = full.filter(values > float(number) if op == ">" else values == float(number))
    results = []
    for shards, chunk_rows in [(1, 560), (3, 50), (7, 13)]:
        store = tmp_path / f"s{shards}"
        outcome = run_all(
            open_store(str(store)),
            parse_spec(MIXED | {"shards": shards, "chunk_rows": chunk_rows, "keep": keep}),
            "r",
        )
        result = store / "mixed/r/result.parquet"
        assert pq.read_table(result).equals(expected)
        assert outcome.rows == expected.num_rows
        assert outcome.summary["rows"] == 560 and outcome.summary["kept_rows"] == expected.num_rows
        results.append(data_bytes(result))
    assert results[0] == results[1] == results[2]


def test_a_keep_condition_on_a_missing_column_names_shard_and_rows(tmp_path: Path) -> None:
    spec = parse_spec(MIXED | {"shards": 2, "chunk_rows": 100, "keep": {"where": "scor < 1"}})
    with pytest.raises(
        FunctionError, match=r"shard 0, param_id \[0, 100\): keep.where: no column 'scor'"
    ):
        compute_shard(spec, open_store(str(tmp_path)), "r", 0)
    text = parse_spec(MIXED | {"keep": {"where": "label == 1"}})
    with pytest.raises(FunctionError, match="column 'label' is string, not a number"):
        compute_shard(text, open_store(str(tmp_path)), "t", 0)


def test_a_shard_that_keeps_rows_is_checked_against_the_rows_it_computed(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    spec = parse_spec(MIXED | {"shards": 3, "chunk_rows": 50, "keep": {"where": "score > 2"}})
    compute_shard(spec, store, "r", 1)
    info = read_shard_info(store, layout.shard_key("mixed", "r", 1, 3))
    assert info.computed_rows == 187 and info.rows < 187 and info.summary.rows == 187
    assert info.problem(spec.hash, 1, 3, 186, 373, keeps_all=False) is None
    assert "has" in str(info.problem(spec.hash, 1, 3, 186, 373, keeps_all=True))
    assert compute_shard(spec, store, "r", 1).skipped  # a kept-rows shard is recognised as complete


def test_the_result_writes_param_id_as_deltas_and_floats_as_byte_streams(tmp_path: Path) -> None:
    """What makes the result small (steps/parquet.py): `param_id` delta-encoded, every
    other float column not dictionary-encoded split into byte streams, grid axes as
    dictionaries."""
    run_all(open_store(str(tmp_path)), mixed(3, 50), "r")
    meta = pq.ParquetFile(tmp_path / "mixed/r/result.parquet").metadata
    encodings = {
        meta.schema.column(c).name: set(meta.row_group(0).column(c).encodings)
        for c in range(meta.num_columns)
    }
    assert "DELTA_BINARY_PACKED" in encodings["param_id"]
    for name in ("u", "w", "score"):  # random float axes and a float output
        assert "BYTE_STREAM_SPLIT" in encodings[name], name
    for name in ("g", "s"):  # grid axes
        assert "RLE_DICTIONARY" in encodings[name], name
