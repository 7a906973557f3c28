"""Run an Argo Workflow on this machine: each container task a real subprocess.

`exec` is a local Argo for the subset `workflows.manifest` accepts, so the semantics follow
Argo's DAG engine: a task starts once its dependencies succeeded (``depends: "A"`` also accepts
a skipped A, i.e. an empty loop; ``A.Succeeded`` does not, and a task whose dependencies can
no longer be met is omitted, as in Argo); loops expand into one child node per item; a DAG is
fail-fast (after a failure no new task starts in that DAG, running ones finish, dependants
never start, the run fails). Template ``parallelism`` bounds the running children of each DAG
node (loop items count one by one); ``spec.parallelism`` and `parallel` bound the running
processes. Slots are taken outer DAG first, inner DAG next, process last, and only leaves take
process slots, so nested limits cannot deadlock.

Rules specific to running locally:

- Processes: no shell unless the command is one (``/bin/sh -c ...``); the caller's environment
  plus the container's ``env``; the caller's working directory unless ``workingDir`` is set.
  A command named ``python`` or ``python3`` runs with this interpreter (`sys.executable`);
  ``python -m MODULE`` is forked from a warm interpreter that has numpy and pyarrow imported
  (`workflows.warm`; ``TTG_WARM_START=0`` turns it off).
- Paths in a manifest are host paths, except under the mountPath of an ``emptyDir`` volume
  (``spec.volumes``), which is emulated as Kubernetes gives it: each attempt (a pod) gets its
  own empty folder, made with mode 0700 by `tempfile.mkdtemp` inside a private folder of the
  run's, and removed after the attempt (its output parameters read first); the run's folder
  goes when the run ends, however it ends (killed with SIGKILL, it is left to the next run,
  which removes it). A path the manifest itself writes under such a mountPath in
  ``command``, ``args``, ``env`` values, ``workingDir`` or an output's ``valueFrom.path``
  names that folder instead (`workflows.manifest.substitute` says what counts as a path);
  values substituted into a field are never rewritten, so a user's ``--store /tmp/runs``
  passed as a workflow parameter stays a host path. Mounts of other volume kinds change
  nothing: their paths are host paths. What an attempt leaves running in its process group
  is killed when it ends, as its pod's containers would be.
- ``secretKeyRef``: a secret key is read from the caller's environment variable named like the
  key, upper-cased, every non-alphanumeric character replaced by ``_`` (key ``aws-access-key``
  → ``AWS_ACCESS_KEY``). An unset variable refuses the manifest before any task starts,
  naming secret, key and variable, unless the ref is ``optional: true`` (then the container
  variable is left unset, as Kubernetes does).
- Output parameters: the file at ``valueFrom.path`` (relative to the process's working
  directory) is read after a successful exit, and one trailing newline is stripped, exactly as
  Argo's executor does; nothing else is trimmed. A missing file fails the attempt unless
  ``valueFrom.default`` is set.
- Aggregated outputs: ``{{tasks.X.outputs.parameters.P}}`` of a looped X is a JSON list in item
  order: of parsed values if every value is a JSON object or list, else of the strings (Argo's
  rule). An empty loop gives ``[]``.
- Retries: up to ``retryStrategy.limit`` extra attempts, right away (``backoff`` is ignored),
  each only if ``retryPolicy`` AND ``expression`` allow it, as Argo decides
  (`workflows.retries`, which evaluates the expression subset). A failed attempt is what Argo
  would record: a process that exited non-zero is ``Failed`` with its exit code; one killed by
  a signal (at a deadline too) is ``Failed`` with ``lastRetry.exitCode`` 137, as Argo's
  emissary reports every signal death; one that left no exit status (it could not start, or
  the warm interpreter running it died) is ``Error`` with "-1", as a lost pod; one whose
  output parameter cannot be read is ``Error`` with its exit code 0, as a failed wait
  container. ``Always`` retries both, ``OnFailure`` (the default without an expression)
  ``Failed``, ``OnError`` ``Error``, ``OnTransientError`` nothing (no Kubernetes here).
- Time limits, as Argo's: a template's ``activeDeadlineSeconds`` bounds each attempt (it is
  the pod's deadline), and an attempt past it is a failed attempt, retried like any other
  (a pod killed at its deadline is Failed, which Argo retries under ``OnFailure`` and
  ``Always``); its ``timeout`` (a duration, ``30s``, ``5m``) bounds the node from the moment
  it takes a process slot, every attempt included, and ends the retries. The workflow's
  ``spec.activeDeadlineSeconds`` and the caller's `timeout` bound the run: when one passes,
  nothing new starts, running tasks are stopped as on an interrupt, and the run fails naming
  it. A process past a limit gets SIGTERM for its process group, SIGKILL 3 s later (Kubernetes
  waits the pod's grace period); warm-forked tasks are process groups like the rest.
- Sizes: a loop of more than `MAX_LOOP_ITEMS` (100,000) items is refused before anything
  starts when its items or its withSequence numbers come from literals or workflow
  parameters, and fails its task, before any item exists, when they come from task outputs.
- Logs: each attempt's stdout and stderr go to ``<log_dir>/<node id>.log`` (retries:
  ``.retry-N.log``); the last lines of a failed node's log are in `ExecutionResult.failure_logs`.
- SIGINT / SIGTERM (when called from the main thread) stop new work, send SIGTERM to every
  running process group (SIGKILL after a grace period or on a second signal), and the run
  returns failed with ``interrupted`` set.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import heapq
import json
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import IO, Any, Protocol

from workflows.manifest import (
    MAX_LOOP_ITEMS,
    Container,
    DagTask,
    ManifestError,
    Parameter,
    Sequence,
    Template,
    UnresolvedError,
    Workflow,
    clipped,
    parse_duration,
    parse_workflow,
    scalar_text,
    secret_variable,
    shown,
    substitute,
    too_many_items,
    variables,
)
from workflows.retries import Attempt, retry_refusal
from workflows.warm import WarmInterpreter, WarmStartError, WarmTask, discard, eligible, launch

__all__ = [
    "FAILURE_LOG_LINES",
    "KILL_GRACE_SECONDS",
    "MAX_FORMAT_WIDTH",
    "RUN_FOLDER_LOCK",
    "RUN_FOLDER_PREFIX",
    "SIGNALLED_EXIT_CODE",
    "ExecutionObserver",
    "ExecutionResult",
    "Node",
    "check_loops",
    "check_secrets",
    "execute",
    "global_scope",
    "workflow_name",
]

FAILURE_LOG_LINES = 20
SIGNALLED_EXIT_CODE = "137"  # Argo's emissary reports a process killed by any signal as 137
KILL_GRACE_SECONDS = 3.0
RUN_FOLDER_PREFIX = "ttg-volumes-"  # in the temp folder: a run's emptyDir folders
RUN_FOLDER_LOCK = ".ttg-volumes.lock"
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes uses for generateName suffixes
_PYTHON_COMMANDS = frozenset({"python", "python3"})


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


def execute(
    manifest: Mapping[str, Any],
    parameters: Mapping[str, str] | None = None,
    parallel: int | None = None,
    observer: ExecutionObserver | None = None,
    log_dir: Path | None = None,
    warm_server: subprocess.Popen[bytes] | None = None,
    timeout: float | None = None,
) -> ExecutionResult:
    """Check `manifest` completely, then run it; `ManifestError` means nothing ran.

    `warm_server`: a `workflows.warm.launch` already started for this run (else the run
    starts one when its first `python -m` task is ready); it is stopped when the run ends.
    `timeout`: seconds the whole run may take, like ``spec.activeDeadlineSeconds`` (the
    earlier of the two applies)."""
    workflow = parse_workflow(manifest)
    name = workflow_name(workflow)
    scope = global_scope(workflow, name, parameters or {})
    check_secrets(workflow, scope)
    check_loops(workflow, scope)
    if parallel is not None and parallel < 1:
        raise ValueError(f"parallel must be at least 1, got {parallel}")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
    limit = parallel if parallel is not None else os.cpu_count() or 1
    if workflow.parallelism is not None:
        limit = min(limit, workflow.parallelism)
    temporary_logs = log_dir is None
    if log_dir is None:
        log_dir = Path(tempfile.mkdtemp(prefix=f"{_safe_name(name)}.logs."))
    log_dir.mkdir(parents=True, exist_ok=True)
    engine = _Engine(workflow, name, scope, limit, observer or _NoObserver(), log_dir, warm_server)
    engine.deadline = _run_deadline(workflow, timeout)
    try:
        succeeded = _run_loop(engine) and not engine.halted
    finally:  # the emptyDir folders every attempt left (a killed one's), and the run's
        _remove_tree(engine.volumes)
        if engine.volumes_lock is not None:
            os.close(engine.volumes_lock)
    kept_logs: Path | None = log_dir
    if succeeded and temporary_logs:  # nobody asked for them and nothing needs explaining
        shutil.rmtree(log_dir, ignore_errors=True)
        kept_logs = None
    return ExecutionResult(
        workflow_name=name,
        succeeded=succeeded,
        failed=engine.failed,
        outputs=engine.top_outputs,
        log_dir=kept_logs,
        failure_logs=engine.failure_logs,
        interrupted=engine.interrupted,
        deadline=engine.deadline_passed,
    )


def workflow_name(workflow: Workflow) -> str:
    """``metadata.name``, else ``generateName`` plus five random characters, as Argo does."""
    if workflow.name:
        return workflow.name
    suffix = "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))
    return f"{workflow.generate_name or ''}{suffix}"


def global_scope(workflow: Workflow, name: str, overrides: Mapping[str, str]) -> dict[str, str]:
    """``workflow.*`` variables, with `overrides` applied like ``argo submit -p``."""
    declared = [p.name for p in workflow.parameters]
    for key in overrides:
        if key not in declared:
            known = ", ".join(declared) or "none"
            raise ManifestError(
                f"spec.arguments.parameters: no parameter {shown(key)} to set"
                f" (declared: {clipped(known)})"
            )
    scope = {"workflow.name": name}
    for i, param in enumerate(workflow.parameters):
        if param.name in overrides:
            value = overrides[param.name]
        elif param.value is None:
            raise ManifestError(
                f"spec.arguments.parameters[{i}].value: parameter {shown(param.name)} has no value;"
                f" supply one (-p {clipped(param.name)}=VALUE)"
            )
        else:
            value = substitute(param.value, {"workflow.name": name})
        scope[f"workflow.parameters.{param.name}"] = value
    return scope


def check_secrets(workflow: Workflow, scope: Mapping[str, str]) -> None:
    """Refuse, before anything runs, a required secret whose environment variable is unset."""
    indexes = {name: i for i, name in enumerate(workflow.templates)}
    for template in _reachable(workflow):
        for j, var in enumerate(template.container.env if template.container else ()):
            if var.secret is None or var.secret.optional:
                continue
            key = substitute(var.secret.key, scope)
            variable = secret_variable(key)
            if variable not in os.environ:
                path = f"spec.templates[{indexes[template.name]}].container.env[{j}]"
                raise ManifestError(
                    f"{path}.valueFrom.secretKeyRef: secret"
                    f" {shown(substitute(var.secret.name, scope))} key {shown(key)} is read"
                    f" locally from environment variable {clipped(variable)}, which is unset"
                )


def check_loops(workflow: Workflow, scope: Mapping[str, str]) -> None:
    """Refuse, before anything runs, a withSequence over more than `MAX_LOOP_ITEMS` numbers
    whose count, start and end come from literals and workflow parameters (``-p`` included);
    one that depends on a task's outputs or a template's inputs is checked when it expands.
    Nothing is materialised: the size is arithmetic."""
    indexes = {name: i for i, name in enumerate(workflow.templates)}
    for template in _reachable(workflow):
        for j, task in enumerate(template.dag or ()):
            seq = task.with_sequence
            fields = [] if seq is None else [seq.count, seq.start, seq.end, seq.format]
            if seq is None or any(
                not name.startswith("workflow.")
                for text in fields
                if text is not None
                for name in variables(text)
            ):
                continue
            try:
                _sequence_numbers(seq, scope)
                _sequence_format(seq, scope)
            except _TaskError as exc:
                raise ManifestError(
                    f"spec.templates[{indexes[template.name]}].dag.tasks[{j}].{exc}"
                ) from None


def _run_deadline(workflow: Workflow, timeout: float | None) -> tuple[float, str] | None:
    """The run's deadline, in seconds from its start, and how a failure names it."""
    limits = []
    if workflow.deadline is not None:
        limits.append((float(workflow.deadline), f"spec.activeDeadlineSeconds {workflow.deadline}"))
    if timeout is not None:
        limits.append((timeout, f"--timeout {timeout:g}s"))
    return min(limits, key=lambda limit: limit[0]) if limits else None


def _reachable(workflow: Workflow) -> list[Template]:
    seen: dict[str, Template] = {}
    pending = [workflow.entrypoint]
    while pending:
        template = workflow.templates[pending.pop()]
        if template.name not in seen:
            seen[template.name] = template
            pending.extend(task.template for task in template.dag or ())
    return list(seen.values())


class _NoObserver:
    def task_added(self, node: Node) -> None:
        pass

    def task_started(self, node: Node) -> None:
        pass

    def task_finished(self, node: Node, succeeded: bool, outputs: dict[str, str]) -> None:
        pass


class _Status(Enum):
    SUCCEEDED = "Succeeded"
    SKIPPED = "Skipped"  # a loop with no items
    OMITTED = "Omitted"  # its dependencies can no longer be met
    FAILED = "Failed"
    NOT_RUN = "NotRun"  # stopped before it started: fail-fast or interrupt


_OK = frozenset({_Status.SUCCEEDED, _Status.SKIPPED, _Status.OMITTED})


@dataclass(frozen=True)
class _Outcome:
    status: _Status
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class _DagRun:
    """One running DAG node: its children's slots, and whether fail-fast has tripped."""

    node_id: str
    slots: asyncio.Semaphore | None
    failed: bool = False


@dataclass(frozen=True)
class _Item:
    """One loop item: its variables, and how Argo shows it in the node name."""

    value: str
    label: str
    variables: dict[str, str]


@dataclass(frozen=True)
class _Launch:
    """A container with every variable resolved: what one attempt runs."""

    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: Path
    outputs: tuple[tuple[str, Path, str | None], ...]


@dataclass(frozen=True)
class _Limits:
    """How often a container node may run and for how long (seconds; None: no limit)."""

    attempts: int
    per_attempt: float | None  # activeDeadlineSeconds
    node: float | None  # timeout, from the node's start, every attempt included
    per_attempt_text: str
    node_text: str


class _TaskError(Exception):
    """A task that fails before its process can run (e.g. a withParam that is not a list)."""


class _Schedule:
    """A DAG's tasks as they become ready. Each waits on a count of unfinished dependencies,
    so a DAG of n tasks costs O(n) bookkeeping in all, whatever its shape (a chain of
    thousands included); ready tasks start in manifest order."""

    def __init__(self, tasks: tuple[DagTask, ...]) -> None:
        self.tasks = tasks
        self.statuses: dict[str, _Status] = {}
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

    def finish(self, name: str, status: _Status, outputs: dict[str, str]) -> None:
        self.statuses[name] = status
        self.results[name] = outputs
        for dependant in self._dependants.get(name, ()):
            self._unfinished[dependant] -= 1
            if self._unfinished[dependant] == 0:
                heapq.heappush(self._ready, self._index[dependant])


class _Engine:
    """Runs one workflow on an asyncio loop; the state a run accumulates lives here."""

    def __init__(
        self,
        workflow: Workflow,
        name: str,
        scope: dict[str, str],
        limit: int,
        observer: ExecutionObserver,
        log_dir: Path,
        warm_server: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self.wf = workflow
        self.warm_server = warm_server
        self.name = name
        self.globals = scope
        self.limit = limit
        self.observer = observer
        self.log_dir = log_dir
        self.interrupted = False
        self.deadline: tuple[float, str] | None = None  # seconds from the start, its name
        self.deadline_passed: str | None = None
        self.volumes: Path | None = None  # the run's private folder of emptyDir folders
        self.volumes_lock: int | None = None  # held while the run lives (`_run_folder`)
        self.failed: list[str] = []
        self.failure_logs: dict[str, str] = {}
        self.top_outputs: dict[str, dict[str, str]] = {}
        self.processes: set[asyncio.subprocess.Process] = set()
        self.warm_pids: set[int] = set()
        self.process_slots: asyncio.Semaphore | None = None
        self._warm: asyncio.Task[WarmInterpreter | None] | None = None
        self._warm_process: subprocess.Popen[bytes] | None = None

    @property
    def halted(self) -> bool:
        """Whether new work must not start: an interrupt, or the run's deadline passed."""
        return self.interrupted or self.deadline_passed is not None

    async def run(self) -> bool:
        timer = None
        if self.deadline is not None:
            seconds, which = self.deadline
            if seconds <= 0:  # Argo's way of stopping a workflow: nothing may start
                self._deadline(which)
                return False
            timer = asyncio.get_running_loop().call_later(seconds, self._deadline, which)
        try:
            return await self._run()
        finally:
            if timer is not None:
                timer.cancel()
            if self.warm_server is not None:  # started for this run, which never needed it
                discard(self.warm_server)
            if self._warm is not None:
                interpreter = await self._warm
                if interpreter is not None:
                    await interpreter.close()

    async def _run(self) -> bool:
        self.process_slots = asyncio.Semaphore(self.limit)
        entry = self.wf.templates[self.wf.entrypoint]
        given = {p.name: self.globals[f"workflow.parameters.{p.name}"] for p in self.wf.parameters}
        try:
            inputs = self._bind_inputs(entry, given)
        except _TaskError as exc:
            self._record_failure(self.name, str(exc))
            return False
        if entry.dag is not None:
            outcome = await self._run_dag(entry, inputs, self.name, top=True)
        else:
            node = Node(self.name, entry.name, entry.name, None)
            self.observer.task_added(node)
            outcome = await self._run_leaf(entry, inputs, node, _DagRun(self.name, None))
            if outcome.status is _Status.SUCCEEDED:
                self.top_outputs[entry.name] = outcome.outputs
        return outcome.status is _Status.SUCCEEDED

    # -- DAGs ------------------------------------------------------------------------------

    async def _run_dag(
        self, template: Template, inputs: dict[str, str], node_id: str, top: bool = False
    ) -> _Outcome:
        """Start tasks as their dependencies complete; stop starting after a failure."""
        slots = asyncio.Semaphore(template.parallelism) if template.parallelism else None
        dag = _DagRun(node_id, slots)
        scope = self._template_scope(inputs)
        tasks = template.dag or ()
        schedule = _Schedule(tasks)
        running: dict[asyncio.Task[_Outcome], DagTask] = {}
        while True:
            if not (dag.failed or self.halted):
                self._start_ready(schedule, scope, dag, running)
            if not running:
                break
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for finished in done:
                task = running.pop(finished)
                outcome = finished.result()
                schedule.finish(task.name, outcome.status, outcome.outputs)
                dag.failed = dag.failed or outcome.status not in _OK
        statuses, results = schedule.statuses, schedule.results
        if top:
            self.top_outputs = {
                task.name: results[task.name]
                for task in tasks
                if statuses.get(task.name) in (_Status.SUCCEEDED, _Status.SKIPPED)
                and self.wf.templates[task.template].container is not None
            }
        succeeded = all(statuses.get(task.name) in _OK for task in tasks)
        return _Outcome(_Status.SUCCEEDED if succeeded else _Status.FAILED)

    def _start_ready(
        self,
        schedule: _Schedule,
        scope: dict[str, str],
        dag: _DagRun,
        running: dict[asyncio.Task[_Outcome], DagTask],
    ) -> None:
        """Start every task whose dependencies are met; omit those that can never be met."""
        while (task := schedule.next_ready()) is not None:
            if not _readiness(task, schedule.statuses):
                schedule.finish(task.name, _Status.OMITTED, {})
                continue
            task_scope = dict(scope)  # plus the outputs its fields read, and only those
            for other in task.reads:
                for param, value in schedule.results.get(other, {}).items():
                    task_scope[f"tasks.{other}.outputs.parameters.{param}"] = value
            running[asyncio.create_task(self._run_task(task, task_scope, dag))] = task

    async def _run_task(self, task: DagTask, scope: dict[str, str], dag: _DagRun) -> _Outcome:
        """One DAG task: a single child node, or one per loop item."""
        template = self.wf.templates[task.template]
        node_id = f"{dag.node_id}.{task.name}"
        try:
            items = self._expand(task, scope)
        except _TaskError as exc:
            self._record_failure(node_id, str(exc))
            return _Outcome(_Status.FAILED)
        if items is None:
            node = Node(node_id, task.name, template.name, None)
            return await self._run_child(task, template, scope, node, dag)
        if not items:
            return _Outcome(_Status.SKIPPED, {o.name: "[]" for o in template.outputs})
        outcomes = await asyncio.gather(
            *(
                self._run_child(
                    task,
                    template,
                    {**scope, **item.variables},
                    Node(f"{node_id}({i}:{item.label})", task.name, template.name, item.value),
                    dag,
                )
                for i, item in enumerate(items)
            )
        )
        statuses = {outcome.status for outcome in outcomes}
        status = next(
            (s for s in (_Status.FAILED, _Status.NOT_RUN) if s in statuses), _Status.SUCCEEDED
        )
        return _Outcome(status, _aggregate(template, [o.outputs for o in outcomes]))

    async def _run_child(
        self, task: DagTask, template: Template, scope: dict[str, str], node: Node, dag: _DagRun
    ) -> _Outcome:
        """Resolve a child's arguments, then run it inside its DAG's parallelism slot."""
        try:
            arguments = {
                p.name: _resolve(p.value or "", scope, f"argument {shown(p.name)}")
                for p in task.arguments
            }
            inputs = self._bind_inputs(template, arguments)
        except _TaskError as exc:
            self._record_failure(node.id, str(exc))
            return _Outcome(_Status.FAILED)
        if template.container is not None:
            self.observer.task_added(node)
        async with dag.slots or contextlib.nullcontext():
            if dag.failed or self.halted:
                return _Outcome(_Status.NOT_RUN)
            if template.container is not None:
                return await self._run_leaf(template, inputs, node, dag)
            return await self._run_dag(template, inputs, node.id)

    def _expand(self, task: DagTask, scope: dict[str, str]) -> list[_Item] | None:
        """Loop items of a task, or None when it does not loop."""
        if task.with_items is not None:
            return [_item(_resolve_json(value, scope)) for value in task.with_items]
        if task.with_param is not None:
            text = _resolve(task.with_param, scope, "withParam")
            try:
                values = json.loads(text)
            except (ValueError, RecursionError):  # not JSON, or nested past the parser's stack
                values = None
            if not isinstance(values, list):
                raise _TaskError(f"withParam is not a JSON list: {shown(text)}")
            if len(values) > MAX_LOOP_ITEMS:
                raise _TaskError(f"withParam: {too_many_items(len(values))}")
            try:
                return [_item(value) for value in values]
            except RecursionError:
                raise _TaskError("withParam: an item is nested too deeply") from None
        if task.with_sequence is not None:
            return [_item(value) for value in _sequence(task.with_sequence, scope)]
        return None

    # -- containers --------------------------------------------------------------------------

    async def _run_leaf(
        self, template: Template, inputs: dict[str, str], node: Node, dag: _DagRun
    ) -> _Outcome:
        """Run a container's attempts inside a process slot, within its time limits; report
        to the observer. Each attempt is a pod: it gets fresh emptyDir folders."""
        assert self.process_slots is not None
        async with self.process_slots:
            if dag.failed or self.halted:
                return _Outcome(_Status.NOT_RUN)
            try:  # resolved only now: queued loop items hold no environment copies
                limits = _limits(template, self._template_scope(inputs))
                pod, launch = self._prepare(template, inputs)
            except _TaskError as exc:
                self._record_failure(node.id, str(exc))
                return _Outcome(_Status.FAILED)
            self.observer.task_started(node)
            clock = asyncio.get_running_loop()
            ends = None if limits.node is None else clock.time() + limits.node
            succeeded, log_path = False, self._log_path(node, 0)
            outputs: dict[str, str] = {}
            for attempt in range(limits.attempts):
                log_path = self._log_path(node, attempt)
                limit, limit_name = limits.per_attempt, limits.per_attempt_text
                if ends is not None and (limit is None or ends - clock.time() < limit):
                    limit, limit_name = ends - clock.time(), limits.node_text
                try:
                    if attempt > 0:
                        pod, launch = self._prepare(template, inputs)
                    succeeded, outputs, late, failed = await self._attempt(
                        launch, log_path, limit, f"{limit_name} of template {shown(template.name)}"
                    )
                except _TaskError as exc:
                    _note(log_path, str(exc))
                    break
                finally:
                    _remove_tree(pod)
                    pod = None
                if succeeded or self.halted or (late and limit_name == limits.node_text):
                    break
                retry = template.retry
                if retry is not None and attempt + 1 < limits.attempts:
                    refusal = retry_refusal(retry.policy, retry.expression, failed)
                    if refusal:
                        _note(log_path, f"not retried: {refusal}")
                        break
                if ends is not None and clock.time() >= ends and attempt + 1 < limits.attempts:
                    _note(log_path, f"not retried: {limits.node_text} has passed")
                    break
        self.observer.task_finished(node, succeeded, outputs)
        if not succeeded:
            self._record_failure(node.id, _tail(log_path))
            return _Outcome(_Status.FAILED)
        return _Outcome(_Status.SUCCEEDED, outputs)

    def _prepare(self, template: Template, inputs: dict[str, str]) -> tuple[Path | None, _Launch]:
        """One attempt's emptyDir folders (None: it mounts none) and what it runs."""
        container = template.container
        assert container is not None
        pod, paths = self._pod(container)
        try:
            return pod, self._launch(template, inputs, pod, paths)
        except _TaskError:
            _remove_tree(pod)
            raise

    def _pod(self, container: Container) -> tuple[Path | None, dict[str, str]]:
        """A fresh folder for each emptyDir volume the container mounts, as a new pod gets:
        made by mkdtemp (mode 0700, a name nobody can guess) inside the run's own folder, so
        no other user can plant a file or a symlink where a task writes."""
        if not container.mounts:
            return None, {}
        try:
            if self.volumes is None:
                self.volumes, self.volumes_lock = _run_folder(self.name)
            pod = Path(tempfile.mkdtemp(prefix="pod-", dir=self.volumes))
            folders = {
                name: f"volume-{i}"
                for i, name in enumerate(dict.fromkeys(mount.volume for mount in container.mounts))
            }
            paths: dict[str, str] = {}
            for mount in container.mounts:
                folder = pod / folders[mount.volume] / mount.sub_path
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                paths[mount.path] = str(folder)
        except OSError as exc:
            raise _TaskError(f"cannot make the emptyDir folders: {exc}") from None
        return pod, paths

    def _launch(
        self, template: Template, inputs: dict[str, str], pod: Path | None, paths: dict[str, str]
    ) -> _Launch:
        container = template.container
        assert container is not None
        scope = self._template_scope(inputs)
        argv = [
            _resolve(arg, scope, "command", paths) for arg in (*container.command, *container.args)
        ]
        if argv[0] in _PYTHON_COMMANDS:
            argv[0] = sys.executable
        cwd = Path.cwd()
        if container.working_dir is not None:
            cwd = cwd / _resolve(container.working_dir, scope, "workingDir", paths)
            if pod is not None and cwd.is_relative_to(pod):  # the runtime makes it, in a pod
                try:
                    cwd.mkdir(mode=0o700, parents=True, exist_ok=True)
                except OSError as exc:
                    raise _TaskError(f"workingDir: cannot make {cwd}: {exc.strerror}") from None
        outputs = tuple(
            (
                o.name,
                cwd / _resolve(o.path, scope, o.name, paths),
                None if o.default is None else _resolve(o.default, scope, o.name),
            )
            for o in template.outputs
        )
        return _Launch(tuple(argv), self._environment(container, scope, paths), cwd, outputs)

    def _environment(
        self, container: Container, scope: dict[str, str], paths: dict[str, str]
    ) -> dict[str, str]:
        env = dict(os.environ)
        for var in container.env:
            if var.secret is None:
                env[var.name] = _resolve(var.value, scope, var.name, paths)
                continue
            variable = secret_variable(substitute(var.secret.key, self.globals))
            if variable in os.environ:
                env[var.name] = os.environ[variable]
            elif not var.secret.optional:
                raise _TaskError(f"env {var.name}: environment variable {variable} is unset")
        return env

    async def _attempt(
        self, launch: _Launch, log_path: Path, limit: float | None, limit_name: str
    ) -> tuple[bool, dict[str, str], bool, Attempt]:
        """One process: run it with output to `log_path`, at most `limit` seconds, then read
        its output parameters. The third value says whether it was stopped at `limit`; the
        fourth is the attempt as Argo's retry variables would describe it, were it failed."""
        if limit is not None and limit <= 0:  # as Argo, which creates no pod then
            _note(log_path, f"failed: {limit_name} passed before the attempt could start")
            return False, {}, True, Attempt("Failed", "-1")
        with log_path.open("wb") as log:
            code, late = await self._spawn(launch, log, limit)
        failed = _failed_attempt(code)
        if late:
            _note(
                log_path,
                f"failed: exceeded {limit_name}; its process group got SIGTERM"
                f" (SIGKILL {KILL_GRACE_SECONDS:g} s later)",
            )
            return False, {}, True, failed
        if self.deadline_passed is not None and code != 0:
            _note(log_path, f"stopped: the run exceeded its deadline ({self.deadline_passed})")
            return False, {}, False, failed
        if code is None:
            return False, {}, False, failed
        if code != 0:
            _note(log_path, f"failed: {_exit_reason(code)}")
            return False, {}, False, failed
        try:
            return True, _read_outputs(launch), False, failed
        except _TaskError as exc:
            _note(log_path, str(exc))
            return False, {}, False, Attempt("Error", "0")  # as Argo's failed wait container

    async def _spawn(
        self, launch: _Launch, log: IO[bytes], limit: float | None
    ) -> tuple[int | None, bool]:
        """Start the process in its own session (so it can be killed as a group); wait for
        it, at most `limit` seconds (see `_bounded`). When it exits, what it left running in
        its group is killed, as its pod's containers would be.

        A `python -m` task is forked from a warm interpreter when it can be (workflows/warm.py),
        else, or if that fails to start it, it is started the ordinary way."""
        module = eligible(launch.argv, launch.env)
        interpreter = await self._warm_interpreter() if module is not None else None
        if self.halted:  # while waiting for the interpreter: start nothing new
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
        if self.halted:  # the signal arrived while the process was being created
            _kill_group(process.pid, signal.SIGTERM)
        try:
            return await _bounded(process.pid, asyncio.ensure_future(process.wait()), limit)
        finally:
            self.processes.discard(process)
            _kill_group(process.pid, signal.SIGKILL)

    async def _warm_interpreter(self) -> WarmInterpreter | None:
        """The run's warm interpreter, started by the first task that can use it."""
        if self._warm is None:
            self._warm_process = self.warm_server or launch(_python_modules(self.wf))
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
        if self.halted:
            _kill_group(task.pid, signal.SIGTERM)
        try:
            code, late = await _bounded(task.pid, task.exited, limit)
        finally:
            self.warm_pids.discard(task.pid)
        _kill_group(task.pid, signal.SIGKILL)  # what it left running; or itself, unwatched
        if code is None and not late:  # nobody can report on it now
            _note(log, "the warm interpreter stopped; the task was killed, its status unknown")
        return code, late

    # -- interrupts and deadlines --------------------------------------------------------------

    def interrupt(self) -> None:
        """Stop new work; SIGTERM every process group, SIGKILL after a grace or a 2nd signal."""
        if self.interrupted:
            self.kill_all(signal.SIGKILL)
            return
        self.interrupted = True
        self._stop()

    def _deadline(self, which: str) -> None:
        """The run's deadline passed: fail the run naming it, and stop as on an interrupt."""
        if self.halted:
            return
        self.deadline_passed = which
        self._record_failure(
            self.name, f"{which}: the run exceeded its deadline; running tasks were stopped"
        )
        self._stop()

    def _stop(self) -> None:
        if self._warm is not None and not self._warm.done() and self._warm_process is not None:
            self._warm_process.kill()  # still importing: nothing to wait for
        self.kill_all(signal.SIGTERM)
        asyncio.get_running_loop().call_later(KILL_GRACE_SECONDS, self.kill_all, signal.SIGKILL)

    def kill_all(self, sig: signal.Signals) -> None:
        for process in list(self.processes):
            if process.returncode is None:
                _kill_group(process.pid, sig, leader_alive=True)
        for pid in list(self.warm_pids):
            _kill_group(pid, sig, leader_alive=True)

    # -- helpers -------------------------------------------------------------------------------

    def _template_scope(self, inputs: Mapping[str, str]) -> dict[str, str]:
        scope = dict(self.globals)
        scope.update({f"inputs.parameters.{name}": value for name, value in inputs.items()})
        return scope

    def _bind_inputs(self, template: Template, given: Mapping[str, str]) -> dict[str, str]:
        """Argument, else the input's own value/default (workflow variables resolved)."""
        inputs: dict[str, str] = {}
        for param in template.inputs:
            inputs[param.name] = _input_value(param, given, self.globals)
        return inputs

    def _log_path(self, node: Node, attempt: int) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._():,=+-]", "_", node.id)
        if len(safe) > 150:
            digest = hashlib.sha1(node.id.encode(), usedforsecurity=False).hexdigest()[:10]
            safe = f"{safe[:120]}-{digest}"
        suffix = ".log" if attempt == 0 else f".retry-{attempt}.log"
        return self.log_dir / f"{safe}{suffix}"

    def _record_failure(self, node_id: str, log: str) -> None:
        if node_id in self.failure_logs:  # the run's deadline, then its only task: one entry
            self.failure_logs[node_id] += f"\n{log}"
            return
        self.failed.append(node_id)
        self.failure_logs[node_id] = log


def _run_loop(engine: _Engine) -> bool:
    """Run the engine on a fresh event loop, with SIGINT/SIGTERM turned into `interrupt`."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    previous: dict[signal.Signals, Any] = {}
    try:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.getsignal(sig)
                loop.add_signal_handler(sig, engine.interrupt)
        return loop.run_until_complete(engine.run())
    finally:
        engine.kill_all(signal.SIGKILL)  # only if something escaped (a bug or an exception)
        leftovers = asyncio.all_tasks(loop)
        for task in leftovers:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            if handler is not None:  # None: installed outside Python; leave the default
                signal.signal(sig, handler)
        loop.run_until_complete(loop.shutdown_asyncgens())
        asyncio.set_event_loop(None)
        loop.close()


def _failed_attempt(code: int | None) -> Attempt:
    """A failed attempt that ended with exit status `code` (None: none known), as Argo's
    ``lastRetry.status`` and ``lastRetry.exitCode`` would say."""
    if code is None:  # it never started, or nobody saw it end: a lost pod
        return Attempt("Error", "-1")
    return Attempt("Failed", str(code) if code >= 0 else SIGNALLED_EXIT_CODE)


def _exit_reason(code: int) -> str:
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def _python_modules(workflow: Workflow) -> set[str]:
    """The modules the workflow's containers run with `python -m`, to preload."""
    modules = set()
    for template in workflow.templates.values():
        if template.container is None:
            continue
        argv = (*template.container.command, *template.container.args)
        if len(argv) >= 3 and argv[0] in _PYTHON_COMMANDS and argv[1] == "-m":
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


def _readiness(task: DagTask, statuses: Mapping[str, _Status]) -> bool | None:
    """None: a dependency is still pending; True: all met; False: can never be met."""
    if any(dep.task not in statuses for dep in task.depends):
        return None
    for dep in task.depends:
        status = statuses[dep.task]
        if not (
            status is _Status.SUCCEEDED or (status is _Status.SKIPPED and not dep.succeeded_only)
        ):
            return False
    return True


def _resolve(
    text: str, scope: Mapping[str, str], what: str, paths: Mapping[str, str] | None = None
) -> str:
    """`text` with its variables substituted and, with `paths`, the emptyDir paths it writes
    pointed at the attempt's folders (`workflows.manifest.substitute`)."""
    try:
        return substitute(text, scope, paths)
    except UnresolvedError as exc:
        raise _TaskError(f"{what}: cannot resolve {shown('{{' + exc.args[0] + '}}')}") from None


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


def _limits(template: Template, scope: Mapping[str, str]) -> _Limits:
    """A container node's attempts and time limits, its variables resolved."""
    per_attempt = node = None
    per_attempt_text = node_text = ""
    if template.deadline is not None:
        text = _resolve(template.deadline, scope, "activeDeadlineSeconds").strip()
        if not re.fullmatch(r"[-+]?[0-9]{1,12}", text) or int(text) <= 0:
            raise _TaskError(
                f"activeDeadlineSeconds: expected a positive number of seconds, got {shown(text)}"
            )
        per_attempt = float(int(text))
        per_attempt_text = f"activeDeadlineSeconds {int(text)} (each attempt)"
    if template.timeout is not None:
        text = _resolve(template.timeout, scope, "timeout").strip()
        try:
            node = parse_duration(text)
        except ValueError as exc:
            raise _TaskError(f"timeout: {exc}") from None
        node_text = f"timeout {text} (every attempt included)"
    return _Limits(_attempts(template, scope), per_attempt, node, per_attempt_text, node_text)


def _run_folder(name: str) -> tuple[Path, int]:
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
                    _remove_tree(stale)
            finally:
                os.close(lock)
    folder = Path(tempfile.mkdtemp(prefix=f"{RUN_FOLDER_PREFIX}{_safe_name(name)}."))
    lock = os.open(folder / RUN_FOLDER_LOCK, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    return folder, lock


def _safe_name(name: str) -> str:
    """A workflow name made fit to start a file name (it is the user's: it may hold '/')."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:60]


def _remove_tree(path: Path | None) -> None:
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


def _resolve_json(value: Any, scope: Mapping[str, str]) -> Any:
    """Substitute variables in every string of a withItems item."""
    if isinstance(value, str):
        return _resolve(value, scope, "withItems")
    if isinstance(value, dict):
        return {key: _resolve_json(inner, scope) for key, inner in value.items()}
    if isinstance(value, list):
        return [_resolve_json(inner, scope) for inner in value]
    return value


def _input_value(param: Parameter, given: Mapping[str, str], scope: Mapping[str, str]) -> str:
    if param.name in given:
        return given[param.name]
    if param.value is None:
        raise _TaskError(f"input parameter {shown(param.name)} was not supplied")
    return _resolve(param.value, scope, param.name)


def _item(value: Any) -> _Item:
    """Argo's loop item: ``{{item}}``, ``{{item.KEY}}``, and its part of the node name."""
    text = scalar_text(value)
    variables = {"item": text}
    label = text
    if isinstance(value, dict):
        variables.update({f"item.{key}": scalar_text(inner) for key, inner in value.items()})
        label = ",".join(sorted(f"{key}:{scalar_text(inner)}" for key, inner in value.items()))
    return _Item(text, label, variables)


def _sequence(seq: Sequence, scope: Mapping[str, str]) -> list[str]:
    """``withSequence`` as Argo expands it: inclusive, counting down when end < start. Its
    size is checked before a single number exists."""
    numbers = _sequence_numbers(seq, scope)
    fmt = _sequence_format(seq, scope)
    try:
        return [fmt % n for n in numbers]
    except (TypeError, ValueError) as exc:
        raise _TaskError(f"withSequence.format: {shown(fmt)}: {exc}") from None


def _sequence_numbers(seq: Sequence, scope: Mapping[str, str]) -> range:
    """The numbers of a withSequence, lazily, once their count is known to be in bounds."""
    start = _integer(seq.start or "0", scope, "withSequence.start")
    if seq.count is not None:
        count = _integer(seq.count, scope, "withSequence.count")
        if count < 0:
            raise _TaskError(f"withSequence.count: {count} is negative")
        if count > MAX_LOOP_ITEMS:
            raise _TaskError(f"withSequence.count: {too_many_items(count)}")
        return range(start, start + count)
    end = _integer(seq.end or "0", scope, "withSequence.end")
    if abs(end - start) + 1 > MAX_LOOP_ITEMS:
        raise _TaskError(f"withSequence.end: {too_many_items(abs(end - start) + 1)}")
    step = 1 if end >= start else -1
    return range(start, end + step, step)


_FORMAT_WIDTH = re.compile(r"%[-+ #0]*([0-9]*)(?:\.([0-9]*))?")
MAX_FORMAT_WIDTH = 1000  # of one withSequence number: "%01000000000d" would be a 1 GB item


def _sequence_format(seq: Sequence, scope: Mapping[str, str]) -> str:
    fmt = _resolve(seq.format, scope, "withSequence.format") if seq.format else "%d"
    for width, precision in _FORMAT_WIDTH.findall(fmt):
        if any(
            len(digits) > 4 or int(digits or 0) > MAX_FORMAT_WIDTH for digits in (width, precision)
        ):
            raise _TaskError(
                f"withSequence.format: {shown(fmt)} pads a number to more than"
                f" {MAX_FORMAT_WIDTH} characters"
            )
    return fmt


def _integer(text: str, scope: Mapping[str, str], what: str) -> int:
    value = _resolve(text, scope, what).strip()
    if not re.fullmatch(r"[-+]?[0-9]+", value):
        raise _TaskError(f"{what}: expected an integer, got {shown(value)}")
    if len(value) > 100:  # no loop is that long; and int() stops at 4,300 digits
        raise _TaskError(f"{what}: {shown(value)} is too large")
    return int(value)


def _attempts(template: Template, scope: Mapping[str, str]) -> int:
    """At most: whether each failed attempt is retried is `retry_refusal`'s to say."""
    retry = template.retry
    if retry is None:
        return 1
    limit = _resolve(retry.limit, scope, "retryStrategy.limit")
    if not re.fullmatch(r"[0-9]{1,9}", limit):  # Argo's is an int32
        raise _TaskError(f"retryStrategy.limit is not a non-negative integer: {shown(limit)}")
    return 1 + int(limit)


def _read_outputs(launch: _Launch) -> dict[str, str]:
    outputs: dict[str, str] = {}
    for name, path, default in launch.outputs:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            if default is None:
                raise _TaskError(
                    f"output parameter {shown(name)}: cannot read {path}: {exc.strerror}"
                ) from None
            text = default
        outputs[name] = text.removesuffix("\n")  # Argo trims exactly one trailing newline
    return outputs


def _aggregate(template: Template, outputs: list[dict[str, str]]) -> dict[str, str]:
    """Argo's aggregated outputs of a loop: one JSON list per output parameter."""
    aggregated: dict[str, str] = {}
    for param in template.outputs:
        values = [out[param.name] for out in outputs if param.name in out]
        parsed: list[Any] = []
        for value in values:
            try:
                decoded = json.loads(value)
            except (ValueError, RecursionError):  # not JSON, or nested past the parser's stack
                break
            if not isinstance(decoded, dict | list):
                break
            parsed.append(decoded)
        as_json = parsed if len(parsed) == len(values) else values
        aggregated[param.name] = json.dumps(as_json, separators=(",", ":"))
    return aggregated


def _note(log_path: Path, message: str) -> None:
    with log_path.open("a", encoding="utf-8") as log:
        log.write(f"[local executor] {message}\n")


def _tail(log_path: Path) -> str:
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-FAILURE_LOG_LINES:])
