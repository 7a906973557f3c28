"""The rendered Workflow: golden YAML per example sweep, Argo's strict schema, O(1) size.

Golden files are compared as data (`normalised`), not as text. Regenerate them on purpose
only: `TTG_REGENERATE_GOLDEN=1 pytest tests/test_build.py` writes them and skips (a
regenerating run never passes), and is refused under CI.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from steps.spec import load_spec, parse_spec
from tests.argo_schema import validate
from tests.cli import sweep
from tests.conftest import SWEEPS
from workflows.build import build_workflow, render
from workflows.lint import lint
from workflows.options import BuildOptions, CronOptions

GOLDEN = Path(__file__).parent / "golden"
EXAMPLES = sorted(SWEEPS.glob("*.toml"))


CRON = CronOptions(schedules=("0 2 * * *", "30 14 * * 1-5"), timezone="Europe/Paris")
GOLDEN_CASES = [(p, "workflow") for p in EXAMPLES] + [
    (SWEEPS / "rosenbrock.toml", k) for k in ("cron", "template")
]


def normalised(text: str) -> Any:
    """A manifest as data: parsed YAML, with the spec parameter's JSON parsed too, so only
    a change of meaning shows (key order, quoting and line folding do not)."""
    manifest = yaml.safe_load(text)
    spec = manifest.get("spec", {})
    workflow = spec.get("workflowSpec", spec)  # a CronWorkflow holds its Workflow's spec
    for parameter in workflow.get("arguments", {}).get("parameters", []):
        if parameter["name"] == "spec":
            parameter["value"] = json.loads(parameter["value"])
    return manifest


@pytest.mark.parametrize("path,kind", GOLDEN_CASES, ids=[f"{p.stem}-{k}" for p, k in GOLDEN_CASES])
def test_rendered_manifest_matches_its_golden_file(path: Path, kind: str) -> None:
    rendered = render(load_spec(path), BuildOptions(), kind, CRON)
    golden = GOLDEN / f"{path.stem}.{kind}.yaml"
    if os.environ.get("TTG_REGENERATE_GOLDEN"):
        if os.environ.get("CI") == "true":
            pytest.fail("golden files are never regenerated under CI")
        golden.write_text(rendered)
        pytest.skip(f"regenerated {golden.name}: review its diff, then run the test again")
    assert golden.is_file(), f"missing {golden}; regenerate with TTG_REGENERATE_GOLDEN=1"
    assert normalised(rendered) == normalised(golden.read_text())


def test_the_golden_comparison_sees_a_change_of_meaning_and_nothing_else() -> None:
    text = (GOLDEN / "rosenbrock.workflow.yaml").read_text()
    reordered = yaml.safe_dump(yaml.safe_load(text), sort_keys=True, width=40)
    assert normalised(reordered) == normalised(text)
    assert normalised(text.replace("parallelism: 10", "parallelism: 11")) != normalised(text)


KIND_NAMES = {"workflow": "Workflow", "cron": "CronWorkflow", "template": "WorkflowTemplate"}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
@pytest.mark.parametrize("kind", KIND_NAMES)
@pytest.mark.parametrize("store", ["s3://ttg/runs", "/data/runs"])
def test_every_example_and_kind_passes_argos_strict_schema(
    path: Path, kind: str, store: str
) -> None:
    manifest = yaml.safe_load(render(load_spec(path), BuildOptions(store=store), kind, CRON))
    assert manifest["kind"] == KIND_NAMES[kind]
    validate(manifest, KIND_NAMES[kind])


def test_the_strict_schema_rejects_an_unknown_field() -> None:
    manifest = yaml.safe_load(render(load_spec(EXAMPLES[0])))
    manifest["spec"]["templates"][0]["container"]["comand"] = ["python"]
    with pytest.raises(jsonschema.ValidationError, match="comand"):
        validate(manifest)


def test_the_workflow_is_o1_in_size_and_under_16_kb_at_10000_shards() -> None:
    def sized(num: int, shards: int) -> int:
        axes = {"x": {"linspace": [0.0, 1.0, num]}, "y": {"linspace": [0.0, 1.0, num]}}
        spec = {
            "name": "big",
            "function": "steps.kernels:rosenbrock",
            "shards": shards,
            "space": axes,
        }
        return len(render(parse_spec(spec)).encode())

    ten_billion = sized(100_000, 10_000)
    assert ten_billion < 16 * 1024
    assert abs(ten_billion - sized(100, 10)) < 64  # only the digits of counts differ


def test_the_fan_out_is_one_withsequence_over_the_shard_count_then_reduce() -> None:
    spec = load_spec(EXAMPLES[0]).with_fields(shards=123)
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


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
@pytest.mark.parametrize("kind", KIND_NAMES)
def test_every_example_and_kind_lints_clean(path: Path, kind: str) -> None:
    assert lint(yaml.safe_load(render(load_spec(path), BuildOptions(), kind, CRON))) == []


def _rendered() -> dict:
    return yaml.safe_load(render(load_spec(EXAMPLES[0])))


def _compute(manifest: dict) -> dict:
    return manifest["spec"]["templates"][0]


LINT_CASES = {
    "dangling input reference": (
        lambda w: _compute(w)["container"]["args"].append("{{inputs.parameters.shrad}}"),
        "inputs.parameters.shrad",
    ),
    "dangling template reference": (
        lambda w: w["spec"]["templates"][2]["dag"]["tasks"][1].update(template="reducer"),
        "reducer",
    ),
    "unknown dependency": (
        lambda w: w["spec"]["templates"][2]["dag"]["tasks"][1].update(depends="computer"),
        "computer",
    ),
    "cycle": (
        lambda w: w["spec"]["templates"][2]["dag"]["tasks"][0].update(depends="reduce"),
        "cycle",
    ),
    "metric on an undeclared output": (
        lambda w: _compute(w)["metrics"]["prometheus"][1]["counter"].update(
            value="{{outputs.parameters.rowz}}"
        ),
        "output parameter 'rowz' is not declared",
    ),
    "template name not DNS-1123": (
        lambda w: _compute(w).update(name="Compute_Step"),
        "'Compute_Step' is not a DNS-1123 label",
    ),
    "literal secret": (
        lambda w: _compute(w)["container"]["env"].append(
            {"name": "AWS_SECRET_ACCESS_KEY", "value": "hunter2"}
        ),
        "AWS_SECRET_ACCESS_KEY carries a literal value",
    ),
}


@pytest.mark.parametrize("mutate,message", LINT_CASES.values(), ids=LINT_CASES.keys())
def test_the_lint_catches_what_the_schema_cannot(mutate: Any, message: str) -> None:
    manifest = _rendered()
    mutate(manifest)
    problems = lint(manifest)
    assert any(message in p for p in problems), problems


@pytest.mark.parametrize("opt_in", [False, True], ids=["default", "retry_user_errors"])
def test_compute_retries_every_failure_but_a_deterministic_one_with_backoff(opt_in: bool) -> None:
    spec = replace(load_spec(EXAMPLES[0]), retry_user_errors=opt_in)
    manifest = yaml.safe_load(render(spec, BuildOptions(store="s3://ttg/runs")))
    validate(manifest)
    assert lint(manifest) == []
    strategy = _compute(manifest)["retryStrategy"]
    codes = '"2"' if opt_in else '"2", "3"'  # bad input; user code unless the spec opts in
    assert strategy == {
        "expression": f'lastRetry.status == "Error" || lastRetry.exitCode not in [{codes}]',
        "limit": 3,
        "retryPolicy": "Always",  # Argo ANDs it with the expression: Always leaves it the say
        # no maxDuration: Argo counts it from the first attempt's start, so a shard running
        # longer than it would never be retried (and its retry's pod deadline would be it)
        "backoff": {"duration": "15s", "factor": 2, "cap": "10m"},
    }
    assert spec.hash == load_spec(EXAMPLES[0]).hash, "an operational setting, not hashed"
    assert "retryStrategy" not in manifest["spec"]["templates"][1], "reduce is not retried"


def _when_holds(when: str, status: str) -> bool:
    """Argo's `when` for these metrics: `a == b` terms joined by `||`, bare words as strings."""
    terms = [term.split("==") for term in when.replace("{{status}}", status).split("||")]
    assert all(len(term) == 2 for term in terms), when
    return any(left.strip() == right.strip() for left, right in terms)


def test_compute_metrics_count_every_failed_attempt_and_never_lack_their_values() -> None:
    manifest = yaml.safe_load(render(load_spec(EXAMPLES[0]), BuildOptions()))
    metrics = {m["name"]: m for m in _compute(manifest)["metrics"]["prometheus"]}
    failures = metrics["ttg_shard_failures_total"]["when"]
    # an evicted or deleted pod ends in Error, a non-zero exit in Failed: both are failures
    assert [_when_holds(failures, s) for s in ("Failed", "Error", "Succeeded")] == [1, 1, 0]
    rows = metrics["ttg_rows_computed_total"]
    assert [_when_holds(rows["when"], s) for s in ("Failed", "Error", "Succeeded")] == [0, 0, 1]
    # Argo substitutes the value before it looks at `when`: a failed attempt, which wrote no
    # `rows` file, must still have one, or the controller raises a MetricsError condition
    assert rows["counter"]["value"] == "{{outputs.parameters.rows}}"
    (output,) = _compute(manifest)["outputs"]["parameters"]
    assert output["name"] == "rows" and output["valueFrom"]["default"] == "0"
    # per attempt for retried attempts, per shard (attempts and backoff) when it ends
    assert "backoff included" in metrics["ttg_shard_duration_seconds"]["help"]


def test_a_cluster_render_refuses_more_shards_than_a_workflow_status_holds() -> None:
    result = sweep("render", "--shards", "4001", "--node-status-offload")
    assert result.returncode == 0, result.stderr
    assert "count: '4001'" in result.stdout
