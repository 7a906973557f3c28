"""`logs RUN [TASK]` on a cluster: the pods' logs through the Argo Server's log API.

A task names nodes of the Workflow (`compute`, shard `3`, `reduce`); their pods' names are
derived as Argo derives them (workflow/util/pod_name.go): with the default pod-name format
v2, `<workflow>-<template>-<FNV-1a 32 of the node name>`, with v1 the node id. Each retried
attempt is a pod node of its own (`<wf>.compute(3:3)(1)`), so all of a shard's attempts show.
The API answers newline-delimited JSON, `{"result": {"content": ..., "podName": ...}}`.
Argo's log API: https://argo-workflows.readthedocs.io/en/latest/rest-api/
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from hera.workflows import models as m

from workflows.argo_client import ArgoConfig, ArgoError, service
from workflows.run_logs import matches_task

__all__ = ["LogLine", "pod_name", "pods_of", "workflow_logs"]

POD_NAME_FORMAT = "workflows.argoproj.io/pod-name-format"
MAX_NAME = 253  # a pod name is a DNS-1123 subdomain
HASH_DIGITS = 10  # the longest decimal 32-bit hash


@dataclass(frozen=True)
class LogLine:
    pod: str
    content: str


def fnv1a_32(text: str) -> int:
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def pod_name(workflow: str, node: m.NodeStatus, version: str) -> str:
    """The pod a node ran in, as the controller names it."""
    if version == "v1" or not node.template_name:
        return node.id
    if node.name == workflow:
        return workflow
    prefix = f"{workflow}-{node.template_name}"[: MAX_NAME - HASH_DIGITS - 1]
    return f"{prefix}-{fnv1a_32(node.name)}"


def pods_of(workflow: m.Workflow, task: str | None) -> list[str]:
    """The pods of the nodes `task` names, in node-name order."""
    name = workflow.metadata.name or ""
    version = (workflow.metadata.annotations or {}).get(POD_NAME_FORMAT, "v2")
    nodes = (workflow.status.nodes if workflow.status else None) or {}
    chosen = []
    for node in nodes.values():
        attempt_of = re.sub(r"\(\d+\)$", "", node.name)  # a retry's pod node: `...(3:3)(1)`
        if node.type == "Pod" and matches_task(attempt_of, task):
            chosen.append((node.name, pod_name(name, node, version)))
    return [pod for _, pod in sorted(chosen)]


def workflow_logs(config: ArgoConfig, name: str, task: str | None) -> list[LogLine]:
    """The main container's logs of the pods `task` names (all of the Workflow's if None)."""
    target = f"workflow '{name}'"
    with service(config) as client:
        pods: list[str | None] = [None]
        if task is not None:
            workflow = client.call(
                lambda s: s.get_workflow(name, namespace=config.namespace), "get workflows", target
            )
            pods = list(pods_of(workflow, task))
            if not pods:
                raise ArgoError(f"workflow '{name}' has no pod for task '{task}'")
        lines: list[LogLine] = []
        for pod in pods:
            params = {"logOptions.container": "main", **({"podName": pod} if pod else {})}
            path = f"api/v1/workflows/{config.namespace}/{name}/log"
            for raw in client.get_lines(path, params, "get workflow logs", target):
                lines.extend(_entry(raw, config))
    return lines


def _entry(raw: str, config: ArgoConfig) -> list[LogLine]:
    if not raw.strip():
        return []
    try:
        document = json.loads(raw)
    except ValueError:
        raise ArgoError(f"unexpected answer from {config.url} to: get workflow logs") from None
    if not isinstance(document, dict):
        raise ArgoError(f"unexpected answer from {config.url} to: get workflow logs")
    if "error" in document:
        error = document["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise ArgoError(f"the Argo Server could not stream the logs: {str(message)[:200]}")
    result = document.get("result")
    if not isinstance(result, dict):
        return []
    return [LogLine(str(result.get("podName", "")), str(result.get("content", "")))]
