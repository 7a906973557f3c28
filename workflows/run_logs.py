"""Where a local run's task logs are kept, and which of them a `logs RUN [TASK]` means.

`run` writes each attempt's log to `<log root>/<name>/<run_id>/<node id>.log` (retries:
`.retry-N.log`, workflows/local_files.py) and keeps them after the run, so `logs` can show a
finished run's tasks as `argo logs` shows a cluster run's pods; a run executed again (a
resume) keeps only its latest execution's. The root is `$TTG_LOG_DIR`, else
`$XDG_STATE_HOME/ttg/logs`, else `~/.local/state/ttg/logs` (the XDG base directories).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from steps.layout import RUN_ID_RE
from steps.spec import NAME_RE

__all__ = ["log_dirs", "log_root", "matches_task", "run_log_dir", "task_logs"]


def log_root() -> Path:
    if os.environ.get("TTG_LOG_DIR"):
        return Path(os.environ["TTG_LOG_DIR"])
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "ttg" / "logs"


def run_log_dir(name: str, run_id: str) -> Path:
    """The folder of one run's logs; both parts are checked names, so it is always inside
    the log root (never `..`)."""
    if not (NAME_RE.fullmatch(name) and RUN_ID_RE.fullmatch(run_id)):
        raise ValueError(f"not a sweep name and run id: {name!r}, {run_id!r}")
    return log_root() / name / run_id


def log_dirs(reference: str) -> list[Path]:
    """The log folders of `reference`, a run id (of any sweep) or `NAME/RUN_ID`; raises
    ValueError for anything else."""
    name, _, run_id = reference.rpartition("/")
    if not RUN_ID_RE.fullmatch(run_id) or (name and not NAME_RE.fullmatch(name)):
        raise ValueError(f"'{reference}' is not a run id (or NAME/RUN_ID)")
    found = [run_log_dir(name, run_id)] if name else sorted(log_root().glob(f"*/{run_id}"))
    return [folder for folder in found if folder.is_dir()]


_COMPUTE = r"compute(?:-\d+)?"  # a refined run's stages: compute-0, compute-1, ...


def matches_task(node: str, task: str | None) -> bool:
    """`task` as a user writes it: `reduce`, `compute` (every shard, of every stage in a
    refined run: `compute-N`), `3` or `compute(3:3)` (shard 3), or a node's or pod's full
    name. A loop node is `<task>(<position>:<item>)`; a shard's item is its index."""
    if task is None:
        return True
    tail = node.rsplit(".", 1)[-1] if "." in node else node
    if task.isdigit():
        return re.fullmatch(rf"{_COMPUTE}\(\d+:{int(task)}\)", tail) is not None
    if task == "compute":
        return re.fullmatch(rf"{_COMPUTE}\(\d+:\d+\)", tail) is not None
    return (
        task in (node, tail) or re.fullmatch(rf"{re.escape(task)}(\(\d+:\d+\))?", tail) is not None
    )


def task_logs(folder: Path, task: str | None) -> list[Path]:
    """A run's attempt logs for `task` (all tasks if None), in node order, retries after
    their first attempt."""
    found = []
    for path in folder.glob("*.log"):
        node = re.sub(r"(\.retry-\d+)?\.log$", "", path.name)
        if matches_task(node, task):
            found.append(path)
    return sorted(found, key=_order)


def _order(path: Path) -> tuple[int, int, int, str]:
    """Compute shards by index, then reduce; each node's attempts in order."""
    shard = re.search(rf"\.{_COMPUTE}\(\d+:(\d+)\)", path.name)
    retry = re.search(r"\.retry-(\d+)\.log$", path.name)
    return (
        0 if shard else 1,
        int(shard[1]) if shard else 0,
        int(retry[1]) if retry else 0,
        path.name,
    )
