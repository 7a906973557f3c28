"""Run one command as a whole process: wall time, and peak RSS from the kernel's rusage.

`wait4` returns the rusage of a child together with its reaped descendants, so `ru_maxrss`
is the peak RSS of the largest single process in the tree (the runner's task subprocesses,
a pool's workers), not their sum. A child's high-water mark also counts the memory it was
forked from, so the command is started by a small launcher, `/usr/bin/time -f %M` (or, where
that is missing, a bare `python -S` doing fork + exec + wait4): forked from this big driver,
the command itself would never show less than the driver's own RSS.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.child import parse_report


class MeasureError(Exception):
    """The measured command failed or ran out of time."""


@dataclass(frozen=True)
class Sample:
    seconds: float
    peak_rss_mib: float
    detail: dict[str, Any]


TIME = shutil.which("time", path="/usr/bin:/bin")
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def launcher(rss_file: Path) -> list[str]:
    """The prefix that runs a command and writes its tree's peak RSS (KiB) to `rss_file`."""
    if TIME:
        return [TIME, "-f", "%M", "-o", str(rss_file)]
    return [sys.executable, "-S", "-c", _LAUNCHER, str(rss_file)]


def measure(
    argv: list[str], *, cwd: Path, env: dict[str, str], log: Path, timeout: float
) -> Sample:
    """Run `argv` to completion; MeasureError (with the log's tail) unless it exits 0."""
    timed_out = threading.Event()
    rss_file = log.with_suffix(".rss")
    with log.open("wb") as output:
        began = time.perf_counter()
        process = subprocess.Popen(
            [*launcher(rss_file), *argv],
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

        def kill() -> None:
            timed_out.set()
            os.killpg(process.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status = os.waitpid(process.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - began
    process.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text(errors="replace")
    if timed_out.is_set() or process.returncode != 0:
        why = (
            f"timed out after {timeout:g}s" if timed_out.is_set() else f"exit {process.returncode}"
        )
        tail = "\n".join(text.splitlines()[-15:])
        raise MeasureError(f"{' '.join(argv[:4])} ...: {why}\n{tail}")
    kib = rss_file.read_text().split()[-1]  # GNU time may write a status line first
    return Sample(seconds, int(kib) / 1024, parse_report(text))
