"""A Workflow's status as `status` shows it and `--wait` follows it: its phase, and its
compute shards counted by state from Argo's node list (retry attempts included).

Argo's node status: https://argo-workflows.readthedocs.io/en/latest/fields/#nodestatus
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from hera.workflows import models as m

from steps.spec import spec_from_json
from steps.stages import total_shards

__all__ = [
    "COMPUTE_TEMPLATE",
    "TERMINAL_PHASES",
    "ShardCounts",
    "WorkflowStatus",
    "workflow_status",
]

COMPUTE_TEMPLATE = "compute"
TERMINAL_PHASES = frozenset({"Succeeded", "Failed", "Error"})
# Argo names a loop child `<task>(<index>:<item>)`, a retry attempt adds `(<attempt>)`.
_ITEM_RE = re.compile(r"\((\d+):([^)]*)\)")


@dataclass(frozen=True)
class ShardCounts:
    """Compute shards by state; `pending` is what has not started (or not been seen) yet."""

    total: int
    succeeded: int = 0
    running: int = 0
    failed: int = 0
    retries: int = 0  # extra attempts beyond each shard's first

    @property
    def pending(self) -> int:
        return max(0, self.total - self.succeeded - self.running - self.failed)


@dataclass(frozen=True)
class WorkflowStatus:
    """What `status` shows and `--wait` follows: the run's phase and its shards."""

    name: str
    namespace: str
    phase: str  # Pending, Running, Succeeded, Failed, Error ("Pending" until Argo sets one)
    message: str | None
    started_at: datetime | None
    finished_at: datetime | None
    shards: ShardCounts
    shard_phases: Mapping[int, str]  # phase of each shard seen so far, by shard index
    shard_nodes: Mapping[int, str]  # Argo node name of each shard, for messages

    @property
    def done(self) -> bool:
        return self.phase in TERMINAL_PHASES

    @property
    def succeeded(self) -> bool:
        return self.phase == "Succeeded"


def _time(value: m.Time | None) -> datetime | None:
    return None if value is None else value.root


def _shard_index(node: m.NodeStatus) -> int | None:
    """The shard a compute node works on: its `shard` input, else the loop item in its name."""
    for parameter in (node.inputs.parameters or []) if node.inputs else []:
        if parameter.name == "shard" and parameter.value is not None:
            with contextlib.suppress(ValueError):
                return int(str(parameter.value))
    match = _ITEM_RE.search(node.name or node.display_name or "")
    if match:
        with contextlib.suppress(ValueError):
            return int(match.group(2))
    return None


def _shard_count(workflow: m.Workflow) -> int | None:
    """From the `spec` parameter TTG passes, else from the compute task's withSequence count."""
    spec = workflow.spec
    status = workflow.status
    specs = [spec, status.stored_workflow_template_spec if status else None]
    for source in (s for s in specs if s is not None and s.arguments):
        assert source.arguments is not None
        for parameter in source.arguments.parameters or []:
            if parameter.name == "spec" and parameter.value is not None:
                with contextlib.suppress(ValueError, TypeError, KeyError):
                    return total_shards(spec_from_json(str(parameter.value)))
    for templates in (s.templates or [] for s in specs if s is not None):
        counts = []  # a refined sweep fans out once per stage: compute-0, compute-1, ...
        for template in templates:
            for task in template.dag.tasks if template.dag else []:
                if task.template == COMPUTE_TEMPLATE and task.with_sequence:
                    count = task.with_sequence.count
                    with contextlib.suppress(ValueError, TypeError):
                        counts.append(int(str(count.root if count is not None else "")))
        if counts:
            return sum(counts)
    return None


def _shards(workflow: m.Workflow) -> tuple[ShardCounts, dict[int, str], dict[int, str]]:
    """Shard states from the compute nodes in `status.nodes`.

    With a retryStrategy Argo makes one `Retry` node per shard (its phase is the shard's
    outcome) with a `Pod` child per attempt; without one, the `Pod` is the shard. A failed
    attempt that will be retried therefore does not count as a failed shard.
    """
    nodes = (workflow.status.nodes if workflow.status else None) or {}
    retry_phase: dict[int, str] = {}
    pods: dict[int, list[m.NodeStatus]] = {}
    names: dict[int, str] = {}
    for node in nodes.values():
        if node.template_name != COMPUTE_TEMPLATE or node.type not in ("Retry", "Pod"):
            continue
        index = _shard_index(node)
        if index is None:
            continue
        if node.type == "Retry":
            retry_phase[index] = node.phase or "Pending"
            names[index] = node.name
        else:
            pods.setdefault(index, []).append(node)
            names.setdefault(index, node.name)
    phases: dict[int, str] = {}
    for index in retry_phase.keys() | pods.keys():
        if index in retry_phase:
            phases[index] = retry_phase[index]
        else:
            latest = max(pods[index], key=lambda n: (_time(n.started_at) is not None, n.name))
            phases[index] = latest.phase or "Pending"
    values = list(phases.values())
    counts = ShardCounts(
        total=max(_shard_count(workflow) or 0, len(phases)),
        succeeded=values.count("Succeeded"),
        running=values.count("Running"),
        failed=sum(p in ("Failed", "Error") for p in values),
        retries=sum(max(0, len(attempts) - 1) for attempts in pods.values()),
    )
    return counts, phases, names


def workflow_status(workflow: m.Workflow, namespace: str) -> WorkflowStatus:
    """Summarise a Workflow object as the Argo Server returns it."""
    status = workflow.status
    counts, phases, names = _shards(workflow)
    return WorkflowStatus(
        name=workflow.metadata.name or "",
        namespace=workflow.metadata.namespace or namespace,
        phase=(status.phase if status else None) or "Pending",
        message=status.message if status else None,
        started_at=_time(status.started_at) if status else None,
        finished_at=_time(status.finished_at) if status else None,
        shards=counts,
        shard_phases=phases,
        shard_nodes=names,
    )
