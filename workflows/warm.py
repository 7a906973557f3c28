"""A warm interpreter that forks the local executor's `python -m MODULE` tasks.

Starting Python and importing numpy and pyarrow costs a task ~0.2 s, as long as the work of
a small shard; this server imports them once per run and forks one child per task, which
runs the module as `python -m` does in a session of its own. One JSON object per line: requests
on its stdin, replies and exits on its stdout. What a fork shares, what it does not, and the
measurement that keeps it: docs/local-executor.md#warm-starts.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import runpy
import select
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steps.exit_codes import exit_now

__all__ = [
    "LIBRARIES",
    "OWN_PACKAGE",
    "READY_SECONDS",
    "STARTUP_VARIABLES",
    "discard",
    "eligible",
    "launch",
    "main",
    "run_task",
    "serve",
]

LIBRARIES = (
    "numpy",
    "numpy.ma",
    "pyarrow",
    "pyarrow.parquet",
    "pyarrow.compute",
)  # numpy.ma: pa.array
OWN_PACKAGE = "steps."  # modules whose imports are known to be free of side effects
# Read once, when a library is imported or the interpreter starts: a task that sets one of
# these differently from this process gets a fresh interpreter.
STARTUP_VARIABLES: tuple[str, ...] = ("PYTHON", "ARROW_", "OMP_", "OPENBLAS_", "MKL_", "NPY_")
STARTUP_VARIABLES += ("NUMEXPR_", "LD_", "MALLOC_", "JE_", "GOTO_", "VECLIB_", "BLIS_")
STARTUP_VARIABLES += ("LANG", "LC_", "TZ")  # locale and time zone: read when Python starts
READY_SECONDS = 60  # a server that has not imported its libraries by then is given up


def eligible(argv: tuple[str, ...], env: Mapping[str, str]) -> str | None:
    """The module a task runs, if a forked warm interpreter can run it faithfully."""
    if len(argv) < 3 or argv[0] != sys.executable or argv[1] != "-m":
        return None
    if not all(part.isidentifier() for part in argv[2].split(".")):
        return None
    names = set(env) | set(os.environ)
    for name in names:
        if name.startswith(STARTUP_VARIABLES) and env.get(name) != os.environ.get(name):
            return None
    return argv[2]


def launch(modules: Iterable[str]) -> subprocess.Popen[bytes] | None:
    """Start a server now, so it imports while the caller does other work (`run` starts one
    before anything else); None if warm start is off or the server cannot start. Here, not
    in workflows/warm_client.py, so that starting it (and `discard`) waits for neither
    asyncio nor rich: its imports are the first task's critical path."""
    if os.environ.get("TTG_WARM_START", "1") == "0" or not hasattr(os, "pidfd_open"):
        return None
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "workflows.warm", *sorted(set(modules))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # tasks write to their logs; nothing of the server's shows
            start_new_session=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
    except OSError:
        return None


def discard(process: subprocess.Popen[bytes]) -> None:
    """Stop a server that got no tasks (a run refused, or one without `python -m` tasks)
    at once; a server that served a run has already exited and is only reaped."""
    if process.poll() is None:
        process.kill()
    process.wait()
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            pipe.close()


# -- the server (runs in its own process) -------------------------------------------------


@dataclass(frozen=True)
class _Request:
    id: int  # echoed in the reply, so each reply finds its request
    module: str
    args: list[str]
    env: dict[str, str]
    cwd: str
    log: str


def _preload(modules: list[str]) -> None:
    """Import the libraries and the given step modules' dependencies, but not the modules
    themselves: each child runs its module fresh, as `__main__`."""
    for name in LIBRARIES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    for name in modules:
        if not name.startswith(OWN_PACKAGE):
            continue
        with contextlib.suppress(Exception):
            importlib.import_module(name)
        sys.modules.pop(name, None)
        parent, _, child = name.rpartition(".")
        with contextlib.suppress(KeyError, AttributeError):
            delattr(sys.modules[parent], child)


def _send(message: dict[str, Any]) -> None:
    """Write a reply straight to fd 1, so no buffered text is inherited by a child."""
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(1, data) :]


def serve() -> _Request | None:
    """Answer requests until stdin closes (None); in a forked child, return its request."""
    selector = selectors.DefaultSelector()
    selector.register(0, selectors.EVENT_READ, None)
    children: dict[int, int] = {}  # pidfd -> pid
    pending = b""
    open_input = True
    _send({"ready": True})
    while open_input or children:
        for key, _ in selector.select():
            if key.data is not None:  # a child exited
                pid = children.pop(key.fd)
                selector.unregister(key.fd)
                os.close(key.fd)
                _, status = os.waitpid(pid, 0)
                _send({"pid": pid, "exit": os.waitstatus_to_exitcode(status)})
                continue
            chunk = os.read(0, 1 << 16)
            if not chunk:
                open_input = False
                selector.unregister(0)
                continue
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = _Request(**json.loads(line))
                try:
                    pid = os.fork()
                except OSError as exc:
                    _send({"error": f"cannot fork: {exc}"})
                    continue
                if pid == 0:
                    selector.close()
                    for fd in children:
                        os.close(fd)
                    return request
                try:
                    pidfd = os.pidfd_open(pid)
                except OSError as exc:  # unwatched, it must not run: the task starts cold
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    _send({"id": request.id, "error": f"cannot watch the task: {exc}"})
                    continue
                _await_session(pid, pidfd)
                children[pidfd] = pid
                selector.register(pidfd, selectors.EVENT_READ, pid)
                _send({"id": request.id, "pid": pid})
    return None


def _await_session(pid: int, pidfd: int, seconds: float = 1.0) -> None:
    """Wait until the child leads its own process group (its first act), so that from the
    reply on, the executor can signal the task and its children as one group."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if os.getpgid(pid) == pid:
                return
        except ProcessLookupError:
            return
        if select.select([pidfd], [], [], 0.0002)[0]:  # it has exited already
            return


def run_task(request: _Request) -> int:
    """In the forked child: become the task's process, then run its module as `python -m`."""
    os.setsid()
    for signum in (signal.SIGTERM, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open(request.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)
    try:
        os.chdir(request.cwd)
        os.environ.clear()
        os.environ.update(request.env)
        sys.path[0] = request.cwd
        sys.argv = [request.module, *request.args]
        runpy.run_module(request.module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # as the interpreter does: report it, then die by SIGINT
        sys.excepthook(*sys.exc_info())
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:  # reported through sys.excepthook, as `python -m` would
        sys.excepthook(*sys.exc_info())
        return 1
    return 0


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the executor stops the server, not Ctrl-C
    _preload(sys.argv[1:])
    gc.freeze()  # what the children share stays shared: no collector writes to those pages
    try:
        request = serve()
    except BrokenPipeError:  # the executor went away (e.g. the run was refused): nothing to do
        return 0
    if request is not None:  # a forked task: it ends as its module's process would
        exit_now(run_task(request))
    return 0


if __name__ == "__main__":
    sys.exit(main())
