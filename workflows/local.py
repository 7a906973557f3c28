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
  (`workflows.warm`; ``TTG_WARM_START=0`` turns it off). Paths in a manifest are host paths.
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
- Retries: ``retryStrategy.limit`` extra attempts right away (``backoff`` is ignored). Policies
  ``Always`` and ``OnFailure`` (the default) retry a failed process; ``OnError`` and
  ``OnTransientError`` never do, because a local non-zero exit is a failure, not an error.
- Logs: each attempt's stdout and stderr go to ``<log_dir>/<node id>.log`` (retries:
  ``.retry-N.log``); the last lines of a failed node's log are in `ExecutionResult.failure_logs`.
- SIGINT / SIGTERM (when called from the main thread) stop new work, send SIGTERM to every
  running process group (SIGKILL after a grace period or on a second signal), and the run
  returns failed with ``interrupted`` set.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import IO, Any, Protocol

from workflows.manifest import (
    Container,
    DagTask,
    ManifestError,
    Parameter,
    Template,
    UnresolvedError,
    Workflow,
    parse_workflow,
    scalar_text,
    secret_variable,
    substitute,
)
from workflows.warm import WarmInterpreter, WarmStartError, WarmTask, discard, eligible, launch

FAILURE_LOG_LINES = 20
KILL_GRACE_SECONDS = 3.0
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


def execute(
    manifest: Mapping[str, Any],
    parameters: Mapping[str, str] | None = None,
    parallel: int | None = None,
    observer: ExecutionObserver | None = None,
    log_dir: Path | None = None,
    warm_server: subprocess.Popen[bytes] | None = None,
) -> ExecutionResult:
    """Check `manifest` completely, then run it; `ManifestError` means nothing ran.

    `warm_server`: a `workflows.warm.launch` already started for this run (else the run
    starts one when its first `python -m` task is ready); it is stopped when the run ends."""
    workflow = parse_workflow(manifest)
    name = workflow_name(workflow)
    scope = global_scope(workflow, name, parameters or {})
    check_secrets(workflow, scope)
    if parallel is not None and parallel < 1:
        raise ValueError(f"parallel must be at least 1, got {parallel}")
    limit = parallel if parallel is not None else os.cpu_count() or 1
    if workflow.parallelism is not None:
        limit = min(limit, workflow.parallelism)
    temporary_logs = log_dir is None
    if log_dir is None:
        log_dir = Path(tempfile.mkdtemp(prefix=f"{name}.logs."))
    log_dir.mkdir(parents=True, exist_ok=True)
    engine = _Engine(workflow, name, scope, limit, observer or _NoObserver(), log_dir, warm_server)
    succeeded = _run_loop(engine) and not engine.interrupted
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
                f"spec.arguments.parameters: no parameter {key!r} to set (declared: {known})"
            )
    scope = {"workflow.name": name}
    for i, param in enumerate(workflow.parameters):
        if param.name in overrides:
            value = overrides[param.name]
        elif param.value is None:
            raise ManifestError(
                f"spec.arguments.parameters[{i}].value: parameter {param.name!r} has no value;"
                f" supply one (-p {param.name}=VALUE)"
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
                    f" {substitute(var.secret.name, scope)!r} key {key!r} is read locally from"
                    f" environment variable {variable}, which is unset"
                )


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
    attempts: int


class _TaskError(Exception):
    """A task that fails before its process can run (e.g. a withParam that is not a list)."""


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
        self.failed: list[str] = []
        self.failure_logs: dict[str, str] = {}
        self.top_outputs: dict[str, dict[str, str]] = {}
        self.processes: set[asyncio.subprocess.Process] = set()
        self.warm_pids: set[int] = set()
        self.process_slots: asyncio.Semaphore | None = None
        self._warm: asyncio.Task[WarmInterpreter | None] | None = None
        self._warm_process: subprocess.Popen[bytes] | None = None

    async def run(self) -> bool:
        try:
            return await self._run()
        finally:
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
        statuses: dict[str, _Status] = {}
        results: dict[str, dict[str, str]] = {}
        waiting = list(tasks)
        running: dict[asyncio.Task[_Outcome], DagTask] = {}
        while True:
            if not (dag.failed or self.interrupted):
                waiting = self._start_ready(waiting, statuses, results, scope, dag, running)
            if not running:
                break
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for finished in done:
                task = running.pop(finished)
                outcome = finished.result()
                statuses[task.name] = outcome.status
                results[task.name] = outcome.outputs
                dag.failed = dag.failed or outcome.status not in _OK
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
        waiting: list[DagTask],
        statuses: dict[str, _Status],
        results: dict[str, dict[str, str]],
        scope: dict[str, str],
        dag: _DagRun,
        running: dict[asyncio.Task[_Outcome], DagTask],
    ) -> list[DagTask]:
        """Start every task whose dependencies are met; omit those that can never be met."""
        progress = True
        while progress:
            progress = False
            for task in list(waiting):
                ready = _readiness(task, statuses)
                if ready is None:
                    continue
                waiting.remove(task)
                progress = True
                if not ready:
                    statuses[task.name] = _Status.OMITTED
                    results[task.name] = {}
                    continue
                task_scope = dict(scope)
                for other, outputs in results.items():
                    for param, value in outputs.items():
                        task_scope[f"tasks.{other}.outputs.parameters.{param}"] = value
                job = asyncio.create_task(self._run_task(task, task_scope, dag))
                running[job] = task
        return waiting

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
                p.name: _resolve(p.value or "", scope, f"argument {p.name!r}")
                for p in task.arguments
            }
            inputs = self._bind_inputs(template, arguments)
        except _TaskError as exc:
            self._record_failure(node.id, str(exc))
            return _Outcome(_Status.FAILED)
        if template.container is not None:
            self.observer.task_added(node)
        async with dag.slots or contextlib.nullcontext():
            if dag.failed or self.interrupted:
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
            except json.JSONDecodeError:
                values = None
            if not isinstance(values, list):
                raise _TaskError(f"withParam is not a JSON list: {text[:200]!r}")
            return [_item(value) for value in values]
        if task.with_sequence is not None:
            return [_item(value) for value in _sequence(task, scope)]
        return None

    # -- containers --------------------------------------------------------------------------

    async def _run_leaf(
        self, template: Template, inputs: dict[str, str], node: Node, dag: _DagRun
    ) -> _Outcome:
        """Run a container's attempts inside a process slot; report to the observer."""
        assert self.process_slots is not None
        async with self.process_slots:
            if dag.failed or self.interrupted:
                return _Outcome(_Status.NOT_RUN)
            try:  # resolved only now: queued loop items hold no environment copies
                launch = self._launch(template, inputs)
            except _TaskError as exc:
                self._record_failure(node.id, str(exc))
                return _Outcome(_Status.FAILED)
            self.observer.task_started(node)
            succeeded, log_path = False, self._log_path(node, 0)
            outputs: dict[str, str] = {}
            for attempt in range(launch.attempts):
                log_path = self._log_path(node, attempt)
                succeeded, outputs = await self._attempt(launch, log_path)
                if succeeded or self.interrupted:
                    break
        self.observer.task_finished(node, succeeded, outputs)
        if not succeeded:
            self._record_failure(node.id, _tail(log_path))
            return _Outcome(_Status.FAILED)
        return _Outcome(_Status.SUCCEEDED, outputs)

    def _launch(self, template: Template, inputs: dict[str, str]) -> _Launch:
        container = template.container
        assert container is not None
        scope = self._template_scope(inputs)
        argv = [_resolve(arg, scope, "command") for arg in (*container.command, *container.args)]
        if argv[0] in _PYTHON_COMMANDS:
            argv[0] = sys.executable
        cwd = Path.cwd()
        if container.working_dir is not None:
            cwd = cwd / _resolve(container.working_dir, scope, "workingDir")
        outputs = tuple(
            (
                o.name,
                cwd / _resolve(o.path, scope, o.name),
                None if o.default is None else _resolve(o.default, scope, o.name),
            )
            for o in template.outputs
        )
        return _Launch(
            tuple(argv),
            self._environment(container, scope),
            cwd,
            outputs,
            _attempts(template, scope),
        )

    def _environment(self, container: Container, scope: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        for var in container.env:
            if var.secret is None:
                env[var.name] = _resolve(var.value, scope, var.name)
                continue
            variable = secret_variable(substitute(var.secret.key, self.globals))
            if variable in os.environ:
                env[var.name] = os.environ[variable]
            elif not var.secret.optional:
                raise _TaskError(f"env {var.name}: environment variable {variable} is unset")
        return env

    async def _attempt(self, launch: _Launch, log_path: Path) -> tuple[bool, dict[str, str]]:
        """One process: run it with output to `log_path`, then read its output parameters."""
        with log_path.open("wb") as log:
            code = await self._spawn(launch, log)
        if code is None:
            return False, {}
        if code != 0:
            _note(log_path, f"failed: {_exit_reason(code)}")
            return False, {}
        try:
            return True, _read_outputs(launch)
        except _TaskError as exc:
            _note(log_path, str(exc))
            return False, {}

    async def _spawn(self, launch: _Launch, log: IO[bytes]) -> int | None:
        """Start the process in its own session (so it can be killed as a group); wait.

        A `python -m` task is forked from a warm interpreter when it can be (workflows/warm.py),
        else, or if that fails to start it, it is started the ordinary way."""
        module = eligible(launch.argv, launch.env)
        interpreter = await self._warm_interpreter() if module is not None else None
        if self.interrupted:  # while waiting for the interpreter: start nothing new
            return None
        if module is not None and interpreter is not None:
            try:
                task = await interpreter.spawn(
                    module, list(launch.argv[3:]), launch.env, launch.cwd, Path(log.name)
                )
            except WarmStartError:
                pass
            else:
                return await self._wait_warm(task, Path(log.name))
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
            log.write(f"[local executor] cannot start {launch.argv[0]!r}: {exc}\n".encode())
            return None
        self.processes.add(process)
        if self.interrupted:  # the signal arrived while the process was being created
            _kill_group(process.pid, signal.SIGTERM)
        try:
            return await process.wait()
        finally:
            self.processes.discard(process)

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

    async def _wait_warm(self, task: WarmTask, log: Path) -> int | None:
        self.warm_pids.add(task.pid)
        if self.interrupted:
            _kill_group(task.pid, signal.SIGTERM)
        try:
            code = await task.exited
        finally:
            self.warm_pids.discard(task.pid)
        if code is None:  # nobody can report on it now: stop it rather than leave it running
            _kill_group(task.pid, signal.SIGKILL)
            _note(log, "the warm interpreter stopped; the task was killed, its status unknown")
        return code

    # -- interrupts --------------------------------------------------------------------------

    def interrupt(self) -> None:
        """Stop new work; SIGTERM every process group, SIGKILL after a grace or a 2nd signal."""
        if self.interrupted:
            self.kill_all(signal.SIGKILL)
            return
        self.interrupted = True
        if self._warm is not None and not self._warm.done() and self._warm_process is not None:
            self._warm_process.kill()  # still importing: nothing to wait for
        self.kill_all(signal.SIGTERM)
        asyncio.get_running_loop().call_later(KILL_GRACE_SECONDS, self.kill_all, signal.SIGKILL)

    def kill_all(self, sig: signal.Signals) -> None:
        for process in list(self.processes):
            if process.returncode is None:
                _kill_group(process.pid, sig)
        for pid in list(self.warm_pids):
            _kill_group(pid, sig)

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


def _kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


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


def _resolve(text: str, scope: Mapping[str, str], what: str) -> str:
    try:
        return substitute(text, scope)
    except UnresolvedError as exc:
        raise _TaskError(f"{what}: cannot resolve '{{{{{exc.args[0]}}}}}'") from None


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
        raise _TaskError(f"input parameter {param.name!r} was not supplied")
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


def _sequence(task: DagTask, scope: Mapping[str, str]) -> list[str]:
    """``withSequence`` as Argo expands it: inclusive, counting down when end < start."""
    seq = task.with_sequence
    assert seq is not None
    try:
        start = int(_resolve(seq.start or "0", scope, "withSequence.start"))
        if seq.count is not None:
            count = int(_resolve(seq.count, scope, "withSequence.count"))
            if count < 0:
                raise _TaskError(f"withSequence.count is negative: {count}")
            numbers = list(range(start, start + count))
        else:
            end = int(_resolve(seq.end or "0", scope, "withSequence.end"))
            step = 1 if end >= start else -1
            numbers = list(range(start, end + step, step))
    except ValueError as exc:
        raise _TaskError(f"withSequence: {exc}") from None
    fmt = _resolve(seq.format, scope, "withSequence.format") if seq.format else "%d"
    try:
        return [fmt % n for n in numbers]
    except (TypeError, ValueError) as exc:
        raise _TaskError(f"withSequence.format {fmt!r}: {exc}") from None


def _attempts(template: Template, scope: Mapping[str, str]) -> int:
    retry = template.retry
    if retry is None or retry.policy in ("OnError", "OnTransientError"):
        return 1
    limit = _resolve(retry.limit, scope, "retryStrategy.limit")
    if not limit.isdigit():
        raise _TaskError(f"retryStrategy.limit is not a non-negative integer: {limit!r}")
    return 1 + int(limit)


def _read_outputs(launch: _Launch) -> dict[str, str]:
    outputs: dict[str, str] = {}
    for name, path, default in launch.outputs:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            if default is None:
                raise _TaskError(
                    f"output parameter {name!r}: cannot read {path}: {exc.strerror}"
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
            except json.JSONDecodeError:
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
