"""Parse an Argo Workflow manifest and check it against the subset the local executor runs.

`exec` must refuse what it cannot run faithfully *before* any task starts, with one line
naming the exact place, so everything is checked once, here: the text within bounds
(load.py), every object's shape (parse.py, parse_dag.py, against limits.py), references,
cycles and every ``{{...}}`` variable (check.py). What passes becomes the frozen dataclasses
of model.py. The subset and its bounds: docs/local-executor.md#what-a-manifest-may-be.
Argo's Workflow spec: https://argo-workflows.readthedocs.io/en/latest/fields/#workflowspec
"""

from workflows.manifest.limits import (
    IGNORED,
    MAX_LOOP_ITEMS,
    MAX_MANIFEST_BYTES,
    MAX_MANIFEST_VALUES,
    MAX_TEMPLATE_DEPTH,
    MAX_VALUE_DEPTH,
    SUPPORTED,
)
from workflows.manifest.load import (
    as_workflow,
    check_size,
    decode_manifest,
    load_manifest,
    parse_workflow,
)
from workflows.manifest.model import (
    Container,
    DagTask,
    Dependency,
    EnvVar,
    ManifestError,
    Mount,
    OutputParameter,
    Parameter,
    RetryStrategy,
    SecretRef,
    Sequence,
    Template,
    UnresolvedError,
    Workflow,
)
from workflows.manifest.parse_base import too_many_items
from workflows.manifest.text import (
    clipped,
    parse_duration,
    secret_variable,
    shown,
    substitute,
    variables,
)
from workflows.manifest.values import scalar_text

__all__ = [
    "IGNORED",
    "MAX_LOOP_ITEMS",
    "MAX_MANIFEST_BYTES",
    "MAX_MANIFEST_VALUES",
    "MAX_TEMPLATE_DEPTH",
    "MAX_VALUE_DEPTH",
    "SUPPORTED",
    "Container",
    "DagTask",
    "Dependency",
    "EnvVar",
    "ManifestError",
    "Mount",
    "OutputParameter",
    "Parameter",
    "RetryStrategy",
    "SecretRef",
    "Sequence",
    "Template",
    "UnresolvedError",
    "Workflow",
    "as_workflow",
    "check_size",
    "clipped",
    "decode_manifest",
    "load_manifest",
    "parse_duration",
    "parse_workflow",
    "scalar_text",
    "secret_variable",
    "shown",
    "substitute",
    "too_many_items",
    "variables",
]
