"""Every byte reduce relies on is checked: the footer by its seal, its claims against the data,
the pages by their checksums; and what reduce would refuse, resume recomputes."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from steps import layout
from steps.compute import compute_shard
from steps.reduce import ShardError, reduce_run
from steps.shards import UNSEALED, read_shard_info, seal_footer
from steps.spec import Spec, parse_spec
from steps.store import Store, open_store
from tests.test_pipeline import MIXED

SHARD_1 = layout.shard_key("mixed", "r", 1, 3)


def computed(root: Path, **extra: object) -> tuple[Store, Spec]:
    store = open_store(str(root))
    spec = parse_spec(MIXED | {"shards": 3, "chunk_rows": 50} | extra)
    for index in range(3):
        compute_shard(spec, store, "r", index)
    return store, spec


def reseal(path: Path, table: pa.Table | None = None, **claims: str) -> None:
    """Rewrite a shard with new claims (and rows), and seal it as compute would."""
    footer = dict(pq.read_metadata(path).metadata)
    footer[b"ttg.footer_sha256"] = UNSEALED.encode()  # to be sealed anew
    footer.update({f"ttg.{k}".encode(): v.encode() for k, v in claims.items()})
    rows = pq.read_table(path) if table is None else table
    pq.write_table(rows.replace_schema_metadata(footer), path)
    seal_footer(path)


def partial_summary(path: Path) -> dict[str, object]:
    return json.loads(pq.read_metadata(path).metadata[b"ttg.summary"])


def assert_nothing_published(root: Path) -> None:
    for name in ("result.parquet", "summary.json", "_SUCCESS"):
        assert not (root / "mixed/r" / name).exists()


def test_a_shard_whose_footer_was_altered_by_one_byte_is_refused(tmp_path: Path) -> None:
    store, spec = computed(tmp_path)
    path = tmp_path / SHARD_1
    blob = bytearray(path.read_bytes())
    at = blob.rindex(b'"max":') + len(b'"max":')  # a statistic in the partial summary
    blob[at : at + 1] = b"9" if blob[at : at + 1] != b"9" else b"8"
    path.write_bytes(bytes(blob))
    with pytest.raises(ShardError, match=r"shard 1: .* footer was altered or damaged"):
        reduce_run(store, spec, "r")
    assert_nothing_published(tmp_path)


def test_a_resealed_summary_naming_a_best_row_that_exists_in_no_row_is_refused(
    tmp_path: Path,
) -> None:
    store, spec = computed(tmp_path)
    path = tmp_path / SHARD_1
    summary = partial_summary(path)
    top = summary["top"]
    assert isinstance(top, list)
    top[0]["score"] = 1e9  # a best value no row has
    reseal(path, summary=json.dumps(summary))
    with pytest.raises(
        ShardError,
        match=r"shard 1 .*names best row param_id \d+ with score=1000000000.0 where the result holds",
    ):
        reduce_run(store, spec, "r")
    assert_nothing_published(tmp_path)


def test_a_resealed_summary_naming_a_param_id_outside_the_result_is_refused(
    tmp_path: Path,
) -> None:
    store, spec = computed(tmp_path)
    path = tmp_path / SHARD_1
    summary = partial_summary(path)
    top = summary["top"]
    assert isinstance(top, list)
    top[0] = {**top[0], "score": 1e9, "param_id": 10**6}
    reseal(path, summary=json.dumps(summary))
    with pytest.raises(ShardError, match=r"names best row param_id 1000000, not in the result"):
        reduce_run(store, spec, "r")


@pytest.mark.parametrize(
    "summary",
    [
        '{"rows": 187, "columns": {"score": {"type": "double"}}, "top": []}',
        '{"rows": "many", "columns": {}, "top": []}',
        '{"rows": 187, "columns": [], "top": []}',
        '{"rows": 187, "columns": {}, "top": [1, 2]}',
        "[]",
        "not json",
    ],
    ids=["missing stats", "rows not a count", "columns a list", "top not rows", "array", "text"],
)
def test_a_resealed_footer_with_a_wrongly_typed_summary_is_one_line_naming_the_shard(
    tmp_path: Path, summary: str
) -> None:
    store, spec = computed(tmp_path)
    reseal(tmp_path / SHARD_1, summary=summary)
    with pytest.raises(ShardError) as refused:
        reduce_run(store, spec, "r")
    message = str(refused.value)
    assert message.startswith("shard 1: ") and "is unreadable" in message and "\n" not in message


def test_footer_text_that_is_not_utf8_is_refused_naming_the_shard(tmp_path: Path) -> None:
    store, spec = computed(tmp_path)
    path = tmp_path / SHARD_1
    footer = dict(pq.read_metadata(path).metadata)
    footer[b"ttg.footer_sha256"] = UNSEALED.encode()  # to be sealed anew
    footer[b"ttg.spec_hash"] = b"\xff\xfe" + footer[b"ttg.spec_hash"][2:]
    pq.write_table(pq.read_table(path).replace_schema_metadata(footer), path)
    seal_footer(path)
    with pytest.raises(ShardError, match=r"shard 1: .*is unreadable: 'utf-8' codec"):
        reduce_run(store, spec, "r")


def test_a_shard_with_a_column_of_another_type_is_refused_in_one_line_naming_it(
    tmp_path: Path,
) -> None:
    store, spec = computed(tmp_path)
    path = tmp_path / SHARD_1
    table = pq.read_table(path)
    index = table.schema.get_field_index("score")
    reseal(path, table.set_column(index, "score", table["score"].cast(pa.float32())))
    with pytest.raises(ShardError) as refused:
        reduce_run(store, spec, "r")
    assert str(refused.value).endswith("has column 'score' of type float, shard 0 of type double")


def damage_a_data_page(path: Path) -> None:
    """Flip one byte inside the first data page of the last column (not its header)."""
    meta = pq.read_metadata(path)
    column = meta.row_group(0).column(meta.num_columns - 1)
    blob = bytearray(path.read_bytes())
    at = column.data_page_offset + column.total_compressed_size - 2
    blob[at] ^= 0x40
    path.write_bytes(bytes(blob))


def test_a_shard_with_a_damaged_data_page_is_recomputed_not_kept(tmp_path: Path) -> None:
    store, spec = computed(tmp_path)
    damage_a_data_page(tmp_path / SHARD_1)
    with pytest.raises(ShardError, match=r"shard-00001-of-00003\.parquet is damaged"):
        reduce_run(store, spec, "r")
    again = compute_shard(spec, store, "r", 1)
    assert not again.skipped
    assert reduce_run(store, spec, "r").rows == 560
    assert read_shard_info(store, SHARD_1).rows == 187


def test_an_intact_shard_is_still_kept(tmp_path: Path) -> None:
    store, spec = computed(tmp_path)
    assert compute_shard(spec, store, "r", 1).skipped
