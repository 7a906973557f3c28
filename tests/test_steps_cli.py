"""The pod entry points `python -m steps.compute` and `python -m steps.reduce`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from steps.spec import parse_spec
from tests.conftest import ROOT

SPEC = parse_spec(
    {
        "name": "cli",
        "function": "steps.kernels:rosenbrock",
        "shards": 3,
        "chunk_rows": 4,
        "space": {"x": {"linspace": [-1.0, 1.0, 5]}, "y": {"range": [0, 2]}},
        "objective": {"column": "f", "goal": "min", "top_k": 2},
    }
)


def step(
    module: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("WORKER_ID", "TOTAL_WORKERS")}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**clean, **(env or {})},
        timeout=60,
    )


def test_compute_takes_its_shard_from_worker_id_like_the_old_worker(tmp_path: Path) -> None:
    common = ["--spec", SPEC.to_json(), "--store", str(tmp_path), "--run-id", "w"]
    for worker in range(3):
        done = step("steps.compute", *common, env={"WORKER_ID": str(worker), "TOTAL_WORKERS": "3"})
        assert done.returncode == 0, done.stderr
        assert f"shard {worker}/3" in done.stdout
        assert f"chunk shard={worker}/3 param_id=" in done.stdout  # one logfmt line per chunk
    assert sorted(p.name for p in (tmp_path / "cli/w/shards").iterdir()) == [
        f"shard-0000{i}-of-00003.parquet" for i in range(3)
    ]
    skipped = step("steps.compute", *common, env={"WORKER_ID": "1"})
    assert skipped.returncode == 0 and "already complete, skipped" in skipped.stdout
    outputs = tmp_path / "outputs"
    reduced = step("steps.reduce", *common, "--outputs", str(outputs))
    assert reduced.returncode == 0, reduced.stderr
    assert (outputs / "rows").read_text() == "10" and (outputs / "best_value").read_text() == "0.0"
    best = json.loads((outputs / "best").read_text())
    assert best == {"param_id": 9, "x": 1.0, "y": 1, "f": 0.0}  # the minimum at (1, 1)
    assert pq.read_table(tmp_path / "cli/w/result.parquet").num_rows == 10


def test_step_inputs_are_checked_before_any_work(tmp_path: Path) -> None:
    common = ["--store", str(tmp_path), "--run-id", "w"]
    cases = [
        (["--spec", "{not json", *common, "--shard", "0"], "is not valid JSON"),
        (["--spec", SPEC.to_json(), *common, "--shard", "3"], "must be in 0..2"),
        (["--spec", SPEC.to_json(), *common], "--shard"),
        (
            ["--spec", SPEC.to_json(), "--store", "gs://x", "--run-id", "w", "--shard", "0"],
            "unsupported store scheme",
        ),
        (
            [
                "--spec",
                SPEC.to_json(),
                "--store",
                str(tmp_path),
                "--run-id",
                "Bad_Id",
                "--shard",
                "0",
            ],
            "DNS-1123",
        ),
    ]
    for args, message in cases:
        done = step("steps.compute", *args)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
    assert not any(tmp_path.iterdir())


def test_reduce_with_missing_shards_exits_1_naming_the_shard(tmp_path: Path) -> None:
    common = ["--spec", SPEC.to_json(), "--store", str(tmp_path), "--run-id", "w"]
    assert step("steps.compute", *common, "--shard", "0").returncode == 0
    done = step("steps.reduce", *common)
    assert done.returncode == 1
    assert "shard 1 is missing" in done.stderr and "shard-00001-of-00003.parquet" in done.stderr
    assert not (tmp_path / "cli/w/result.parquet").exists()
