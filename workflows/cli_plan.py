"""`plan SPEC [--json]`: rows, shards, result size, core-seconds, pod-hours and wall time of a
sweep before it runs, from timing one sample of its function here (workflows/plan.py)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from workflows import options as defaults
from workflows.cli_args import DEFAULT_SPEC, CliParser, load_spec_arg, positive, positive_seconds

if TYPE_CHECKING:
    from workflows.plan import Plan

__all__ = ["SAMPLE_SECONDS", "add_commands"]

SAMPLE_SECONDS = 10.0  # a slow function is timed on smaller slices, not for much longer


def add_commands(sub: argparse._SubParsersAction[CliParser]) -> None:
    plan = sub.add_parser("plan", help="what a sweep will cost, from timing a sample of it here")
    plan.add_argument("spec", nargs="?", help=f"sweep spec (default: {DEFAULT_SPEC.name})")
    plan.add_argument("--shards", type=positive, help="override the spec's shard count")
    plan.add_argument(
        "--parallelism",
        type=positive,
        default=defaults.DEFAULT_PARALLELISM,
        help=f"pods at once on the cluster (default: {defaults.DEFAULT_PARALLELISM}, as render)",
    )
    plan.add_argument(
        "--seconds",
        type=positive_seconds,
        default=SAMPLE_SECONDS,
        help=f"about how long to time the function (default: {SAMPLE_SECONDS:g})",
    )
    plan.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    plan.set_defaults(handler=cmd_plan)


def cmd_plan(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from steps.function import import_function
    from steps.spec_validate import quantity_value
    from workflows.plan import SAMPLE_ROWS, estimate, stdout_to_stderr, take_sample
    from workflows.terminal import make_console

    spec = load_spec_arg(args.spec, args.shards)
    console = make_console(stderr=True)
    with stdout_to_stderr():  # what the user's module prints, importing or running
        import_function(spec.function)  # a missing module is one line, before any sampling
    with (
        stdout_to_stderr(),
        Progress(
            TextColumn("timing a sample of the function"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
            disable=args.json or not console.is_terminal,
        ) as progress,
    ):
        task = progress.add_task("sample", total=SAMPLE_ROWS)
        sample = take_sample(spec, args.seconds, lambda rows: progress.advance(task, rows))
    plan = estimate(spec, sample, args.parallelism, quantity_value(spec.resources.cpu_limit))
    if args.json:
        print(json.dumps(plan.document(), indent=2))
        return 0
    _print_plan(plan, spec.name)
    return 0


def _print_plan(plan: Plan, name: str) -> None:
    from rich.table import Table

    from workflows.terminal import make_console

    table = Table(title=f"plan of {name}", show_header=False)
    table.add_column("what")
    table.add_column("estimate", justify="right")
    rows = [
        ("rows", f"{plan.rows:,}"),
        ("shards", f"{plan.shards:,}"),
        ("rows per shard", f"{plan.rows_per_shard:,}"),
        (
            "rows kept in the result" + (" (at most)" if plan.kept_rows_at_most else ""),
            f"{plan.kept_rows:,}",
        ),
        ("result size", _size(plan.result_bytes)),
        ("core-seconds of compute", f"{plan.core_seconds:,.1f}"),
        (f"one compute pod ({plan.cpu_limit:g} CPU)", f"{plan.pod_seconds:,.1f} s"),
        ("pod-hours", f"{plan.pod_hours:,.2f}"),
        (f"wall time at parallelism {plan.parallelism}", f"{plan.wall_seconds:,.0f} s"),
        (
            "  compute / reduce",
            f"{plan.compute_wall_seconds:,.0f} s / {plan.reduce_wall_seconds:,.0f} s",
        ),
        ("timed on", f"{plan.sample_rows:,} rows here"),
    ]
    for what, value in rows:
        table.add_row(what, value)
    make_console().print(table)


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count} B"
