"""Every command the README shows is run: for real where it can run here, in its dry-run form
where it needs a cluster (`make -n`, `bash -n`, `pytest --collect-only`), and against the
recording Argo Server where it talks to one. A README that drifts from the code fails here.

Commands run in a sandbox folder that links to the project, so `./runs` and files the
README writes land in the sandbox. `rosenbrock-x7k2p`, the README's example run id, becomes
the id of the run `make run` made.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.argo_server import ArgoServerStandIn, serve, status
from tests.conftest import ROOT
from tests.tools import tool

README = ROOT / "README.md"
EXAMPLE_RUN_ID = "rosenbrock-x7k2p"
LINKED = [
    ".venv",
    "workflows",
    "steps",
    "bench",
    "infra",
    "docker",
    "tests",
    "tools",
    "Makefile",
    "pyproject.toml",
]
CLUSTER_ONLY = re.compile(r"^(kubectl|argo|export|kind|docker|az)\b")
DRY_MAKE = re.compile(r"\bmake (test|setup-local|build|deploy|cleanup|setup-aks|bench)\b")
ARGO_VERBS = re.compile(r"sweep\.py (submit|schedule|status)\b")


@dataclass(frozen=True)
class Snippet:
    language: str
    text: str


def snippets() -> list[Snippet]:
    found = re.findall(r"```(bash|python|text|toml|dockerfile)\n(.*?)```", README.read_text(), re.S)
    return [Snippet(language, text) for language, text in found]


def commands() -> list[str]:
    lines = []
    for snippet in snippets():
        if snippet.language != "bash":
            continue
        for line in snippet.text.splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line:
                lines.append(line)
    return lines


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("readme")
    for name in LINKED:
        (folder / name).symlink_to(ROOT / name)
    return folder


@pytest.fixture(scope="module")
def run_id(sandbox: Path) -> str:
    """The quick start's `make run`, for real; every later command refers to its run."""
    done = subprocess.run(
        ["make", "run"], cwd=sandbox, capture_output=True, text=True, timeout=300, env=_env(sandbox)
    )
    assert done.returncode == 0, done.stderr
    return re.findall(r"run id: (\S+)", done.stdout)[-1]


@pytest.fixture(scope="module")
def argo_server(run_id: str) -> Iterator[ArgoServerStandIn]:
    for server in serve():
        server.namespaces.add("ttg")
        server.next_names.extend([run_id, "random-search-b7x2k"])
        server.statuses.append(status(run_id, "Succeeded", ["Succeeded"] * 8))
        yield server


def _env(sandbox: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARGO_", "AWS_"))}
    return {**env, "PWD": str(sandbox), **(extra or {})}


def _bash(line: str, sandbox: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", line], cwd=sandbox, capture_output=True, text=True, timeout=300, env=env
    )


def test_the_readme_shows_the_two_commands_first() -> None:
    first = snippets()[0]
    assert first.language == "bash" and [
        c.split()[:2] for c in first.text.strip().splitlines()
    ] == [["make", "run"], ["make", "test"]]


def test_every_synopsis_flag_exists_in_the_commands_help(sandbox: Path) -> None:
    (synopsis,) = [s for s in snippets() if s.language == "text" and "sweep.py run" in s.text]
    for line in synopsis.text.strip().splitlines():
        verb = line.split()[1]
        shown = set(re.findall(r"--[a-z-]+", line))
        help_text = _bash(
            f".venv/bin/python workflows/sweep.py {verb} --help", sandbox, _env(sandbox)
        ).stdout
        assert shown <= set(re.findall(r"--[a-z-]+", help_text)), (verb, shown)


def test_every_readme_command_runs(
    sandbox: Path, run_id: str, argo_server: ArgoServerStandIn
) -> None:
    argo_env = _env(
        sandbox,
        {
            "ARGO_SERVER": argo_server.url.removeprefix("http://"),
            "ARGO_SECURE": "false",
            "ARGO_NAMESPACE": "ttg",
            "ARGO_TOKEN": "readme",
            # the summary lives in the cluster's store: point S3 at a closed loopback port
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "TTG_S3_ATTEMPTS": "1",
        },
    )
    ran = 0
    for line in commands():
        line = line.replace(EXAMPLE_RUN_ID, run_id)
        if CLUSTER_ONLY.match(line) or "| kubectl" in line:
            syntax = subprocess.run(["bash", "-n", "-c", line], capture_output=True, text=True)
            assert syntax.returncode == 0, (line, syntax.stderr)
            for namespace in re.findall(r"-n (\S+)", line):
                assert namespace in ("argo", "ttg"), line  # Argo's own, or the one infra/ creates
            line = line.split("|")[0].strip() if "| kubectl" in line else ""
        elif DRY_MAKE.search(line):
            line = DRY_MAKE.sub(lambda m: f"make -n {m[1]}", line)
        elif ".venv/bin/pytest" in line:
            line += " --collect-only -q"
        if not line:
            continue
        done = _bash(line, sandbox, argo_env if ARGO_VERBS.search(line) else _env(sandbox))
        assert done.returncode == 0, (line, done.stdout[-2000:], done.stderr[-2000:])
        ran += 1
    assert ran >= 25
    assert (sandbox / "landscape.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (sandbox / "runs/placeholder/placeholder-local/_SUCCESS").is_file()  # the run-local loop
    assert {r.method for r in argo_server.seen(prefix="/api/v1/cron-workflows/ttg")} == {
        "POST",
        "GET",
        "PUT",
    }


def test_the_readme_python_reads_a_result(sandbox: Path, run_id: str) -> None:
    (code,) = [s.text for s in snippets() if s.language == "python" and "read_table" in s.text]
    code = code.replace(EXAMPLE_RUN_ID, run_id)
    done = subprocess.run(
        [
            ".venv/bin/python",
            "-c",
            code + "\nassert table.num_rows == 10_004_569 and near.num_rows > 0\n",
        ],
        cwd=sandbox,
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(sandbox),
    )
    assert done.returncode == 0, done.stderr
    assert "│" in done.stdout or "┌" in done.stdout  # DuckDB's .show() printed a table


def test_the_readme_dockerfile_for_your_function_passes_hadolint(tmp_path: Path) -> None:
    (dockerfile,) = [s.text for s in snippets() if s.language == "dockerfile"]
    assert dockerfile.startswith("FROM ttg-worker:")
    path = tmp_path / "Dockerfile"
    path.write_text(dockerfile)
    linted = subprocess.run([tool("hadolint"), str(path)], capture_output=True, text=True)
    assert linted.returncode == 0, linted.stdout + linted.stderr
