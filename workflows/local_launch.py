"""How the local executor starts a task's process and ends it: the `Launcher`, and the
process-group signals a pod's end or deadline means (SIGTERM, then SIGKILL, as the kubelet).

A pod's termination, as the kubelet does it:
https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import IO

from workflows.local_files import note_in_log
from workflows.local_model import Launch
from workflows.manifest import (
    Workflow,
    shown,
)
from workflows.retries import Attempt
from workflows.warm import discard, eligible, launch
from workflows.warm_client import WarmInterpreter, WarmStartError, WarmTask

__all__ = [
    "KILL_GRACE_SECONDS",
    "PYTHON_COMMANDS",
    "SIGNALLED_EXIT_CODE",
    "Launcher",
    "exit_reason",
    "failed_attempt",
    "python_modules",
]

KILL_GRACE_SECONDS = 3.0
SIGNALLED_EXIT_CODE = "137"  # Argo's emissary reports a process killed by any signal as 137
PYTHON_COMMANDS = frozenset({"python", "python3"})


def python_modules(workflow: Workflow) -> set[str]:
    """The modules the workflow's containers run with `python -m`, to preload."""
    modules = set()
    for template in workflow.templates.values():
        if template.container is None:
            continue
        argv = (*template.container.command, *template.container.args)
        if len(argv) >= 3 and argv[0] in PYTHON_COMMANDS and argv[1] == "-m":
            modules.add(argv[2])
    return modules


def _kill_group(pid: int, sig: signal.Signals, leader_alive: bool = False) -> None:
    """Signal the process group `pid` leads. `leader_alive`: the process itself is known not
    to have exited, so if it does not lead a group yet (a warm fork that has not reached its
    setsid under heavy load), it is signalled alone rather than missed."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        if leader_alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
    except PermissionError:
        pass


async def _bounded(
    pid: int, exited: asyncio.Future[int | None], limit: float | None
) -> tuple[int | None, bool]:
    """Wait for a process group's leader to exit. Past `limit` seconds, SIGTERM the group and
    SIGKILL it `KILL_GRACE_SECONDS` later, as the kubelet does a pod past its deadline; the
    second value says whether that happened."""
    if limit is None:
        return await exited, False
    try:
        return await asyncio.wait_for(asyncio.shield(exited), limit), False
    except TimeoutError:
        pass
    _kill_group(pid, signal.SIGTERM, leader_alive=not exited.done())
    kill = asyncio.get_running_loop().call_later(
        KILL_GRACE_SECONDS, lambda: _kill_group(pid, signal.SIGKILL, not exited.done())
    )
    try:
        return await exited, True
    finally:
        kill.cancel()


class Launcher:
    """How one attempt's process starts and ends: in a session of its own (so that it can be
    killed as a group), or forked from the run's warm interpreter (workflows/warm.py) when it
    is a `python -m` task. The engine asks for a process and its exit, and knows nothing of
    warm starts, and sets `halted`, which says when nothing new may start."""

    def __init__(
        self,
        modules: Callable[[], set[str]],
        warm_server: subprocess.Popen[bytes] | None,
    ) -> None:
        self.modules = modules  # what a warm interpreter should import, asked for once
        self.warm_server = warm_server
        self.halted: Callable[[], bool] = lambda: False  # the engine says when to start nothing
        self.processes: set[asyncio.subprocess.Process] = set()
        self.warm_pids: set[int] = set()
        self._warm: asyncio.Task[WarmInterpreter | None] | None = None
        self._warm_process: subprocess.Popen[bytes] | None = None

    async def run(
        self, launch: Launch, log: IO[bytes], limit: float | None
    ) -> tuple[int | None, bool]:
        """Start the process in its own session (so it can be killed as a group); wait for
        it, at most `limit` seconds (see `_bounded`). When it exits, what it left running in
        its group is killed, as its pod's containers would be.

        A `python -m` task is forked from a warm interpreter when it can be (workflows/warm.py),
        else, or if that fails to start it, it is started the ordinary way."""
        module = eligible(launch.argv, launch.env)
        interpreter = await self._warm_interpreter() if module is not None else None
        if self.halted():  # while waiting for the interpreter: start nothing new
            return None, False
        if module is not None and interpreter is not None:
            try:
                task = await interpreter.spawn(
                    module, list(launch.argv[3:]), launch.env, launch.cwd, Path(log.name)
                )
            except WarmStartError:
                pass
            else:
                return await self._wait_warm(task, Path(log.name), limit)
        try:
            process = await asyncio.create_subprocess_exec(
                *launch.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                cwd=str(launch.cwd),
                env=launch.env,
                start_new_session=True,
            )
        except OSError as exc:
            log.write(f"[local executor] cannot start {shown(launch.argv[0])}: {exc}\n".encode())
            return None, False
        self.processes.add(process)
        if self.halted():  # the signal arrived while the process was being created
            _kill_group(process.pid, signal.SIGTERM)
        try:
            return await _bounded(process.pid, asyncio.ensure_future(process.wait()), limit)
        finally:
            self.processes.discard(process)
            _kill_group(process.pid, signal.SIGKILL)

    async def _warm_interpreter(self) -> WarmInterpreter | None:
        """The run's warm interpreter, started by the first task that can use it."""
        if self._warm is None:
            self._warm_process = self.warm_server or launch(self.modules())
            self.warm_server = None
            self._warm = asyncio.get_running_loop().create_task(self._connect(self._warm_process))
        return await asyncio.shield(self._warm)

    @staticmethod
    async def _connect(server: subprocess.Popen[bytes] | None) -> WarmInterpreter | None:
        return None if server is None else await WarmInterpreter.connect(server)

    async def _wait_warm(
        self, task: WarmTask, log: Path, limit: float | None
    ) -> tuple[int | None, bool]:
        self.warm_pids.add(task.pid)
        if self.halted():
            _kill_group(task.pid, signal.SIGTERM)
        try:
            code, late = await _bounded(task.pid, task.exited, limit)
        finally:
            self.warm_pids.discard(task.pid)
        _kill_group(task.pid, signal.SIGKILL)  # what it left running; or itself, unwatched
        if code is None and not late:  # nobody can report on it now
            note_in_log(
                log, "the warm interpreter stopped; the task was killed, its status unknown"
            )
        return code, late

    def stop(self) -> None:
        """A warm interpreter still importing has nothing to wait for: kill it."""
        if self._warm is not None and not self._warm.done() and self._warm_process is not None:
            self._warm_process.kill()

    def kill_all(self, sig: signal.Signals) -> None:
        for process in list(self.processes):
            if process.returncode is None:
                _kill_group(process.pid, sig, leader_alive=True)
        for pid in list(self.warm_pids):
            _kill_group(pid, sig, leader_alive=True)

    async def close(self) -> None:
        """Stop the warm interpreter, or the server started for a run that never needed it."""
        if self.warm_server is not None:
            discard(self.warm_server)
        if self._warm is not None:
            interpreter = await self._warm
            if interpreter is not None:
                await interpreter.close()


def failed_attempt(code: int | None) -> Attempt:
    """A failed attempt that ended with exit status `code` (None: none known), as Argo's
    ``lastRetry.status`` and ``lastRetry.exitCode`` would say."""
    if code is None:  # it never started, or nobody saw it end: a lost pod
        return Attempt("Error", "-1")
    return Attempt("Failed", str(code) if code >= 0 else SIGNALLED_EXIT_CODE)


def exit_reason(code: int) -> str:
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"
