"""`list`, `delete` and `logs`: runs in folder and S3 stores, for real, and pods' logs from the
recording Argo Server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.argo_server import serve, status
from tests.cli import sweep
from tests.conftest import S3Server
from workflows.argo_logs import fnv1a_32

SPEC = """
name = "managed"
function = "tests.kernels:fails_when_told"
shards = 3
[space]
x = { range = [0, 300] }
[objective]
column = "f"
goal = "min"
"""


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "managed.toml"
    path.write_text(SPEC)
    return path


@pytest.fixture
def logs_env(tmp_path: Path) -> dict[str, str]:
    return {"TTG_LOG_DIR": str(tmp_path / "logs")}


def listed(store: str, env: dict[str, str] | None = None) -> dict[str, dict]:
    done = sweep("list", "--store", store, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return {run["run_id"]: run for run in json.loads(done.stdout)["runs"]}


def three_runs(spec_file: Path, store: str, env: dict[str, str]) -> None:
    """A complete run, a failed one, and one left incomplete."""
    ok = sweep("run", str(spec_file), "--store", store, "--run-id", "managed-ok", env=env)
    assert ok.returncode == 0, ok.stderr
    broken = {**env, "TTG_TEST_FAIL_NOW": "1"}
    bad = sweep("run", str(spec_file), "--store", store, "--run-id", "managed-bad", env=broken)
    assert bad.returncode == 1
    half = sweep("run", str(spec_file), "--store", store, "--run-id", "managed-half", env=env)
    assert half.returncode == 0, half.stderr


def test_list_tells_complete_failed_and_incomplete_runs_apart(
    spec_file: Path, tmp_path: Path, logs_env: dict[str, str]
) -> None:
    store = tmp_path / "runs"
    three_runs(spec_file, str(store), logs_env)
    (store / "managed/managed-half/_SUCCESS").unlink()  # as a run stopped before its reduce
    runs = listed(str(store))
    assert {r: runs[r]["state"] for r in runs} == {
        "managed-ok": "complete",
        "managed-bad": "failed",
        "managed-half": "incomplete",
    }
    ok = runs["managed-ok"]
    assert ok["rows"] == 300 and ok["shards"] == 3 and ok["shards_written"] == 3
    assert ok["seconds"] is not None and ok["seconds"] >= 0
    assert len(ok["code_fingerprint"]) == 12 and ok["started_at"].startswith("20")
    assert runs["managed-bad"]["rows"] is None
    table = sweep("list", "--store", str(store)).stdout
    for run_id in runs:
        assert run_id in table
    assert "complete" in table and "failed" in table and "incomplete" in table


def test_a_failed_run_resumed_to_the_end_is_complete(
    spec_file: Path, tmp_path: Path, logs_env: dict[str, str]
) -> None:
    store = str(tmp_path / "runs")
    bad = sweep(
        "run",
        spec_file.as_posix(),
        "--store",
        store,
        "--run-id",
        "managed-x",
        env={**logs_env, "TTG_TEST_FAIL_NOW": "1"},
    )
    assert bad.returncode == 1
    assert "once fixed, resume it with:" in bad.stderr
    assert listed(store)["managed-x"]["state"] == "failed"
    fixed = sweep(
        "run",
        spec_file.as_posix(),
        "--store",
        store,
        "--resume",
        "--run-id",
        "managed-x",
        env=logs_env,
    )
    assert fixed.returncode == 0, fixed.stderr
    assert listed(store)["managed-x"]["state"] == "complete"


def test_delete_asks_first_and_removes_the_whole_run(
    spec_file: Path, tmp_path: Path, logs_env: dict[str, str]
) -> None:
    store = tmp_path / "runs"
    done = sweep(
        "run", str(spec_file), "--store", str(store), "--run-id", "managed-ok", env=logs_env
    )
    assert done.returncode == 0, done.stderr
    declined = sweep("delete", "managed-ok", "--store", str(store), stdin="n\n")
    assert declined.returncode == 1 and "nothing deleted" in declined.stderr
    no_answer = sweep("delete", "managed-ok", "--store", str(store), stdin="")
    assert no_answer.returncode == 1
    assert (store / "managed/managed-ok/_SUCCESS").is_file()
    accepted = sweep("delete", "managed-ok", "--store", str(store), stdin="y\n")
    assert accepted.returncode == 0, accepted.stderr
    assert not (store / "managed/managed-ok").exists()
    assert listed(str(store)) == {}
    again = sweep("delete", "managed-ok", "--store", str(store), "--yes")
    assert again.returncode == 2 and len(again.stderr.splitlines()) == 1


def test_delete_shards_only_keeps_what_results_reads(
    spec_file: Path, tmp_path: Path, logs_env: dict[str, str]
) -> None:
    store = tmp_path / "runs"
    done = sweep(
        "run", str(spec_file), "--store", str(store), "--run-id", "managed-ok", env=logs_env
    )
    assert done.returncode == 0, done.stderr
    run = store / "managed/managed-ok"
    gone = sweep("delete", str(run), "--shards-only", "--yes")
    assert gone.returncode == 0, gone.stderr
    assert not list(run.glob("shards/*"))
    assert {p.name for p in run.iterdir()} >= {
        "result.parquet",
        "summary.json",
        "_SUCCESS",
        "spec.json",
    }
    assert sweep("results", str(run)).returncode == 0
    assert listed(str(store))["managed-ok"]["state"] == "complete"
    (run / "_SUCCESS").unlink()
    refused = sweep("delete", str(run), "--shards-only", "--yes")
    assert refused.returncode == 2 and "not complete" in refused.stderr


def test_list_and_delete_on_an_s3_store(
    s3_env: S3Server, spec_file: Path, logs_env: dict[str, str]
) -> None:
    store = f"s3://{s3_env.new_bucket()}/team"
    env = {**s3_env.env, **logs_env}
    three_runs(spec_file, store, env)
    runs = listed(store, env)
    assert runs["managed-ok"]["state"] == "complete" and runs["managed-ok"]["rows"] == 300
    assert runs["managed-bad"]["state"] == "failed"
    shards = sweep("delete", "managed-ok", "--store", store, "--shards-only", "--yes", env=env)
    assert shards.returncode == 0, shards.stderr
    assert listed(store, env)["managed-ok"]["shards_written"] == 0
    assert sweep("results", f"{store}/managed/managed-ok", env=env).returncode == 0
    whole = sweep("delete", "managed-bad", "--store", store, "--yes", env=env)
    assert whole.returncode == 0, whole.stderr
    assert "managed-bad" not in listed(store, env)


def test_logs_shows_a_local_runs_task_logs(
    spec_file: Path, tmp_path: Path, logs_env: dict[str, str]
) -> None:
    done = sweep(
        "run",
        str(spec_file),
        "--store",
        str(tmp_path / "runs"),
        "--run-id",
        "managed-ok",
        env=logs_env,
    )
    assert done.returncode == 0, done.stderr
    everything = sweep("logs", "managed-ok", env=logs_env)
    assert everything.returncode == 0, everything.stderr
    headers = [line for line in everything.stdout.splitlines() if line.startswith("==> ")]
    assert headers == [
        "==> managed-ok.compute(0:0) <==",
        "==> managed-ok.compute(1:1) <==",
        "==> managed-ok.compute(2:2) <==",
        "==> managed-ok.reduce <==",
    ]
    shard = sweep("logs", "managed-ok", "1", env=logs_env).stdout
    assert "shard 1/3" in shard and "shard 0/3" not in shard
    assert "reduce: 300 rows" in sweep("logs", "managed-ok", "reduce", env=logs_env).stdout
    unknown = sweep("logs", "managed-ok", "merge", env=logs_env)
    assert unknown.returncode == 2 and "no task 'merge'" in unknown.stderr


def test_logs_of_a_run_not_here_needs_an_argo_server(logs_env: dict[str, str]) -> None:
    done = sweep("logs", "elsewhere-abcde", env={**logs_env, "ARGO_SERVER": ""})
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1
    assert "ARGO_SERVER is not set" in done.stderr


def test_fnv1a_32_matches_the_published_vectors() -> None:
    """The values Argo's UI tests its pod-name hash with (ui/src/shared/pod-name.test.ts)."""
    assert fnv1a_32("hello") == 1335831723
    assert fnv1a_32("world") == 933488787


def test_logs_of_a_cluster_run_come_from_the_argo_log_api(logs_env: dict[str, str]) -> None:
    name = "managed-k8s01"
    for server in serve():
        server.namespaces.add("ttg")
        server.objects[("workflows", "ttg", name)] = {
            "metadata": {"name": name, "namespace": "ttg"},
            "spec": {"entrypoint": "sweep"},
            "status": status(name, "Succeeded", ["Succeeded", "Succeeded"], retried={1: 1}),
        }
        pods = {
            attempt: f"{name}-compute-{fnv1a_32(f'{name}.compute(1:1)({attempt})')}"
            for attempt in (0, 1)
        }
        server.pod_logs = {
            pods[0]: ["shard 1 attempt 0 failed"],
            pods[1]: ["shard 1/2: 150 rows computed"],
            f"{name}-compute-{fnv1a_32(f'{name}.compute(0:0)(0)')}": ["shard 0/2: 150 rows"],
        }
        env = {
            **logs_env,
            "ARGO_SERVER": server.url.removeprefix("http://"),
            "ARGO_SECURE": "false",
            "ARGO_NAMESPACE": "ttg",
            "ARGO_TOKEN": "t0k",
        }
        shard = sweep("logs", name, "1", env=env)
        assert shard.returncode == 0, shard.stderr
        assert shard.stdout.splitlines() == [
            f"==> {pods[0]} <==",
            "shard 1 attempt 0 failed",
            f"==> {pods[1]} <==",
            "shard 1/2: 150 rows computed",
        ]
        asked = [r.path for r in server.seen("GET", f"/api/v1/workflows/ttg/{name}/log")]
        assert len(asked) == 2 and all("logOptions.container=main" in p for p in asked)
        assert all(r.headers.get("authorization") == "Bearer t0k" for r in server.seen("GET"))
        everything = sweep("logs", name, env=env)
        assert everything.returncode == 0 and "shard 0/2: 150 rows" in everything.stdout
        missing = sweep("logs", "managed-gone1", env=env)
        assert missing.returncode == 2 and "not found" in missing.stderr


def test_delete_refuses_what_is_not_a_run(
    spec_file: Path, tmp_path: Path, logs_env: dict[str, str]
) -> None:
    """A folder, a sweep's folder, a path through `..`: nothing of them is deleted."""
    store = tmp_path / "runs"
    done = sweep(
        "run", str(spec_file), "--store", str(store), "--run-id", "managed-ok", env=logs_env
    )
    assert done.returncode == 0, done.stderr
    (tmp_path / "mine.txt").write_text("mine")
    before = sorted(p for p in tmp_path.rglob("*") if "logs" not in p.parts)
    for target in (
        ".",
        str(tmp_path),
        str(store / "managed"),
        str(store / "managed/managed-ok/.."),
    ):
        refused = sweep("delete", target, "--yes", cwd=tmp_path, env=logs_env)
        assert refused.returncode == 2, (target, refused.stdout)
        assert len(refused.stderr.splitlines()) == 1
    assert sorted(p for p in tmp_path.rglob("*") if "logs" not in p.parts) == before


def test_a_bare_run_id_is_looked_up_in_the_store_not_the_current_folder(
    spec_file: Path, tmp_path: Path, logs_env: dict[str, str]
) -> None:
    store = tmp_path / "runs"
    done = sweep(
        "run", str(spec_file), "--store", str(store), "--run-id", "managed-ok", env=logs_env
    )
    assert done.returncode == 0, done.stderr
    (tmp_path / "managed-ok").mkdir()
    (tmp_path / "managed-ok" / "notes.md").write_text("keep me")
    gone = sweep("delete", "managed-ok", "--store", str(store), "--yes", cwd=tmp_path, env=logs_env)
    assert gone.returncode == 0, gone.stderr
    assert (tmp_path / "managed-ok" / "notes.md").read_text() == "keep me"
    assert not (store / "managed/managed-ok").exists()


def finished_run(
    spec_file: Path, tmp_path: Path, logs_env: dict[str, str]
) -> tuple[Path, list[str], Path]:
    """A complete run `managed-ok`: its store, the arguments that name it, its result."""
    store = tmp_path / "runs"
    args = ["--store", str(store), "--run-id", "managed-ok"]
    assert sweep("run", str(spec_file), *args, env=logs_env).returncode == 0
    return store, args, store / "managed/managed-ok/result.parquet"


def test_a_run_whose_result_is_gone_is_not_complete_and_resume_rebuilds_it(
    spec_file: Path, tmp_path: Path, logs_env: dict[str, str]
) -> None:
    store, args, result = finished_run(spec_file, tmp_path, logs_env)
    whole = result.read_bytes()
    result.write_bytes(whole[: len(whole) // 2])  # cut short
    assert listed(str(store))["managed-ok"]["state"] == "incomplete"
    refused = sweep("delete", "managed-ok", "--store", str(store), "--shards-only", "--yes")
    assert refused.returncode == 2 and list((store / "managed/managed-ok/shards").iterdir())
    resumed = sweep("run", str(spec_file), *args, "--resume", env=logs_env)
    assert resumed.returncode == 0, resumed.stderr
    assert "keeping 3 of 3 shards" in resumed.stdout
    assert result.read_bytes() == whole
    assert listed(str(store))["managed-ok"]["state"] == "complete"


def test_logs_are_kept_per_sweep_and_run_and_show_the_latest_execution(
    tmp_path: Path, logs_env: dict[str, str]
) -> None:
    store = str(tmp_path / "runs")
    for name in ("alpha", "beta"):
        path = tmp_path / f"{name}.toml"
        path.write_text(SPEC.replace('"managed"', f'"{name}"'))
        done = sweep("run", str(path), "--store", store, "--run-id", "same-1", env=logs_env)
        assert done.returncode == 0, done.stderr
    ambiguous = sweep("logs", "same-1", env=logs_env)
    assert ambiguous.returncode == 2 and "alpha/same-1, beta/same-1" in ambiguous.stderr
    assert "==> same-1.reduce <==" in sweep("logs", "beta/same-1", "reduce", env=logs_env).stdout
    gone = sweep("delete", f"{store}/alpha/same-1", "--yes", env=logs_env)
    assert gone.returncode == 0, gone.stderr
    assert sweep("logs", "same-1", env=logs_env).returncode == 0  # beta's are still there
    for bad in ("..", "../..", "", "a/b/c"):
        refused = sweep("logs", bad, env=logs_env)
        assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1, bad


def test_list_of_a_store_that_is_not_there_is_an_error(tmp_path: Path) -> None:
    done = sweep("list", "--store", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "no such folder" in done.stderr


def test_a_module_named_like_a_dependency_in_the_current_folder_breaks_nothing(
    tmp_path: Path,
) -> None:
    (tmp_path / "rich.py").write_text("raise ImportError('this is not rich')\n")
    (tmp_path / "runs").mkdir()
    done = sweep("list", cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def test_a_run_that_keeps_its_best_rows_is_complete(
    tmp_path: Path, logs_env: dict[str, str]
) -> None:
    spec = tmp_path / "best.toml"
    spec.write_text(SPEC.replace('name = "managed"', 'name = "managed"\nkeep = { top_k = 7 }'))
    store = str(tmp_path / "runs")
    done = sweep("run", str(spec), "--store", store, "--run-id", "managed-top", env=logs_env)
    assert done.returncode == 0, done.stderr
    assert listed(store)["managed-top"]["state"] == "complete"
    again = sweep(
        "run", str(spec), "--store", store, "--resume", "--run-id", "managed-top", env=logs_env
    )
    assert "already complete" in again.stdout


def test_delete_refuses_another_tools_output_folder(tmp_path: Path) -> None:
    """Spark and Hadoop leave a _SUCCESS in every output folder; a spec.json can be anyone's."""
    spark = tmp_path / "spark/events/day-2024-01-01"
    spark.mkdir(parents=True)
    (spark / "_SUCCESS").touch()
    (spark / "part-0.parquet").write_bytes(b"data")
    other = tmp_path / "other/myapp/build"
    other.mkdir(parents=True)
    (other / "spec.json").write_text('{"spec_hash": "' + "a" * 64 + '", "spec": {"name": "x"}}')
    for folder in (spark, other):
        refused = sweep("delete", str(folder), "--yes")
        assert refused.returncode == 2 and "is not a TTG run" in refused.stderr
    assert (spark / "part-0.parquet").read_bytes() == b"data" and (other / "spec.json").is_file()


def test_a_result_with_a_damaged_page_keeps_its_shards_and_resume_rebuilds_it(
    spec_file: Path, tmp_path: Path, logs_env: dict[str, str]
) -> None:
    store, args, result = finished_run(spec_file, tmp_path, logs_env)
    whole = bytearray(result.read_bytes())
    whole[200:260] = bytes(60)  # inside the first column chunk's pages; the footer is intact
    result.write_bytes(bytes(whole))
    refused = sweep("delete", "managed-ok", "--store", str(store), "--shards-only", "--yes")
    assert refused.returncode == 2 and list((store / "managed/managed-ok/shards").iterdir())
    resumed = sweep("run", str(spec_file), *args, "--resume", env=logs_env)
    assert resumed.returncode == 0 and "already complete" not in resumed.stdout
    assert sweep("verify", str(store / "managed/managed-ok")).returncode == 0


def test_results_of_a_cut_short_result_says_so(
    spec_file: Path, tmp_path: Path, logs_env: dict[str, str]
) -> None:
    store = tmp_path / "runs"
    assert (
        sweep(
            "run", str(spec_file), "--store", str(store), "--run-id", "managed-ok", env=logs_env
        ).returncode
        == 0
    )
    result = store / "managed/managed-ok/result.parquet"
    result.write_bytes(result.read_bytes()[:100])
    done = sweep("results", str(store / "managed/managed-ok"))
    assert (
        done.returncode == 2
        and "run --resume" in done.stderr
        and len(done.stderr.splitlines()) == 1
    )
