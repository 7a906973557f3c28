"""The rendered Workflow: golden YAML per example sweep, Argo's strict schema, O(1) size.

Regenerate the golden files on purpose only: `TTG_REGENERATE_GOLDEN=1 pytest tests/test_build.py`.
"""

from __future__ import annotations

import os
from pathlib import Path

import jsonschema
import pytest
import yaml

from steps.spec import load_spec, parse_spec
from tests.argo_schema import validate
from tests.conftest import SWEEPS
from workflows.build import BuildOptions, build_workflow, render

GOLDEN = Path(__file__).parent / "golden"
EXAMPLES = sorted(SWEEPS.glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_rendered_workflow_matches_its_golden_file(path: Path) -> None:
    rendered = render(load_spec(path))
    golden = GOLDEN / f"{path.stem}.workflow.yaml"
    if os.environ.get("TTG_REGENERATE_GOLDEN"):
        golden.write_text(rendered)
    assert golden.is_file(), f"missing {golden}; regenerate with TTG_REGENERATE_GOLDEN=1"
    assert rendered == golden.read_text()


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
@pytest.mark.parametrize("store", ["s3://ttg/runs", "/data/runs"])
def test_rendered_workflow_passes_argos_strict_schema(path: Path, store: str) -> None:
    validate(yaml.safe_load(render(load_spec(path), BuildOptions(store=store))))


def test_the_strict_schema_rejects_an_unknown_field() -> None:
    manifest = yaml.safe_load(render(load_spec(EXAMPLES[0])))
    manifest["spec"]["templates"][0]["container"]["comand"] = ["python"]
    with pytest.raises(jsonschema.ValidationError, match="comand"):
        validate(manifest)


def test_the_workflow_is_the_same_size_for_ten_rows_and_ten_billion() -> None:
    base = {
        "name": "big",
        "function": "steps.kernels:rosenbrock",
        "shards": 10,
        "space": {"x": {"linspace": [0.0, 1.0, 100_000]}, "y": {"linspace": [0.0, 1.0, 100_000]}},
    }
    huge = render(parse_spec(base))
    tiny = render(
        parse_spec(
            base | {"space": {"x": {"linspace": [0.0, 1.0, 5]}, "y": {"linspace": [0.0, 1.0, 2]}}}
        )
    )
    assert abs(len(huge) - len(tiny)) < 20 and len(huge) < 8_000


def test_the_fan_out_is_one_withsequence_over_the_shard_count_then_reduce() -> None:
    spec = load_spec(EXAMPLES[0]).with_shards(123)
    manifest = build_workflow(spec, BuildOptions(run_id="fixed-name")).to_dict()
    assert (
        manifest["metadata"]["name"] == "fixed-name" and "generateName" not in manifest["metadata"]
    )
    dag = next(
        t for t in manifest["spec"]["templates"] if t["name"] == manifest["spec"]["entrypoint"]
    )["dag"]
    compute, reduce = dag["tasks"]
    assert (
        compute["withSequence"] == {"count": "123"}
        and compute["arguments"]["parameters"][0]["value"] == "{{item}}"
    )
    assert reduce["depends"] == "compute"
    parameters = {p["name"]: p["value"] for p in manifest["spec"]["arguments"]["parameters"]}
    assert parameters["spec"] == spec.to_json()


def test_s3_credentials_come_from_a_secret_and_a_folder_store_needs_none() -> None:
    spec = load_spec(EXAMPLES[0])
    s3 = build_workflow(spec, BuildOptions(store="s3://ttg/runs")).to_dict()
    env = s3["spec"]["templates"][0]["container"]["env"]
    assert {e["name"] for e in env} == {
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
    }
    assert all("value" not in e and e["valueFrom"]["secretKeyRef"]["name"] == "ttg-s3" for e in env)
    folder = build_workflow(spec, BuildOptions(store="/data")).to_dict()
    assert "env" not in folder["spec"]["templates"][0]["container"]
