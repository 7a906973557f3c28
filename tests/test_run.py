"""`run`, `render` and `exec` end to end: real subprocesses, a real folder store and S3 server."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from tests.cli import sweep
from tests.conftest import S3Server

MIXED_TOML = """
name = "mixed"
function = "tests.kernels:mixed"
shards = 4
chunk_rows = 64
seed = 3
samples = 40

[space]
g = { range = [1, 8] }
s = { values = ["a", "b"] }
u = { uniform = [0.0, 2.0] }
w = { normal = [0.0, 1.0] }
c = { choice = [1, 2, 3] }

[objective]
column = "score"
goal = "max"
top_k = 5
"""


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "mixed.toml"
    path.write_text(MIXED_TOML)
    return path


def result_of(store: Path, run_id: str) -> Path:
    return store / "mixed" / run_id / "result.parquet"


def data_bytes(path: Path) -> bytes:
    blob = path.read_bytes()
    return blob[: len(blob) - 8 - int.from_bytes(blob[-8:-4], "little")]


def test_run_gives_the_same_result_whatever_the_shards_and_parallelism(
    spec_file: Path, tmp_path: Path
) -> None:
    store = tmp_path / "runs"
    for shards, parallel in [(1, 1), (3, 2), (7, 4)]:
        done = sweep(
            "run",
            str(spec_file),
            "--store",
            str(store),
            "--shards",
            str(shards),
            "--parallel",
            str(parallel),
            "--run-id",
            f"s{shards}",
        )
        assert done.returncode == 0, done.stderr
        assert f"{store.as_uri()}/mixed/s{shards}/result.parquet" in done.stdout.replace("\n", "")
    results = [result_of(store, f"s{n}") for n in (1, 3, 7)]
    assert pq.read_table(results[0]).num_rows == 560
    assert data_bytes(results[0]) == data_bytes(results[1]) == data_bytes(results[2])


def test_run_names_the_run_like_argos_generate_name(spec_file: Path, tmp_path: Path) -> None:
    done = sweep("run", str(spec_file), "--store", str(tmp_path))
    assert done.returncode == 0, done.stderr
    (run_dir,) = (tmp_path / "mixed").iterdir()
    assert run_dir.name.startswith("mixed-") and len(run_dir.name) == len("mixed-") + 5
    assert (run_dir / "_SUCCESS").is_file()


@pytest.mark.parametrize("folder", ["my runs", "100% done", "a#b?c"])
def test_the_result_lands_in_the_store_folder_given_whatever_its_name(
    folder: str, spec_file: Path, tmp_path: Path
) -> None:
    """The pods get the store as a file:// URI, percent-encoded: they must decode it."""
    store = tmp_path / folder
    done = sweep("run", str(spec_file), "--store", str(store), "--run-id", "r")
    assert done.returncode == 0, done.stderr
    assert pq.read_table(store / "mixed/r/result.parquet").num_rows == 560
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == [folder]


def test_exec_of_the_rendered_workflow_is_what_run_does(spec_file: Path, tmp_path: Path) -> None:
    store = tmp_path / "runs"
    rendered = sweep("render", str(spec_file), "--store", str(store), "--run-id", "via-exec")
    assert rendered.returncode == 0, rendered.stderr
    assert yaml.safe_load(rendered.stdout)["metadata"]["name"] == "via-exec"
    executed = sweep("exec", "-", "--parallel", "2", stdin=rendered.stdout)
    assert executed.returncode == 0, executed.stderr
    assert "Succeeded: via-exec: 5 tasks in" in executed.stdout
    ran = sweep("run", str(spec_file), "--store", str(store), "--run-id", "via-run")
    assert ran.returncode == 0, ran.stderr
    assert data_bytes(result_of(store, "via-exec")) == data_bytes(result_of(store, "via-run"))


def test_exec_p_overrides_a_workflow_parameter(spec_file: Path, tmp_path: Path) -> None:
    rendered = sweep(
        "render", str(spec_file), "--store", str(tmp_path / "ignored"), "--run-id", "p-run"
    )
    manifest = tmp_path / "wf.yaml"
    manifest.write_text(rendered.stdout)
    done = sweep("exec", str(manifest), "-p", f"store={tmp_path / 'chosen'}")
    assert done.returncode == 0, done.stderr
    assert result_of(tmp_path / "chosen", "p-run").is_file() and not (tmp_path / "ignored").exists()


def test_resume_recomputes_only_what_is_missing(spec_file: Path, tmp_path: Path) -> None:
    store = tmp_path / "runs"
    assert sweep("run", str(spec_file), "--store", str(store), "--run-id", "r").returncode == 0
    shards = sorted((store / "mixed/r/shards").iterdir())
    stamps = {p.name: p.stat().st_mtime_ns for p in shards}
    shards[2].unlink()
    for name in ("result.parquet", "summary.json", "_SUCCESS"):
        (store / "mixed/r" / name).unlink()
    again = sweep("run", str(spec_file), "--store", str(store), "--run-id", "r")
    assert again.returncode == 2 and "already exists" in again.stderr and "--resume" in again.stderr
    resumed = sweep(
        "run", str(spec_file), "--store", str(store), "--resume"
    )  # the latest unfinished run
    assert resumed.returncode == 0, resumed.stderr
    after = {p.name: p.stat().st_mtime_ns for p in sorted((store / "mixed/r/shards").iterdir())}
    assert after.keys() == stamps.keys()
    changed = {name for name in after if after[name] != stamps[name]}
    assert changed == {shards[2].name}
    assert (store / "mixed/r/_SUCCESS").is_file()


def test_resume_refuses_when_there_is_nothing_to_resume(spec_file: Path, tmp_path: Path) -> None:
    done = sweep("run", str(spec_file), "--store", str(tmp_path), "--resume")
    assert done.returncode == 2 and "no run of 'mixed' with this spec" in done.stderr


def test_run_against_an_s3_store(s3_env: S3Server, spec_file: Path, tmp_path: Path) -> None:
    bucket = s3_env.new_bucket()
    done = sweep(
        "run", str(spec_file), "--store", f"s3://{bucket}/team", "--run-id", "on-s3", env=s3_env.env
    )
    assert done.returncode == 0, done.stderr
    assert f"s3://{bucket}/team/mixed/on-s3/result.parquet" in done.stdout.replace("\n", "")
    local = sweep("run", str(spec_file), "--store", str(tmp_path), "--run-id", "on-s3")
    assert local.returncode == 0
    from steps.store import open_store

    (tmp_path / "from-s3.parquet").write_bytes(
        open_store(f"s3://{bucket}/team").get_bytes("mixed/on-s3/result.parquet")
    )
    assert data_bytes(tmp_path / "from-s3.parquet") == data_bytes(result_of(tmp_path, "on-s3"))


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "--store", "gs://bucket/x"], "unsupported store scheme 'gs://'"),
        (["run", "--shards", "0"], "expected a positive integer"),
        (["run", "--parallel", "many"], "expected a positive integer"),
        (["run", "--run-id", "Not_A_Label"], "must be a DNS-1123 label"),
        (["run", "--shards", "10001"], "'shards'"),
        (["render", "--store", "ftp://x/y"], "unsupported store scheme 'ftp://'"),
        (["exec", "/no/such/manifest.yaml"], "cannot read manifest"),
        (["exec", "-", "-p", "novalue"], "-p expects NAME=VALUE"),
    ],
)
def test_bad_flags_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    done = sweep(*args, stdin="")
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("kind", ["cron", "template"])
def test_exec_runs_a_rendered_cron_workflow_or_template_to_the_same_result_as_run(
    spec_file: Path, tmp_path: Path, kind: str
) -> None:
    from steps.spec import load_spec
    from workflows.build import render
    from workflows.options import BuildOptions, CronOptions

    store = tmp_path / "runs"
    manifest = tmp_path / f"{kind}.yaml"
    manifest.write_text(
        render(
            load_spec(spec_file),
            BuildOptions(store=str(store)),
            kind,
            CronOptions(schedules=("0 2 * * *",)),
        )
    )
    executed = sweep("exec", str(manifest))
    assert executed.returncode == 0, executed.stderr
    (run_dir,) = (store / "mixed").iterdir()
    assert run_dir.name.startswith("mixed-")  # one run, named as Argo names what it creates
    assert (
        sweep(
            "run", str(spec_file), "--store", str(tmp_path / "plain"), "--run-id", "plain"
        ).returncode
        == 0
    )
    assert data_bytes(run_dir / "result.parquet") == data_bytes(
        result_of(tmp_path / "plain", "plain")
    )


def test_render_prints_each_kind_with_cluster_options() -> None:
    cron = sweep(
        "render",
        "--kind",
        "cron",
        "--cron",
        "0 2 * * *",
        "--cron",
        "0 14 * * 1",
        "--timezone",
        "Europe/Paris",
    )
    assert cron.returncode == 0, cron.stderr
    manifest = yaml.safe_load(cron.stdout)
    assert manifest["kind"] == "CronWorkflow" and manifest["spec"]["schedules"] == [
        "0 2 * * *",
        "0 14 * * 1",
    ]
    assert (
        manifest["spec"]["timezone"] == "Europe/Paris"
        and manifest["spec"]["concurrencyPolicy"] == "Forbid"
    )
    template = yaml.safe_load(sweep("render", "--kind", "template", "-n", "sweeps").stdout)
    assert template["kind"] == "WorkflowTemplate" and template["metadata"] == template[
        "metadata"
    ] | {"name": "rosenbrock", "namespace": "sweeps"}
    tuned = yaml.safe_load(
        sweep(
            "render", "--memory-limit", "1Gi", "--parallelism", "3", "--service-account", "sa"
        ).stdout
    )
    compute = tuned["spec"]["templates"][0]
    assert compute["container"]["resources"]["limits"] == {"cpu": "500m", "memory": "1Gi"}
    assert tuned["spec"]["parallelism"] == 3 and tuned["spec"]["serviceAccountName"] == "sa"


@pytest.mark.parametrize(
    "args,message",
    [
        (["--kind", "cron"], "needs at least one --cron schedule"),
        (["--kind", "daily"], "invalid choice"),
        (["--cpu-limit", "lots"], "'resource flags.cpu_limit'"),
        (["--parallelism", "0"], "expected a positive integer"),
    ],
)
def test_render_refuses_bad_options_with_exit_2(args: list[str], message: str) -> None:
    done = sweep("render", *args)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_off_a_terminal_run_prints_plain_progress_lines(spec_file: Path, tmp_path: Path) -> None:
    done = sweep(
        "run",
        str(spec_file),
        "--store",
        str(tmp_path),
        "--run-id",
        "plain",
        env={"TTG_PROGRESS_SECONDS": "0"},
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("mixed: ")]
    assert len(lines) >= 4 and "tasks ━" not in done.stdout  # a line per finished task, no bar
    assert lines[-1].startswith("mixed: 5/5 tasks, 560/560 rows")
