"""How TTG's processes end: through `steps.exit_codes.exit_now`, which flushes the standard
streams and skips the interpreter's teardown, where a pyarrow thread still freeing a buffer
read through a Python file made a finished `verify` abort (SIGABRT) about once in twenty."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def test_exit_now_keeps_the_code_and_flushes_both_streams() -> None:
    code = (
        "import sys\n"
        "from steps.exit_codes import exit_now\n"
        "sys.stdout.write('out, unflushed')\n"
        "sys.stderr.write('err, unflushed')\n"
        "exit_now(3)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout, done.stderr) == (3, "out, unflushed", "err, unflushed")


def _main_block(path: Path) -> ast.If:
    tree = ast.parse(path.read_text())
    (block,) = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and "__name__" in ast.unparse(node.test)
    ]
    return block


@pytest.mark.parametrize("module", ["steps/compute.py", "steps/reduce.py"])
def test_the_pod_entry_points_end_through_exit_now(module: str) -> None:
    assert "exit_now(main())" in ast.unparse(_main_block(ROOT / module))


def test_the_cli_and_a_warm_task_end_through_exit_now() -> None:
    for path, function in (("workflows/sweep.py", "console_main"), ("workflows/warm.py", "main")):
        tree = ast.parse((ROOT / path).read_text())
        (body,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function]
        assert "exit_now(" in ast.unparse(body), f"{path}:{function}"


def test_a_piped_command_still_prints_everything(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "workflows/sweep.py"), "list", "--store", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "no runs" in (done.stdout + done.stderr).lower()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_output_that_cannot_be_written_fails_the_exit() -> None:
    """`render > full-disk`: the manifest never reached the file, so exit 0 would be a lie."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    with Path("/dev/full").open("w") as full:
        done = subprocess.run(
            [sys.executable, str(ROOT / "workflows/sweep.py"), "render"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=120,
        )
    assert done.returncode == 1
    assert "error: cannot write the output: No space left on device" in done.stderr
