"""Parse an Argo Workflow manifest and check it against the subset the local executor runs.

`exec` is a local Argo for a subset, so it must refuse what it cannot run faithfully *before*
any task starts, with one line naming the exact place, e.g.
``spec.templates[1].script: not supported by the local executor``. Everything is therefore
checked once, here: the shape of every object (parse.py, parse_dag.py, against limits.py),
template and dependency references, cycles, and every ``{{...}}`` variable against the scope
it is used in (check.py). What passes becomes the small frozen dataclasses of model.py that
`workflows.local` runs without further checks. load.py reads the text, within bounds.

Supported variables (whitespace inside the braces allowed, as in Argo):
``{{workflow.name}}``, ``{{workflow.parameters.NAME}}``, ``{{inputs.parameters.NAME}}``,
``{{item}}``, ``{{item.KEY}}``, ``{{tasks.NAME.outputs.parameters.P}}``.

Cluster-only settings with no local effect are accepted and ignored; `IGNORED` (limits.py)
lists them and is the one place to extend. Variables inside ignored settings are neither
evaluated nor checked: they never reach a local process (template metrics use ``{{status}}``).

A manifest is untrusted input, so everything about it is bounded before it is walked, and a
refusal echoes at most a short excerpt of a user's value (`shown`): the text (1.5 MiB, the
most etcd stores in one object), the values once YAML aliases are expanded (an alias bomb of
a few hundred bytes can stand for 10^9 of them; a self-referencing alias for infinitely many),
their nesting (100 levels), loops (100,000 items: ten times the 10,000 shards a sweep may have)
and template calls (99 templates deep, as Argo's controller, which fails a node at stack
depth 100). Every walk of the model is iterative, so none of these can exhaust the stack.

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
