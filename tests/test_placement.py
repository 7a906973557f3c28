"""GPUs and placement: `[resources] gpu` and `[scheduling]` rendered into the Workflow, checked
as the API server would check them, ignored by the local executor, outside the spec hash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from steps.spec import load_spec, parse_spec
from tests.cli import sweep
from tests.conftest import SWEEPS

EXAMPLE = SWEEPS / "gpu-placement.toml"

SMALL = """
name = "placed"
function = "steps.kernels:rosenbrock"
shards = 2
[space]
x = { linspace = [-2.0, 2.0, 30] }
y = { linspace = [-1.0, 3.0, 30] }
[objective]
column = "f"
goal = "min"
"""


def rendered(spec: Path, *flags: str) -> dict[str, Any]:
    done = sweep("render", str(spec), "--store", "s3://ttg-runs/sweeps", *flags)
    assert done.returncode == 0, done.stderr
    manifest: dict[str, Any] = yaml.safe_load(done.stdout)
    return manifest


def template(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [t for t in manifest["spec"]["templates"] if t["name"] == name]
    return found


def test_compute_pods_get_the_gpus_and_reduce_none() -> None:
    manifest = rendered(EXAMPLE)
    compute = template(manifest, "compute")["container"]["resources"]
    reduce = template(manifest, "reduce")["container"]["resources"]
    assert compute["limits"]["nvidia.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in compute["requests"]  # Kubernetes sets it to the limit
    assert "nvidia.com/gpu" not in reduce["limits"]
    assert compute["limits"]["memory"] == "4Gi" and reduce["limits"]["memory"] == "4Gi"


def test_scheduling_is_rendered_for_every_pod_of_the_workflow() -> None:
    spec = rendered(EXAMPLE)["spec"]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert spec["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert spec["podPriorityClassName"] == "batch-low"


def test_a_spec_without_them_renders_none_of_them(tmp_path: Path) -> None:
    path = tmp_path / "placed.toml"
    path.write_text(SMALL)
    manifest = rendered(path)
    assert not {"nodeSelector", "tolerations", "podPriorityClassName"} & manifest["spec"].keys()
    assert "nvidia.com/gpu" not in template(manifest, "compute")["container"]["resources"]["limits"]


def test_the_gpu_flag_overrides_the_spec(tmp_path: Path) -> None:
    manifest = rendered(EXAMPLE, "--gpu", "2")
    assert (
        template(manifest, "compute")["container"]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    )


def test_placement_is_outside_the_spec_hash_and_survives_an_override() -> None:
    placed = load_spec(EXAMPLE)
    bare = parse_spec(
        {k: v for k, v in placed.document().items() if k not in ("resources", "scheduling")}
    )
    assert placed.hash == bare.hash
    assert placed.with_fields(shards=3).scheduling == placed.scheduling
    assert placed.with_fields(shards=3).resources.gpu == 1


def test_the_local_executor_runs_a_placed_sweep(tmp_path: Path) -> None:
    path = tmp_path / "placed.toml"
    path.write_text(
        SMALL
        + '[resources]\ngpu = 1\n[scheduling]\nnode_selector = { pool = "gpu" }\n'
        + 'priority_class = "high"\n[[scheduling.tolerations]]\noperator = "Exists"\n'
    )
    done = sweep("run", str(path), "--store", str(tmp_path / "runs"), "--run-id", "placed-1")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "runs/placed/placed-1/_SUCCESS").is_file()


BAD = [
    ("[resources]\ngpu = -1", "'resources.gpu': must be between 0 and 16"),
    ("[resources]\ngpu = 1.5", "'resources.gpu': must be an integer"),
    ("[resources]\ngpu = 17", "'resources.gpu': must be between 0 and 16"),
    ('[scheduling]\nnode_selector = { "bad key!" = "x" }', "is not a Kubernetes label key"),
    ('[scheduling]\nnode_selector = { pool = "a b" }', "must be a label value"),
    ("[scheduling]\nnode_selector = { pool = 3 }", "must be a label value"),
    ('[scheduling]\npriority_class = "High_Priority"', "must name a PriorityClass"),
    ('[scheduling]\ntolerations = "gpu"', "must be a list of at most 64 tables"),
    ('[[scheduling.tolerations]]\nkey = "a"\noperator = "Maybe"', "must be 'Equal' or 'Exists'"),
    ('[[scheduling.tolerations]]\nvalue = "x"', "is required unless operator is 'Exists'"),
    ('[[scheduling.tolerations]]\nkey = "a"\noperator = "Exists"\nvalue = "x"', "must be empty"),
    ('[[scheduling.tolerations]]\nkey = "a"\neffect = "NoRun"', "must be one of NoSchedule"),
    (
        '[[scheduling.tolerations]]\nkey = "a"\neffect = "NoSchedule"\ntoleration_seconds = 5',
        "applies only to effect 'NoExecute'",
    ),
    ('[[scheduling.tolerations]]\nkey = "a"\ntaint = "x"', "unknown key"),
    # a key in the wrong table says where it belongs
    (
        "[scheduling]\ngpu = 1",
        "'scheduling.gpu': is not a key of this table: it belongs in [resources]",
    ),
    ('[resources]\npriority_class = "x"', "it belongs in [scheduling]"),
    ("[objective2]\nx = 1", "unknown key"),
    ('[scheduling]\nnode_selector = { "' + "a" * 250 + '.com/x" = "y" }', "label key"),
    ('[resources]\ncpu_limit = "0"', "'resources.cpu_limit': must be more than 0"),
    ('[resources]\ncpu_request = "2"\ncpu_limit = "1"', "Kubernetes refuses such a pod"),
    ('[resources]\nmemory_request = "1Gi"\nmemory_limit = "1Mi"', "is more than memory_limit"),
]


@pytest.mark.parametrize("extra,message", BAD, ids=[m for _, m in BAD])
def test_a_bad_placement_is_one_line_and_exit_2(extra: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(SMALL + extra + "\n")
    done = sweep("render", str(path), "--store", "s3://ttg-runs/sweeps")
    assert done.returncode == 2, done.stdout
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert message in done.stderr


def test_keep_under_objective_says_it_belongs_at_the_top_level(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(SMALL + "top_k = 5\nkeep = 'all'\n")
    done = sweep("render", str(path), "--store", "s3://ttg-runs/sweeps")
    assert done.returncode == 2
    assert (
        "'objective.keep': is not a key of this table: it belongs in the top level of the spec"
        in done.stderr
    )


def test_empty_toleration_fields_are_fields_left_out(tmp_path: Path) -> None:
    """As Kubernetes reads them: an empty key with Exists tolerates every taint."""
    path = tmp_path / "any.toml"
    path.write_text(
        SMALL + '[[scheduling.tolerations]]\nkey = ""\noperator = "Exists"\neffect = ""\n'
    )
    assert rendered(path)["spec"]["tolerations"] == [{"operator": "Exists"}]


def test_a_top_level_key_written_after_space_says_to_move_it(tmp_path: Path) -> None:
    path = tmp_path / "slip.toml"
    path.write_text(
        'name = "slip"\nfunction = "steps.kernels:rosenbrock"\n[space]\nx = { range = [0, 9] }\nshards = 4\n'
    )
    done = sweep("render", str(path), "--store", "s3://ttg-runs/sweeps")
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1
    assert "'space.shards': is not an axis: 'shards' is a top-level key" in done.stderr
