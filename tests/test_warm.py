"""`python -m` tasks forked from a warm interpreter behave as if started with `python -m`.

Real processes throughout: the executor, its warm interpreter and the forked tasks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_exec import _alive
from workflows.local import ExecutionResult, execute
from workflows.manifest import load_manifest

ROOT = Path(__file__).parents[1]

PROBE = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: probe-
spec:
  entrypoint: probe
  arguments:
    parameters:
    - name: out
    - name: mode
      value: ok
  templates:
  - name: probe
    container:
      image: python:3.11
      command: [python, -m, tests.warm_probe]
      args: ["{{workflow.parameters.out}}", "{{workflow.parameters.mode}}"]
      workingDir: %s
      env:
      - name: TTG_PROBE
        value: hello
%s
"""


def probe(tmp_path: Path, mode: str = "ok", extra_env: str = "") -> tuple[ExecutionResult, dict]:
    out = tmp_path / f"probe-{mode}.json"
    manifest = load_manifest(PROBE % (ROOT, extra_env))
    result = execute(manifest, parameters={"out": str(out), "mode": mode}, log_dir=tmp_path)
    return result, json.loads(out.read_text())


def log_of(result: ExecutionResult) -> str:
    assert result.log_dir is not None
    return "".join(p.read_text() for p in sorted(result.log_dir.glob("probe-*.log")))


def test_a_forked_task_sees_what_python_m_would_show_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warm_result, warm = probe(tmp_path / "warm")
    monkeypatch.setenv("TTG_WARM_START", "0")
    cold_result, cold = probe(tmp_path / "cold")
    assert warm.pop("warm") is True and cold.pop("warm") is False
    for seen in (warm, cold):
        seen.pop("pid")
        seen["argv"][1] = Path(seen["argv"][1]).name  # the output file, in each tmp folder
    assert warm == cold
    assert warm["name"] == "__main__" and warm["argv"][0] == str(ROOT / "tests/warm_probe.py")
    assert warm["cwd"] == warm["path0"] == str(ROOT)
    assert warm["env"] == "hello" and warm["stdin"] == "" and warm["own_session"]
    assert warm_result.succeeded and cold_result.succeeded
    assert log_of(warm_result) == log_of(cold_result) == "probe stdout\nprobe stderr\n"


@pytest.mark.parametrize(
    "mode,expected",
    [("exit3", "failed: exit code 3"), ("raise", "ValueError: probe raised")],
)
def test_a_forked_task_fails_as_its_process_would(tmp_path: Path, mode: str, expected: str) -> None:
    result, seen = probe(tmp_path, mode)
    assert seen["warm"] is True
    assert not result.succeeded and result.failed == [result.workflow_name]
    log = log_of(result)
    assert expected in log
    if mode == "raise":
        assert "Traceback" in log and "failed: exit code 1" in log


def test_a_task_that_sets_a_variable_read_at_import_starts_cold(tmp_path: Path) -> None:
    extra = "      - name: OMP_NUM_THREADS\n        value: '1'"
    result, seen = probe(tmp_path, extra_env=extra)
    assert result.succeeded and seen["warm"] is False


def _wait_for(path: Path, seconds: float = 20) -> dict:
    deadline = time.monotonic() + seconds
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)
    return json.loads(path.read_text())


def _exec(tmp_path: Path) -> tuple[subprocess.Popen[bytes], dict]:
    (tmp_path / "wf.yaml").write_text(PROBE % (ROOT, ""))
    out = tmp_path / "probe.json"
    command = [sys.executable, "workflows/sweep.py", "exec", str(tmp_path / "wf.yaml")]
    command += ["-p", f"out={out}", "-p", "mode=sleep"]
    runner = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = _wait_for(out)
    assert seen["warm"] is True
    return runner, seen


def test_sigterm_stops_forked_tasks_and_the_warm_interpreter(tmp_path: Path) -> None:
    runner, seen = _exec(tmp_path)
    warm = int(Path(f"/proc/{seen['pid']}/stat").read_text().rsplit(")", 1)[1].split()[1])
    runner.send_signal(signal.SIGTERM)
    runner.communicate(timeout=20)
    assert runner.returncode == 130  # interrupted
    deadline = time.monotonic() + 5
    while (_alive(seen["pid"]) or _alive(warm)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(seen["pid"]) and not _alive(warm)


def test_if_the_warm_interpreter_dies_its_tasks_are_stopped_and_failed(tmp_path: Path) -> None:
    runner, seen = _exec(tmp_path)
    warm = int(Path(f"/proc/{seen['pid']}/stat").read_text().rsplit(")", 1)[1].split()[1])
    os.kill(warm, signal.SIGKILL)
    _, err = runner.communicate(timeout=20)
    assert runner.returncode == 1
    assert b"warm interpreter stopped" in err
    deadline = time.monotonic() + 5
    while _alive(seen["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(seen["pid"])
