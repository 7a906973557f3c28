"""`plan SPEC`: a sweep's cost before it runs, from timing a sample of the real function here;
its result-size estimate held against the real result of every example sweep."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from steps.spec import load_spec
from steps.stages import total_rows, total_shards
from tests.cli import sweep
from tests.conftest import SWEEPS

EXAMPLES = sorted(SWEEPS.glob("*.toml"))


def plan(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = sweep("plan", *args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_the_result_size_is_within_2x_of_the_real_result(example: Path, tmp_path: Path) -> None:
    estimate = plan(str(example))
    spec = load_spec(example)
    assert estimate["rows"] == total_rows(spec) and estimate["shards"] == total_shards(spec)
    assert (
        estimate["core_seconds"] > 0 and estimate["wall_seconds"] > estimate["core_seconds"] / 10**6
    )
    done = sweep("run", str(example), "--store", str(tmp_path), "--run-id", "real-1")
    assert done.returncode == 0, done.stderr
    real = (tmp_path / spec.name / "real-1" / "result.parquet").stat().st_size
    assert real / 2 <= estimate["result_bytes"] <= real * 2, (estimate["result_bytes"], real)


def test_keep_top_k_and_where_shrink_the_result(tmp_path: Path) -> None:
    body = (
        'function = "tests.kernels:slow_square"\nshards = 4\n[space]\nx = { range = [0, 1000] }\n'
    )
    objective = '[objective]\ncolumn = "y"\ngoal = "min"\n'
    every = tmp_path / "every.toml"
    every.write_text(f'name = "every"\n{body}')
    half = tmp_path / "half.toml"
    half.write_text(f'name = "half"\nkeep = {{ where = "y < 250000" }}\n{body}')
    best = tmp_path / "best.toml"
    best.write_text(f'name = "best"\nkeep = {{ top_k = 10 }}\n{body}{objective}')
    fast = {"TTG_TEST_CHUNK_SECONDS": "0"}
    all_rows, half_rows, best_rows = (plan(str(p), env=fast) for p in (every, half, best))
    assert all_rows["kept_rows"] == 1000
    assert half_rows["kept_rows"] == 500  # the slices cover x = 0..999: exactly half match
    assert best_rows["kept_rows"] == 10
    assert best_rows["result_bytes"] < half_rows["result_bytes"] < all_rows["result_bytes"]


def test_more_parallelism_means_less_wall_time_not_fewer_pod_hours() -> None:
    example = str(SWEEPS / "rosenbrock.toml")
    one, eight = plan(example, "--parallelism", "1"), plan(example, "--parallelism", "8")
    assert one["wall_seconds"] > eight["wall_seconds"]
    assert one["compute_wall_seconds"] == pytest.approx(8 * eight["compute_wall_seconds"], rel=0.5)
    assert one["parallelism"] == 1 and eight["parallelism"] == 8


def test_the_plan_reads_as_a_table() -> None:
    done = sweep("plan", str(SWEEPS / "random-search.toml"), "--shards", "6")
    assert done.returncode == 0, done.stderr
    for shown in ("600,000", "rows per shard", "result size", "pod-hours", "wall time"):
        assert shown in done.stdout
    assert "│ shards" in done.stdout and " 6 │" in done.stdout


def test_a_function_that_cannot_be_imported_is_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "gone.toml"
    spec.write_text(
        'name = "gone"\nfunction = "nowhere_at_all:f"\n[space]\nx = { range = [0, 9] }\n'
    )
    done = sweep("plan", str(spec))
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1
    assert "nowhere_at_all" in done.stderr


def test_a_filter_that_keeps_nothing_estimates_an_empty_result(tmp_path: Path) -> None:
    spec = tmp_path / "none.toml"
    spec.write_text(
        'name = "none"\nfunction = "steps.kernels:rosenbrock"\nkeep = { where = "f > 1e12" }\n'
        "[space]\nx = { linspace = [-2.0, 2.0, 300] }\ny = { linspace = [-1.0, 3.0, 300] }\n"
    )
    estimate = plan(str(spec))
    assert estimate["kept_rows"] == 0
    done = sweep("run", str(spec), "--store", str(tmp_path), "--run-id", "none-1")
    assert done.returncode == 0, done.stderr
    real = (tmp_path / "none/none-1/result.parquet").stat().st_size
    assert real / 2 <= estimate["result_bytes"] <= real * 2


@pytest.mark.parametrize(
    "limit,cores", [("500m", 0.5), ("2", 2.0), ("1k", 1000.0), ("1Ki", 1024.0)]
)
def test_every_cpu_limit_the_spec_accepts_is_read(limit: str, cores: float, tmp_path: Path) -> None:
    spec = tmp_path / "cpu.toml"
    spec.write_text(
        f'name = "cpu"\nfunction = "steps.kernels:rosenbrock"\n[resources]\ncpu_limit = "{limit}"\n'
        "[space]\nx = { range = [0, 100] }\ny = { range = [0, 10] }\n"
    )
    assert plan(str(spec))["cpu_limit"] == cores


def plan_of_module(
    folder: Path, name: str, source: str, space: str, *args: str, scalar: bool = False
) -> subprocess.CompletedProcess[str]:
    """`plan` of a sweep over `name.f`, a module of `source` in `folder`, run from there."""
    (folder / f"{name}.py").write_text(source)
    spec = folder / f"{name}.toml"
    scalar_line = "vectorized = false\n" if scalar else ""
    spec.write_text(f'name = "{name}"\nfunction = "{name}:f"\n{scalar_line}[space]\n{space}\n')
    return sweep("plan", str(spec), *args, cwd=folder, timeout=60)


def test_what_the_function_prints_stays_out_of_the_json(tmp_path: Path) -> None:
    source = "def f(x):\n    print('debug', len(x))\n    return {'y': x * 2}\n"
    done = plan_of_module(tmp_path, "chatty", source, "x = { range = [0, 1000] }", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == 1000 and "debug" in done.stderr


def test_a_slow_function_is_timed_within_the_budget(tmp_path: Path) -> None:
    source = "import time\ndef f(x):\n    time.sleep(0.01)\n    return {'y': x * 2.0}\n"
    space = "x = { range = [0, 100000] }"
    done = plan_of_module(tmp_path, "slow", source, space, "--json", "--seconds", "1", scalar=True)
    assert done.returncode == 0, done.stderr
    estimate = json.loads(done.stdout)
    assert 16 <= estimate["sample_rows"] < 1000  # ~100 rows/s for about a second
    assert estimate["core_seconds"] == pytest.approx(100_000 * 0.01, rel=0.5)


def test_a_failing_function_is_one_line_without_a_traceback(tmp_path: Path) -> None:
    source = "def f(x):\n    raise RuntimeError('boom')\n"
    done = plan_of_module(tmp_path, "bad", source, "x = { range = [0, 100] }")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "boom" in done.stderr


def test_a_slow_per_row_function_keeps_to_a_short_budget(tmp_path: Path) -> None:
    source = "import time\ndef f(x):\n    time.sleep(0.5)\n    return {'y': x * 1.0}\n"
    space = "x = { range = [0, 1000] }"
    done = plan_of_module(
        tmp_path, "crawl", source, space, "--json", "--seconds", "0.5", scalar=True
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["core_seconds"] == pytest.approx(500, rel=0.5)


def test_output_written_at_import_or_by_file_descriptor_stays_out_of_the_json(
    tmp_path: Path,
) -> None:
    source = "import os\nprint('importing loud')\ndef f(x):\n    os.write(1, b'raw\\n')\n    return {'y': x * 2}\n"
    done = plan_of_module(tmp_path, "loud", source, "x = { range = [0, 100] }", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == 100
    assert "importing loud" in done.stderr and "raw" in done.stderr


@pytest.mark.parametrize("seconds", ["inf", "1e309", "nan", "0"])
def test_a_budget_must_be_a_finite_positive_number(seconds: str) -> None:
    done = sweep("plan", "--seconds", seconds)
    assert (
        done.returncode == 2
        and len(done.stderr.splitlines()) <= 3
        and "Traceback" not in done.stderr
    )
