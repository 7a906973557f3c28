"""`python -m bench.run` (`make bench`): every contender as a whole process, side by side.

Entries run round-robin, `--repeat` rounds, each in a fresh scratch folder (and a fresh S3
bucket), so slow drift of a noisy machine hits all of them alike. Reported per entry: the
median wall time, rows/s, the ratio to *limit*, and the peak RSS of its largest process
(plus, in `detail`, the phase timings steps.reduce wrote to the run's summary.json);
then the issue's targets. The table is printed and the JSON written to
`bench/results/<name>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from bench import report, scaling
from bench.entries import Bench, Entry, Job, environment, select
from bench.measure import MeasureError, measure
from bench.sweeps import DEFAULT_SPEC, ROOT, bench_spec, rows_of
from steps.layout import summary_key
from steps.store import StoreError, open_store

RESULTS = ROOT / "bench" / "results"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="a pure grid sweep spec")
    parser.add_argument("--rows", type=int, help="resize the sweep to about this many rows")
    parser.add_argument("--shards", type=int, help="override the spec's shard count")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument("--contenders", help="comma-separated entries (default: all)")
    parser.add_argument("--sample", type=int, default=100_000, help="old worker's sample rows")
    parser.add_argument("--name", help="results file name (default: from the spec and rows)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON")
    parser.add_argument(
        "--scratch", type=Path, help="folder for temporary stores (default: system temp)"
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per process")
    parser.add_argument(
        "--scaling",
        metavar="ROWS,ROWS,...",
        help="scaling curve instead: these sizes (e.g. 1e6,1e7,1e8), entries default run,reduce",
    )
    return parser


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(float(s)) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--scaling takes row counts like 1e6,1e7,1e8, got '{text}'") from None
    if not sizes or min(sizes) < 1:
        raise ValueError(f"--scaling needs positive row counts, got '{text}'")
    return sorted(sizes)


def reduce_timings(job: Job, name: str) -> dict[str, float]:
    """What steps.reduce recorded in the summary.json of the job's run (verify, merge, reduce
    and summary seconds), read before the scratch folder goes. Empty when the command wrote no
    summary, or when its store is S3: the credentials live in the job's env, not the driver's."""

    def option(flag: str) -> str | None:
        return job.argv[job.argv.index(flag) + 1] if flag in job.argv[:-1] else None

    store, run_id = option("--store"), option("--run-id")
    if store is None or run_id is None or store.startswith("s3://"):
        return {}
    try:
        summary = json.loads(open_store(store).get_bytes(summary_key(name, run_id)))
    except (StoreError, ValueError):
        return {}
    timings = summary.get("timings", {})
    return {k: timings[k] for k in report.REDUCE_TIMINGS if isinstance(timings.get(k), int | float)}


def run_rounds(
    bench: Bench, entries: list[Entry], repeat: int, scratch: Path | None, timeout: float
) -> dict[str, report.Outcome]:
    err = Console(stderr=True)
    outcomes = {e.name: report.Outcome(e, e.rows(bench)) for e in entries}
    for entry in entries:
        why = entry.missing()
        if why:
            outcomes[entry.name].error = f"skipped: {why}"
    for round_ in range(1, repeat + 1):
        for entry in entries:
            outcome = outcomes[entry.name]
            if outcome.error:
                continue
            for _ in range(entry.samples_per_round):
                folder = Path(tempfile.mkdtemp(prefix=f"ttg-bench-{entry.name}-", dir=scratch))
                try:
                    job = entry.prepare(bench, folder / "work")
                    sample = measure(
                        job.argv,
                        cwd=ROOT,
                        # the task logs `run` keeps go with the sample's folder
                        env={**environment(job), "TTG_LOG_DIR": str(folder / "logs")},
                        log=folder / "log.txt",
                        timeout=timeout,
                    )
                    detail = {**sample.detail, **reduce_timings(job, bench.spec.name)}
                    detail.update(job.after() if job.after else {})
                    sample = replace(sample, detail=detail)
                except (MeasureError, RuntimeError, OSError) as exc:
                    outcome.error = str(exc)
                    err.print(
                        f"[red]{entry.name} failed[/red]: {exc}", soft_wrap=True, markup=False
                    )
                    break
                finally:
                    shutil.rmtree(folder, ignore_errors=True)
                    # The removal's journal commit (and, on a file system mounted with
                    # `discard`, the freed blocks' trims) lands now, not in the next entry's
                    # first fsync: one entry's clean-up is not charged to the next.
                    os.sync()
                outcome.samples.append(sample)
                err.print(
                    f"round {round_}/{repeat} {entry.name:<14} {outcome.wall(sample):8.3f} s "
                    f"{sample.peak_rss_mib:6.0f} MiB",
                    highlight=False,
                )
    return outcomes


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.scaling:
        return main_scaling(args)
    try:
        spec = bench_spec(args.rows, args.spec, args.shards)
        entries = select(args.contenders)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = rows_of(spec)
    name = args.name or (spec.name if args.rows is None else f"{spec.name}-{rows}")
    if args.name is None and args.shards is not None:
        name += f"-{spec.shards}-shards"
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="ttg-bench-") as session:
        bench = Bench(spec, Path(session), stack, sample=args.sample)
        outcomes = run_rounds(bench, entries, args.repeat, args.scratch, args.timeout)
    doc = report.document(name, spec.canonical(), rows, args.repeat, outcomes)
    path = report.write(doc, args.results)
    report.print_tables(Console(width=160), doc)
    print(f"wrote {path}")
    return 1 if any(o.error and not o.error.startswith("skipped") for o in outcomes.values()) else 0


def main_scaling(args: argparse.Namespace) -> int:
    try:
        specs = [bench_spec(size, args.spec, args.shards) for size in _sizes(args.scaling)]
        entries = select(args.contenders or "run,reduce")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    points, failed = [], False
    for spec in specs:
        with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="ttg-bench-") as session:
            bench = Bench(spec, Path(session), stack, sample=args.sample)
            outcomes = run_rounds(bench, entries, args.repeat, args.scratch, args.timeout)
        failed |= any(o.error and not o.error.startswith("skipped") for o in outcomes.values())
        points.append(scaling.point(rows_of(spec), outcomes))
    name = args.name or f"{specs[0].name}-scaling"
    doc = {
        "name": name,
        "repeat": args.repeat,
        "machine": report.machine(),
        "points": points,
        "flatness": scaling.flatness(points),
    }
    path = report.write(doc, args.results)
    scaling.print_table(Console(width=160), doc)
    print(f"wrote {path}")
    png = scaling.plot(doc, args.results / f"{name}.png")
    print(f"wrote {png}" if png else "matplotlib is not installed: no plot")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
