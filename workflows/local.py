"""Run an Argo Workflow on this machine: each container task a real subprocess.

`exec` is a local Argo for the subset `workflows.manifest` accepts; this module is its entry
(`execute`): it checks a manifest's parameters, secrets and loop sizes, prepares the run's private files,
and hands the DAG to the engine (workflows/local_engine.py) with a launcher
(workflows/local_launch.py). How it behaves, rule by rule, and why: docs/local-executor.md.
Argo's DAG semantics, which it follows:
https://argo-workflows.readthedocs.io/en/latest/walk-through/dag/
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workflows.local_engine import Engine
from workflows.local_files import FAILURE_LOG_LINES, RUN_FOLDER_LOCK, RUN_FOLDER_PREFIX, safe_name
from workflows.local_launch import (
    KILL_GRACE_SECONDS,
    SIGNALLED_EXIT_CODE,
    Launcher,
    python_modules,
)
from workflows.local_model import ExecutionObserver, ExecutionResult, Node, NoObserver, TaskError
from workflows.local_values import MAX_FORMAT_WIDTH, sequence_format, sequence_numbers
from workflows.manifest import (
    ManifestError,
    Template,
    Workflow,
    clipped,
    parse_workflow,
    secret_variable,
    shown,
    substitute,
    variables,
)

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
    "generated_name",
    "global_scope",
    "workflow_name",
]

_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes uses for generateName suffixes


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
        log_dir = Path(tempfile.mkdtemp(prefix=f"{safe_name(name)}.logs."))
    log_dir.mkdir(parents=True, exist_ok=True)
    launcher = Launcher(lambda: python_modules(workflow), warm_server)
    engine = Engine(workflow, name, scope, limit, observer or NoObserver(), log_dir, launcher)
    engine.deadline = _run_deadline(workflow, timeout)
    try:
        succeeded = _run_loop(engine) and not engine.halted
    finally:  # the emptyDir folders every attempt left (a killed one's), and the run's lock
        engine.pods.close()
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
    return workflow.name or generated_name(workflow.generate_name or "")


def generated_name(prefix: str) -> str:
    """`prefix` plus five random characters, as Kubernetes completes a ``generateName``."""
    return prefix + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))


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
                sequence_numbers(seq, scope)
                sequence_format(seq, scope)
            except TaskError as exc:
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


def _run_loop(engine: Engine) -> bool:
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
