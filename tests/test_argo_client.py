"""The Argo client's API contract, against a recording Argo Server stand-in on 127.0.0.1.

End to end, `submit`, `schedule` and `status` run as real CLI subprocesses talking real HTTP
to the stand-in (tests/argo_server.py); what they send is checked against Argo's strict JSON
schema. The finer cases (configuration, shard counting, waiting, timeouts) run in-process.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from steps.spec import load_spec
from tests import cli
from tests.argo_schema import validate
from tests.argo_server import ArgoServerStandIn, serve, status
from workflows import argo
from workflows.build import build_workflow
from workflows.options import BuildOptions

TINY_TOML = """
name = "tiny"
function = "steps.kernels:rosenbrock"
shards = 4
chunk_rows = 50

[space]
x = { linspace = [-2.0, 2.0, 20] }
y = { linspace = [-1.0, 3.0, 10] }

[objective]
column = "f"
goal = "min"
top_k = 3
"""
CLI_TIMEOUT = 120


@pytest.fixture
def argo_server() -> Iterator[ArgoServerStandIn]:
    yield from serve()


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_TOML)
    return path


def port_of(server: ArgoServerStandIn) -> int:
    return int(server.url.rsplit(":", 1)[1])


def sweep(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The CLI as a subprocess, with no ARGO_* settings but the given ones."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("ARGO_") or k == "ARGO_SCHEMA"}
    return cli.sweep(
        *args, env={**base, "COLUMNS": "200", **env}, inherit=False, timeout=CLI_TIMEOUT
    )


def plain(server: ArgoServerStandIn, **extra: str) -> dict[str, str]:
    """Environment for the stand-in: host:port over plain HTTP, as the argo CLI spells it."""
    return {"ARGO_SERVER": f"127.0.0.1:{port_of(server)}", "ARGO_SECURE": "false", **extra}


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- submit --------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["x", "Bearer x"])
def test_submit_posts_a_strict_workflow_with_the_token(
    argo_server: ArgoServerStandIn, spec_file: Path, token: str
) -> None:
    argo_server.token = "x"
    argo_server.next_names.append("tiny-abcde")
    done = sweep("submit", str(spec_file), env=plain(argo_server, ARGO_TOKEN=token))
    assert done.returncode == 0, done.stderr

    (post,) = argo_server.seen("POST")
    assert post.path == "/api/v1/workflows/argo"
    assert post.headers["authorization"] == "Bearer x"
    assert post.headers["content-type"] == "application/json"
    validate(post.body, "WorkflowCreateRequest")
    validate(post.body["workflow"], "Workflow")
    workflow = post.body["workflow"]
    assert workflow["metadata"]["generateName"] == "tiny-"
    assert workflow["metadata"]["namespace"] == "argo"
    assert post.body["namespace"] == "argo"
    parameters = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
    assert parameters["store"] == "s3://ttg/runs"

    out = done.stdout
    assert "submitted tiny-abcde to namespace argo" in out
    assert f"{argo_server.url}/workflows/argo/tiny-abcde" in out
    assert "argo watch -n argo tiny-abcde" in out
    assert "argo logs -n argo tiny-abcde --follow" in out
    assert "kubectl get pods -n argo -l workflows.argoproj.io/workflow=tiny-abcde -w" in out


def test_submit_takes_the_namespace_from_argo_namespace_and_the_flag_wins(
    argo_server: ArgoServerStandIn, spec_file: Path
) -> None:
    argo_server.namespaces = {"team-a", "team-b"}
    env = plain(argo_server, ARGO_NAMESPACE="team-a")
    first = sweep("submit", str(spec_file), env=env)
    second = sweep("submit", str(spec_file), "--namespace", "team-b", env=env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr

    posts = argo_server.seen("POST")
    assert [p.path for p in posts] == ["/api/v1/workflows/team-a", "/api/v1/workflows/team-b"]
    assert [p.body["workflow"]["metadata"]["namespace"] for p in posts] == ["team-a", "team-b"]
    assert "kubectl get pods -n team-b" in second.stdout


def test_submit_accepts_a_full_url_and_build_flags(
    argo_server: ArgoServerStandIn, spec_file: Path
) -> None:
    done = sweep(
        "submit",
        str(spec_file),
        "--shards",
        "3",
        "--image",
        "registry.example/ttg-worker:1.2",
        "--store",
        "s3://results/sweeps",
        "--service-account",
        "sweeper",
        "--parallelism",
        "4",
        env={"ARGO_SERVER": argo_server.url},  # http:// wins over ARGO_SECURE's default
    )
    assert done.returncode == 0, done.stderr
    (post,) = argo_server.seen("POST", "/api/v1/workflows/argo")
    spec = post.body["workflow"]["spec"]
    validate(post.body["workflow"], "Workflow")
    assert spec["serviceAccountName"] == "sweeper"
    assert spec["parallelism"] == 4
    images = {t["container"]["image"] for t in spec["templates"] if "container" in t}
    assert images == {"registry.example/ttg-worker:1.2"}
    dag = next(t for t in spec["templates"] if "dag" in t)
    assert dag["dag"]["tasks"][0]["withSequence"]["count"] in ("3", 3)


def test_argo_secure_defaults_to_true_so_a_plain_http_server_fails_clearly(
    argo_server: ArgoServerStandIn, spec_file: Path
) -> None:
    began = time.monotonic()
    done = sweep("submit", str(spec_file), env={"ARGO_SERVER": f"127.0.0.1:{port_of(argo_server)}"})
    line = one_error_line(done)
    assert f"TLS with the Argo Server at 127.0.0.1:{port_of(argo_server)} failed" in line
    assert "ARGO_SECURE=false" in line
    assert time.monotonic() - began < 30
    assert argo_server.seen("POST") == []  # nothing valid reached the API


# --- submit --wait ---------------------------------------------------------------------------


def test_wait_follows_running_to_succeeded_and_prints_the_summary(
    argo_server: ArgoServerStandIn, spec_file: Path, tmp_path: Path
) -> None:
    store = tmp_path / "runs"
    run_id = "tiny-watch1"
    ran = sweep("run", str(spec_file), "--run-id", run_id, "--store", str(store), env={})
    assert ran.returncode == 0, ran.stderr
    argo_server.next_names.append(run_id)
    argo_server.statuses.extend(
        [
            {"phase": "Running"},
            status(run_id, "Running", ["Succeeded", "Running", "Pending", ""]),
            status(
                run_id, "Running", ["Succeeded", "Succeeded", "Running", "Running"], retried={2: 1}
            ),
            status(run_id, "Succeeded", ["Succeeded"] * 4, retried={2: 1}),
        ]
    )
    done = sweep(
        "submit",
        str(spec_file),
        "--store",
        str(store),
        "--wait",
        "--poll",
        "0.05",
        env=plain(argo_server),
    )
    assert done.returncode == 0, done.stderr
    gets = argo_server.seen("GET", f"/api/v1/workflows/argo/{run_id}")
    assert len(gets) == 4
    out = done.stdout
    assert f"submitted {run_id}" in out
    assert "4/4" in out  # the progress display saw every shard finish
    assert "done" in out and "200 rows" in out and "(4 shards)" in out
    assert f"{run_id}/result.parquet" in out
    assert "best 3 by min f" in out


def test_wait_follows_running_to_failed_and_exits_1_with_the_message(
    argo_server: ArgoServerStandIn, spec_file: Path
) -> None:
    argo_server.next_names.append("tiny-fails")
    message = "child 'tiny-fails-1002' failed"
    argo_server.statuses.extend(
        [
            status("tiny-fails", "Running", ["Running", "Running", "Running", "Pending"]),
            status(
                "tiny-fails",
                "Failed",
                ["Succeeded", "Succeeded", "Failed", "Succeeded"],
                message=message,
                retried={2: 3},
            ),
        ]
    )
    done = sweep("submit", str(spec_file), "--wait", "--poll", "0.05", env=plain(argo_server))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert f"Failed: workflow tiny-fails: {message}" in done.stderr
    assert "task tiny-fails.compute(2:2) failed" in done.stdout
    assert "3/4" in done.stdout


def test_wait_says_so_when_the_store_is_not_readable_from_here(
    argo_server: ArgoServerStandIn, spec_file: Path, tmp_path: Path
) -> None:
    argo_server.next_names.append("tiny-far")
    argo_server.statuses.append(status("tiny-far", "Succeeded", ["Succeeded"] * 4))
    done = sweep(
        "submit",
        str(spec_file),
        "--store",
        str(tmp_path / "elsewhere"),
        "--wait",
        "--poll",
        "0.05",
        env=plain(argo_server),
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if "not readable from here" in line]
    assert len(lines) == 1
    assert "tiny-far" in lines[0] and "summary.json does not exist" in lines[0]


# --- schedule ------------------------------------------------------------------------------


def test_schedule_creates_then_updates_with_the_resource_version(
    argo_server: ArgoServerStandIn, spec_file: Path
) -> None:
    args = ("schedule", str(spec_file), "--cron", "0 2 * * *", "--cron", "30 14 * * 1")
    first = sweep(*args, "--timezone", "Europe/Berlin", env=plain(argo_server, ARGO_TOKEN="t"))
    assert first.returncode == 0, first.stderr
    assert "created cron workflow tiny in namespace argo" in first.stdout
    assert f"{argo_server.url}/cron-workflows/argo/tiny" in first.stdout

    (create,) = argo_server.seen("POST")
    assert create.path == "/api/v1/cron-workflows/argo"
    assert create.headers["authorization"] == "Bearer t"
    validate(create.body, "CreateCronWorkflowRequest")
    validate(create.body["cronWorkflow"], "CronWorkflow")
    cron_spec = create.body["cronWorkflow"]["spec"]
    assert cron_spec["schedules"] == ["0 2 * * *", "30 14 * * 1"]
    assert cron_spec["timezone"] == "Europe/Berlin"
    assert create.body["cronWorkflow"]["metadata"]["name"] == "tiny"

    second = sweep(*args, env=plain(argo_server, ARGO_TOKEN="t"))
    assert second.returncode == 0, second.stderr
    assert "updated cron workflow tiny in namespace argo" in second.stdout
    calls = [(r.method, r.path) for r in argo_server.requests]
    assert calls == [
        ("POST", "/api/v1/cron-workflows/argo"),
        ("POST", "/api/v1/cron-workflows/argo"),
        ("GET", "/api/v1/cron-workflows/argo/tiny"),
        ("PUT", "/api/v1/cron-workflows/argo/tiny"),
    ]
    put = argo_server.requests[-1]
    validate(put.body, "UpdateCronWorkflowRequest")
    validate(put.body["cronWorkflow"], "CronWorkflow")
    assert put.body["cronWorkflow"]["metadata"]["resourceVersion"] == "1"
    assert put.body["cronWorkflow"]["spec"]["timezone"] == "UTC"
    stored = argo_server.objects[("cron-workflows", "argo", "tiny")]
    assert stored["metadata"]["resourceVersion"] == "2"


# --- status --------------------------------------------------------------------------------


def test_status_reads_the_workflow_and_counts_its_shards(
    argo_server: ArgoServerStandIn, spec_file: Path
) -> None:
    argo_server.next_names.append("tiny-st4t5")
    assert sweep("submit", str(spec_file), env=plain(argo_server)).returncode == 0
    argo_server.statuses.append(
        status(
            "tiny-st4t5",
            "Running",
            ["Succeeded", "Running", "Failed", ""],
            message="retrying",
            retried={1: 2},
        )
    )
    done = sweep("status", "tiny-st4t5", env=plain(argo_server))
    assert done.returncode == 0, done.stderr
    (get,) = argo_server.seen("GET")
    assert get.path == "/api/v1/workflows/argo/tiny-st4t5"
    out = done.stdout
    assert "phase     Running" in out
    assert "1 succeeded / 1 running / 1 failed / 1 pending (of 4, 2 retried)" in out
    assert "started   2030-01-01 00:00:00 UTC" in out
    assert "finished  -" in out
    assert "message   retrying" in out


# --- errors --------------------------------------------------------------------------------


def test_an_unreachable_server_is_one_line(spec_file: Path) -> None:
    port = closed_port()
    env = {"ARGO_SERVER": f"127.0.0.1:{port}", "ARGO_SECURE": "false"}
    for args in (["submit", str(spec_file)], ["status", "tiny-x"]):
        line = one_error_line(sweep(*args, env=env))
        assert line == (
            f"error: cannot reach the Argo Server at 127.0.0.1:{port}: connection refused "
            "(check ARGO_SERVER and ARGO_SECURE)"
        )


def test_a_missing_argo_server_setting_is_one_line(spec_file: Path) -> None:
    line = one_error_line(sweep("submit", str(spec_file), env={}))
    assert "ARGO_SERVER is not set" in line


@pytest.mark.parametrize(
    ("setup", "args", "expected"),
    [
        (
            lambda s: setattr(s, "token", "right"),
            {"ARGO_TOKEN": "wrong"},
            "error: unauthorized: check ARGO_TOKEN",
        ),
        (
            lambda s: setattr(s, "token", "right"),
            {},
            "error: unauthorized: ARGO_TOKEN is not set",
        ),
        (
            lambda s: s.forbidden.add("argo"),
            {},
            "error: forbidden: the token's service account lacks permission to create "
            "workflows in namespace 'argo'",
        ),
        (
            lambda s: None,
            {"ARGO_NAMESPACE": "nope"},
            "error: not found: namespace 'nope' does not exist on the Argo Server",
        ),
        (
            lambda s: s.reply_once(
                "POST", "/api/v1/workflows/argo", 409, 'workflows.argoproj.io "x" already exists'
            ),
            {},
            "error: already exists: workflow 'tiny-...' in namespace 'argo'",
        ),
        (
            lambda s: s.reply_once("POST", "/api/v1/workflows/argo", 500, "etcdserver: timeout"),
            {},
            "error: Argo Server at 127.0.0.1:{port} answered HTTP 500 to: create workflows "
            "(etcdserver: timeout)",
        ),
    ],
    ids=["401", "401-no-token", "403", "404-namespace", "409", "500"],
)
def test_submit_maps_http_errors_to_one_line(
    argo_server: ArgoServerStandIn, spec_file: Path, setup, args, expected
) -> None:
    setup(argo_server)
    line = one_error_line(sweep("submit", str(spec_file), env=plain(argo_server, **args)))
    assert line.startswith(expected.format(port=port_of(argo_server))), line


def test_status_of_a_missing_workflow_and_a_missing_namespace(
    argo_server: ArgoServerStandIn,
) -> None:
    line = one_error_line(sweep("status", "ghost", env=plain(argo_server)))
    assert line.startswith("error: not found: workflow 'ghost' in namespace 'argo'")
    line = one_error_line(sweep("status", "ghost", "-n", "nope", env=plain(argo_server)))
    assert line.startswith("error: not found: namespace 'nope' does not exist")


def test_schedule_maps_a_forbidden_update(argo_server: ArgoServerStandIn, spec_file: Path) -> None:
    args = ("schedule", str(spec_file), "--cron", "0 2 * * *")
    assert sweep(*args, env=plain(argo_server)).returncode == 0
    argo_server.reply_once("PUT", "/api/v1/cron-workflows/argo/tiny", 403, "no update for you")
    line = one_error_line(sweep(*args, env=plain(argo_server)))
    assert line == (
        "error: forbidden: the token's service account lacks permission to update "
        "cronworkflows in namespace 'argo' (no update for you)"
    )


# --- in-process: configuration -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({"ARGO_SERVER": "argo.example:2746"}, "https://argo.example:2746/"),
        ({"ARGO_SERVER": "argo.example:2746", "ARGO_SECURE": "true"}, "https://argo.example:2746/"),
        ({"ARGO_SERVER": "localhost:2746", "ARGO_SECURE": "false"}, "http://localhost:2746/"),
        ({"ARGO_SERVER": "http://10.0.0.1:8080", "ARGO_SECURE": "true"}, "http://10.0.0.1:8080/"),
        ({"ARGO_SERVER": "https://argo.example/"}, "https://argo.example/"),
        ({"ARGO_SERVER": "https://argo.example/argo"}, "https://argo.example/argo/"),
        (
            {"ARGO_SERVER": "argo.example:443", "ARGO_BASE_HREF": "/argo/"},
            "https://argo.example:443/argo/",
        ),
    ],
)
def test_config_reads_the_server_like_the_argo_cli(env: dict[str, str], url: str) -> None:
    assert argo.ArgoConfig.from_env(environ=env).url == url


def test_config_token_namespace_and_tls_settings() -> None:
    env = {"ARGO_SERVER": "h:1", "ARGO_TOKEN": " abc "}
    config = argo.ArgoConfig.from_env(environ=env)
    assert config.authorization == "Bearer abc"
    assert config.namespace == "argo"
    assert config.verify_ssl is True
    assert config.server == "h:1"
    assert "abc" not in repr(config)  # never in logs
    config = argo.ArgoConfig.from_env(
        environ={**env, "ARGO_TOKEN": "Bearer abc", "ARGO_NAMESPACE": "ns1"}
    )
    assert config.authorization == "Bearer abc"
    assert config.namespace == "ns1"
    assert argo.ArgoConfig.from_env("ns2", environ={**env, "ARGO_NAMESPACE": "ns1"}).namespace == (
        "ns2"
    )
    assert argo.ArgoConfig.from_env(environ={"ARGO_SERVER": "h:1"}).authorization is None
    skip = argo.ArgoConfig.from_env(environ={**env, "ARGO_INSECURE_SKIP_VERIFY": "true"})
    assert skip.verify_ssl is False
    based = argo.ArgoConfig.from_env(
        environ={"ARGO_SERVER": "h:2746", "ARGO_BASE_HREF": "argo", "ARGO_NAMESPACE": "x"}
    )
    assert argo.ui_url(based, "run-1") == "https://h:2746/argo/workflows/x/run-1"
    assert argo.ui_url(based, "c", "cron-workflows") == "https://h:2746/argo/cron-workflows/x/c"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "ARGO_SERVER is not set"),
        ({"ARGO_SERVER": "  "}, "ARGO_SERVER is not set"),
        ({"ARGO_SERVER": "h:1", "ARGO_SECURE": "maybe"}, "ARGO_SECURE must be true or false"),
        ({"ARGO_SERVER": "ftp://h:1"}, "ARGO_SERVER must be host:port or an http(s):// URL"),
        ({"ARGO_SERVER": "h:notaport"}, "ARGO_SERVER has a bad port"),
        ({"ARGO_SERVER": "h:1", "ARGO_NAMESPACE": "Bad_NS"}, "not a valid Kubernetes namespace"),
    ],
)
def test_config_refuses_bad_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(argo.ArgoError, match=re.escape(message)):
        argo.ArgoConfig.from_env(environ=env)


# --- in-process: status, waiting, timeouts ----------------------------------------------------------


@pytest.fixture
def config(argo_server: ArgoServerStandIn) -> argo.ArgoConfig:
    return argo.ArgoConfig(url=f"{argo_server.url}/", timeout=5)


@pytest.fixture
def submitted(argo_server: ArgoServerStandIn, config: argo.ArgoConfig, spec_file: Path) -> str:
    workflow = build_workflow(load_spec(spec_file), BuildOptions(namespace="argo"))
    argo_server.next_names.append("tiny-inproc")
    assert argo.submit_workflow(config, workflow) == "tiny-inproc"
    return "tiny-inproc"


def test_a_retried_attempt_is_not_a_failed_shard(
    argo_server: ArgoServerStandIn, config: argo.ArgoConfig, submitted: str
) -> None:
    argo_server.statuses.append(
        status(submitted, "Running", ["Running", "Succeeded", "Pending", ""], retried={0: 2})
    )
    got = argo.get_workflow(config, submitted)
    assert got.phase == "Running"
    assert got.shards == argo.ShardCounts(total=4, succeeded=1, running=1, failed=0, retries=2)
    assert got.shards.pending == 2
    assert got.shard_phases == {0: "Running", 1: "Succeeded", 2: "Pending"}
    assert got.shard_nodes[1] == f"{submitted}.compute(1:1)"
    assert not got.done


def test_a_workflow_argo_has_not_picked_up_yet_is_pending(
    argo_server: ArgoServerStandIn, config: argo.ArgoConfig, submitted: str
) -> None:
    got = argo.get_workflow(config, submitted)
    assert got.phase == "Pending"
    assert got.shards == argo.ShardCounts(total=4)
    assert got.shards.pending == 4


def test_wait_rides_out_transient_failures_and_reports_every_poll(
    argo_server: ArgoServerStandIn, config: argo.ArgoConfig, submitted: str
) -> None:
    path = f"/api/v1/workflows/argo/{submitted}"
    argo_server.reply_once("GET", path, 503, "argo-server restarting")
    argo_server.statuses.extend(
        [
            status(submitted, "Running", ["Running"] * 4),
            status(submitted, "Succeeded", ["Succeeded"] * 4),
        ]
    )
    seen: list[str] = []
    final = argo.wait_for(config, submitted, 0.01, lambda s: seen.append(s.phase), timeout=30)
    assert final.succeeded and final.shards.succeeded == 4
    assert seen == ["Running", "Succeeded"]
    assert final.finished_at is not None and final.started_at is not None


def test_wait_stops_at_once_on_a_lasting_error_and_at_its_timeout(
    argo_server: ArgoServerStandIn, config: argo.ArgoConfig, submitted: str
) -> None:
    path = f"/api/v1/workflows/argo/{submitted}"
    argo_server.reply_once("GET", path, 401, "token expired")
    with pytest.raises(argo.ArgoError, match="unauthorized") as raised:
        argo.wait_for(config, submitted, 0.01, timeout=30)
    assert raised.value.status == 401
    argo_server.statuses.append(status(submitted, "Running", ["Running"] * 4))
    with pytest.raises(argo.ArgoError, match=f"gave up waiting for workflow '{submitted}'"):
        argo.wait_for(config, submitted, 0.01, timeout=0.2)


def test_an_error_body_without_a_message_still_maps(
    argo_server: ArgoServerStandIn, config: argo.ArgoConfig
) -> None:
    argo_server.reply_once("GET", "/api/v1/workflows/argo/w", 502, {"error": "bad gateway"})
    with pytest.raises(argo.ArgoError, match="answered HTTP 502 to: get workflows") as raised:
        argo.get_workflow(config, "w")
    assert raised.value.transient


def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never replies
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        config = argo.ArgoConfig(url=f"http://127.0.0.1:{port}/", timeout=0.3)
        began = time.monotonic()
        with pytest.raises(argo.ArgoError, match=r"did not answer within 0\.3s") as raised:
            argo.get_workflow(config, "w")
        assert time.monotonic() - began < 10
        assert raised.value.transient


def test_a_foreign_answer_is_one_line(
    argo_server: ArgoServerStandIn, config: argo.ArgoConfig
) -> None:
    argo_server.reply_once("GET", "/api/v1/workflows/argo/w", 200, {"metadata": "not an object"})
    with pytest.raises(argo.ArgoError, match="unexpected answer from"):
        argo.get_workflow(config, "w")


def test_a_web_page_instead_of_the_api_is_one_line(
    argo_server: ArgoServerStandIn, config: argo.ArgoConfig
) -> None:
    page = b"<html><body>Argo Workflows</body></html>"
    argo_server.reply_once("GET", "/api/v1/workflows/argo/w", 200, page)
    with pytest.raises(argo.ArgoError, match="not JSON"):
        argo.get_workflow(config, "w")
    argo_server.reply_once("GET", "/api/v1/workflows/argo/w", 502, b"<html>Bad Gateway</html>")
    with pytest.raises(argo.ArgoError, match=r"answered HTTP 502 .*\(<html>Bad Gateway</html>\)"):
        argo.get_workflow(config, "w")
