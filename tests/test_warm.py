"""`python -m` tasks forked from a warm interpreter behave as if started with `python -m`.

Real processes throughout: the executor, its warm interpreter and the forked tasks.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_exec import _alive
from workflows.local import ExecutionResult, execute
from workflows.manifest import load_manifest
from workflows.warm_client import WarmInterpreter, WarmStartError, WarmTask

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
      command: [python, -m, probe_task]
      args: ["{{workflow.parameters.out}}", "{{workflow.parameters.mode}}"]
      workingDir: %s
      env:
      - name: TTG_PROBE
        value: hello
%s
"""


def workdir(tmp_path: Path) -> Path:
    """A working directory that is not the warm server's, holding the probe as a module
    that only `python -m` from there (cwd first on sys.path) can import."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    shutil.copy(ROOT / "tests" / "warm_probe.py", work / "probe_task.py")
    return work


def probe(
    tmp_path: Path, mode: str = "ok", extra_env: str = "", work: Path | None = None
) -> tuple[ExecutionResult, dict]:
    out = tmp_path / f"probe-{mode}.json"
    manifest = load_manifest(PROBE % (work or workdir(tmp_path), extra_env))
    logs = tmp_path / "logs"
    result = execute(manifest, parameters={"out": str(out), "mode": mode}, log_dir=logs)
    return result, json.loads(out.read_text())


def log_of(result: ExecutionResult) -> str:
    assert result.log_dir is not None
    return "".join(p.read_text() for p in sorted(result.log_dir.glob("probe-*.log")))


def test_a_forked_task_sees_what_python_m_would_show_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = workdir(tmp_path)
    (tmp_path / "warm").mkdir()
    (tmp_path / "cold").mkdir()
    warm_result, warm = probe(tmp_path / "warm", work=work)
    monkeypatch.setenv("TTG_WARM_START", "0")
    cold_result, cold = probe(tmp_path / "cold", work=work)
    assert warm.pop("warm") is True and cold.pop("warm") is False
    for seen in (warm, cold):
        seen.pop("pid")
        seen["argv"][1] = Path(seen["argv"][1]).name  # the output file, in each tmp folder
    assert warm == cold
    assert warm["name"] == "__main__" and warm["argv"][0] == str(work / "probe_task.py")
    assert warm["cwd"] == warm["path0"] == str(work)
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
    (tmp_path / "wf.yaml").write_text(PROBE % (workdir(tmp_path), ""))
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


def test_a_pid_reused_by_a_later_task_is_that_task_s_own(tmp_path: Path) -> None:
    """The server reports a child's exit before another child can reuse its pid; the client
    must not hand the second task the first one's exit status."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        replies = asyncio.StreamReader()
        read_end, write_end = os.pipe()
        requests, _ = await loop.connect_write_pipe(
            asyncio.BaseProtocol, os.fdopen(write_end, "wb")
        )
        server = subprocess.Popen([sys.executable, "-c", "pass"])
        interpreter = WarmInterpreter(server, replies, requests)
        spawn: tuple[str, list[str], dict[str, str], Path, Path] = (
            "probe_task",
            [],
            {},
            tmp_path,
            tmp_path / "log",
        )

        async def spawn_with_reply(reply: bytes) -> WarmTask:
            spawning = asyncio.ensure_future(interpreter.spawn(*spawn))
            await asyncio.sleep(0)  # the request is written
            replies.feed_data(reply)
            return await spawning

        first = await spawn_with_reply(b'{"id": 0, "pid": 4242}\n')
        replies.feed_data(b'{"pid": 4242, "exit": 0}\n')
        assert await first.exited == 0
        second = await spawn_with_reply(b'{"id": 1, "pid": 4242}\n')
        await asyncio.sleep(0.01)
        assert not second.exited.done()
        replies.feed_data(b'{"pid": 4242, "exit": 3}\n')
        assert await second.exited == 3

        # A spawn cancelled while waiting: the task it asked for is killed once it exists.
        orphan = subprocess.Popen(["sleep", "30"], start_new_session=True)
        cancelled = asyncio.ensure_future(interpreter.spawn(*spawn))
        await asyncio.sleep(0)
        cancelled.cancel()
        replies.feed_data(b'{"id": 2, "pid": %d}\n' % orphan.pid)
        for _ in range(1000):  # the reader kills it on this loop: let the loop run
            if orphan.poll() is not None:
                break
            await asyncio.sleep(0.01)
        assert orphan.wait(timeout=1) == -signal.SIGKILL

        replies.feed_eof()  # the server is gone: no task can start
        with pytest.raises(WarmStartError):
            await interpreter.spawn(*spawn)
        requests.close()
        os.close(read_end)
        server.wait()

    asyncio.run(scenario())
