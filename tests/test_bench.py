"""The benchmark driver in a tiny mode: it runs, and its JSON has every field with sane values.

No timing thresholds here (benchmarks live in `bench/`); only that the numbers are there and
make sense, and that the plain baselines compute the very rows the pipeline does.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from bench.dask_cluster import merge_shards
from bench.grid import grid_columns
from bench.shard import write_shard
from bench.sweeps import bench_spec, rows_of
from steps.compute import compute_shard
from steps.reduce import reduce_run
from steps.space import Space
from steps.spec import parse_spec
from steps.store import open_store
from tests.conftest import ROOT

ENTRY_FIELDS = {
    "name", "kind", "label", "rows", "seconds", "samples_seconds", "rows_per_second",
    "ratio_to_limit", "peak_rss_mib", "extrapolated", "detail", "error",
}  # fmt: skip


@pytest.mark.slow
def test_driver_tiny_run_writes_sane_json(tmp_path: Path) -> None:
    results = tmp_path / "results"
    command = [sys.executable, "-m", "bench.run", "--rows", "20000", "--repeat", "1"]
    command += ["--contenders", "limit,run,floor,help,bare", "--results", str(results)]
    command += ["--name", "tiny", "--scratch", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "run / limit" in done.stdout  # the targets table was printed

    doc = json.loads((results / "tiny.json").read_text())
    assert doc["name"] == "tiny" and doc["repeat"] == 1
    assert doc["rows"] == 141 * 141
    assert doc["machine"]["cpus"] >= 1
    entries = {e["name"]: e for e in doc["entries"]}
    assert list(entries) == ["limit", "run", "floor", "help", "bare"]
    for entry in entries.values():
        assert set(entry) == ENTRY_FIELDS
        assert entry["error"] is None, entry["error"]
        assert entry["seconds"] > 0
        assert all(s > 0 for s in entry["samples_seconds"])
        assert 1 < entry["peak_rss_mib"] < 4096
    for name in ("limit", "run", "floor"):
        assert entries[name]["rows"] == doc["rows"]
        assert entries[name]["rows_per_second"] == pytest.approx(
            doc["rows"] / entries[name]["seconds"]
        )
        assert entries[name]["ratio_to_limit"] > 0
    assert entries["limit"]["ratio_to_limit"] == 1.0
    assert entries["limit"]["detail"]["rows"] == doc["rows"]
    assert entries["floor"]["detail"]["rows"] == doc["rows"]
    assert entries["help"]["rows_per_second"] is None
    # what reduce recorded in the run's summary.json, read back before its folder went
    for key in ("verify_seconds", "merge_seconds", "reduce_seconds", "summary_seconds"):
        assert 0 < entries["run"]["detail"][key] < entries["run"]["seconds"]
        assert key not in entries["limit"]["detail"]
    # a bare interpreter is small; the launcher keeps the driver's own memory out of it
    assert entries["bare"]["peak_rss_mib"] < entries["limit"]["peak_rss_mib"]
    assert len(entries["bare"]["samples_seconds"]) == 3

    targets = {t["name"]: t for t in doc["targets"]}
    assert targets["run / limit"]["value"] > 0
    assert targets["run / limit"]["met"] in (True, False)
    assert targets["dask / run"]["value"] is None and targets["dask / run"]["met"] is None
    assert targets["steps.compute --help minus bare python"]["value"] is not None
    assert not list(tmp_path.glob("ttg-bench-*"))  # scratch folders are cleaned up


def test_unknown_contender_is_refused(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bench.run", "--contenders", "limit,nope"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "nope" in done.stderr


def test_resized_spec_has_about_the_rows_asked_for() -> None:
    assert rows_of(bench_spec()) == 3163 * 3163
    assert rows_of(bench_spec(20_000)) == 141 * 141
    assert rows_of(bench_spec(100_000_000)) == 10_000 * 10_000


@pytest.mark.parametrize("start, stop", [(0, 210), (7, 8), (13, 150), (29, 210), (100, 101)])
def test_plain_baselines_compute_the_pipeline_rows(start: int, stop: int) -> None:
    spec = parse_spec(
        {
            "name": "grid",
            "function": "steps.kernels:rosenbrock",
            "space": {
                "x": {"linspace": [-2.0, 2.0, 5]},
                "n": {"range": [1, 15, 2]},
                "y": {"values": [0.5, 1.5, 2.5, 3.5, 4.5, 5.5]},
            },
        }
    )
    assert Space(spec).rows == 210
    plain, pipeline = grid_columns(spec, start, stop), Space(spec).decode(start, stop)
    assert list(plain) == list(pipeline)
    for name in pipeline:
        np.testing.assert_array_equal(plain[name], pipeline[name])


@pytest.mark.slow
def test_scaling_mode_writes_points_and_flatness(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bench.run", "--scaling", "1e4,4e4", "--repeat", "1"]
    command += ["--contenders", "shard-compute,reduce", "--results", str(tmp_path)]
    command += ["--name", "curve", "--scratch", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "summary ms" in done.stdout and "reduce: summary" in done.stdout
    doc = json.loads((tmp_path / "curve.json").read_text())
    assert [p["rows"] for p in doc["points"]] == [100 * 100, 200 * 200]
    timings = ("verify_seconds", "merge_seconds", "reduce_seconds", "summary_seconds")
    for p in doc["points"]:
        entry = p["entries"]["shard-compute"]
        assert entry["error"] is None
        assert entry["ns_per_row"] == pytest.approx(entry["seconds"] / p["rows"] * 1e9)
        assert entry["peak_rss_mib"] > 1
        assert all(entry[key] is None for key in timings)  # compute writes no summary
        reduce = p["entries"]["reduce"]
        assert reduce["error"] is None
        assert all(0 < reduce[key] < reduce["seconds"] for key in timings)
    flat = doc["flatness"]["shard-compute"]
    assert len(flat["ns_per_row"]) == 2 and flat["rss_growth"] > 0
    assert isinstance(flat["time_flat"], bool)
    assert "summary_flat" not in flat

    summary = doc["flatness"]["reduce"]
    seconds = [p["entries"]["reduce"]["summary_seconds"] for p in doc["points"]]
    assert summary["summary_seconds"] == seconds
    assert len(summary["verify_seconds"]) == len(summary["merge_seconds"]) == 2
    assert summary["summary_spread_seconds"] == pytest.approx(max(seconds) - min(seconds))
    assert summary["summary_growth"] == pytest.approx(max(seconds) / min(seconds))
    assert summary["summary_flat"] is (
        summary["summary_spread_seconds"] <= summary["summary_budget_seconds"]
    )
    assert summary["summary_resolution_ns_per_row"] == pytest.approx(
        summary["summary_budget_seconds"] / (200 * 200 - 100 * 100) * 1e9
    )
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "curve.png").stat().st_size > 0
    assert not list(tmp_path.glob("ttg-bench-*"))  # scratch folders are cleaned up


def test_the_dask_merge_baseline_hands_back_the_same_table_as_a_run(tmp_path: Path) -> None:
    """`dask-merge` does TTG's work as a dask script would: shards, then one merged file."""
    spec = bench_spec(20_000).with_fields(shards=3)
    for index in range(spec.shards):
        write_shard(spec.to_json(), str(tmp_path), index)
    merge_shards(spec, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["result.parquet"]
    store = open_store(str(tmp_path / "ttg"))
    for index in range(spec.shards):
        compute_shard(spec, store, "r", index)
    reduce_run(store, spec, "r")
    ttg = pq.read_table(tmp_path / "ttg" / spec.name / "r" / "result.parquet")
    assert pq.read_table(tmp_path / "result.parquet").equals(ttg)
