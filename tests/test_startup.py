"""Each command loads only what it needs: `render` and `run` start without the plotting, the
Argo client, the S3 client (for a folder store) or the other commands' modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import ROOT, SWEEP

# Needed only by other commands: results --plot, submit/schedule/status, an s3:// store.
NOT_FOR_RENDER_OR_RUN = frozenset(
    {"matplotlib", "minio", "workflows.argo", "workflows.plot", "workflows.watch", "workflows.lint"}
)
# Needed by `run` (and `exec`) only: executing, progress on the terminal, the final report.
RUN_ONLY = frozenset(
    {"rich", "steps.function", "workflows.local", "workflows.progress", "workflows.report"}
)


def imported_modules(*args: str) -> set[str]:
    """The modules `sweep.py *args` imports, read from Python's `-X importtime` report."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(SWEEP), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert len(lines) > 100, done.stderr[-2000:]  # the report is there and parsed
    return {line.rsplit("|", 1)[1].strip() for line in lines[1:]}  # [0] is the header


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("render", ["render", "--store", "runs"]),
        ("run", ["run", "--shards", "2", "--parallel", "2", "--store", "{tmp}"]),
    ],
)
def test_a_command_does_not_import_what_only_other_commands_need(
    name: str, args: list[str], tmp_path: Path
) -> None:
    modules = imported_modules(*(a.format(tmp=tmp_path / "runs") for a in args))
    assert "hera.workflows" in modules  # both build the Workflow with Hera
    unwanted = NOT_FOR_RENDER_OR_RUN | (RUN_ONLY if name == "render" else frozenset())
    loaded = sorted(u for u in unwanted if any(m == u or m.startswith(u + ".") for m in modules))
    assert loaded == [], f"`{name}` imports {loaded}"


def test_exec_runs_a_manifest_without_importing_hera(tmp_path: Path) -> None:
    """`exec` needs no Hera (0.4 s): only `render`, `run`, `submit` and `schedule` build."""
    manifest = tmp_path / "wf.yaml"
    manifest.write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {generateName: hi-}\n"
        "spec:\n  entrypoint: hi\n  templates:\n  - name: hi\n"
        "    container: {image: alpine, command: [echo, hi]}\n"
    )
    modules = imported_modules("exec", str(manifest))
    assert "workflows.local" in modules
    assert not [m for m in modules if m == "hera" or m.startswith("hera.")]
