"""The executor's side of the warm interpreter (workflows/warm.py): start a server, fork
tasks from it on the event loop, and stop it. Apart from the server so that the server, which
starts on every run's critical path, imports neither asyncio nor anything of the executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from workflows.warm import READY_SECONDS

__all__ = ["WarmInterpreter", "WarmStartError", "WarmTask"]


class WarmStartError(Exception):
    """The warm interpreter could not start a task (the executor then starts it cold)."""


@dataclass(frozen=True)
class WarmTask:
    """A forked task: its pid (the leader of its own process group) and its exit status,
    as `Process.wait` gives it, or None if the server stopped before reporting it."""

    pid: int
    exited: asyncio.Future[int | None]


class WarmInterpreter:
    """The executor's handle on a server: `spawn` a task, await its `exited`."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        replies: asyncio.StreamReader,
        requests: asyncio.WriteTransport,
    ) -> None:
        self.process, self._requests = process, requests
        self._ids = itertools.count()
        self._starting: dict[int, asyncio.Future[WarmTask]] = {}  # by request id
        # Running tasks by pid. The server reports a child's exit before it can fork another
        # child that reuses the pid, so an entry is always replaced after it was removed.
        self._running: dict[int, WarmTask] = {}
        self._reader = asyncio.get_running_loop().create_task(self._read(replies))
        self.alive = True

    @classmethod
    async def connect(cls, process: subprocess.Popen[bytes]) -> WarmInterpreter | None:
        """Wait until the server has imported what it preloads; None if it failed to."""
        assert process.stdin is not None and process.stdout is not None
        loop = asyncio.get_running_loop()
        replies = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(replies), process.stdout)
        requests, _ = await loop.connect_write_pipe(asyncio.BaseProtocol, process.stdin)
        with contextlib.suppress(ValueError, asyncio.TimeoutError):
            ready = await asyncio.wait_for(replies.readline(), READY_SECONDS)
            if json.loads(ready).get("ready"):
                return cls(process, replies, requests)
        requests.close()  # its pipes close with their transports once the server is gone
        await _reap(process, seconds=0)
        return None

    async def spawn(
        self, module: str, args: list[str], env: dict[str, str], cwd: Path, log: Path
    ) -> WarmTask:
        """Fork a task (WarmStartError if the server cannot). If the caller is cancelled
        while waiting, the task, once forked, is killed: nobody would be watching it."""
        if not self.alive:
            raise WarmStartError("the warm interpreter has stopped")
        request_id = next(self._ids)
        started = asyncio.get_running_loop().create_future()
        self._starting[request_id] = started
        request = {"id": request_id, "module": module, "args": args, "env": env}
        request |= {"cwd": str(cwd), "log": str(log)}
        self._requests.write((json.dumps(request) + "\n").encode())
        return await started

    async def _read(self, replies: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        try:
            while line := await replies.readline():
                message = json.loads(line)
                if "exit" in message:
                    task = self._running.pop(message["pid"], None)
                    if task is not None and not task.exited.done():
                        task.exited.set_result(message["exit"])
                    continue
                started = self._starting.pop(message["id"])
                if "pid" not in message:
                    if not started.done():
                        started.set_exception(WarmStartError(str(message.get("error"))))
                    continue
                task = WarmTask(message["pid"], loop.create_future())
                self._running[task.pid] = task
                if started.done():  # its spawn was cancelled
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(task.pid, signal.SIGKILL)
                else:
                    started.set_result(task)
        finally:  # the server is gone (or spoke nonsense): nobody will report these exits
            self.alive = False
            for task in self._running.values():
                if not task.exited.done():
                    task.exited.set_result(None)
            self._running.clear()
            for started in self._starting.values():
                if not started.done():
                    started.set_exception(WarmStartError("the warm interpreter has stopped"))
            self._starting.clear()

    async def close(self) -> None:
        """No more tasks: the server exits once its running children have been reaped."""
        self._requests.close()
        await _reap(self.process)
        with contextlib.suppress(Exception):
            await self._reader


async def _reap(process: subprocess.Popen[bytes], seconds: float = 10) -> None:
    """Wait for the server to exit, killing it after `seconds` (polling: it is not a child
    this event loop watches)."""
    deadline = time.monotonic() + seconds
    while process.poll() is None:
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            return
        await asyncio.sleep(0.01)
