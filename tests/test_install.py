"""What `make run` installs: the runtime and what `results --plot` needs, never the dev tools,
which `make test` adds. Checked on the Makefile's own recipe and on pip's own resolution."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

DEV_TOOLS = {"pytest", "hypothesis", "ruff", "mypy", "duckdb", "jsonschema", "types-pyyaml"}
RUNTIME = {"numpy", "pyarrow", "minio", "isal", "hera", "rich", "pyyaml", "matplotlib"}


def dry_make(target: str, tmp_path: Path) -> list[str]:
    """The commands `make TARGET` would run in a fresh clone (no .venv yet)."""
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    done = subprocess.run(
        ["make", "-n", target], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if "pip install" in line]


def test_make_run_installs_the_runtime_and_the_plot_extra_only(tmp_path: Path) -> None:
    installs = dry_make("run", tmp_path)
    assert installs and all("'.[plot]'" in line for line in installs), installs
    assert not any("dev" in line or "bench" in line for line in installs)


def test_make_test_adds_the_dev_tools_on_top(tmp_path: Path) -> None:
    installs = dry_make(".venv/.installed", tmp_path)  # what lint, typecheck and pytest need
    assert [bool(re.search(r"'\.\[plot\]'", line)) for line in installs[:1]] == [True]
    assert any("'.[dev]'" in line for line in installs)


@pytest.mark.slow
def test_the_run_install_resolves_to_no_dev_tool(tmp_path: Path) -> None:
    """pip's own resolution of what `make run` installs (a dry run: nothing is installed)."""
    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--disable-pip-version-check",
            "--quiet",
            "--report",
            str(report),
            f"{ROOT}[plot]",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    names = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert names >= RUNTIME, RUNTIME - names
    assert not DEV_TOOLS & names, DEV_TOOLS & names
