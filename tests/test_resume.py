"""Resume says what it does: a finished run is left alone, an unfinished one says what it keeps
and computes (and counts only computed rows), and an interrupted run prints its resume command."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steps.space import Space
from steps.spec import load_spec
from tests.cli import SWEEP, sweep

SPEC = """
name = "resumable"
function = "tests.kernels:slow_square"
shards = 4
chunk_rows = 10
[space]
x = { range = [0, 160] }
"""


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "resumable.toml"
    path.write_text(SPEC)
    return path


FAST = {"TTG_TEST_CHUNK_SECONDS": "0"}


def stamps(run: Path) -> dict[str, int]:
    return {str(p.relative_to(run)): p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}


@pytest.mark.parametrize("with_id", [True, False], ids=["by-id", "latest"])
def test_resuming_a_finished_run_says_so_and_rewrites_nothing(
    spec_file: Path, tmp_path: Path, with_id: bool
) -> None:
    store = tmp_path / "runs"
    first = sweep("run", str(spec_file), "--store", str(store), "--run-id", "done-1", env=FAST)
    assert first.returncode == 0, first.stderr
    before = stamps(store / "resumable/done-1")
    by_id = ["--run-id", "done-1"] if with_id else []
    again = sweep("run", str(spec_file), "--store", str(store), "--resume", *by_id, env=FAST)
    assert again.returncode == 0, again.stderr
    assert "done-1 is already complete: nothing computed, nothing rewritten" in again.stdout
    assert stamps(store / "resumable/done-1") == before


def test_resuming_says_what_it_keeps_and_counts_only_computed_rows(
    spec_file: Path, tmp_path: Path
) -> None:
    store = tmp_path / "runs"
    first = sweep("run", str(spec_file), "--store", str(store), "--run-id", "part-1", env=FAST)
    assert first.returncode == 0, first.stderr
    run = store / "resumable/part-1"
    shards = sorted((run / "shards").iterdir())
    for gone in (shards[1], shards[3], run / "_SUCCESS", run / "result.parquet"):
        gone.unlink()
    again = sweep("run", str(spec_file), "--store", str(store), "--resume", env=FAST)
    assert again.returncode == 0, again.stderr
    assert "resuming part-1: keeping 2 of 4 shards, computing 2 (2 missing)" in again.stdout
    space = Space(load_spec(spec_file))
    computed = sum(stop - start for start, stop in map(space.shard_range, (1, 3)))
    assert f", {computed:,}/{computed:,} rows," in again.stdout  # not the 160 of the whole space
    assert (run / "_SUCCESS").is_file()


def test_an_interrupted_run_prints_the_exact_command_that_resumes_it(
    spec_file: Path, tmp_path: Path
) -> None:
    store = tmp_path / "runs"
    command = [sys.executable, str(SWEEP), "run", str(spec_file), "--store", str(store)]
    env = {**os.environ, "TTG_TEST_CHUNK_SECONDS": "0.3"}
    with subprocess.Popen(
        [*command, "--parallel", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as running:
        deadline = time.monotonic() + 120
        while not list(store.glob("resumable/*/shards/*.parquet")):
            assert time.monotonic() < deadline and running.poll() is None, "no shard was written"
            time.sleep(0.1)
        running.send_signal(signal.SIGINT)
        _, stderr = running.communicate(timeout=60)
    assert running.returncode == 130, stderr
    (line,) = [text for text in stderr.splitlines() if text.startswith("resume it with: ")]
    resume = shlex.split(line.removeprefix("resume it with: "))
    (run_id,) = [p.name for p in (store / "resumable").iterdir()]
    assert resume == [*command, "--resume", "--run-id", run_id]
    done = subprocess.run(resume, env={**env, **FAST}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"resuming {run_id}: keeping " in done.stdout
    assert (store / "resumable" / run_id / "_SUCCESS").is_file()
