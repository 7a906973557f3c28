"""Argo's JSON schema v4.1.2, made as strict as `argo lint`: unknown fields are rejected.

The schema is read from ../shared/argo/schema.json (or $ARGO_SCHEMA) and never copied.
Adjustments, per ../shared/argo/README.md: every object definition that lists `properties`
gets `additionalProperties: false` (maps keep theirs), IntOrString also accepts integers, as
Kubernetes and Argo do, and (found by comparing with Argo's linter) a Quantity accepts numbers.
"""

from __future__ import annotations

import copy
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def schema_path() -> Path | None:
    candidates = [
        os.environ.get("ARGO_SCHEMA"),
        str(ROOT.parent / "shared" / "argo" / "schema.json"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@cache
def strict_schema() -> dict[str, Any]:
    path = schema_path()
    if path is None:
        pytest.skip("Argo schema not found at ../shared/argo/schema.json and ARGO_SCHEMA is unset")
    schema = copy.deepcopy(json.loads(path.read_text()))
    for definition in schema["definitions"].values():
        if "properties" in definition and "additionalProperties" not in definition:
            definition["additionalProperties"] = False
    schema["definitions"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = {
        "type": ["string", "integer"]
    }
    # A Quantity unmarshals from a JSON number too (`cpu: 2`): Argo's linter accepts it, and
    # where the schema and Argo's own code disagree, Argo is right (tests/test_argo_lint.py).
    quantity = schema["definitions"]["io.k8s.apimachinery.pkg.api.resource.Quantity"]
    quantity["type"] = ["string", "number"]
    return schema


def validate(manifest: dict[str, Any], kind: str = "Workflow") -> None:
    """Raise jsonschema.ValidationError where the manifest breaks Argo's strict schema."""
    import jsonschema

    schema = strict_schema()
    wrapper = {
        "$schema": schema["$schema"],
        "$ref": f"#/definitions/io.argoproj.workflow.v1alpha1.{kind}",
        "definitions": schema["definitions"],
    }
    validator = jsonschema.Draft202012Validator(wrapper)
    error = jsonschema.exceptions.best_match(validator.iter_errors(manifest))
    if error is not None:
        raise error
