"""A result opens in other tools unchanged: pyarrow (table and dataset) and DuckDB.

What each tool reads must agree with the run's summary.json: the row count, the columns,
and the best row. These are the README's reading snippets, run for real: locally, and from
S3 (the MinIO server on loopback) with pyarrow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from tests.cli import sweep
from tests.conftest import S3Server

SPEC = """
name = "bowl"
function = "steps.kernels:rosenbrock"
shards = 3
chunk_rows = 1000
[space]
x = { linspace = [-2.0, 2.0, 80] }
y = { linspace = [-1.0, 3.0, 50] }
[objective]
column = "f"
goal = "min"
top_k = 3
"""
ROWS = 80 * 50


def run_sweep(store: str, run_id: str, tmp: Path) -> None:
    spec = tmp / "bowl.toml"
    spec.write_text(SPEC)
    done = sweep("run", str(spec), "--store", store, "--run-id", run_id, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("interop")
    run_sweep(str(tmp / "runs"), "bowl-local", tmp)
    return tmp / "runs" / "bowl" / "bowl-local"


def best_of(summary: dict[str, Any]) -> dict[str, Any]:
    return dict(summary["objective"]["best"][0])


def summary_of(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / "summary.json").read_text()))


def test_pyarrow_reads_the_result_as_the_summary_describes_it(local_run: Path) -> None:
    summary = summary_of(local_run)
    table = pq.read_table(local_run / "result.parquet")
    assert table.num_rows == summary["rows"] == ROWS
    assert table.column_names == ["param_id", "x", "y", "f"] == list(summary["columns"])
    assert table["param_id"].to_pylist() == list(range(ROWS))  # ordered by param_id
    best = best_of(summary)
    top = table.sort_by([("f", "ascending"), ("param_id", "ascending")]).slice(0, 1)
    assert top.to_pylist()[0] == best
    for name, stats in summary["columns"].items():
        low_high = pc.min_max(table[name])
        assert (low_high["min"].as_py(), low_high["max"].as_py()) == (stats["min"], stats["max"])


def test_a_pyarrow_dataset_filters_and_projects_without_reading_everything(
    local_run: Path,
) -> None:
    best = best_of(summary_of(local_run))
    dataset = ds.dataset(local_run / "result.parquet", format="parquet")
    assert dataset.count_rows() == ROWS
    near = dataset.to_table(
        columns=["param_id", "f"], filter=(ds.field("x") > 0.9) & (ds.field("x") < 1.1)
    )
    assert best["param_id"] in near["param_id"].to_pylist()
    assert pc.min(near["f"]).as_py() == best["f"]


def test_duckdb_queries_the_result_with_sql(local_run: Path) -> None:
    # Local only: DuckDB reads s3:// through its httpfs extension, which it downloads on first
    # use; the tests never leave loopback, so S3 is covered with pyarrow below instead.
    duckdb = pytest.importorskip("duckdb")
    summary = summary_of(local_run)
    path = (local_run / "result.parquet").as_posix()
    # `.fetchall()` on a relation works in DuckDB 1.x and 2.x (2.0 removed `.fetchone()`).
    rows, low, high = duckdb.sql(
        f"select count(*), min(f), max(f) from read_parquet('{path}')"
    ).fetchall()[0]
    assert (rows, low, high) == (
        ROWS,
        summary["columns"]["f"]["min"],
        summary["columns"]["f"]["max"],
    )
    best = duckdb.sql(
        f"select param_id, x, y, f from read_parquet('{path}') order by f, param_id limit 1"
    ).fetchall()[0]
    assert best == tuple(best_of(summary).values())
    shards = duckdb.sql(
        f"select count(*) from read_parquet('{local_run.as_posix()}/shards/*.parquet')"
    ).fetchall()[0]
    assert shards == (ROWS,)  # the shards together hold the same rows


def test_pyarrow_reads_a_result_from_s3(s3_env: S3Server, tmp_path: Path) -> None:
    import pyarrow.fs as pafs

    bucket = s3_env.new_bucket()
    run_sweep(f"s3://{bucket}/runs", "bowl-s3", tmp_path)
    run = f"{bucket}/runs/bowl/bowl-s3"
    s3 = pafs.S3FileSystem(
        endpoint_override=s3_env.endpoint,
        scheme="http",
        access_key=s3_env.env["AWS_ACCESS_KEY_ID"],
        secret_key=s3_env.env["AWS_SECRET_ACCESS_KEY"],
        region=s3_env.env["AWS_REGION"],
    )
    with s3.open_input_stream(f"{run}/summary.json") as handle:
        summary = json.loads(handle.read())
    table = pq.read_table(f"{run}/result.parquet", filesystem=s3)
    assert table.num_rows == summary["rows"] == ROWS
    top = table.sort_by([("f", "ascending"), ("param_id", "ascending")]).slice(0, 1)
    assert top.to_pylist()[0] == best_of(summary)
    dataset = ds.dataset(f"{run}/result.parquet", filesystem=s3, format="parquet")
    assert dataset.count_rows() == ROWS
    # With only the standard AWS_* variables set (as the README says), an s3:// URI works as is.
    from_env = pq.read_table(f"s3://{run}/result.parquet", columns=["f"])
    assert from_env.num_rows == ROWS
