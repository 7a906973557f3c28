"""What the benchmark measures: each entry a command run as a whole process, and its setup.

Contenders do the whole default sweep (or a stand-in labelled so); step entries time one
pod entry point alone, to show where a run's time and memory go; startup entries time an
interpreter doing next to nothing.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.s3 import S3Server, minio_server
from bench.sweeps import ROOT, rows_of
from steps.layout import result_key
from steps.spec import Spec

SWEEP = ROOT / "workflows" / "sweep.py"
PARALLEL = 2


@dataclass(frozen=True)
class Job:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    after: Callable[[], dict[str, float]] | None = None  # figures read once the job has run


@dataclass
class Bench:
    """The session every entry runs in: the spec, its files, and the S3 server if needed."""

    spec: Spec
    folder: Path
    stack: ExitStack
    sample: int = 100_000
    python: str = sys.executable
    _s3: S3Server | None = None

    @property
    def rows(self) -> int:
        return rows_of(self.spec)

    def spec_file(self, shards: int | None = None) -> Path:
        spec = self.spec if shards is None else self.spec.with_fields(shards=shards)
        path = self.folder / f"spec-{spec.shards}.json"
        if not path.exists():
            path.write_text(spec.to_json())
        return path

    def s3(self) -> S3Server:
        if self._s3 is None:
            self._s3 = self.stack.enter_context(minio_server())
        return self._s3


Prepare = Callable[[Bench, Path], Job]


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str  # "contender", "step" or "startup"
    label: str
    prepare: Prepare  # untimed setup in a fresh scratch folder; returns the command to time
    rows: Callable[[Bench], int] = lambda bench: bench.rows
    samples_per_round: int = 1
    extrapolated: bool = False
    needs: str | None = None  # a module that must be importable (an optional extra)

    def missing(self) -> str | None:
        if self.needs and importlib.util.find_spec(self.needs) is None:
            return f"needs '{self.needs}' (pip install -e '.[bench]')"
        return None


def _run_id() -> str:
    return f"bench-{uuid.uuid4().hex[:5]}"


def _baseline(module: str, *extra: str) -> Prepare:
    def prepare(bench: Bench, scratch: Path) -> Job:
        return Job(
            [
                bench.python,
                "-m",
                module,
                "--spec",
                str(bench.spec_file()),
                "--out",
                str(scratch),
                *extra,
            ]
        )

    return prepare


def _old_worker(bench: Bench, scratch: Path) -> Job:
    return _baseline("bench.old_worker", "--sample", str(bench.sample))(bench, scratch)


def _sweep_run(bench: Bench, store: str, env: dict[str, str]) -> Job:
    argv = [bench.python, str(SWEEP), "run", str(bench.spec_file()), "--store", store]
    argv += ["--parallel", str(PARALLEL), "--run-id", _run_id()]
    return Job(argv, env)


def _run_file(bench: Bench, scratch: Path) -> Job:
    return _sweep_run(bench, str(scratch / "store"), {})


def _run_per_core(bench: Bench, scratch: Path) -> Job:
    job = _sweep_run(bench, str(scratch / "store"), {})
    return Job([*job.argv, "--shards", str(PARALLEL)], job.env)


def _run_s3(bench: Bench, scratch: Path) -> Job:
    """The run, and the bytes it sent to S3 and received from it, beside the result's size."""
    server = bench.s3()
    bucket = server.new_bucket()
    job = _sweep_run(bench, f"s3://{bucket}/runs", server.env)
    run_id = job.argv[job.argv.index("--run-id") + 1]
    received, sent = server.traffic()

    def after() -> dict[str, float]:
        now_received, now_sent = server.traffic()
        key = f"runs/{result_key(bench.spec.name, run_id)}"
        return {
            "s3_upload_bytes": now_received - received,
            "s3_download_bytes": now_sent - sent,
            "result_bytes": server.object_size(bucket, key),
        }

    return replace(job, after=after)


def _step(
    bench: Bench, module: str, spec: Spec, store: Path, run_id: str, *extra: str
) -> list[str]:
    argv = [bench.python, "-m", module, "--spec", spec.to_json(), "--store", str(store)]
    return [*argv, "--run-id", run_id, *extra]


def _compute_shards(bench: Bench, spec: Spec, store: Path, run_id: str) -> None:
    """Untimed setup: every shard of `spec`, PARALLEL processes at a time."""
    pending = list(range(spec.shards))
    while pending:
        batch, pending = pending[:PARALLEL], pending[PARALLEL:]
        running = [
            subprocess.Popen(
                _step(bench, "steps.compute", spec, store, run_id, "--shard", str(i)),
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
            )
            for i in batch
        ]
        if any(code != 0 for code in [p.wait() for p in running]):
            raise RuntimeError(f"setup: steps.compute failed for shards {batch}")


def _shard_compute(bench: Bench, scratch: Path) -> Job:
    spec = bench.spec.with_fields(shards=1)
    return Job(_step(bench, "steps.compute", spec, scratch, "bench-shard", "--shard", "0"))


def _reduce_of(shards: Callable[[Bench], int]) -> Prepare:
    def prepare(bench: Bench, scratch: Path) -> Job:
        spec = bench.spec.with_fields(shards=shards(bench))
        _compute_shards(bench, spec, scratch, "bench-reduce")
        return Job(_step(bench, "steps.reduce", spec, scratch, "bench-reduce"))

    return prepare


def _command(*args: str) -> Prepare:
    return lambda bench, scratch: Job([bench.python, *args])


ENTRIES: tuple[Entry, ...] = (
    Entry(
        "limit",
        "contender",
        "one process: numpy + one zstd Parquet write",
        _baseline("bench.limit"),
    ),
    Entry(
        "limit-chunked",
        "contender",
        "one process: numpy chunk by chunk into one Parquet file",
        _baseline("bench.limit", "--chunked"),
    ),
    Entry("run", "contender", f"sweep.py run --parallel {PARALLEL}, file store", _run_file),
    Entry(
        "run-s3", "contender", f"sweep.py run --parallel {PARALLEL}, S3 (MinIO, loopback)", _run_s3
    ),
    Entry(
        "run-per-core",
        "contender",
        f"sweep.py run --parallel {PARALLEL} --shards {PARALLEL}, file store",
        _run_per_core,
    ),
    Entry(
        "floor",
        "contender",
        f"the floor: multiprocessing Pool({PARALLEL}) writing the shards, no merge",
        _baseline("bench.floor", "--workers", str(PARALLEL)),
    ),
    Entry(
        "dask",
        "contender",
        f"dask LocalCluster({PARALLEL} procs x 1 thread), plain shard writer",
        _baseline("bench.dask_cluster", "--workers", str(PARALLEL)),
        needs="distributed",
    ),
    Entry(
        "dask-merge",
        "contender",
        "dask as above, then its shards merged into one file (not in the issue's target)",
        _baseline("bench.dask_cluster", "--workers", str(PARALLEL), "--merge"),
        needs="distributed",
    ),
    Entry(
        "old-worker",
        "contender",
        "per-parameter loop (extrapolated from a sample)",
        _old_worker,
        extrapolated=True,
    ),
    Entry("shard-compute", "step", "python -m steps.compute, all rows as 1 shard", _shard_compute),
    Entry(
        "shard-reduce", "step", "python -m steps.reduce of that 1 shard", _reduce_of(lambda b: 1)
    ),
    Entry(
        "reduce",
        "step",
        "python -m steps.reduce of the run's shards",
        _reduce_of(lambda b: b.spec.shards),
    ),
    Entry(
        "sweep-help",
        "startup",
        "python workflows/sweep.py --help",
        _command(str(SWEEP), "--help"),
        rows=lambda b: 0,
        samples_per_round=3,
    ),
    Entry(
        "help",
        "startup",
        "python -m steps.compute --help",
        _command("-m", "steps.compute", "--help"),
        rows=lambda b: 0,
        samples_per_round=3,
    ),
    Entry(
        "bare",
        "startup",
        "python -c pass",
        _command("-c", "pass"),
        rows=lambda b: 0,
        samples_per_round=3,
    ),
)


def select(names: str | None) -> list[Entry]:
    """Entries by comma-separated name, in the canonical order; all when `names` is None."""
    if names is None:
        return list(ENTRIES)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = {e.name for e in ENTRIES}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ValueError(
            f"unknown contender(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return [e for e in ENTRIES if e.name in wanted]


def environment(job: Job) -> dict[str, str]:
    return {**os.environ, **job.env}
