"""Semantic lint of a rendered manifest: what Argo's schema cannot see.

The schema (tests/argo_schema.py) checks shapes and field names. This checks meaning: every
`{{...}}` reference resolves, every referenced template and task exists, the DAG is acyclic,
names are DNS-1123 labels, and no environment variable carries a literal secret. The
reference, cycle and variable checks are the local executor's own (`workflows.manifest`),
so a manifest that lints clean is also one `exec` can run; this adds what only matters on a
cluster: template metrics, names and secrets.

Argo's own linter, which tests run too:
https://argo-workflows.readthedocs.io/en/latest/cli/argo_lint/
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from workflows.manifest import ManifestError, as_workflow, parse_workflow, variables

__all__ = ["DNS_LABEL", "METRIC_FORMS", "SECRET_NAME", "lint"]

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")  # fullmatch: `$` allows "x\n"
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL)", re.I)
METRIC_FORMS = re.compile(
    r"^(duration|status|exitCode|retries|workflow\.name|workflow\.parameters\.[-\w]+"
    r"|inputs\.parameters\.(?P<input>[-\w]+)|outputs\.parameters\.(?P<output>[-\w]+))$"
)


def lint(manifest: Mapping[str, Any]) -> list[str]:
    """Every problem found, one line each; an empty list means clean."""
    problems: list[str] = []
    try:
        parse_workflow(manifest)
    except ManifestError as exc:
        problems.append(str(exc))
    workflow = as_workflow(manifest)
    templates = list(_templates(workflow))
    problems += _name_problems(manifest, templates)
    problems += _metric_problems(templates)
    problems += _secret_problems(templates)
    return problems


def _templates(workflow: Mapping[str, Any]) -> Iterator[tuple[int, Mapping[str, Any]]]:
    spec = workflow.get("spec") or {}
    for index, template in enumerate(spec.get("templates") or []):
        if isinstance(template, Mapping):
            yield index, template


def _name_problems(
    manifest: Mapping[str, Any], templates: list[tuple[int, Mapping[str, Any]]]
) -> list[str]:
    problems = []
    metadata = manifest.get("metadata") or {}
    name = metadata.get("name") or str(metadata.get("generateName", "")).rstrip("-")
    if not DNS_LABEL.fullmatch(str(name)):
        problems.append(f"metadata: name {name!r} is not a DNS-1123 label")
    for index, template in templates:
        if not DNS_LABEL.fullmatch(str(template.get("name", ""))):
            problems.append(
                f"spec.templates[{index}].name: {template.get('name')!r} is not a DNS-1123 label"
            )
        for t, task in enumerate((template.get("dag") or {}).get("tasks") or []):
            if not DNS_LABEL.fullmatch(str(task.get("name", ""))):
                problems.append(
                    f"spec.templates[{index}].dag.tasks[{t}].name: {task.get('name')!r} is not a DNS-1123 label"
                )
    return problems


def _metric_problems(templates: list[tuple[int, Mapping[str, Any]]]) -> list[str]:
    """Metric strings may use Argo's metric variables, and only declared inputs and outputs."""
    problems = []
    for index, template in templates:
        inputs = {p.get("name") for p in (template.get("inputs") or {}).get("parameters") or []}
        outputs = {p.get("name") for p in (template.get("outputs") or {}).get("parameters") or []}
        for m, metric in enumerate((template.get("metrics") or {}).get("prometheus") or []):
            path = f"spec.templates[{index}].metrics.prometheus[{m}]"
            for text in _strings(metric):
                for expression in variables(text):  # linear, even on unclosed {{
                    form = METRIC_FORMS.match(expression)
                    if form is None:
                        problems.append(f"{path}: '{{{{{expression}}}}}' is not a metric variable")
                    elif form["input"] and form["input"] not in inputs:
                        problems.append(
                            f"{path}: input parameter '{form['input']}' is not declared"
                        )
                    elif form["output"] and form["output"] not in outputs:
                        problems.append(
                            f"{path}: output parameter '{form['output']}' is not declared"
                        )
    return problems


def _secret_problems(templates: list[tuple[int, Mapping[str, Any]]]) -> list[str]:
    problems = []
    for index, template in templates:
        for e, env in enumerate((template.get("container") or {}).get("env") or []):
            if "value" in env and SECRET_NAME.search(str(env.get("name", ""))):
                problems.append(
                    f"spec.templates[{index}].container.env[{e}]: {env['name']} carries a literal value;"
                    " take it from a Secret (valueFrom.secretKeyRef)"
                )
    return problems


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
