"""The local executor's engine: what may start when. It walks the DAGs on an asyncio loop,
runs each container node's attempts within their time limits and retry rules, and fails
fast, stops on an interrupt or a deadline; how a process starts is the `Launcher`'s.

Argo's DAG and its `depends`: https://argo-workflows.readthedocs.io/en/latest/walk-through/dag/
https://argo-workflows.readthedocs.io/en/latest/enhanced-depends-logic/
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Mapping
from pathlib import Path

from workflows.local_files import attempt_log, log_tail, note_in_log, remove_tree
from workflows.local_launch import (
    KILL_GRACE_SECONDS,
    Launcher,
    exit_reason,
    failed_attempt,
)
from workflows.local_model import (
    OK_STATUSES,
    DagRun,
    ExecutionObserver,
    Launch,
    LoopItem,
    Node,
    NodeStatus,
    Outcome,
    Schedule,
    TaskError,
    readiness,
)
from workflows.local_pods import Pods
from workflows.local_values import (
    aggregate_outputs,
    input_value,
    loop_item,
    read_outputs,
    resolve,
    resolve_json,
    sequence_items,
    template_limits,
)
from workflows.manifest import (
    MAX_LOOP_ITEMS,
    DagTask,
    Template,
    Workflow,
    shown,
    too_many_items,
)
from workflows.retries import Attempt, retry_refusal

__all__ = ["Engine"]


class Engine:
    """Runs one workflow on an asyncio loop; the state a run accumulates lives here."""

    def __init__(
        self,
        workflow: Workflow,
        name: str,
        scope: dict[str, str],
        limit: int,
        observer: ExecutionObserver,
        log_dir: Path,
        launcher: Launcher,
    ) -> None:
        self.wf = workflow
        self.name = name
        self.globals = scope
        self.limit = limit
        self.observer = observer
        self.log_dir = log_dir
        self.interrupted = False
        self.deadline: tuple[float, str] | None = None  # seconds from the start, its name
        self.deadline_passed: str | None = None
        self.pods = Pods(name, scope)
        self.launcher = launcher
        launcher.halted = lambda: self.halted  # nothing new starts once the run halts
        self.failed: list[str] = []
        self.failure_logs: dict[str, str] = {}
        self.top_outputs: dict[str, dict[str, str]] = {}
        self.process_slots: asyncio.Semaphore | None = None

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
            await self.launcher.close()

    async def _run(self) -> bool:
        self.process_slots = asyncio.Semaphore(self.limit)
        entry = self.wf.templates[self.wf.entrypoint]
        given = {p.name: self.globals[f"workflow.parameters.{p.name}"] for p in self.wf.parameters}
        try:
            inputs = self._bind_inputs(entry, given)
        except TaskError as exc:
            self._record_failure(self.name, str(exc))
            return False
        if entry.dag is not None:
            outcome = await self._run_dag(entry, inputs, self.name, top=True)
        else:
            node = Node(self.name, entry.name, entry.name, None)
            self.observer.task_added(node)
            outcome = await self._run_leaf(entry, inputs, node, DagRun(self.name, None))
            if outcome.status is NodeStatus.SUCCEEDED:
                self.top_outputs[entry.name] = outcome.outputs
        return outcome.status is NodeStatus.SUCCEEDED

    # -- DAGs ------------------------------------------------------------------------------

    async def _run_dag(
        self, template: Template, inputs: dict[str, str], node_id: str, top: bool = False
    ) -> Outcome:
        """Start tasks as their dependencies complete; stop starting after a failure."""
        slots = asyncio.Semaphore(template.parallelism) if template.parallelism else None
        dag = DagRun(node_id, slots)
        scope = self._template_scope(inputs)
        tasks = template.dag or ()
        schedule = Schedule(tasks)
        running: dict[asyncio.Task[Outcome], DagTask] = {}
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
                dag.failed = dag.failed or outcome.status not in OK_STATUSES
        statuses, results = schedule.statuses, schedule.results
        if top:
            self.top_outputs = {
                task.name: results[task.name]
                for task in tasks
                if statuses.get(task.name) in (NodeStatus.SUCCEEDED, NodeStatus.SKIPPED)
                and self.wf.templates[task.template].container is not None
            }
        succeeded = all(statuses.get(task.name) in OK_STATUSES for task in tasks)
        return Outcome(NodeStatus.SUCCEEDED if succeeded else NodeStatus.FAILED)

    def _start_ready(
        self,
        schedule: Schedule,
        scope: dict[str, str],
        dag: DagRun,
        running: dict[asyncio.Task[Outcome], DagTask],
    ) -> None:
        """Start every task whose dependencies are met; omit those that can never be met."""
        while (task := schedule.next_ready()) is not None:
            if not readiness(task, schedule.statuses):
                schedule.finish(task.name, NodeStatus.OMITTED, {})
                continue
            task_scope = dict(scope)  # plus the outputs its fields read, and only those
            for other in task.reads:
                for param, value in schedule.results.get(other, {}).items():
                    task_scope[f"tasks.{other}.outputs.parameters.{param}"] = value
            running[asyncio.create_task(self._run_task(task, task_scope, dag))] = task

    async def _run_task(self, task: DagTask, scope: dict[str, str], dag: DagRun) -> Outcome:
        """One DAG task: a single child node, or one per loop item."""
        template = self.wf.templates[task.template]
        node_id = f"{dag.node_id}.{task.name}"
        try:
            items = self._expand(task, scope)
        except TaskError as exc:
            self._record_failure(node_id, str(exc))
            return Outcome(NodeStatus.FAILED)
        if items is None:
            node = Node(node_id, task.name, template.name, None)
            return await self._run_child(task, template, scope, node, dag)
        if not items:
            return Outcome(NodeStatus.SKIPPED, {o.name: "[]" for o in template.outputs})
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
            (s for s in (NodeStatus.FAILED, NodeStatus.NOT_RUN) if s in statuses),
            NodeStatus.SUCCEEDED,
        )
        return Outcome(status, aggregate_outputs(template, [o.outputs for o in outcomes]))

    async def _run_child(
        self, task: DagTask, template: Template, scope: dict[str, str], node: Node, dag: DagRun
    ) -> Outcome:
        """Resolve a child's arguments, then run it inside its DAG's parallelism slot."""
        try:
            arguments = {
                p.name: resolve(p.value or "", scope, f"argument {shown(p.name)}")
                for p in task.arguments
            }
            inputs = self._bind_inputs(template, arguments)
        except TaskError as exc:
            self._record_failure(node.id, str(exc))
            return Outcome(NodeStatus.FAILED)
        if template.container is not None:
            self.observer.task_added(node)
        async with dag.slots or contextlib.nullcontext():
            if dag.failed or self.halted:
                return Outcome(NodeStatus.NOT_RUN)
            if template.container is not None:
                return await self._run_leaf(template, inputs, node, dag)
            return await self._run_dag(template, inputs, node.id)

    def _expand(self, task: DagTask, scope: dict[str, str]) -> list[LoopItem] | None:
        """Loop items of a task, or None when it does not loop."""
        if task.with_items is not None:
            return [loop_item(resolve_json(value, scope)) for value in task.with_items]
        if task.with_param is not None:
            text = resolve(task.with_param, scope, "withParam")
            try:
                values = json.loads(text)
            except (ValueError, RecursionError):  # not JSON, or nested past the parser's stack
                values = None
            if not isinstance(values, list):
                raise TaskError(f"withParam is not a JSON list: {shown(text)}")
            if len(values) > MAX_LOOP_ITEMS:
                raise TaskError(f"withParam: {too_many_items(len(values))}")
            try:
                return [loop_item(value) for value in values]
            except RecursionError:
                raise TaskError("withParam: an item is nested too deeply") from None
        if task.with_sequence is not None:
            return [loop_item(value) for value in sequence_items(task.with_sequence, scope)]
        return None

    # -- containers --------------------------------------------------------------------------

    async def _run_leaf(
        self, template: Template, inputs: dict[str, str], node: Node, dag: DagRun
    ) -> Outcome:
        """Run a container's attempts inside a process slot, within its time limits; report
        to the observer. Each attempt is a pod: it gets fresh emptyDir folders."""
        assert self.process_slots is not None
        async with self.process_slots:
            if dag.failed or self.halted:
                return Outcome(NodeStatus.NOT_RUN)
            try:  # resolved only now: queued loop items hold no environment copies
                limits = template_limits(template, self._template_scope(inputs))
                pod, launch = self.pods.prepare(template, self._template_scope(inputs))
            except TaskError as exc:
                self._record_failure(node.id, str(exc))
                return Outcome(NodeStatus.FAILED)
            self.observer.task_started(node)
            clock = asyncio.get_running_loop()
            ends = None if limits.node is None else clock.time() + limits.node
            succeeded, log_path = False, attempt_log(self.log_dir, node, 0)
            outputs: dict[str, str] = {}
            for attempt in range(limits.attempts):
                log_path = attempt_log(self.log_dir, node, attempt)
                limit, limit_name = limits.per_attempt, limits.per_attempt_text
                if ends is not None and (limit is None or ends - clock.time() < limit):
                    limit, limit_name = ends - clock.time(), limits.node_text
                try:
                    if attempt > 0:
                        pod, launch = self.pods.prepare(template, self._template_scope(inputs))
                    succeeded, outputs, late, failed = await self._attempt(
                        launch, log_path, limit, f"{limit_name} of template {shown(template.name)}"
                    )
                except TaskError as exc:
                    note_in_log(log_path, str(exc))
                    break
                finally:
                    remove_tree(pod)
                    pod = None
                if succeeded or self.halted or (late and limit_name == limits.node_text):
                    break
                retry = template.retry
                if retry is not None and attempt + 1 < limits.attempts:
                    refusal = retry_refusal(retry.policy, retry.expression, failed)
                    if refusal:
                        note_in_log(log_path, f"not retried: {refusal}")
                        break
                if ends is not None and clock.time() >= ends and attempt + 1 < limits.attempts:
                    note_in_log(log_path, f"not retried: {limits.node_text} has passed")
                    break
        self.observer.task_finished(node, succeeded, outputs)
        if not succeeded:
            self._record_failure(node.id, log_tail(log_path))
            return Outcome(NodeStatus.FAILED)
        return Outcome(NodeStatus.SUCCEEDED, outputs)

    async def _attempt(
        self, launch: Launch, log_path: Path, limit: float | None, limit_name: str
    ) -> tuple[bool, dict[str, str], bool, Attempt]:
        """One process: run it with output to `log_path`, at most `limit` seconds, then read
        its output parameters. The third value says whether it was stopped at `limit`; the
        fourth is the attempt as Argo's retry variables would describe it, were it failed."""
        if limit is not None and limit <= 0:  # as Argo, which creates no pod then
            note_in_log(log_path, f"failed: {limit_name} passed before the attempt could start")
            return False, {}, True, Attempt("Failed", "-1")
        with log_path.open("wb") as log:
            code, late = await self.launcher.run(launch, log, limit)
        failed = failed_attempt(code)
        if late:
            note_in_log(
                log_path,
                f"failed: exceeded {limit_name}; its process group got SIGTERM"
                f" (SIGKILL {KILL_GRACE_SECONDS:g} s later)",
            )
            return False, {}, True, failed
        if self.deadline_passed is not None and code != 0:
            note_in_log(
                log_path, f"stopped: the run exceeded its deadline ({self.deadline_passed})"
            )
            return False, {}, False, failed
        if code is None:
            return False, {}, False, failed
        if code != 0:
            note_in_log(log_path, f"failed: {exit_reason(code)}")
            return False, {}, False, failed
        try:
            return True, read_outputs(launch), False, failed
        except TaskError as exc:
            note_in_log(log_path, str(exc))
            return False, {}, False, Attempt("Error", "0")  # as Argo's failed wait container

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
        self.launcher.stop()
        self.kill_all(signal.SIGTERM)
        asyncio.get_running_loop().call_later(KILL_GRACE_SECONDS, self.kill_all, signal.SIGKILL)

    def kill_all(self, sig: signal.Signals) -> None:
        self.launcher.kill_all(sig)

    # -- helpers -------------------------------------------------------------------------------

    def _template_scope(self, inputs: Mapping[str, str]) -> dict[str, str]:
        scope = dict(self.globals)
        scope.update({f"inputs.parameters.{name}": value for name, value in inputs.items()})
        return scope

    def _bind_inputs(self, template: Template, given: Mapping[str, str]) -> dict[str, str]:
        """Argument, else the input's own value/default (workflow variables resolved)."""
        inputs: dict[str, str] = {}
        for param in template.inputs:
            inputs[param.name] = input_value(param, given, self.globals)
        return inputs

    def _record_failure(self, node_id: str, log: str) -> None:
        if node_id in self.failure_logs:  # the run's deadline, then its only task: one entry
            self.failure_logs[node_id] += f"\n{log}"
            return
        self.failed.append(node_id)
        self.failure_logs[node_id] = log
