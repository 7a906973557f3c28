"""The files of a local run: its private folder of emptyDir folders (locked while it lives,
removed by the next run if it died), and its task logs."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

from workflows.local_model import Node

__all__ = [
    "FAILURE_LOG_LINES",
    "RUN_FOLDER_LOCK",
    "RUN_FOLDER_PREFIX",
    "attempt_log",
    "log_tail",
    "note_in_log",
    "remove_tree",
    "run_folder",
    "safe_name",
]

FAILURE_LOG_LINES = 20
RUN_FOLDER_PREFIX = "ttg-volumes-"  # in the temp folder: a run's emptyDir folders
RUN_FOLDER_LOCK = ".ttg-volumes.lock"


def run_folder(name: str) -> tuple[Path, int]:
    """The run's private folder for its attempts' emptyDir folders, in the temp folder, and
    a lock on it held while the run lives. Folders of runs that died without removing theirs
    (SIGKILL) go first: their lock is free (and a minute old, so that a run that has made its
    lock file but not yet locked it is never taken for dead)."""
    root = Path(tempfile.gettempdir())
    for stale in root.glob(f"{RUN_FOLDER_PREFIX}*"):
        with contextlib.suppress(OSError):
            info = stale.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                continue
            lock = os.open(stale / RUN_FOLDER_LOCK, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                if time.time() - os.fstat(lock).st_mtime > 60:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # OSError: a live run's
                    remove_tree(stale)
            finally:
                os.close(lock)
    folder = Path(tempfile.mkdtemp(prefix=f"{RUN_FOLDER_PREFIX}{safe_name(name)}."))
    lock = os.open(folder / RUN_FOLDER_LOCK, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    return folder, lock


def safe_name(name: str) -> str:
    """A workflow name made fit to start a file name (it is the user's: it may hold '/')."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:60]


def remove_tree(path: Path | None) -> None:
    """Remove a folder a task wrote, even where it took away its own permissions."""
    if path is None:
        return

    def retry(function: Any, failed: str, _: Any) -> None:
        where = Path(failed)
        with contextlib.suppress(OSError):
            where.parent.chmod(0o700)
            if where.is_dir() and not where.is_symlink():
                where.chmod(0o700)
                shutil.rmtree(where, ignore_errors=True)
            else:
                function(failed)

    shutil.rmtree(path, onerror=retry)


def note_in_log(log_path: Path, message: str) -> None:
    with log_path.open("a", encoding="utf-8") as log:
        log.write(f"[local executor] {message}\n")


def log_tail(log_path: Path) -> str:
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-FAILURE_LOG_LINES:])


def attempt_log(log_dir: Path, node: Node, attempt: int) -> Path:
    """The log of one attempt of a node, named after the node (cut and hashed if long)."""
    safe = re.sub(r"[^A-Za-z0-9._():,=+-]", "_", node.id)
    if len(safe) > 150:
        digest = hashlib.sha1(node.id.encode(), usedforsecurity=False).hexdigest()[:10]
        safe = f"{safe[:120]}-{digest}"
    suffix = ".log" if attempt == 0 else f".retry-{attempt}.log"
    return log_dir / f"{safe}{suffix}"
