"""What the local executor reports (nodes, observer, result) and the small records its
engine passes around: statuses, loop items, resolved launches, limits, a DAG's schedule."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Protocol

from workflows.manifest import (
    DagTask,
)

__all__ = [
    "OK_STATUSES",
    "DagRun",
    "ExecutionObserver",
    "ExecutionResult",
    "Launch",
    "Limits",
    "LoopItem",
    "NoObserver",
    "Node",
    "NodeStatus",
    "Outcome",
    "Schedule",
    "TaskError",
    "readiness",
]


@dataclass(frozen=True)
class Node:
    """A container task as Argo names it: ``<workflow>.<task>``, loop items ``task(i:item)``."""

    id: str
    task: str
    template: str
    item: str | None


class ExecutionObserver(Protocol):
    """Progress callbacks, all made from the thread that called `execute`.

    Nodes that never start (fail-fast, interrupt) get no call after `task_added`.
    """

    def task_added(self, node: Node) -> None: ...

    def task_started(self, node: Node) -> None: ...

    def task_finished(self, node: Node, succeeded: bool, outputs: dict[str, str]) -> None: ...


@dataclass
class ExecutionResult:
    """What a run did. `outputs`: the entry DAG's container tasks (looped ones aggregated).

    `log_dir` is None when the run succeeded in a log folder `execute` made itself: such a
    folder is removed after success and kept after a failure.
    """

    workflow_name: str
    succeeded: bool
    failed: list[str]
    outputs: dict[str, dict[str, str]]
    log_dir: Path | None
    failure_logs: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    deadline: str | None = None  # the run's deadline that stopped it, e.g. "--timeout 60s"


class NoObserver:
    def task_added(self, node: Node) -> None:
        pass

    def task_started(self, node: Node) -> None:
        pass

    def task_finished(self, node: Node, succeeded: bool, outputs: dict[str, str]) -> None:
        pass


class NodeStatus(Enum):
    SUCCEEDED = "Succeeded"
    SKIPPED = "Skipped"  # a loop with no items
    OMITTED = "Omitted"  # its dependencies can no longer be met
    FAILED = "Failed"
    NOT_RUN = "NotRun"  # stopped before it started: fail-fast or interrupt


OK_STATUSES = frozenset({NodeStatus.SUCCEEDED, NodeStatus.SKIPPED, NodeStatus.OMITTED})


@dataclass(frozen=True)
class Outcome:
    status: NodeStatus
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class DagRun:
    """One running DAG node: its children's slots, and whether fail-fast has tripped."""

    node_id: str
    slots: asyncio.Semaphore | None
    failed: bool = False


@dataclass(frozen=True)
class LoopItem:
    """One loop item: its variables, and how Argo shows it in the node name."""

    value: str
    label: str
    variables: dict[str, str]


@dataclass(frozen=True)
class Launch:
    """A container with every variable resolved: what one attempt runs."""

    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: Path
    outputs: tuple[tuple[str, Path, str | None], ...]


@dataclass(frozen=True)
class Limits:
    """How often a container node may run and for how long (seconds; None: no limit)."""

    attempts: int
    per_attempt: float | None  # activeDeadlineSeconds
    node: float | None  # timeout, from the node's start, every attempt included
    per_attempt_text: str
    node_text: str


class TaskError(Exception):
    """A task that fails before its process can run (e.g. a withParam that is not a list)."""


class Schedule:
    """A DAG's tasks as they become ready. Each waits on a count of unfinished dependencies,
    so a DAG of n tasks costs O(n) bookkeeping in all, whatever its shape (a chain of
    thousands included); ready tasks start in manifest order."""

    def __init__(self, tasks: tuple[DagTask, ...]) -> None:
        self.tasks = tasks
        self.statuses: dict[str, NodeStatus] = {}
        self.results: dict[str, dict[str, str]] = {}
        self._index = {task.name: i for i, task in enumerate(tasks)}
        self._unfinished: dict[str, int] = {}
        self._dependants: dict[str, list[str]] = {}
        self._ready: list[int] = []
        for i, task in enumerate(tasks):
            dependencies = {dep.task for dep in task.depends}
            self._unfinished[task.name] = len(dependencies)
            for name in dependencies:
                self._dependants.setdefault(name, []).append(task.name)
            if not dependencies:
                self._ready.append(i)

    def next_ready(self) -> DagTask | None:
        return self.tasks[heapq.heappop(self._ready)] if self._ready else None

    def finish(self, name: str, status: NodeStatus, outputs: dict[str, str]) -> None:
        self.statuses[name] = status
        self.results[name] = outputs
        for dependant in self._dependants.get(name, ()):
            self._unfinished[dependant] -= 1
            if self._unfinished[dependant] == 0:
                heapq.heappush(self._ready, self._index[dependant])


def readiness(task: DagTask, statuses: Mapping[str, NodeStatus]) -> bool | None:
    """None: a dependency is still pending; True: all met; False: can never be met."""
    if any(dep.task not in statuses for dep in task.depends):
        return None
    for dep in task.depends:
        status = statuses[dep.task]
        if not (
            status is NodeStatus.SUCCEEDED
            or (status is NodeStatus.SKIPPED and not dep.succeeded_only)
        ):
            return False
    return True
