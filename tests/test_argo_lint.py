"""Every manifest TTG renders passes Argo's own validation: `argo lint --offline`, built from
Argo's Go module (tools/argo-lint, `make tools`), the code `argo lint` and the controller run.

The strict JSON schema (tests/argo_schema.py) stays the fast first layer; this is the one that
knows Argo's semantics (dependencies that resolve, variables in scope, field rules the schema
cannot express). Where the two disagree, Argo's linter is right.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from steps.spec import load_spec
from tests.conftest import SWEEPS
from tests.tools import tool
from workflows.build import render
from workflows.options import BuildOptions, CronOptions

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(SWEEPS.glob("*.toml"))
ARGO_EXAMPLES = Path(os.environ.get("ARGO_EXAMPLES", ROOT.parent / "shared/argo/examples"))
CRON = CronOptions(schedules=("0 2 * * *", "30 14 * * 1-5"), timezone="Europe/Paris")
OPTIONS = {
    "s3 store": BuildOptions(),
    "folder store": BuildOptions(store="/data/runs"),
    "fixed name, namespace": BuildOptions(run_id="nightly-01", namespace="ttg"),
    "more pods and retries": BuildOptions(parallelism=200, compute_retries=7),
}


def argo_lint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("argo"), "lint", "--offline", "-o", "simple", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def rendered_manifests(folder: Path) -> list[Path]:
    """Every example sweep, in every kind, with every set of render options (and with user
    errors retried): the manifests `render`, `run`, `submit` and `schedule` produce. One
    folder per variant: offline, argo lint refuses two WorkflowTemplates of one name."""
    variants = []
    for retried in (False, True):
        for label, options in OPTIONS.items():
            variant = folder / f"{label.replace(' ', '_').replace(',', '')}-{int(retried)}"
            variant.mkdir()
            variants.append(variant)
            for path in EXAMPLES:
                spec = replace(load_spec(path), retry_user_errors=retried)
                for kind in ("workflow", "cron", "template"):
                    fixed = options if kind == "workflow" else replace(options, run_id=None)
                    (variant / f"{path.stem}-{kind}.yaml").write_text(
                        render(spec, fixed, kind, CRON)
                    )
    return variants


def test_every_rendered_workflow_cron_and_template_passes_argo_lint(tmp_path: Path) -> None:
    variants = rendered_manifests(tmp_path)
    assert sum(len(list(v.iterdir())) for v in variants) == len(EXAMPLES) * 2 * len(OPTIONS) * 3
    for variant in variants:
        linted = argo_lint(variant)
        assert linted.returncode == 0, f"{variant.name}: {linted.stdout}{linted.stderr}"
        assert "no linting errors found" in linted.stdout


def test_argos_own_examples_pass_argo_lint() -> None:
    if not ARGO_EXAMPLES.is_dir():
        pytest.skip(f"Argo examples not found at {ARGO_EXAMPLES} (set ARGO_EXAMPLES)")
    linted = argo_lint(ARGO_EXAMPLES)
    assert linted.returncode == 0, linted.stdout + linted.stderr


def broken(tmp_path: Path, name: str, change: object) -> Path:
    manifest = yaml.safe_load(render(load_spec(EXAMPLES[0])))
    change(manifest)  # type: ignore[operator]
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


def template(manifest: dict, name: str) -> dict:
    return next(t for t in manifest["spec"]["templates"] if t["name"] == name)


def dangling_dependency(manifest: dict) -> None:
    template(manifest, "sweep")["dag"]["tasks"][1]["depends"] = "computer"


def misspelled_field(manifest: dict) -> None:
    template(manifest, "compute")["container"]["comand"] = ["python"]


def undeclared_input(manifest: dict) -> None:
    template(manifest, "compute")["container"]["args"].append("{{inputs.parameters.nope}}")


BROKEN = {
    "dangling dependency": (dangling_dependency, "invalid dependency computer"),
    "misspelled field": (misspelled_field, "unknown field"),
    "undeclared input": (undeclared_input, "inputs.parameters.nope"),
}


@pytest.mark.parametrize("change,message", BROKEN.values(), ids=BROKEN.keys())
def test_a_manifest_broken_on_purpose_fails_argo_lint_naming_the_problem(
    tmp_path: Path, change: object, message: str
) -> None:
    linted = argo_lint(broken(tmp_path, "broken", change))
    assert linted.returncode == 1
    assert message in linted.stdout, linted.stdout


# --- where the strict schema and Argo's linter disagree -------------------------------------
# Found by holding mutated manifests to both. Argo's linter is right; the schema cannot
# express these rules (enums it leaves open, duration syntax, Prometheus names), so the
# project's own checks (workflows/lint.py, the local executor) cover those TTG renders.


def bogus_pod_gc(manifest: dict) -> None:
    manifest["spec"]["podGC"]["strategy"] = "Never"


def bogus_retry_policy(manifest: dict) -> None:
    template(manifest, "compute")["retryStrategy"]["retryPolicy"] = "Sometimes"


def bare_number_timeout(manifest: dict) -> None:
    template(manifest, "reduce")["timeout"] = "30"


def hyphenated_metric_name(manifest: dict) -> None:
    template(manifest, "compute")["metrics"]["prometheus"][0]["name"] = "bad-name"


def numeric_quantity(manifest: dict) -> None:
    template(manifest, "compute")["container"]["resources"]["limits"]["cpu"] = 2


SCHEMA_IS_SILENT = {
    "pod GC strategy": (bogus_pod_gc, "unknown strategy 'Never'"),
    "retry policy": (bogus_retry_policy, "Sometimes is not a valid RetryPolicy"),
    "timeout without a unit": (bare_number_timeout, "invalid duration"),
    "metric name": (hyphenated_metric_name, "metric name"),
}


@pytest.mark.parametrize("change,message", SCHEMA_IS_SILENT.values(), ids=SCHEMA_IS_SILENT.keys())
def test_what_argo_lint_refuses_and_the_strict_schema_lets_through(
    tmp_path: Path, change: object, message: str
) -> None:
    from tests.argo_schema import validate

    path = broken(tmp_path, "mutated", change)
    validate(yaml.safe_load(path.read_text()))  # the schema lets it through...
    linted = argo_lint(path)
    assert linted.returncode == 1 and message in linted.stdout  # ...Argo does not


def test_a_numeric_quantity_is_accepted_by_both_as_argo_accepts_it(tmp_path: Path) -> None:
    from tests.argo_schema import validate

    path = broken(tmp_path, "quantity", numeric_quantity)
    validate(yaml.safe_load(path.read_text()))
    assert argo_lint(path).returncode == 0
