"""Your own module just works: a function in the folder you run from, through `ttg` and the
script, without PYTHONPATH; and `ttg` is the same command line as `python workflows/sweep.py`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.cli import SWEEP

TTG = Path(sys.executable).with_name("ttg")

MODEL = """
def bowl(x, y):
    return {"loss": (x - 1.0) ** 2 + (y + 2.0) ** 2}
"""

SPEC = """
name = "mine"
function = "mymodel:bowl"
shards = 3

[space]
x = { range = [-3, 4] }
y = { range = [-4, 3] }

[objective]
column = "loss"
goal = "min"
"""


def user_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "mymodel.py").write_text(MODEL)
    (folder / "sweep.toml").write_text(SPEC)
    return folder


def without_pythonpath() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


COMMANDS = {
    "ttg": [str(TTG)],
    "script": [sys.executable, str(SWEEP)],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_function_in_the_current_folder_runs_without_pythonpath(
    command: str, tmp_path: Path
) -> None:
    folder = user_folder(tmp_path)
    done = subprocess.run(
        [*COMMANDS[command], "run", "sweep.toml", "--store", "runs", "--run-id", "mine-1"],
        cwd=folder,
        env=without_pythonpath(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    table = pq.read_table(folder / "runs" / "mine" / "mine-1" / "result.parquet")
    assert table.num_rows == 49
    losses = dict(
        zip(
            zip(table["x"].to_pylist(), table["y"].to_pylist(), strict=True),
            table["loss"].to_pylist(),
            strict=True,
        )
    )
    assert losses[(1, -2)] == 0.0
    assert losses[(-3, 2)] == 16.0 + 16.0


def test_a_missing_module_is_one_line_naming_it(tmp_path: Path) -> None:
    folder = user_folder(tmp_path)
    (folder / "mymodel.py").unlink()
    done = subprocess.run(
        [str(TTG), "run", "sweep.toml", "--store", "runs"],
        cwd=folder,
        env=without_pythonpath(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "mymodel" in done.stderr


def test_ttg_is_the_same_command_line_as_the_script() -> None:
    by_ttg = subprocess.run([str(TTG), "--help"], capture_output=True, text=True, timeout=60)
    by_script = subprocess.run(
        [sys.executable, str(SWEEP), "--help"], capture_output=True, text=True, timeout=60
    )
    assert by_ttg.returncode == by_script.returncode == 0
    assert by_ttg.stdout.startswith("usage: ttg ")
    words = by_ttg.stdout.replace("usage: ttg ", "usage: sweep.py ", 1).split()
    assert words == by_script.stdout.split()  # the same, but for where argparse wraps lines
