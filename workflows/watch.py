"""Follow a run on the Argo Server on the same progress display as a local `run`.

The Argo Server's API: https://argo-workflows.readthedocs.io/en/latest/rest-api/
"""

from __future__ import annotations

from rich.console import Console

from steps.spec import Spec
from steps.stages import stage_of_shard, total_shards
from workflows import argo
from workflows.local import Node
from workflows.progress import ProgressDisplay

__all__ = ["watch_run"]

_SHARD_DONE = frozenset({"Succeeded", "Failed", "Error"})


def watch_run(
    console: Console,
    config: argo.ArgoConfig,
    spec: Spec,
    name: str,
    poll: float,
    timeout: float | None,
) -> argo.WorkflowStatus:
    """Follow the run on the same progress display as `run`, one task per compute shard."""

    def node(shard: int, node_id: str | None = None) -> Node:
        return Node(
            id=node_id or f"{name}.compute({shard}:{shard})",
            task="compute",
            template="compute",
            item=str(shard),
        )

    reported: set[int] = set()
    count = total_shards(spec)  # of every stage
    with ProgressDisplay(console, name, spec) as progress:
        for shard in range(count):
            progress.task_added(node(shard))

        def update(status: argo.WorkflowStatus) -> None:
            phases = dict(status.shard_phases)
            if status.succeeded:  # every shard did, whatever the node list still shows
                phases = dict.fromkeys(range(count), "Succeeded")
            for shard, phase in sorted(phases.items()):
                if shard in reported or phase not in _SHARD_DONE:
                    continue
                reported.add(shard)
                finished = node(shard, status.shard_nodes.get(shard))
                # The status carries no outputs: a shard's rows come from the space, as in it.
                start, stop = stage_of_shard(spec, shard).shard_range(shard)
                progress.task_finished(finished, phase == "Succeeded", {"rows": str(stop - start)})

        return argo.wait_for(config, name, poll, update, timeout)
