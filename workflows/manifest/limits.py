"""What the local executor reads of a manifest, what it ignores, and how much of it it
will hold or walk: the tables the parser checks every object against."""

from __future__ import annotations

import re

__all__ = [
    "API_VERSION",
    "CRON_ONLY_KEYS",
    "DEPENDS_TERM",
    "FIELD_NAME",
    "FORMS",
    "IGNORED",
    "MAX_LOOP_ITEMS",
    "MAX_MANIFEST_BYTES",
    "MAX_MANIFEST_VALUES",
    "MAX_TEMPLATE_DEPTH",
    "MAX_VALUE_DEPTH",
    "PARAM_NAME",
    "RETRY_POLICIES",
    "SUPPORTED",
    "SUPPORTED_FORMS",
    "TASK_OUTPUT",
    "VARIABLE",
]

API_VERSION = "argoproj.io/v1alpha1"

# Bounds on what a manifest may make the executor hold or walk (see the module docstring).
MAX_MANIFEST_BYTES = 1536 * 1024  # etcd's default request limit: no cluster stores more
MAX_MANIFEST_VALUES = 1_000_000  # mappings, lists and scalars, counted with aliases expanded
MAX_VALUE_DEPTH = 100  # mappings and lists inside one another
MAX_LOOP_ITEMS = 100_000  # items of one withItems / withParam / withSequence loop
MAX_TEMPLATE_DEPTH = 99  # templates on one call chain, entrypoint and leaf included


# Keys the local executor reads and honours, per kind of object.
SUPPORTED: dict[str, frozenset[str]] = {
    "workflow": frozenset({"apiVersion", "kind", "metadata", "spec"}),
    "metadata": frozenset({"name", "generateName"}),
    "spec": frozenset(
        {"entrypoint", "arguments", "parallelism", "templates", "activeDeadlineSeconds", "volumes"}
    ),
    "arguments": frozenset({"parameters"}),
    "argument": frozenset({"name", "value"}),
    "template": frozenset(
        {
            "name",
            "inputs",
            "outputs",
            "dag",
            "container",
            "retryStrategy",
            "parallelism",
            "activeDeadlineSeconds",
            "timeout",
        }
    ),
    "inputs": frozenset({"parameters"}),
    "input": frozenset({"name", "value", "default"}),
    "outputs": frozenset({"parameters"}),
    "output": frozenset({"name", "valueFrom"}),
    "output.valueFrom": frozenset({"path", "default"}),
    "retryStrategy": frozenset({"limit", "retryPolicy", "expression"}),
    "dag": frozenset({"tasks"}),
    "task": frozenset(
        {
            "name",
            "template",
            "arguments",
            "dependencies",
            "depends",
            "withItems",
            "withParam",
            "withSequence",
        }
    ),
    "withSequence": frozenset({"count", "start", "end", "format"}),
    "container": frozenset({"command", "args", "env", "workingDir", "volumeMounts"}),
    "volumeMount": frozenset({"name", "mountPath", "subPath"}),
    "env": frozenset({"name", "value", "valueFrom"}),
    "env.valueFrom": frozenset({"secretKeyRef"}),
    "secretKeyRef": frozenset({"name", "key", "optional"}),
}

# Accepted but ignored locally: cluster-only settings with no local effect. The project's own
# rendered Workflow carries these, so refusing them would refuse our own output.
IGNORED: dict[str, frozenset[str]] = {
    "metadata": frozenset({"namespace", "labels", "annotations"}),
    "spec": frozenset(
        {
            "serviceAccountName",
            "podGC",
            "ttlStrategy",
            "securityContext",
            "podMetadata",
            "workflowMetadata",
            "podDisruptionBudget",
            "nodeSelector",
            "podPriorityClassName",
            "tolerations",
            "affinity",
            "imagePullSecrets",
            "priorityClassName",
            "archiveLogs",
            "metrics",
        }
    ),
    "template": frozenset(
        {
            "metadata",
            "metrics",
            "nodeSelector",
            "podPriorityClassName",
            "tolerations",
            "affinity",
            "serviceAccountName",
            "securityContext",
        }
    ),
    "container": frozenset(
        {
            "image",
            "imagePullPolicy",
            "resources",
            "securityContext",
            "ports",
            "name",
        }
    ),
    "retryStrategy": frozenset({"backoff"}),
    "volumeMount": frozenset({"readOnly", "mountPropagation", "recursiveReadOnly"}),
    "argument": frozenset({"description"}),
    "input": frozenset({"description"}),
    "output": frozenset({"description"}),
}

RETRY_POLICIES = frozenset({"Always", "OnFailure", "OnError", "OnTransientError"})

FIELD_NAME = re.compile(r"\A[a-zA-Z0-9][-a-zA-Z0-9]*\Z")  # Argo's template and task names
PARAM_NAME = re.compile(r"\A[-a-zA-Z0-9_]+\Z")  # Argo's parameter names
VARIABLE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
TASK_OUTPUT = re.compile(r"\{\{\s*tasks\.([a-zA-Z0-9][-a-zA-Z0-9]*)\.outputs\.parameters\.")
DEPENDS_TERM = re.compile(r"^\s*([a-zA-Z0-9][-a-zA-Z0-9]*)(\.Succeeded)?\s*$")
FORMS = re.compile(
    r"^(?:workflow\.name"
    r"|workflow\.parameters\.(?P<wp>[-a-zA-Z0-9_]+)"
    r"|inputs\.parameters\.(?P<ip>[-a-zA-Z0-9_]+)"
    r"|(?P<item>item)(?:\.(?P<ik>.+))?"
    r"|tasks\.(?P<t>[a-zA-Z0-9][-a-zA-Z0-9]*)\.outputs\.parameters\.(?P<tp>[-a-zA-Z0-9_]+))$",
    re.DOTALL,
)
SUPPORTED_FORMS = (
    "workflow.name, workflow.parameters.NAME, inputs.parameters.NAME, item, item.KEY, "
    "tasks.NAME.outputs.parameters.P"
)


# What a CronWorkflow adds around its workflowSpec: scheduling, which has no meaning for one
# local run started now.
CRON_ONLY_KEYS = frozenset(
    {
        "schedule",
        "schedules",
        "timezone",
        "concurrencyPolicy",
        "startingDeadlineSeconds",
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
        "suspend",
        "stopStrategy",
        "when",
        "workflowSpec",
        "workflowMetadata",
    }
)
