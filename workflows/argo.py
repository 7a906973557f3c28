"""The Argo Server client: submit a Workflow, read and wait for its status, schedule a CronWorkflow.

Configuration and transport are in workflows/argo_client.py, the status of a run in
workflows/argo_status.py; this module is what the CLI calls.

Configured the way the `argo` CLI is (`ARGO_SERVER`, `ARGO_SECURE`, `ARGO_TOKEN`,
`ARGO_NAMESPACE`, `ARGO_INSECURE_SKIP_VERIFY`, `ARGO_BASE_HREF`) and spoken to through Hera's
`WorkflowsService`, so request bodies are Hera's own models of Argo's API. Every failure,
whether an HTTP status, a refused connection or a TLS mismatch, becomes an `ArgoError` whose
message is one line a user can act on. Nothing here prints: the CLI does.

The Argo Server's API: https://argo-workflows.readthedocs.io/en/latest/rest-api/
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, TypeVar

from hera.workflows import CronWorkflow, Workflow
from hera.workflows import models as m

from workflows.argo_client import DEFAULT_NAMESPACE, ArgoConfig, ArgoError, service, ui_url
from workflows.argo_status import ShardCounts, WorkflowStatus, workflow_status

__all__ = [
    "DEFAULT_NAMESPACE",
    "ArgoConfig",
    "ArgoError",
    "ShardCounts",
    "WorkflowStatus",
    "get_workflow",
    "schedule_cron",
    "submit_workflow",
    "ui_url",
    "wait_for",
    "workflow_status",
]

T = TypeVar("T")

# A long --wait should survive a blip (an Argo Server restart, a load balancer's 502), not
# die on the first failed poll; this many failures in a row end it.
WAIT_TOLERATED_FAILURES = 3


def _describe(kind: str, metadata: m.ObjectMeta) -> str:
    if metadata.name:
        return f"{kind} '{metadata.name}'"
    return f"{kind} '{metadata.generate_name or ''}...'"


def submit_workflow(config: ArgoConfig, workflow: Workflow) -> str:
    """Create the Workflow (POST /api/v1/workflows/{ns}); returns the name Argo gave it."""
    model = workflow.build()
    if not isinstance(model, m.Workflow):
        raise TypeError(f"expected a Workflow, got {type(model).__name__}")
    declared = model.metadata.namespace
    if declared and declared != config.namespace:
        raise ArgoError(
            f"the workflow declares namespace '{declared}' but is submitted to '{config.namespace}'"
        )
    request = m.WorkflowCreateRequest(namespace=config.namespace, workflow=model)
    with service(config) as client:
        created = client.call(
            lambda s: s.create_workflow(request, namespace=config.namespace),
            "create workflows",
            _describe("workflow", model.metadata),
        )
    if not created.metadata.name:
        raise ArgoError(f"the Argo Server at {config.server} created a workflow without a name")
    return created.metadata.name


def get_workflow(config: ArgoConfig, name: str) -> WorkflowStatus:
    """Read one workflow (GET /api/v1/workflows/{ns}/{name}) and summarise its shards."""
    with service(config) as client:
        workflow = client.call(
            lambda s: s.get_workflow(name, namespace=config.namespace),
            "get workflows",
            f"workflow '{name}'",
        )
    return workflow_status(workflow, config.namespace)


def wait_for(
    config: ArgoConfig,
    name: str,
    poll_seconds: float = 5.0,
    on_update: Callable[[WorkflowStatus], None] | None = None,
    timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> WorkflowStatus:
    """Poll until the workflow Succeeded, Failed or Errored; `on_update` sees every poll.

    A few transient failures in a row (unreachable, timeout, 5xx) are ridden out: a run can
    outlive an Argo Server restart. `timeout` bounds the whole wait.
    """
    began = time.monotonic()
    failures = 0
    while True:
        try:
            status = get_workflow(config, name)
        except ArgoError as exc:
            failures += 1
            if not exc.transient or failures >= WAIT_TOLERATED_FAILURES:
                raise
        else:
            failures = 0
            if on_update is not None:
                on_update(status)
            if status.done:
                return status
        if timeout is not None and time.monotonic() - began >= timeout:
            raise ArgoError(f"gave up waiting for workflow '{name}' after {timeout:g}s")
        sleep(poll_seconds)


# --- cron workflows --------------------------------------------------------------------------


def schedule_cron(config: ArgoConfig, cron: CronWorkflow) -> Literal["created", "updated"]:
    """Create the CronWorkflow, or update it in place when one of that name exists.

    Argo answers a create of an existing name with 409; the update must then carry the
    current `resourceVersion` (optimistic concurrency), so it is read first.
    """
    model = cron.build()
    if not isinstance(model, m.CronWorkflow):
        raise TypeError(f"expected a CronWorkflow, got {type(model).__name__}")
    name = model.metadata.name
    if not name:
        raise ArgoError("a CronWorkflow needs a fixed name to be created or updated")
    declared = model.metadata.namespace
    if declared and declared != config.namespace:
        raise ArgoError(
            f"the cron workflow declares namespace '{declared}' but is submitted to "
            f"'{config.namespace}'"
        )
    ns = config.namespace
    with service(config) as client:
        try:
            create = m.CreateCronWorkflowRequest(namespace=ns, cron_workflow=model)
            client.call(
                lambda s: s.create_cron_workflow(create, namespace=ns), "create cronworkflows"
            )
            return "created"
        except ArgoError as exc:
            if exc.status != 409:
                raise
        current = client.call(
            lambda s: s.get_cron_workflow(name, namespace=ns),
            "get cronworkflows",
            f"cron workflow '{name}'",
        )
        model.metadata.resource_version = current.metadata.resource_version
        update = m.UpdateCronWorkflowRequest(name=name, namespace=ns, cron_workflow=model)
        client.call(
            lambda s: s.update_cron_workflow(name, update, namespace=ns),
            "update cronworkflows",
            f"cron workflow '{name}'",
        )
    return "updated"
