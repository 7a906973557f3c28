"""The cluster's bucket Job, run for real: its script, with the `mc` the MinIO image builds,
against the MinIO server every S3 test uses.

The Job (infra/k8s/21-minio-bucket-job.yaml) creates bucket `ttg` and the workflows' own
user, allowed that bucket only. Here its script runs as written, only its mount points
moved into a temporary folder: twice (deploy.sh reruns it), then a sweep runs as that
user, composing its result server-side, and the user is refused any other bucket.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from steps.store import open_store
from tests.cli import sweep
from tests.conftest import ROOT, S3Server
from tests.tools import tool

JOB = ROOT / "infra/k8s/21-minio-bucket-job.yaml"
BIG = """
name = "big"
function = "steps.kernels:rosenbrock"
shards = 3
[space]
x = { linspace = [-2.0, 2.0, 2000] }
y = { linspace = [-1.0, 3.0, 1575] }
"""


def job_parts() -> tuple[dict[str, str], dict[str, str]]:
    """The ConfigMap's files and the Job container's environment."""
    docs: list[dict[str, Any]] = list(yaml.safe_load_all(JOB.read_text()))
    files = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    job = next(d for d in docs if d["kind"] == "Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return files, {e["name"]: e["value"] for e in container["env"]}


def test_the_bucket_job_makes_a_user_that_can_run_a_sweep_and_nothing_else(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mc = tool("mc")
    files, env = job_parts()
    user, password = f"ttg{secrets.token_hex(4)}", secrets.token_urlsafe(24)
    mounts = {
        "/config/": {name: text for name, text in files.items()},
        "/secrets/minio-root/": {
            "MINIO_ROOT_USER": s3_server.env["AWS_ACCESS_KEY_ID"],
            "MINIO_ROOT_PASSWORD": s3_server.env["AWS_SECRET_ACCESS_KEY"],
        },
        "/secrets/ttg-s3/": {"AWS_ACCESS_KEY_ID": user, "AWS_SECRET_ACCESS_KEY": password},
    }
    script = files["setup.sh"]
    for mount, contents in mounts.items():
        folder = tmp_path / mount.strip("/")
        folder.mkdir(parents=True)
        for name, text in contents.items():
            (folder / name).write_text(text)
        script = script.replace(mount, f"{folder}/")
    assert not re.search(r"(?<![\w/])/(config|secrets)/", script), "every mount point moved"
    env |= {
        "MINIO_URL": s3_server.endpoint,
        "HOME": str(tmp_path),
        "MC_CONFIG_DIR": str(tmp_path / ".mc"),
    }
    env["PATH"] = f"{Path(mc).parent}:{os.environ['PATH']}"
    for attempt in ("first", "rerun"):
        done = subprocess.run(
            ["sh", "-c", script], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{attempt}: {done.stdout}{done.stderr}"
        assert "are ready" in done.stdout, done.stdout

    as_user = {**s3_server.env, "AWS_ACCESS_KEY_ID": user, "AWS_SECRET_ACCESS_KEY": password}
    spec = tmp_path / "big.toml"
    spec.write_text(BIG)
    store = f"s3://{env['BUCKET']}/runs"
    run = sweep("run", str(spec), "--store", store, "--run-id", "big-1", env=as_user)
    assert run.returncode == 0, run.stderr
    for key, value in as_user.items():
        monkeypatch.setenv(key, value)
    summary = json.loads(open_store(store).get_bytes("big/big-1/summary.json"))
    assert summary["merge"]["mode"] == "compose", summary["merge"]

    other = s3_server.new_bucket()
    refused = sweep("run", str(spec), "--store", f"s3://{other}/runs", env=as_user)
    assert refused.returncode == 2 and "AccessDenied" in refused.stderr, refused.stderr
