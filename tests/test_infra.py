"""The cluster in a box, checked offline as strictly as the tools allow.

No Docker engine and no Kubernetes run here, so each artefact is held to what can be proven
without them: every manifest validates against the Kubernetes 1.33 schema with unknown
fields rejected; the Dockerfile passes hadolint; the scripts pass shellcheck and `bash -n`
and, run against stub `kind`/`kubectl`/`docker`/`az` commands, do their steps once and are
safe to rerun; checkov finds nothing that `infra/checkov.yaml` does not justify; and a fresh
venv holding only `docker/requirements.txt` runs the rendered compute and reduce commands.

The validators come from `.venv-tools` (`make tools`) or PATH. On a user's machine a missing
one skips its test with a message; under CI (CI=true), where `.ci/run` installs them all,
a missing validator fails instead, so nothing skips there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from steps.space import Space
from steps.spec import load_spec
from tests.tools import tool
from workflows import build, options

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
MANIFESTS = INFRA / "k8s"
SCRIPTS = sorted((INFRA / "scripts").glob("*.sh"))
RUNNABLE_SCRIPTS = [s for s in SCRIPTS if s.name != "lib.sh"]
KUBERNETES_VERSION = "1.33.0"  # the newest 1.33 schema kubernetes-validate 1.37.0 ships
ARGO_INSTALL_URL = (
    "https://github.com/argoproj/argo-workflows/releases/download/v4.1.2/install.yaml"
)
PROMETHEUS_PREFIX = "argo_workflows_"  # Argo prefixes every exported metric, custom ones too
# YAML under infra/ that is not a Kubernetes object, and how each is checked instead.
NOT_KUBERNETES = {
    "infra/kind/cluster.yaml": "kind's own config (kind.x-k8s.io/v1alpha4): "
    "test_kind_config_is_one_control_plane_and_three_workers_on_kubernetes_1_33",
    "infra/monitoring/prometheus-scrape.yaml": "a Prometheus config: "
    "test_prometheus_scrapes_the_controller_metrics_service",
    "infra/checkov.yaml": "the scanner's skip list: test_every_checkov_skip_has_a_written_reason",
}
# Offline checkov: no platform download, no mapping fetch, no PyPI version check.
CHECKOV_ENV = {
    "BC_SKIP_MAPPING": "TRUE",
    "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
    "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
}
TINY_SPEC = """\
name = "tiny"
function = "steps.kernels:rosenbrock"
shards = 3
chunk_rows = 500

[space]
x = { linspace = [-2.0, 2.0, 41] }
y = { linspace = [-1.0, 3.0, 37] }

[objective]
column = "f"
goal = "min"
top_k = 3
"""


# ---- helpers ---------------------------------------------------------------------------------


def run(
    args: list[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=300
    )


def yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def infra_yaml_files() -> list[Path]:
    return sorted(p for p in INFRA.rglob("*") if p.suffix in {".yaml", ".yml"})


def kubernetes_manifests() -> list[Path]:
    return [p for p in infra_yaml_files() if str(p.relative_to(ROOT)) not in NOT_KUBERNETES]


def manifest_objects() -> list[dict[str, Any]]:
    return [doc for path in kubernetes_manifests() for doc in yaml_docs(path)]


def find_object(kind: str, name: str, namespace: str = "ttg") -> dict[str, Any]:
    for obj in manifest_objects():
        meta = obj["metadata"]
        if obj["kind"] == kind and meta["name"] == name and meta.get("namespace") == namespace:
            return obj
    raise AssertionError(f"no {kind} {namespace}/{name} under infra/k8s")


def rendered(spec_path: Path, kind: str = "workflow", **settings: Any) -> dict[str, Any]:
    text = build.render(load_spec(spec_path), options.BuildOptions(**settings), kind=kind)
    document: dict[str, Any] = yaml.safe_load(text)
    return document


def templates(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in workflow["spec"]["templates"]}


def lib_value(name: str) -> str:
    """A default from infra/scripts/lib.sh: NAME="value" or NAME="${OVERRIDE:-value}"."""
    pattern = "^" + name + r'="(?:\$\{[A-Z_]+:-)?([^"}]+)\}?"'
    match = re.search(pattern, (INFRA / "scripts/lib.sh").read_text(), re.M)
    assert match, f"infra/scripts/lib.sh defines no {name}"
    return match.group(1)


# ---- Kubernetes manifests --------------------------------------------------------------------


def test_every_yaml_file_under_infra_is_a_validated_manifest_or_listed_with_its_check() -> None:
    files = {str(p.relative_to(ROOT)) for p in infra_yaml_files()}
    assert set(NOT_KUBERNETES) <= files, "NOT_KUBERNETES names a file that does not exist"
    for path in kubernetes_manifests():
        for doc in yaml_docs(path):
            assert {"apiVersion", "kind", "metadata"} <= doc.keys(), (
                f"{path}: not a Kubernetes object"
            )


def test_every_kubernetes_manifest_under_infra_passes_strict_validation_for_1_33() -> None:
    validator = tool("kubernetes-validate")
    files = [str(p) for p in kubernetes_manifests()]
    result = run([validator, "--strict", "-k", KUBERNETES_VERSION, *files])
    assert result.returncode == 0, result.stdout + result.stderr
    passed = [line for line in result.stdout.splitlines() if " passed for resource " in line]
    assert len(passed) == len(manifest_objects()), result.stdout
    assert all(f"against version {KUBERNETES_VERSION[:4]}" in line for line in passed)


def test_strict_validation_rejects_a_misspelled_field(tmp_path: Path) -> None:
    """The negative control: --strict really refuses unknown fields, so a pass means something."""
    validator = tool("kubernetes-validate")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: x, namespace: ttg}\n"
        "spec: {ports: [{port: 80}], selectr: {app: x}}\n"
    )
    result = run([validator, "--strict", "-k", KUBERNETES_VERSION, str(bad)])
    assert result.returncode != 0
    assert "selectr" in result.stdout + result.stderr


def test_infra_holds_no_custom_resources_and_no_copy_of_argo() -> None:
    """Argo is applied from its pinned release URL; only built-in kinds live in infra/k8s."""
    for obj in manifest_objects():
        group = obj["apiVersion"].rpartition("/")[0]
        assert group in {"", "apps", "batch", "rbac.authorization.k8s.io", "networking.k8s.io"}, (
            f"{obj['kind']} {obj['metadata']['name']}: custom or unexpected API group '{group}'"
        )
        assert obj["kind"] != "CustomResourceDefinition"
        assert obj["metadata"]["name"] not in {"workflow-controller", "argo-server"}


def test_no_credential_is_committed_under_infra() -> None:
    for obj in manifest_objects():
        if obj["kind"] == "Secret":
            assert obj.get("type") == "kubernetes.io/service-account-token", obj["metadata"]
            assert not obj.get("data") and not obj.get("stringData"), obj["metadata"]
    for path in INFRA.rglob("*"):
        if path.is_file():
            text = path.read_text().lower()
            assert "minioadmin" not in text, f"{path}: MinIO's default credentials"
            assert not re.search(
                r"(password|secret_access_key)\s*[:=]\s*['\"]?[a-z0-9]{8,}", text
            ), path


def test_kind_config_is_one_control_plane_and_three_workers_on_kubernetes_1_33() -> None:
    config = yaml.safe_load((INFRA / "kind/cluster.yaml").read_text())
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert config["name"] == lib_value("CLUSTER_NAME") == "ttg-sandbox"
    roles = [node["role"] for node in config["nodes"]]
    assert roles == ["control-plane", "worker", "worker", "worker"]
    for node in config["nodes"]:
        assert re.fullmatch(r"kindest/node:v1\.33\.\d+@sha256:[0-9a-f]{64}", node["image"])


def test_manifests_provide_what_the_rendered_workflow_assumes() -> None:
    workflow = rendered(ROOT / "workflows/sweeps/rosenbrock.toml")
    account = workflow["spec"]["serviceAccountName"]
    assert account == options.DEFAULT_SERVICE_ACCOUNT
    find_object("ServiceAccount", account)
    role = find_object("Role", account)
    grants = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert {("argoproj.io", "workflowtaskresults", v) for v in ("create", "patch")} <= grants
    assert len(grants) == 2, "the workflow account needs nothing more"
    binding = find_object("RoleBinding", account)
    assert binding["roleRef"]["name"] == account
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": "ttg"}]

    # The S3 Secret the Workflow reads is the one deploy.sh generates, with every key.
    secret_refs = [
        env["valueFrom"]["secretKeyRef"]
        for t in templates(workflow).values()
        for env in t.get("container", {}).get("env", [])
        if "secretKeyRef" in env.get("valueFrom", {})
    ]
    secret_keys = {ref["name"]: ref["key"] for ref in secret_refs}
    assert set(secret_keys) == {options.DEFAULT_S3_SECRET}
    lib = (INFRA / "scripts/lib.sh").read_text()
    assert f"name: {options.DEFAULT_S3_SECRET}\n" in lib
    for key in build.S3_SECRET_KEYS:
        assert f"  {key}: " in lib, f"deploy.sh does not generate {key}"

    # The default store's bucket is the bucket MinIO's Job creates and the user may use.
    bucket = options.DEFAULT_CLUSTER_STORE.removeprefix("s3://").split("/")[0]
    job = find_object("Job", "minio-setup")
    env = {
        e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["BUCKET"] == bucket
    policy = json.loads(find_object("ConfigMap", "minio-ttg-policy")["data"]["ttg-readwrite.json"])
    resources = {r for statement in policy["Statement"] for r in statement["Resource"]}
    assert resources == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}
    repo = yaml.safe_load(find_object("ConfigMap", "artifact-repositories")["data"]["ttg-minio"])
    assert repo["s3"]["bucket"] == bucket
    assert repo["s3"]["accessKeySecret"]["name"] == options.DEFAULT_S3_SECRET

    # The image the Workflow runs is the one build.sh builds and loads.
    assert lib_value("IMAGE") == options.DEFAULT_IMAGE
    assert {t["container"]["image"] for t in templates(workflow).values() if "container" in t} == {
        options.DEFAULT_IMAGE
    }


def test_argo_is_installed_by_server_side_apply_of_the_pinned_release() -> None:
    lib = (INFRA / "scripts/lib.sh").read_text()
    assert lib_value("ARGO_VERSION") == "v4.1.2"
    assert (
        'ARGO_INSTALL_URL="https://github.com/argoproj/argo-workflows/releases/download/${ARGO_VERSION}/install.yaml"'
        in lib
    )
    assert re.search(r'kubectl apply --server-side [^\n]*-f "\$ARGO_INSTALL_URL"', lib)


# ---- the worker image --------------------------------------------------------------------------


def dockerfile_stages(name: str = "Dockerfile") -> list[list[tuple[str, str]]]:
    """(instruction, arguments) per stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "docker" / name).read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction.upper(), rest.strip()))
    return stages


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "minio.Dockerfile"])
def test_dockerfile_passes_hadolint(dockerfile: str) -> None:
    result = run([tool("hadolint"), str(ROOT / "docker" / dockerfile)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_clusters_minio_is_built_from_the_source_every_s3_test_runs() -> None:
    version = re.search(r"^MINIO_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert version, "the Makefile pins the MinIO the tests run"
    stages = dockerfile_stages("minio.Dockerfile")
    args = re.findall(
        r"^ARG MINIO_VERSION=(\S+)$", (ROOT / "docker/minio.Dockerfile").read_text(), re.M
    )
    assert args == [version[1]], "the image's source version is the tested one"
    mc = re.search(r"^MC_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert mc and f"ARG MC_VERSION={mc[1]}" in (ROOT / "docker/minio.Dockerfile").read_text()
    build, final = stages[0], stages[-1]
    assert re.fullmatch(r"golang:1\.\d+\.\d+-\w+ AS build", build[0][1]), build[0]
    installs = " ".join(a for i, a in build if i == "RUN")
    assert 'go install "github.com/minio/minio@${MINIO_VERSION}"' in installs
    assert 'go install "github.com/minio/mc@${MC_VERSION}"' in installs
    assert [a for i, a in final if i == "COPY"] == [
        "--from=build /out/minio /out/mc /usr/local/bin/"
    ]
    deployment = next(
        d for d in yaml_docs(MANIFESTS / "20-minio.yaml") if d["kind"] == "Deployment"
    )
    pod = deployment["spec"]["template"]["spec"]
    uid, gid = pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]
    assert [a for i, a in final if i == "USER"] == [f"{uid}:{gid}"], "non-root, the pod's uid"
    tag = f"ttg-minio:{version[1].rsplit('-', 1)[1]}"
    assert f'MINIO_IMAGE_BUILT="{tag}"' in (INFRA / "scripts/lib.sh").read_text()
    for manifest in ("20-minio.yaml", "21-minio-bucket-job.yaml"):
        text = (MANIFESTS / manifest).read_text()
        assert re.findall(r"image: (\S+)", text) == [tag], manifest
    assert not [p for p in INFRA.rglob("*") if p.is_file() and "quay.io/minio" in p.read_text()]


def test_dockerfile_builds_a_non_root_image_of_steps_and_pinned_dependencies_only() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 3, "a pinned base, a dependency stage and a runtime stage"
    base = stages[0][0][1]
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})? AS base", base), base
    final = stages[-1]
    assert final[0] == ("FROM", "base"), "the runtime stage must start from the pinned base"
    copies = [args for instruction, args in final if instruction == "COPY"]
    assert copies == ["--from=deps /opt/venv /opt/venv", "steps/ /app/steps/"], copies
    assert not [i for i, _ in final if i == "ADD"]
    deps = stages[1]
    assert ("COPY", "docker/requirements.txt /tmp/requirements.txt") in deps
    assert any(
        "-r /tmp/requirements.txt" in args and "--only-binary=:all:" in args for _, args in deps
    )
    env = " ".join(args for instruction, args in final if instruction == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env
    users = [args for instruction, args in final if instruction == "USER"]
    assert users[-1] == f"{build.RUN_AS_UID}:{build.RUN_AS_GID}", "uid/gid of the securityContext"
    runs = " ".join(args for instruction, args in final if instruction == "RUN")
    assert f"useradd --system --uid {build.RUN_AS_UID} " in runs
    assert f"groupadd --system --gid {build.RUN_AS_GID} " in runs


def dockerignore_admits(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-admits; a dir pattern covers its tree."""
    admitted = True
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        if re.fullmatch(regex + "(/.*)?", path):
            admitted = negate
    return admitted


def test_dockerignore_sends_only_steps_and_the_requirements_to_the_build() -> None:
    assert dockerignore_admits("docker/requirements.txt")
    for module in (ROOT / "steps").glob("*.py"):
        assert dockerignore_admits(f"steps/{module.name}")
    for path in (
        "workflows/sweep.py",
        "tests/test_infra.py",
        ".venv/bin/python",
        "README.md",
        "docker/Dockerfile",
        "infra/k8s/20-minio.yaml",
        "steps/__pycache__/x.pyc",
        ".git/config",
        "runs/x/result.parquet",
    ):
        assert not dockerignore_admits(path), path


def requirement_pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "docker/requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"not pinned with ==: {line}"
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_image_requirements_pin_the_runtime_dependencies_and_nothing_authoring_side() -> None:
    pins = requirement_pins()
    assert {"numpy", "pyarrow", "minio", "isal"} <= pins.keys()
    assert not {"hera", "rich", "pyyaml", "pytest"} & pins.keys()


@pytest.fixture(scope="session")
def image_python() -> Path:
    """A venv with ONLY docker/requirements.txt, as the image has; cached per requirements hash."""
    requirements = ROOT / "docker/requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    venv = ROOT / ".venv-image" / digest
    python = venv / "bin" / "python"
    marker = venv / ".complete"
    if not marker.exists():
        shutil.rmtree(venv, ignore_errors=True)
        made = run([sys.executable, "-m", "venv", str(venv)])
        assert made.returncode == 0, made.stderr
        installed = run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--only-binary=:all:",
                "-r",
                str(requirements),
            ]
        )
        assert installed.returncode == 0, installed.stdout + installed.stderr
        marker.write_text(digest + "\n")
    return python


@pytest.mark.slow
def test_image_dependency_set_is_complete_and_consistent(image_python: Path) -> None:
    """Nothing unpinned comes along: the venv holds exactly the pinned set, and pip is happy."""
    check = run([str(image_python), "-m", "pip", "check"])
    assert check.returncode == 0, check.stdout
    frozen = run([str(image_python), "-m", "pip", "freeze", "--all"])
    installed: dict[str, str] = {}
    for line in frozen.stdout.splitlines():
        name, _, version = line.partition("==")
        installed[re.sub(r"[-_.]+", "-", name).lower()] = version
    for tooling in ("pip", "setuptools", "wheel"):
        installed.pop(tooling, None)
    assert installed == requirement_pins()


def substitute(text: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        return values[match.group(1)]

    result = re.sub(r"\{\{\s*([\w.]+)\s*\}\}", replace, text)
    assert "{{" not in result
    return result


@pytest.mark.slow
@pytest.mark.parametrize("spec_name", ["tiny-rosenbrock", "placeholder"])
def test_rendered_commands_run_with_only_the_image_dependencies(
    spec_name: str, image_python: Path, tmp_path: Path
) -> None:
    """Render with a folder store, take compute/reduce command+args from the manifest, and run
    them with the image's dependency set and nothing but a copy of steps/ importable."""
    if spec_name == "placeholder":
        spec_path = ROOT / "workflows/sweeps/placeholder.toml"
    else:
        spec_path = tmp_path / "tiny.toml"
        spec_path.write_text(TINY_SPEC)
    spec = load_spec(spec_path)
    store = tmp_path / "store"
    workflow = rendered(spec_path, store=str(store))
    params = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
    run_id = f"{spec.name}-{hashlib.sha256(str(tmp_path).encode()).hexdigest()[:5]}"
    app = tmp_path / "app"  # the image's /app: steps/ and nothing else
    shutil.copytree(ROOT / "steps", app / "steps", ignore=shutil.ignore_patterns("__pycache__"))
    before = sorted(p.relative_to(app) for p in app.rglob("*"))
    (tmp_path / "tmp").mkdir()
    env = {
        "PATH": f"{image_python.parent}:/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "HOME": str(tmp_path / "tmp"),
        "TMPDIR": str(tmp_path / "tmp"),
    }
    steps = templates(workflow)
    sequence = next(
        task["withSequence"]
        for task in steps[build.ENTRYPOINT]["dag"]["tasks"]
        if task["template"] == "compute"
    )
    shards = int(sequence["count"])
    values = {f"workflow.parameters.{k}": v for k, v in params.items()} | {"workflow.name": run_id}
    outputs_root = Path(substitute(build.OUTPUTS_ROOT, values))
    try:
        for name, shard_values in [
            *(("compute", {"inputs.parameters.shard": str(i)}) for i in range(shards)),
            ("reduce", {}),
        ]:
            container = steps[name]["container"]
            argv = [
                substitute(a, values | shard_values)
                for a in container["command"] + container["args"]
            ]
            assert argv[0] == "python"
            done = run([str(image_python), *argv[1:]], cwd=app, env=env)
            assert done.returncode == 0, f"{name} {shard_values}: {done.stdout}{done.stderr}"
            for output in steps[name].get("outputs", {}).get("parameters", []):
                produced = Path(substitute(output["valueFrom"]["path"], values | shard_values))
                assert produced.is_file(), f"{name}: output parameter {output['name']} not written"
        rows = Space(spec).rows
        assert (outputs_root / "reduce" / "rows").read_text().strip() == str(rows)
    finally:
        shutil.rmtree(outputs_root, ignore_errors=True)

    run_dir = store / spec.name / run_id
    assert (run_dir / "_SUCCESS").exists()
    assert pq.read_metadata(run_dir / "result.parquet").num_rows == rows
    assert sorted(p.relative_to(app) for p in app.rglob("*")) == before, (
        "the worker wrote into its code directory (read-only in the pod)"
    )


# ---- scripts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_passes_shellcheck(script: Path) -> None:
    result = run([tool("shellcheck"), "--external-sources", str(script)], cwd=script.parent)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_passes_bash_n(script: Path) -> None:
    result = run(["bash", "-n", str(script)])
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script", RUNNABLE_SCRIPTS, ids=lambda p: p.name)
def test_script_is_executable_strict_and_documented(script: Path) -> None:
    lines = script.read_text().splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    code = [line for line in lines if line and not line.startswith("#")]
    assert code[0] == "set -euo pipefail", "strict mode must come before anything else"
    assert os.access(script, os.X_OK), f"{script.name} is not executable"
    help_text = run([str(script), "--help"])
    assert help_text.returncode == 0 and "Usage:" in help_text.stdout, help_text.stderr


def test_makefile_has_a_target_for_each_script() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for script in RUNNABLE_SCRIPTS:
        target = script.stem
        assert re.search(
            rf"^{re.escape(target)}:.*\n\tinfra/scripts/{re.escape(script.name)} \$\(ARGS\)$",
            makefile,
            re.M,
        ), f"no `make {target}` running {script.name}"


def path_without(tmp_path: Path, *hidden: str) -> str:
    """A PATH with every command of this machine except `hidden` ones."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in ("/usr/local/bin", "/usr/bin", "/bin"):
        for entry in Path(directory).iterdir() if Path(directory).is_dir() else []:
            target = bin_dir / entry.name
            if entry.name not in hidden and not target.exists():
                target.symlink_to(entry)
    return str(bin_dir)


@pytest.mark.parametrize(
    ("script", "needs"),
    [
        ("setup-local.sh", ["docker", "kind", "kubectl"]),
        ("build.sh", ["docker"]),
        ("deploy.sh", ["kubectl"]),
        ("cleanup.sh", ["kubectl"]),
        ("setup-aks.sh", ["az", "kubectl"]),
    ],
)
def test_script_names_each_missing_prerequisite_and_how_to_get_it(
    script: str, needs: list[str], tmp_path: Path
) -> None:
    env = {"PATH": path_without(tmp_path, "docker", "kind", "kubectl", "az"), "HOME": str(tmp_path)}
    result = run([str(INFRA / "scripts" / script)], env=env)
    assert result.returncode == 1
    for command in needs:
        assert re.search(rf"missing prerequisite: {command} \(install .*\)", result.stderr), (
            result.stderr
        )


def test_run_local_names_its_missing_python(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "PYTHON": str(tmp_path / "no-python"), "HOME": str(tmp_path)}
    result = run([str(INFRA / "scripts/run-local.sh")], env=env)
    assert result.returncode == 1
    assert "missing prerequisite: Python" in result.stderr and "make run-local" in result.stderr


def test_run_local_computes_shards_like_the_old_worker_then_reduces(tmp_path: Path) -> None:
    env = dict(os.environ) | {
        "STORE": str(tmp_path),
        "TOTAL_WORKERS": "3",
        "PYTHON": sys.executable,
    }
    script = str(INFRA / "scripts/run-local.sh")
    one = run([script], env=env | {"WORKER_ID": "1"})
    assert one.returncode == 0, one.stderr
    shard = tmp_path / "placeholder/placeholder-local/shards/shard-00001-of-00003.parquet"
    assert shard.exists(), one.stdout + one.stderr
    for worker in ("0", "2"):
        assert run([script], env=env | {"WORKER_ID": worker}).returncode == 0
    reduced = run([script, "--reduce"], env=env)
    assert reduced.returncode == 0, reduced.stderr
    assert (
        pq.read_metadata(tmp_path / "placeholder/placeholder-local/result.parquet").num_rows
        == 10_000
    )


# Stub commands that record what the scripts ask of kind, kubectl, docker and az, and keep
# just enough state (clusters, secrets, Azure resources) for the scripts' idempotence checks.
STUB = r"""#!/usr/bin/env bash
set -euo pipefail
me="$(basename "$0")"
printf '%s\n' "$me $*" >> "$STUB_STATE/argv.log"
args=" $* "
arg_after() { local prev=""; for a in "$@"; do [[ "$prev" == "$WANT" ]] && { echo "$a"; return; }; prev="$a"; done; }
case "$me" in
  kind)
    case "$args" in
      *" get clusters "*) cat "$STUB_STATE/clusters" 2>/dev/null || true ;;
      *" create cluster "*) WANT=--name; arg_after "$@" >> "$STUB_STATE/clusters" ;;
      *" delete cluster "*) : > "$STUB_STATE/clusters" ;;
    esac ;;
  kubectl)
    case "$args" in
      *" apply "*"-f - "*) input="$(cat)"; printf '%s\n---\n' "$input" >> "$STUB_STATE/stdin.log"
        name="$(awk '/^  name: /{print $2; exit}' <<<"$input")"
        touch "$STUB_STATE/secret-$name" ;;
      *" get secret "*) WANT=secret; [[ -e "$STUB_STATE/secret-$(arg_after "$@")" ]] || exit 1 ;;
      *" get namespace "*) WANT=namespace; [[ -e "$STUB_STATE/ns-$(arg_after "$@")" ]] || exit 1 ;;
      *" create namespace "*) WANT=namespace; touch "$STUB_STATE/ns-$(arg_after "$@")" ;;
      *" config current-context "*) echo kind-ttg-sandbox ;;
    esac ;;
  az)
    noun="$1"; [[ "$noun" == aks || "$noun" == acr || "$noun" == group ]] || exit 0
    case "$2" in
      show) [[ -e "$STUB_STATE/az-$noun" ]] || exit 1 ;;
      create) touch "$STUB_STATE/az-$noun" ;;
    esac ;;
esac
exit 0
"""


@pytest.fixture
def stubs(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    bin_dir = tmp_path / "stubs"
    state = tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    for name in ("kind", "kubectl", "docker", "az"):
        stub = bin_dir / name
        stub.write_text(STUB)
        stub.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{path_without(tmp_path, 'kind', 'kubectl', 'docker', 'az')}",
        "HOME": str(tmp_path),
        "STUB_STATE": str(state),
    }
    yield env, state


def calls(state: Path) -> list[str]:
    log = state / "argv.log"
    lines = log.read_text().splitlines() if log.exists() else []
    log.write_text("")
    return lines


def test_setup_local_creates_cluster_argo_and_credentials_once_and_is_safe_to_rerun(
    stubs: tuple[dict[str, str], Path],
) -> None:
    env, state = stubs
    script = str(INFRA / "scripts/setup-local.sh")
    first = run([script], env=env)
    assert first.returncode == 0, first.stderr
    log = calls(state)
    create = f"kind create cluster --name ttg-sandbox --config {ROOT}/infra/kind/cluster.yaml --wait 180s"
    assert log.count(create) == 1
    assert f"kubectl apply --server-side --force-conflicts -n argo -f {ARGO_INSTALL_URL}" in log
    applied = " ".join(line for line in log if line.startswith("kubectl apply"))
    for manifest in MANIFESTS.glob("*.yaml"):
        assert str(manifest) in applied, f"deploy.sh does not apply {manifest.name}"
    assert "kubectl -n ttg wait --for=condition=complete job/minio-setup --timeout=300s" in log
    assert (state / "secret-minio-root").exists() and (state / "secret-ttg-s3").exists()

    # Credentials travel on stdin only: none of the generated values is on any command line.
    generated = re.findall(
        r'^  (?:MINIO_ROOT_PASSWORD|AWS_SECRET_ACCESS_KEY|AWS_ACCESS_KEY_ID|MINIO_ROOT_USER): "([^"]+)"',
        (state / "stdin.log").read_text(),
        re.M,
    )
    assert len(generated) == 4 and all(len(value) >= 12 for value in generated)
    assert not [line for line in log if any(value in line for value in generated)]
    assert re.search(r'MINIO_ROOT_PASSWORD: "[0-9a-f]{48}"', (state / "stdin.log").read_text())

    second = run([script], env=env)
    assert second.returncode == 0, second.stderr
    log = calls(state)
    assert not [line for line in log if line.startswith("kind create")], "cluster re-created"
    assert not [line for line in log if line.endswith("apply -f -")], "credentials regenerated"
    assert f"kubectl apply --server-side --force-conflicts -n argo -f {ARGO_INSTALL_URL}" in log
    assert "kept" in second.stderr


def test_build_loads_the_image_into_kind_only_when_the_cluster_exists(
    stubs: tuple[dict[str, str], Path],
) -> None:
    env, state = stubs
    script = str(INFRA / "scripts/build.sh")
    missing = run([script], env=env)
    assert missing.returncode == 1 and "setup-local.sh" in missing.stderr
    built = calls(state)
    assert f"docker build --file {ROOT}/docker/Dockerfile --tag ttg-worker:latest {ROOT}" in built
    minio = (
        f"docker build --file {ROOT}/docker/minio.Dockerfile --tag ttg-minio:7aac2a2c5b7c {ROOT}"
    )
    assert minio in built
    (state / "clusters").write_text("ttg-sandbox\n")
    loaded = run([script], env=env)
    assert loaded.returncode == 0, loaded.stderr
    log = calls(state)
    assert "kind load docker-image ttg-worker:latest --name ttg-sandbox" in log
    assert "kind load docker-image ttg-minio:7aac2a2c5b7c --name ttg-sandbox" in log


def test_cleanup_removes_sweeps_by_label_and_deletes_the_cluster_only_with_all(
    stubs: tuple[dict[str, str], Path],
) -> None:
    env, state = stubs
    script = str(INFRA / "scripts/cleanup.sh")
    (state / "ns-ttg").touch()
    assert run([script], env=env).returncode == 0
    log = calls(state)
    assert (
        "kubectl -n ttg delete workflows,cronworkflows,workflowtemplates "
        "-l app.kubernetes.io/name=ttg --ignore-not-found --wait=true"
    ) in log
    assert not [line for line in log if "delete namespace" in line or line.startswith("kind")]
    (state / "clusters").write_text("ttg-sandbox\n")
    assert run([script, "--all"], env=env).returncode == 0
    assert "kind delete cluster --name ttg-sandbox" in calls(state)
    again = run([script, "--all"], env=env)
    assert again.returncode == 0 and "nothing to delete" in again.stderr
    assert run([script, "--bogus"], env=env).returncode == 1


def test_setup_aks_creates_azure_resources_once_and_pushes_a_commit_tagged_image(
    stubs: tuple[dict[str, str], Path],
) -> None:
    env, state = stubs
    env = env | {"ACR_NAME": "ttgexample", "TTG_IMAGE_TAG": "abc1234"}
    script = str(INFRA / "scripts/setup-aks.sh")
    assert run([script], env=env | {"ACR_NAME": "no"}).returncode == 1
    first = run([script], env=env)
    assert first.returncode == 0, first.stderr
    log = calls(state)
    for noun in ("group", "acr", "aks"):
        assert len([line for line in log if line.startswith(f"az {noun} create")]) == 1
    assert "docker push ttgexample.azurecr.io/ttg-worker:abc1234" in log
    assert "docker push ttgexample.azurecr.io/ttg-minio:7aac2a2c5b7c" in log
    assert f"kubectl apply --server-side --force-conflicts -n argo -f {ARGO_INSTALL_URL}" in log
    # MinIO's manifests are applied with the registry's copy of the image, never a local tag
    applied = (state / "stdin.log").read_text()
    assert applied.count("image: ttgexample.azurecr.io/ttg-minio:7aac2a2c5b7c") == 2
    assert "image: ttg-minio:" not in applied
    second = run([script], env=env)
    assert second.returncode == 0, second.stderr
    log = calls(state)
    assert not [line for line in log if re.match(r"az \w+ create", line)]
    assert [
        line
        for line in log
        if line.startswith("az aks update") and "--attach-acr ttgexample" in line
    ]


# ---- security scan -------------------------------------------------------------------------------


def worker_pods(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    """The compute and reduce pods as Argo creates them: the template's container as `main`,
    with the Workflow's pod securityContext, volumes and service account, in namespace ttg."""
    spec = workflow["spec"]
    pods = []
    for name, template in templates(workflow).items():
        if "container" not in template:
            continue
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"worker-{name}",
                    "namespace": "ttg",
                    "labels": workflow["metadata"]["labels"]
                    | {"workflows.argoproj.io/workflow": "w"},
                },
                "spec": {
                    "serviceAccountName": spec["serviceAccountName"],
                    "securityContext": spec["securityContext"],
                    "restartPolicy": "Never",
                    "containers": [template["container"] | {"name": "main"}],
                    "volumes": spec["volumes"],
                },
            }
        )
    return pods


def checkov_targets(tmp_path: Path) -> Path:
    """Everything checkov scans, laid out in one folder (names kept recognisable)."""
    scan = tmp_path / "scan"
    (scan / "k8s").mkdir(parents=True)
    for manifest in MANIFESTS.glob("*.yaml"):
        shutil.copy(manifest, scan / "k8s" / manifest.name)
    spec = ROOT / "workflows/sweeps/rosenbrock.toml"
    workflow = rendered(spec)
    (scan / "k8s" / "worker-pods.yaml").write_text(yaml.safe_dump_all(worker_pods(workflow)))
    (scan / "argo").mkdir()
    (scan / "argo" / "workflow.yaml").write_text(yaml.safe_dump(workflow))
    (scan / "argo" / "workflowtemplate.yaml").write_text(yaml.safe_dump(rendered(spec, "template")))
    (scan / "docker").mkdir()
    for dockerfile in ("Dockerfile", "minio.Dockerfile"):
        shutil.copy(ROOT / "docker" / dockerfile, scan / "docker" / dockerfile)
    return scan


def checkov_command(scan: Path) -> list[str]:
    return [
        tool("checkov"), "--directory", str(scan),
        "--framework", "kubernetes", "argo_workflows", "dockerfile",
        "--skip-download", "--output", "json",
    ]  # fmt: skip


def checkov_skips() -> list[dict[str, Any]]:
    skips: list[dict[str, Any]] = yaml.safe_load((INFRA / "checkov.yaml").read_text())["skips"]
    return skips


def test_every_checkov_skip_has_a_written_reason() -> None:
    for skip in checkov_skips():
        assert set(skip) == {"check", "resources", "reason"}, skip
        assert re.fullmatch(r"CKV2?_[A-Z0-9]+_\d+", skip["check"]), skip
        assert skip["resources"], skip
        assert len(skip["reason"].split()) >= 12, f"{skip['check']}: say why, in a sentence or two"


@pytest.mark.slow
def test_security_scan_finds_nothing_that_is_not_justified(tmp_path: Path) -> None:
    scan = checkov_targets(tmp_path)
    result = run(checkov_command(scan), env=dict(os.environ) | CHECKOV_ENV)
    assert result.returncode in (0, 1), result.stderr[-3000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    by_framework = {report["check_type"]: report for report in reports}
    assert set(by_framework) == {"kubernetes", "argo_workflows", "dockerfile"}, list(by_framework)

    scanned: set[str] = set()
    failed: set[tuple[str, str]] = set()
    for framework, report in by_framework.items():
        assert report["summary"]["parsing_errors"] == 0, framework
        for check in report["results"]["passed_checks"] + report["results"]["failed_checks"]:
            scanned.add(check["file_path"].lstrip("/"))
        for check in report["results"]["failed_checks"]:
            dockerfile = check["file_path"].lstrip("/")
            resource = dockerfile if framework == "dockerfile" else check["resource"]
            failed.add((check["check_id"], resource))
    # Every manifest with something checkov has checks for (it has none for a Namespace).
    checked = [
        p for p in MANIFESTS.glob("*.yaml") if {d["kind"] for d in yaml_docs(p)} != {"Namespace"}
    ]
    expected = {f"k8s/{p.name}" for p in checked} | {
        "k8s/worker-pods.yaml", "argo/workflow.yaml", "argo/workflowtemplate.yaml", "docker/Dockerfile",
        "docker/minio.Dockerfile",
    }  # fmt: skip
    assert expected <= scanned, f"checkov did not scan {sorted(expected - scanned)}"

    accepted = {(s["check"], r) for s in checkov_skips() for r in s["resources"]}
    unjustified = sorted(failed - accepted)
    stale = sorted(accepted - failed)
    assert not unjustified, f"failed checks without a reason in infra/checkov.yaml: {unjustified}"
    assert not stale, f"infra/checkov.yaml skips checks that no longer fail: {stale}"


@pytest.mark.slow
def test_checkov_as_run_here_opens_no_network_connection(tmp_path: Path) -> None:
    strace = tool("strace")
    probe = run([strace, "-f", "-qq", "-e", "trace=connect", "-o", os.devnull, "true"])
    if probe.returncode != 0:  # e.g. ptrace forbidden in this container
        pytest.skip(f"strace cannot trace processes here: {probe.stderr.strip()[:200]}")
    scan = checkov_targets(tmp_path)
    trace = tmp_path / "connect.log"
    command = [strace, "-f", "-qq", "-e", "trace=connect", "-o", str(trace), *checkov_command(scan)]
    result = run(command, env=dict(os.environ) | CHECKOV_ENV)
    assert result.returncode in (0, 1), result.stderr[-3000:]
    attempts = [line for line in trace.read_text().splitlines() if "AF_INET" in line]
    assert not attempts, f"checkov tried the network: {attempts[:3]}"


# ---- monitoring --------------------------------------------------------------------------------


def emitted_metrics() -> dict[str, str]:
    """Metric name (as Prometheus sees it) -> type, from the rendered Workflow."""
    workflow = rendered(ROOT / "workflows/sweeps/rosenbrock.toml")
    metrics: dict[str, str] = {}
    for template in templates(workflow).values():
        for metric in template.get("metrics", {}).get("prometheus", []):
            kind = next(k for k in ("counter", "gauge", "histogram") if k in metric)
            metrics[PROMETHEUS_PREFIX + metric["name"]] = kind
            assert [label["key"] for label in metric.get("labels", [])] == ["sweep"]
    return metrics


def test_prometheus_scrapes_the_controller_metrics_service() -> None:
    config = yaml.safe_load((INFRA / "monitoring/prometheus-scrape.yaml").read_text())
    (job,) = config["scrape_configs"]
    service = find_object("Service", "workflow-controller-metrics", namespace="argo")
    (port,) = service["spec"]["ports"]
    assert (port["port"], port["targetPort"]) == (9090, 9090)
    assert service["spec"]["selector"] == {"app": "workflow-controller"}
    assert job["scheme"] == "https" and job["tls_config"]["insecure_skip_verify"] is True
    assert job["metrics_path"] == "/metrics"
    (discovery,) = job["kubernetes_sd_configs"]
    assert discovery["role"] == "endpoints"
    assert discovery["namespaces"]["names"] == [service["metadata"]["namespace"]]
    keep = next(r for r in job["relabel_configs"] if r["action"] == "keep")
    assert keep["source_labels"] == [
        "__meta_kubernetes_service_name",
        "__meta_kubernetes_endpoint_port_name",
    ]
    assert re.fullmatch(keep["regex"], f"{service['metadata']['name']};{port['name']}")


def test_grafana_dashboard_charts_shard_duration_rows_per_second_and_failures() -> None:
    dashboard = json.loads((INFRA / "monitoring/grafana-dashboard.json").read_text())
    metrics = emitted_metrics()
    assert metrics == {
        "argo_workflows_ttg_shard_duration_seconds": "histogram",
        "argo_workflows_ttg_rows_computed_total": "counter",
        "argo_workflows_ttg_shard_failures_total": "counter",
    }
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    assert len({p["title"] for p in panels}) == len(panels)
    exprs = {p["title"]: [t["expr"] for t in p["targets"]] for p in panels}
    referenced = set(re.findall(r"argo_workflows_\w+", " ".join(chain(*exprs.values()))))
    suffixes = ("_bucket", "_sum", "_count")
    names = {next((n.removesuffix(s) for s in suffixes if n.endswith(s)), n) for n in referenced}
    assert names == set(metrics), "the dashboard must chart exactly the metrics the Workflow emits"
    assert any(
        "histogram_quantile" in e and "ttg_shard_duration_seconds_bucket" in e
        for e in exprs["Shard duration"]
    )
    assert any(
        e.startswith("sum by (sweep) (rate(argo_workflows_ttg_rows_computed_total")
        for e in exprs["Rows per second"]
    )
    assert any("ttg_shard_failures_total" in e for e in exprs["Shard failures"])
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    assert "sweep" in variables
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert all('sweep=~"$sweep"' in t["expr"] for t in panel["targets"]), panel["title"]


# ---- docs ----------------------------------------------------------------------------------------


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOC_PATH = re.compile(r"`((?:infra|docker|steps|workflows|tests|bench|tools|docs|\.ci)/[\w./-]*)`")
DOC_MAKE = re.compile(r"`make ([a-z][a-z-]*)")
GENERATED = ("bench/results/",)  # what `make bench` writes


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_file_and_make_target_a_doc_names_exists(doc: Path) -> None:
    text = doc.read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    paths = {m.rstrip(".,:") for m in DOC_PATH.findall(text)}
    missing = sorted(p for p in paths if not p.startswith(GENERATED) and not (ROOT / p).exists())
    assert not missing, f"{doc.name} names files that do not exist: {missing}"
    unknown = sorted(set(DOC_MAKE.findall(text)) - targets)
    assert not unknown, f"{doc.name} names make targets the Makefile lacks: {unknown}"


def test_every_script_is_in_the_cluster_guide() -> None:
    text = (ROOT / "docs/cluster.md").read_text()
    for script in RUNNABLE_SCRIPTS:
        assert f"infra/scripts/{script.name}" in text or f"make {script.stem}" in text, script.name


def test_docs_claim_no_cluster_run() -> None:
    for doc in ("docs/cluster.md", "docs/troubleshooting.md"):
        text = (ROOT / doc).read_text()
        assert "never been run" in text.lower() or "never run" in text.lower(), doc
        assert not re.search(r"\b(tested|verified) on (a|the) (kind|AKS|real) cluster", text, re.I)


def test_make_test_builds_every_tool_it_needs_first() -> None:
    """On a fresh clone `make test` alone must build MinIO, mc and argo lint: make expands a
    rule's prerequisites when it reads the rule, so a variable defined later is empty."""
    database = run(["make", "-pn", "pytest"], cwd=ROOT).stdout
    (rule,) = re.findall(r"^pytest: (.*)$", database, re.M)
    for needed in (
        ".venv-tools/.installed",
        ".venv-tools/.minio-",
        ".venv-tools/.mc-",
        ".venv-tools/bin/argo",
    ):
        assert needed in rule, f"pytest does not depend on {needed}: {rule}"
