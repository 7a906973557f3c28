"""`results` and `verify`: a finished run, looked at and audited."""

from __future__ import annotations

import argparse

from workflows.cli_args import DEFAULT_LOCAL_STORE, CliParser, non_negative, positive

__all__ = ["add_commands"]


def add_commands(sub: argparse._SubParsersAction[CliParser]) -> None:
    _add_results_command(sub)
    _add_verify_command(sub)


DEFAULT_TOP = 10


def cmd_results(args: argparse.Namespace) -> int:
    from workflows import plot, results
    from workflows.report import print_results
    from workflows.terminal import make_console

    console = make_console()
    if args.plot is not None:
        plot.check_plot_path(args.plot)  # before any output: no matplotlib, a bad file name
    run = results.open_run(args.run, DEFAULT_LOCAL_STORE)
    print_results(console, run, args.top or DEFAULT_TOP, asked=args.top is not None)
    if args.plot is not None:
        drawn = plot.plot_run(run, args.plot)
        console.print(f"plot: {drawn.describe()} -> {drawn.path}", soft_wrap=True, highlight=False)
    return 0


def _add_results_command(sub: argparse._SubParsersAction[CliParser]) -> None:
    res = sub.add_parser("results", help="best rows, column statistics and provenance of a run")
    res.add_argument(
        "run",
        metavar="RUN_OR_URI",
        help="a run folder, a file:// or s3:// run URI (<store>/<name>/<run_id>), "
        f"or a run id in ./{DEFAULT_LOCAL_STORE}",
    )
    res.add_argument(
        "--top",
        type=positive,
        metavar="N",
        help=f"best rows to show (default: {DEFAULT_TOP}; at most the spec's objective.top_k)",
    )
    res.add_argument(
        "--plot",
        metavar="FILE.png",
        help="also draw a heatmap, line or histogram of the objective (needs ttg[plot])",
    )
    res.set_defaults(handler=cmd_results)


def cmd_verify(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from workflows import results
    from workflows.terminal import make_console
    from workflows.verify import verify_run

    console = make_console()
    run = results.open_run(args.run, DEFAULT_LOCAL_STORE)
    with Progress(
        TextColumn("verify"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,  # off a terminal: the result line alone
    ) as bar:
        task = bar.add_task("rows", total=2 * min(args.sample, max(run.rows, 1)))
        report = verify_run(run, args.sample, args.seed, args.force, lambda n: bar.advance(task, n))
    for problem in report.problems:
        make_console(stderr=True).print(f"mismatch: {problem}", soft_wrap=True)
    if not report.ok:
        return 1
    console.print(
        f"verified: {report.sampled:,} of {report.rows:,} rows recomputed and equal bit for bit; "
        f"the summary agrees with the result ({run.ref.run_id}, code {run.code.digest[:12] if run.code else 'unrecorded'})",
        soft_wrap=True,
    )
    return 0


DEFAULT_SAMPLE = 1000


def _add_verify_command(sub: argparse._SubParsersAction[CliParser]) -> None:
    ver = sub.add_parser(
        "verify", help="recompute a random sample of a run's rows and compare them bit for bit"
    )
    ver.add_argument("run", metavar="RUN_OR_URI", help="as for results")
    ver.add_argument(
        "--sample",
        type=positive,
        default=DEFAULT_SAMPLE,
        metavar="N",
        help=f"rows to recompute (default: {DEFAULT_SAMPLE}; all of them if the run has fewer)",
    )
    ver.add_argument(
        "--seed",
        type=non_negative,
        default=0,
        metavar="S",
        help="which rows the sample picks (default: 0)",
    )
    ver.add_argument(
        "--force",
        action="store_true",
        help="compare even if the current code's fingerprint differs from the run's",
    )
    ver.set_defaults(handler=cmd_verify)
