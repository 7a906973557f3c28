"""Nothing lost: killed processes, store outages, bad shards, concurrency, full and read-only
disks, spec drift. Every fault here is real: SIGKILL, a frozen S3 server, a tmpfs that fills.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from steps import layout
from steps.shards import read_shard_info
from steps.spec import load_spec
from steps.store import StoreError, open_store
from tests import cli
from tests.cli import SWEEP
from tests.conftest import ROOT, S3Server, s3_server_or_skip

SLOW = """
name = "slow"
function = "tests.kernels:slow_square"
shards = {shards}
chunk_rows = 100
seed = {seed}

[space]
x = {{ range = [0, {rows}] }}
"""


def write_spec(tmp_path: Path, shards: int = 6, rows: int = 1200, seed: int = 0) -> Path:
    path = tmp_path / f"slow-{shards}-{rows}-{seed}.toml"
    path.write_text(SLOW.format(shards=shards, rows=rows, seed=seed))
    return path


def env_with(**extra: str) -> dict[str, str]:
    return {**os.environ, "TTG_TEST_CHUNK_SECONDS": "0.15", **extra}


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env or env_with(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_run(
    spec: Path, store: Path | str, run_id: str, *more: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """`sweep.py run` in the background, so a test can kill, freeze or race it."""
    return start(
        str(SWEEP), "run", str(spec), "--store", str(store), "--run-id", run_id, *more, env=env
    )


def sweep(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """The CLI with this file's slow-kernel settings unless `env` says otherwise."""
    return cli.sweep(*args, env=env or env_with(), timeout=timeout)


def wait_until(condition: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc (the executor starts tasks in their own sessions)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def kill_tree(process: subprocess.Popen[str]) -> None:
    for pid in [process.pid, *descendants(process.pid)]:
        with contextlib.suppress(ProcessLookupError):  # gone already
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=10)


def shard_files(store_dir: Path, run_id: str) -> list[Path]:
    folder = store_dir / "slow" / run_id / "shards"
    return sorted(folder.glob("shard-*.parquet")) if folder.is_dir() else []


def clean_result(tmp_path: Path, spec_path: Path) -> Path:
    """The reference: the same spec run once, without faults."""
    store = tmp_path / "clean"
    done = sweep(
        "run",
        str(spec_path),
        "--store",
        str(store),
        "--run-id",
        "clean",
        env=env_with(TTG_TEST_CHUNK_SECONDS="0"),
    )
    assert done.returncode == 0, done.stderr
    return store / "slow/clean/result.parquet"


def data_bytes(blob: bytes) -> bytes:
    return blob[: len(blob) - 8 - int.from_bytes(blob[-8:-4], "little")]


# --- 1. kill -9 --------------------------------------------------------------------------


@pytest.fixture
def s3_bucket_env(s3_server: S3Server) -> Iterator[tuple[str, dict[str, str]]]:
    yield f"s3://{s3_server.new_bucket()}/faults", env_with(**s3_server.env, TTG_S3_BACKOFF="0.05")


def test_kill_9_mid_write_leaves_no_visible_object_and_a_rerun_completes(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path, shards=1, rows=3000))
    store_dir = tmp_path / "runs"
    args = [
        "-m",
        "steps.compute",
        "--spec",
        spec.to_json(),
        "--store",
        str(store_dir),
        "--run-id",
        "k",
        "--shard",
        "0",
    ]
    worker = start(*args)
    shards = store_dir / "slow/k/shards"
    wait_until(lambda: shards.is_dir() and any(shards.glob(".*.tmp")), what="a shard being written")
    time.sleep(0.3)
    kill_tree(worker)
    assert worker.returncode == -signal.SIGKILL
    assert (
        open_store(str(store_dir)).list("slow/k/shards") == []
    )  # the half-written temp is invisible
    rerun = start(*args, env=env_with(TTG_TEST_CHUNK_SECONDS="0"))
    assert rerun.wait(timeout=60) == 0, rerun.stderr.read() if rerun.stderr else ""
    assert (
        read_shard_info(open_store(str(store_dir)), layout.shard_key("slow", "k", 0, 1)).rows
        == 3000
    )


def test_kill_9_mid_upload_to_s3_leaves_no_object(
    s3_bucket_env: tuple[str, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri, env = s3_bucket_env
    for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        monkeypatch.setenv(key, env[key])
    spec = load_spec(write_spec(tmp_path, shards=1, rows=3000))
    args = [
        "-m",
        "steps.compute",
        "--spec",
        spec.to_json(),
        "--store",
        uri,
        "--run-id",
        "k",
        "--shard",
        "0",
    ]
    worker = start(*args, env=env)
    store = open_store(uri)
    wait_until(lambda: store.exists("slow/k/spec.json"), what="the run to start")
    time.sleep(1.0)  # well inside the ~3 s of chunks
    kill_tree(worker)
    assert store.list("slow/k/shards") == []
    rerun = start(*args, env={**env, "TTG_TEST_CHUNK_SECONDS": "0"})
    assert rerun.wait(timeout=60) == 0
    assert read_shard_info(store, layout.shard_key("slow", "k", 0, 1)).rows == 3000


def test_kill_9_of_the_whole_run_then_resume_recomputes_only_missing_shards(tmp_path: Path) -> None:
    spec_path = write_spec(tmp_path, shards=6, rows=1800)
    store_dir = tmp_path / "runs"
    run = start_run(
        spec_path,
        store_dir,
        "tree",
        "--parallel",
        "2",
    )
    wait_until(lambda: len(shard_files(store_dir, "tree")) >= 2, what="two finished shards")
    kill_tree(run)
    survivors = {p.name: p.stat().st_mtime_ns for p in shard_files(store_dir, "tree")}
    assert 2 <= len(survivors) < 6
    store = open_store(str(store_dir))
    for name in survivors:  # whatever is visible is whole
        assert read_shard_info(store, f"slow/tree/shards/{name}").rows == 300
    assert not (store_dir / "slow/tree/_SUCCESS").exists()
    resumed = sweep(
        "run", str(spec_path), "--store", str(store_dir), "--resume", "--run-id", "tree"
    )
    assert resumed.returncode == 0, resumed.stderr
    after = {p.name: p.stat().st_mtime_ns for p in shard_files(store_dir, "tree")}
    assert len(after) == 6 and all(after[name] == stamp for name, stamp in survivors.items())
    reference = clean_result(tmp_path, spec_path)
    assert pq.read_table(store_dir / "slow/tree/result.parquet").equals(pq.read_table(reference))


# --- 2. store outage -----------------------------------------------------------------------


@pytest.fixture
def private_s3() -> Iterator[S3Server]:
    """A server of this test's own, so freezing it disturbs no other test."""
    with s3_server_or_skip() as server:
        yield server


def freeze(server: S3Server, seconds: float) -> None:
    server.process.send_signal(signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        server.process.send_signal(signal.SIGCONT)


def shard_stamps(uri: str, run_id: str) -> dict[str, str]:
    store = open_store(uri)
    assert hasattr(store, "client")
    prefix = f"{store.prefix}/slow/{run_id}/shards/"  # type: ignore[attr-defined]
    objects = store.client.list_objects(store.bucket, prefix=prefix, recursive=True)  # type: ignore[attr-defined]
    return {str(o.object_name): f"{o.etag}@{o.last_modified}" for o in objects}


def test_a_short_outage_is_ridden_out_with_retries(
    private_s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in private_s3.env.items():
        monkeypatch.setenv(key, value)
    uri = f"s3://{private_s3.new_bucket()}/outage"
    env = env_with(**private_s3.env, TTG_S3_TIMEOUT="1", TTG_S3_ATTEMPTS="8", TTG_S3_BACKOFF="0.2")
    spec_path = write_spec(tmp_path, shards=4, rows=1600)
    run = start_run(
        spec_path,
        uri,
        "short",
        "--parallel",
        "2",
        env=env,
    )
    wait_until(lambda: len(shard_stamps(uri, "short")) >= 1, what="a first shard")
    freeze(private_s3, 3.0)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 0, stderr
    reference = clean_result(tmp_path, spec_path)
    (tmp_path / "got.parquet").write_bytes(open_store(uri).get_bytes("slow/short/result.parquet"))
    assert pq.read_table(tmp_path / "got.parquet").equals(pq.read_table(reference))


def test_an_outage_beyond_the_retry_budget_fails_naming_shard_and_endpoint_then_resume_completes(
    private_s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in private_s3.env.items():
        monkeypatch.setenv(key, value)
    uri = f"s3://{private_s3.new_bucket()}/outage"
    env = env_with(
        **private_s3.env, TTG_S3_TIMEOUT="0.5", TTG_S3_ATTEMPTS="2", TTG_S3_BACKOFF="0.1"
    )
    spec_path = write_spec(tmp_path, shards=4, rows=1600)
    run = start_run(
        spec_path,
        uri,
        "long",
        "--parallel",
        "1",
        env=env,
    )
    wait_until(lambda: len(shard_stamps(uri, "long")) >= 1, what="a first shard")
    private_s3.process.send_signal(signal.SIGSTOP)
    try:
        _, stderr = run.communicate(timeout=120)
    finally:
        private_s3.process.send_signal(signal.SIGCONT)
    assert run.returncode == 1
    assert (
        "shard " in stderr
        and private_s3.endpoint in stderr
        and "gave up after 2 attempts" in stderr
    )
    before = shard_stamps(uri, "long")
    assert 1 <= len(before) < 4
    resumed = sweep(
        "run", str(spec_path), "--store", uri, "--resume", env=env_with(**private_s3.env)
    )
    assert resumed.returncode == 0, resumed.stderr
    after = shard_stamps(uri, "long")
    assert len(after) == 4 and all(after[key] == stamp for key, stamp in before.items())


# --- 3. bad shards ----------------------------------------------------------------------------


def finished_run(tmp_path: Path, shards: int = 3, rows: int = 900) -> tuple[Path, Path]:
    spec_path = write_spec(tmp_path, shards=shards, rows=rows)
    store_dir = tmp_path / "runs"
    done = sweep(
        "run",
        str(spec_path),
        "--store",
        str(store_dir),
        "--run-id",
        "r",
        env=env_with(TTG_TEST_CHUNK_SECONDS="0"),
    )
    assert done.returncode == 0, done.stderr
    return spec_path, store_dir


def test_resume_heals_a_truncated_shard_and_a_stray_object_is_refused(tmp_path: Path) -> None:
    spec_path, store_dir = finished_run(tmp_path)
    run_dir = store_dir / "slow/r"
    for name in ("result.parquet", "summary.json", "_SUCCESS"):
        (run_dir / name).unlink()
    broken = run_dir / "shards/shard-00001-of-00003.parquet"
    broken.write_bytes(broken.read_bytes()[:200])
    resumed = sweep(
        "run",
        str(spec_path),
        "--store",
        str(store_dir),
        "--resume",
        "--run-id",
        "r",
        env=env_with(TTG_TEST_CHUNK_SECONDS="0"),
    )
    assert resumed.returncode == 0, resumed.stderr
    assert (
        read_shard_info(
            open_store(str(store_dir)), "slow/r/shards/shard-00001-of-00003.parquet"
        ).rows
        == 300
    )
    (run_dir / "shards/shard-00007-of-00009.parquet").write_bytes(b"left over")
    (run_dir / "_SUCCESS").unlink()
    stray = sweep("run", str(spec_path), "--store", str(store_dir), "--resume", "--run-id", "r")
    assert (
        stray.returncode == 1
        and "shard-00007-of-00009.parquet is not a shard of this run" in stray.stderr
    )


def test_a_failing_reduce_never_replaces_a_complete_result(tmp_path: Path) -> None:
    spec_path, store_dir = finished_run(tmp_path)
    run_dir = store_dir / "slow/r"
    kept = {
        name: (run_dir / name).read_bytes()
        for name in ("result.parquet", "summary.json", "_SUCCESS")
    }
    (run_dir / "shards/shard-00002-of-00003.parquet").write_bytes(b"garbage")
    spec = load_spec(spec_path)
    reduce = subprocess.run(
        [
            sys.executable,
            "-m",
            "steps.reduce",
            "--spec",
            spec.to_json(),
            "--store",
            str(store_dir),
            "--run-id",
            "r",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        reduce.returncode == 1
        and "shard 2" in reduce.stderr
        and "no result written" in reduce.stderr
    )
    assert {name: (run_dir / name).read_bytes() for name in kept} == kept


# --- 4. the user's function fails ----------------------------------------------------------


def test_a_failing_function_is_not_retried_fails_the_run_and_reduce_never_runs(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text(
        'name = "bad"\nfunction = "tests.kernels:fails_on_seven"\nshards = 2\nchunk_rows = 5\n[space]\nx = { range = [0, 20] }\n'
    )
    done = sweep("run", str(spec), "--store", str(tmp_path / "runs"), "--run-id", "b")
    assert done.returncode == 1
    assert (
        "shard 0, param_id [5, 10): tests.kernels:fails_on_seven raised ValueError: seven is unlucky"
        in done.stderr
    )
    log_dir = Path(done.stderr.rsplit("task logs in ", 1)[1].split()[0])
    attempts = sorted(p.name for p in log_dir.iterdir() if "compute(0:0)" in p.name)
    assert len(attempts) == 1  # a deterministic error: the same rows would fail again
    assert not list((tmp_path / "runs/bad/b/shards").glob("shard-00000*"))
    run_dir = tmp_path / "runs/bad/b"
    assert not (run_dir / "result.parquet").exists() and not (run_dir / "_SUCCESS").exists()


# --- 5. concurrency ---------------------------------------------------------------------------


def test_different_sweeps_and_runs_share_a_store_without_interference(tmp_path: Path) -> None:
    store_dir = tmp_path / "runs"
    one, two = (
        write_spec(tmp_path, shards=3, rows=600, seed=1),
        write_spec(tmp_path, shards=2, rows=500, seed=2),
    )
    runs = [
        start_run(
            one,
            store_dir,
            "a",
            "--parallel",
            "2",
        ),
        start_run(
            one,
            store_dir,
            "b",
            "--parallel",
            "2",
        ),
        start_run(
            two,
            store_dir,
            "c",
            "--parallel",
            "2",
        ),
    ]
    for run in runs:
        _, stderr = run.communicate(timeout=180)
        assert run.returncode == 0, stderr
    a, b = (pq.read_table(store_dir / f"slow/{r}/result.parquet") for r in ("a", "b"))
    assert a.equals(b) and a.num_rows == 600
    assert pq.read_table(store_dir / "slow/c/result.parquet").num_rows == 500


def test_a_second_run_with_the_same_run_id_is_refused_while_the_first_completes(
    tmp_path: Path,
) -> None:
    """The documented rule: a run id that already has objects is refused without --resume."""
    spec_path, store_dir = write_spec(tmp_path, shards=3, rows=900), tmp_path / "runs"
    first = start_run(spec_path, store_dir, "same")
    wait_until(lambda: (store_dir / "slow/same/spec.json").exists(), what="the first run to start")
    second = sweep("run", str(spec_path), "--store", str(store_dir), "--run-id", "same")
    assert second.returncode == 2 and "already exists" in second.stderr
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert pq.read_table(store_dir / "slow/same/result.parquet").num_rows == 900


# --- 6. resources ---------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a disk that fills up. Needs root (CI and the dev machines are)."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_gives_a_clear_error_and_corrupts_nothing(
    small_disk: Path, tmp_path: Path
) -> None:
    spec_path = write_spec(tmp_path, shards=1, rows=100)
    first = sweep(
        "run",
        str(spec_path),
        "--store",
        str(small_disk),
        "--run-id",
        "fits",
        env=env_with(TTG_TEST_CHUNK_SECONDS="0"),
    )
    assert first.returncode == 0, first.stderr
    before = {p: p.read_bytes() for p in small_disk.rglob("*") if p.is_file()}
    big = tmp_path / "big.toml"
    big.write_text(
        'name = "big"\nfunction = "steps.kernels:rosenbrock"\n[space]\nx = { linspace = [0, 1, 1000] }\ny = { linspace = [0, 1, 1000] }\n'
    )
    full = sweep("run", str(big), "--store", str(small_disk), "--run-id", "big")
    assert full.returncode == 1 and "No space left on device" in full.stderr
    assert {p: p.read_bytes() for p in before} == before  # the finished run is untouched
    assert not [p for p in small_disk.rglob("*.tmp")] and not list(
        small_disk.rglob("big/big/result.parquet")
    )


def test_a_read_only_store_gives_a_clear_error_and_keeps_what_is_there(
    small_disk: Path, tmp_path: Path
) -> None:
    spec_path = write_spec(tmp_path, shards=1, rows=100)
    assert (
        sweep(
            "run",
            str(spec_path),
            "--store",
            str(small_disk),
            "--run-id",
            "kept",
            env=env_with(TTG_TEST_CHUNK_SECONDS="0"),
        ).returncode
        == 0
    )
    before = {p: p.read_bytes() for p in small_disk.rglob("*") if p.is_file()}
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    refused = sweep("run", str(spec_path), "--store", str(small_disk), "--run-id", "more")
    assert refused.returncode == 2, refused.stderr  # before any task starts
    assert (
        refused.stderr.strip()
        == f"error: store {small_disk} cannot be written ({small_disk} is read-only)"
    )
    assert {p: p.read_bytes() for p in before} == before


def test_a_write_into_a_read_only_store_says_so_instead_of_failing_in_its_cleanup(
    small_disk: Path, tmp_path: Path
) -> None:
    """A resumed run's tasks write into folders that exist: the write fails, and removing the
    temp file it never made must not raise over that error (EROFS even for a missing file)."""
    (small_disk / "slow/r").mkdir(parents=True)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    store = open_store(str(small_disk))
    with (
        pytest.raises(StoreError, match=r"cannot write .*result\.parquet: Read-only file system"),
        store.atomic_writer("slow/r/result.parquet") as path,
    ):
        path.write_bytes(b"rows")
    spec_path = write_spec(tmp_path, shards=1, rows=100)
    resumed = sweep("run", str(spec_path), "--store", str(small_disk), "--resume", "--run-id", "r")
    assert resumed.returncode == 2 and "cannot be written" in resumed.stderr
    assert "Traceback" not in resumed.stderr


def test_resume_removes_the_temp_files_of_writers_that_were_killed(tmp_path: Path) -> None:
    # Two waves of two shards: once a first shard is there, the run is 0.3 s from its end
    # (one wave of two it was ~0.1 s: the reduce, and the kill often came after it)
    spec_path = write_spec(tmp_path, shards=4, rows=800)
    store_dir = tmp_path / "runs"
    run = start_run(spec_path, store_dir, "killed")
    wait_until(lambda: len(shard_files(store_dir, "killed")) >= 1, what="a first shard")
    kill_tree(run)
    assert not (store_dir / "slow/killed/_SUCCESS").exists(), "the run ended before the kill"
    # A reduce killed mid-write: a real writer process, SIGKILLed while its temp file is open.
    writer = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, sys; from steps.store import StoreError, open_store\n"
            "with open_store(sys.argv[1]).atomic_writer('slow/killed/result.parquet') as path:\n"
            "    path.write_bytes(b'x' * 4_000_000)\n"
            "    os.kill(os.getpid(), 9)",
            str(store_dir),
        ],
        cwd=ROOT,
    )
    assert writer.returncode == -signal.SIGKILL
    run_dir = store_dir / "slow/killed"
    assert [p.name for p in run_dir.glob(".result.parquet.*.tmp")]  # left behind
    alive = run_dir / f".summary.json.ttg-{socket.gethostname()}-{os.getpid()}-{'0' * 12}.tmp"
    alive.write_bytes(b"still being written")  # by this process, which is alive
    resumed = sweep(
        "run", str(spec_path), "--store", str(store_dir), "--resume", "--run-id", "killed"
    )
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(p.name for p in run_dir.rglob(".*.tmp")) == [alive.name]


# --- 7. spec drift ------------------------------------------------------------------------------


def test_resume_with_a_changed_spec_refuses_naming_the_hash_mismatch(tmp_path: Path) -> None:
    spec_path = write_spec(tmp_path, shards=3, rows=900)
    store_dir = tmp_path / "runs"
    run = start_run(spec_path, store_dir, "drift")
    wait_until(lambda: len(shard_files(store_dir, "drift")) >= 1, what="a first shard")
    kill_tree(run)
    spec_path.write_text(spec_path.read_text().replace("seed = 0", "seed = 5"))
    drifted = sweep(
        "run", str(spec_path), "--store", str(store_dir), "--resume", "--run-id", "drift"
    )
    assert drifted.returncode == 2 and "was started with spec hash" in drifted.stderr
    assert "mix two specs" in drifted.stderr
