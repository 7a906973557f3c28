"""`python workflows/sweep.py`: the TTG command line. Thin: parse, call, print.

Exit codes: 0 success, 1 a run failed, 2 bad input (one line on stderr, no traceback).

Each command imports what only it needs in its handler, so that `render` and `run` start
without the Argo client, the plotting, or the terminal output of the other commands.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

# Run as a script, Python puts workflows/ itself first on sys.path, where its modules could
# shadow installed ones; the project root is what imports should resolve against.
_HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == _HERE:
    sys.path[0] = str(_HERE.parent)

from steps import layout  # noqa: E402
from steps.spec import RESOURCE_KEYS, Spec, SpecError, load_spec, parse_resources  # noqa: E402
from steps.store import Store, StoreError, open_store  # noqa: E402
from workflows import options as defaults  # noqa: E402
from workflows.options import BuildError, BuildOptions, CronOptions  # noqa: E402

if TYPE_CHECKING:
    from datetime import datetime

    from hera.workflows import Workflow
    from rich.console import Console

    from workflows import argo
    from workflows.local import ExecutionResult

DEFAULT_SPEC = _HERE / "sweeps" / "rosenbrock.toml"
DEFAULT_LOCAL_STORE = "runs"


WorkflowLike = TypeVar("WorkflowLike", bound="Workflow")  # Workflow, CronWorkflow, WorkflowTemplate


class UsageError(Exception):
    """Bad input found by the CLI itself."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (exit 2), like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def _non_negative(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got '{value}'") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {number}")
    return number


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{value}'") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {number}")
    return number


def _load(path: str | None, shards: int | None) -> Spec:
    spec = load_spec(path or DEFAULT_SPEC)
    return spec.with_shards(shards) if shards is not None else spec


# --- run ---------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from workflows.terminal import make_console
    from workflows.warm import discard, launch

    # The tasks fork from a warm interpreter; it imports numpy and pyarrow while we render
    # (and the S3 client, 0.2 s a task otherwise, for an S3 store).
    modules = [defaults.COMPUTE_MODULE, defaults.REDUCE_MODULE]
    server = launch([*modules, "steps.store_s3"] if args.store.startswith("s3://") else modules)
    try:
        return _run(args, make_console(), server)
    finally:
        if server is not None:
            discard(server)


def _run(args: argparse.Namespace, console: Console, server: subprocess.Popen[bytes] | None) -> int:
    from steps.function import import_function
    from workflows.build import render
    from workflows.local import execute
    from workflows.manifest import load_manifest
    from workflows.progress import ProgressDisplay
    from workflows.report import print_stored_report
    from workflows.runs import choose_run_id

    spec = _load(args.spec, args.shards)
    store = open_store(args.store)
    store.probe()  # a missing bucket, bad keys or an unwritable folder fail here, not per pod
    import_function(spec.function)  # fail now, not in every pod
    run_id = choose_run_id(store, spec, args.run_id, args.resume)
    if args.resume and run_id is not None:
        console.print(_resume_plan(store, spec, run_id), soft_wrap=True)
    options = BuildOptions(store=store.uri, run_id=run_id)
    manifest = load_manifest(render(spec, options))
    began = time.perf_counter()
    with ProgressDisplay(console, f"{spec.name}", spec) as progress:
        result = execute(
            manifest,
            parallel=args.parallel,
            observer=progress,
            warm_server=server,
            timeout=args.timeout,
        )
    if not result.succeeded:
        return _report_failure(result)
    print_stored_report(
        console, store, spec.name, result.workflow_name, time.perf_counter() - began
    )
    return 0


def _resume_plan(store: Store, spec: Spec, run_id: str) -> str:
    from steps.compute import fingerprint_of
    from workflows.runs import resume_plan

    return resume_plan(store, spec, run_id, fingerprint_of(spec)).describe(run_id)


def _report_failure(result: ExecutionResult) -> int:
    from rich.text import Text

    from workflows.terminal import make_console

    err = make_console(stderr=True)
    if result.interrupted:
        err.print(f"run {result.workflow_name} interrupted; running tasks were stopped")
        return 130
    for node_id in result.failed:
        err.print(Text.assemble(("failed", "red"), f": {node_id}"), soft_wrap=True)
        tail = result.failure_logs.get(node_id, "").rstrip()
        if tail:
            err.print(tail, markup=False, highlight=False, soft_wrap=True)
    err.print(f"run {result.workflow_name} failed; task logs in {result.log_dir}", soft_wrap=True)
    return 1


# --- exec / render -------------------------------------------------------------------------


def cmd_exec(args: argparse.Namespace) -> int:
    from rich.text import Text

    from workflows.local import execute
    from workflows.manifest import load_manifest
    from workflows.progress import ProgressDisplay
    from workflows.terminal import make_console

    console = make_console()
    parameters = dict(_split_parameter(p) for p in args.parameter)
    manifest = load_manifest(_read_manifest(args.manifest))
    with ProgressDisplay(console, "workflow") as progress:
        result = execute(
            manifest, parameters, parallel=args.parallel, observer=progress, timeout=args.timeout
        )
    if not result.succeeded:
        return _report_failure(result)
    console.print(
        Text.assemble(
            ("Succeeded", "green"),
            f": {result.workflow_name}: {progress.tasks_done} tasks in {progress.seconds:.1f}s",
        )
    )
    return 0


def _read_manifest(path: str) -> str:
    """A manifest file's text, or stdin's for `-`: bounded in size, UTF-8 or refused."""
    from workflows.manifest import MAX_MANIFEST_BYTES, decode_manifest

    try:
        if path == "-":
            stream = getattr(sys.stdin, "buffer", None)
            if stream is None:
                raise UsageError("cannot read manifest -: there is no standard input")
            return decode_manifest(stream.read(MAX_MANIFEST_BYTES + 1), "manifest on stdin")
        with Path(path).open("rb") as file:
            return decode_manifest(file.read(MAX_MANIFEST_BYTES + 1), f"manifest {path}")
    except OSError as exc:
        raise UsageError(f"cannot read manifest {path}: {exc.strerror or exc}") from None


def _split_parameter(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise UsageError(f"-p expects NAME=VALUE, got '{text}'")
    return name, value


def cmd_render(args: argparse.Namespace) -> int:
    from workflows.build import render

    spec = _load(args.spec, args.shards)
    if args.run_id is not None and not layout.RUN_ID_RE.fullmatch(args.run_id):
        raise UsageError(f"--run-id '{args.run_id}' must be a DNS-1123 label")
    options = replace(_build_options(args, spec, args.namespace), run_id=args.run_id)
    cron = CronOptions(schedules=tuple(args.cron or ()), timezone=args.timezone)
    sys.stdout.write(render(spec, options, args.kind, cron))
    return 0


# --- submit / schedule / status: the Argo Server ------------------------------------------

DEFAULT_POLL_SECONDS = 5.0


def _add_cluster_build_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of every command that builds a sweep's manifest for a cluster."""
    parser.add_argument("spec", nargs="?", help=f"sweep spec (default: {DEFAULT_SPEC.name})")
    parser.add_argument("--shards", type=_positive, help="override the spec's shard count")
    parser.add_argument(
        "--image",
        default=defaults.DEFAULT_IMAGE,
        help=f"worker image (default: {defaults.DEFAULT_IMAGE})",
    )
    parser.add_argument(
        "--store",
        default=defaults.DEFAULT_CLUSTER_STORE,
        help=f"where the pods write, as seen from the cluster (default: {defaults.DEFAULT_CLUSTER_STORE})",
    )
    parser.add_argument(
        "--service-account",
        default=defaults.DEFAULT_SERVICE_ACCOUNT,
        help=f"the pods' service account (default: {defaults.DEFAULT_SERVICE_ACCOUNT})",
    )
    parser.add_argument(
        "--parallelism",
        type=_positive,
        default=defaults.DEFAULT_PARALLELISM,
        help=f"pods at once (default: {defaults.DEFAULT_PARALLELISM})",
    )
    parser.add_argument(
        "--node-status-offload",
        action="store_true",
        help=(
            f"allow more than {defaults.MAX_SHARDS_IN_STATUS:,} shards: the controller offloads"
            " node status to a database (persistence.nodeStatusOffLoad)"
        ),
    )
    for key in RESOURCE_KEYS:
        flag = "--" + key.replace("_", "-")
        parser.add_argument(
            flag, metavar="QUANTITY", help=f"{key} of each pod (default: the spec's)"
        )


def _add_namespace_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n",
        "--namespace",
        help="Kubernetes namespace (default: $ARGO_NAMESPACE, else argo)",
    )


def _build_options(args: argparse.Namespace, spec: Spec, namespace: str | None) -> BuildOptions:
    open_store(args.store)  # validates the scheme
    if spec.shards > defaults.MAX_SHARDS_IN_STATUS and not args.node_status_offload:
        raise UsageError(
            f"{spec.shards:,} shards do not fit in a Workflow's status (at most"
            f" {defaults.MAX_SHARDS_IN_STATUS:,}; docs/scaling.md): use fewer shards, or"
            " --node-status-offload if the controller offloads node status"
        )
    flags = {key: getattr(args, key) for key in RESOURCE_KEYS if getattr(args, key) is not None}
    return BuildOptions(
        store=args.store,
        image=args.image,
        namespace=namespace,
        service_account=args.service_account,
        parallelism=args.parallelism,
        resources=parse_resources(flags, "resource flags", spec.resources),
    )


def _cluster_build(args: argparse.Namespace) -> tuple[Spec, argo.ArgoConfig, BuildOptions]:
    """Check the local input first (spec, store URI), then where the server is."""
    from workflows import argo

    spec = _load(args.spec, args.shards)
    options = _build_options(args, spec, None)
    config = argo.ArgoConfig.from_env(args.namespace)
    return spec, config, replace(options, namespace=config.namespace)


def _linted(workflow: WorkflowLike) -> WorkflowLike:
    """Never send the server a manifest our own lint finds wrong."""
    from workflows.lint import lint

    problems = lint(workflow.to_dict())
    if problems:
        raise UsageError(f"the rendered manifest fails the lint: {problems[0]}")
    return workflow


def cmd_submit(args: argparse.Namespace) -> int:
    from rich.text import Text

    from workflows import argo
    from workflows.build import build_workflow
    from workflows.terminal import make_console
    from workflows.watch import watch_run

    console = make_console()
    spec, config, options = _cluster_build(args)
    name = argo.submit_workflow(config, _linted(build_workflow(spec, options)))
    ns = config.namespace
    console.print(
        Text.assemble("submitted ", (name, "bold"), f" to namespace {ns}"), soft_wrap=True
    )
    console.print(f"ui: {argo.ui_url(config, name)}", soft_wrap=True, highlight=False)
    console.print("follow it with:", soft_wrap=True)
    for command in (
        f"argo watch -n {ns} {name}",
        f"argo logs -n {ns} {name} --follow",
        f"kubectl get pods -n {ns} -l workflows.argoproj.io/workflow={name} -w",
    ):
        console.print(f"  {command}", soft_wrap=True, markup=False, highlight=False)
    if not args.wait:
        return 0
    began = time.perf_counter()
    status = watch_run(console, config, spec, name, args.poll, args.timeout)
    if not status.succeeded:
        make_console(stderr=True).print(
            Text.assemble(
                (status.phase, "red"), f": workflow {name}: {status.message or 'no message'}"
            ),
            soft_wrap=True,
        )
        return 1
    _print_summary(console, spec, args.store, name, _seconds(status) or time.perf_counter() - began)
    return 0


def _seconds(status: argo.WorkflowStatus) -> float | None:
    if status.started_at is None or status.finished_at is None:
        return None
    return (status.finished_at - status.started_at).total_seconds()


def _print_summary(console: Console, spec: Spec, store_uri: str, name: str, seconds: float) -> None:
    """The same report as `run`, when the cluster's store can be read from here."""
    from workflows.report import print_stored_report
    from workflows.results import ResultsError

    try:
        print_stored_report(console, open_store(store_uri), spec.name, name, seconds)
    except (StoreError, ResultsError) as exc:
        from rich.text import Text

        console.print(
            Text.assemble(
                ("Succeeded", "green"), f": {name}; its summary is not readable from here: {exc}"
            ),
            soft_wrap=True,
        )


def cmd_schedule(args: argparse.Namespace) -> int:
    from rich.text import Text

    from workflows import argo
    from workflows.build import build_cron_workflow
    from workflows.terminal import make_console

    console = make_console()
    spec, config, options = _cluster_build(args)
    cron = CronOptions(schedules=tuple(args.cron), timezone=args.timezone)
    outcome = argo.schedule_cron(config, _linted(build_cron_workflow(spec, options, cron)))
    ns, name = config.namespace, spec.name
    console.print(
        Text.assemble(
            f"{outcome} cron workflow ",
            (name, "bold"),
            f" in namespace {ns}: {' | '.join(cron.schedules)} ({cron.timezone})",
        ),
        soft_wrap=True,
    )
    console.print(f"ui: {argo.ui_url(config, name, 'cron-workflows')}", soft_wrap=True)
    for command in (
        f"argo cron get -n {ns} {name}",
        f"argo list -n {ns} -l workflows.argoproj.io/cron-workflow={name}",
    ):
        console.print(f"  {command}", soft_wrap=True, markup=False, highlight=False)
    return 0


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def cmd_status(args: argparse.Namespace) -> int:
    from workflows import argo
    from workflows.terminal import make_console

    console = make_console()
    config = argo.ArgoConfig.from_env(args.namespace)
    status = argo.get_workflow(config, args.run)
    shards = status.shards
    retries = f", {shards.retries} retried" if shards.retries else ""
    lines = [
        ("workflow", f"{status.name} (namespace {status.namespace})"),
        ("phase", status.phase),
        (
            "shards",
            f"{shards.succeeded} succeeded / {shards.running} running / {shards.failed} failed "
            f"/ {shards.pending} pending (of {shards.total}{retries})",
        ),
        ("started", _when(status.started_at)),
        ("finished", _when(status.finished_at)),
        ("message", status.message or "-"),
        ("ui", argo.ui_url(config, status.name)),
    ]
    for label, value in lines:
        console.print(f"{label:<9} {value}", soft_wrap=True, markup=False, highlight=False)
    return 0


def _add_argo_commands(sub: argparse._SubParsersAction[_Parser]) -> None:
    submit = sub.add_parser("submit", help="send the sweep's Workflow to the Argo Server")
    _add_cluster_build_arguments(submit)
    _add_namespace_argument(submit)
    submit.add_argument(
        "--wait", action="store_true", help="follow the run, then print its summary"
    )
    submit.add_argument(
        "--poll",
        type=_positive_seconds,
        default=DEFAULT_POLL_SECONDS,
        metavar="SECONDS",
        help=f"with --wait: seconds between status reads (default: {DEFAULT_POLL_SECONDS:g})",
    )
    submit.add_argument(
        "--timeout",
        type=_positive_seconds,
        metavar="SECONDS",
        help="with --wait: give up after this long (default: wait until the run ends)",
    )
    submit.set_defaults(handler=cmd_submit)

    schedule = sub.add_parser(
        "schedule", help="create or update the sweep's CronWorkflow on the Argo Server"
    )
    _add_cluster_build_arguments(schedule)
    _add_namespace_argument(schedule)
    schedule.add_argument(
        "--cron",
        action="append",
        required=True,
        metavar="EXPR",
        help='cron schedule, e.g. "0 2 * * *"; repeat for several',
    )
    schedule.add_argument("--timezone", default="UTC", help="IANA time zone (default: UTC)")
    schedule.set_defaults(handler=cmd_schedule)

    status = sub.add_parser("status", help="phase and shard counts of a run on the Argo Server")
    status.add_argument("run", metavar="RUN", help="the workflow name (the run id)")
    _add_namespace_argument(status)
    status.set_defaults(handler=cmd_status)


def _positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got '{value}'") from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value}")
    return seconds


# --- results: read a finished run ---------------------------------------------------------

DEFAULT_TOP = 10


def cmd_results(args: argparse.Namespace) -> int:
    from workflows import plot, results
    from workflows.report import print_results
    from workflows.terminal import make_console

    console = make_console()
    if args.plot is not None:
        plot.check_plot_path(args.plot)  # before any output: no matplotlib, a bad file name
    run = results.open_run(args.run, DEFAULT_LOCAL_STORE)
    print_results(console, run, args.top)
    if args.plot is not None:
        drawn = plot.plot_run(run, args.plot)
        console.print(f"plot: {drawn.describe()} -> {drawn.path}", soft_wrap=True, highlight=False)
    return 0


def _add_results_command(sub: argparse._SubParsersAction[_Parser]) -> None:
    res = sub.add_parser("results", help="best rows, column statistics and provenance of a run")
    res.add_argument(
        "run",
        metavar="RUN_OR_URI",
        help="a run folder, a file:// or s3:// run URI (<store>/<name>/<run_id>), "
        f"or a run id in ./{DEFAULT_LOCAL_STORE}",
    )
    res.add_argument(
        "--top",
        type=_positive,
        default=DEFAULT_TOP,
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


def _add_verify_command(sub: argparse._SubParsersAction[_Parser]) -> None:
    ver = sub.add_parser(
        "verify", help="recompute a random sample of a run's rows and compare them bit for bit"
    )
    ver.add_argument("run", metavar="RUN_OR_URI", help="as for results")
    ver.add_argument(
        "--sample",
        type=_positive,
        default=DEFAULT_SAMPLE,
        metavar="N",
        help=f"rows to recompute (default: {DEFAULT_SAMPLE}; all of them if the run has fewer)",
    )
    ver.add_argument(
        "--seed",
        type=_non_negative,
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


# --- wiring --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sweep.py", description="TTG: large parameter sweeps on Argo Workflows.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="render the sweep's Workflow and execute it locally")
    run.add_argument("spec", nargs="?", help=f"sweep spec (default: {DEFAULT_SPEC.name})")
    run.add_argument(
        "--store",
        default=DEFAULT_LOCAL_STORE,
        help="folder, file:// or s3:// URI (default: ./runs)",
    )
    run.add_argument("--shards", type=_positive, help="override the spec's shard count")
    run.add_argument(
        "--parallel",
        type=_positive,
        default=os.cpu_count() or 1,
        help="tasks at once (default: CPU count)",
    )
    run.add_argument("--run-id", help="name of the run (default: <name>-xxxxx)")
    run.add_argument(
        "--resume", action="store_true", help="continue an unfinished run (default: the latest one)"
    )
    run.add_argument(
        "--timeout",
        type=_positive_seconds,
        metavar="SECONDS",
        help="stop the run and fail it after this long (default: no limit)",
    )
    run.set_defaults(handler=cmd_run)

    exe = sub.add_parser(
        "exec", help="execute an Argo Workflow manifest locally (a supported subset)"
    )
    exe.add_argument("manifest", help="Workflow YAML/JSON file, or - for stdin")
    exe.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE")
    exe.add_argument("--parallel", type=_positive, default=os.cpu_count() or 1)
    exe.add_argument(
        "--timeout",
        type=_positive_seconds,
        metavar="SECONDS",
        help="stop the run and fail it after this long, as spec.activeDeadlineSeconds would",
    )
    exe.set_defaults(handler=cmd_exec)

    ren = sub.add_parser(
        "render", help="print the sweep's Workflow, CronWorkflow or WorkflowTemplate"
    )
    _add_cluster_build_arguments(ren)
    ren.add_argument("-n", "--namespace", help="metadata.namespace (default: none)")
    ren.add_argument("--kind", choices=defaults.KINDS, default="workflow")
    ren.add_argument("--cron", action="append", metavar="EXPR", help="with --kind cron; repeatable")
    ren.add_argument("--timezone", default="UTC", help="with --kind cron (default: UTC)")
    ren.add_argument("--run-id", help="fixed Workflow name instead of generateName")
    ren.set_defaults(handler=cmd_render)
    _add_argo_commands(sub)
    _add_results_command(sub)
    _add_verify_command(sub)
    return parser


def bad_input() -> tuple[type[Exception], ...]:
    """The errors that are bad input. Called only once a command failed, so that its imports
    (the Argo client, the function contract, ...) cost nothing to the commands that succeed."""
    from steps.function import FunctionError
    from workflows.argo import ArgoError
    from workflows.manifest import ManifestError
    from workflows.results import ResultsError
    from workflows.runs import RunChoiceError

    return (
        SpecError,
        StoreError,
        FunctionError,
        ManifestError,
        RunChoiceError,
        UsageError,
        ArgoError,
        BuildError,
        ResultsError,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except bad_input() as exc:  # evaluated only when an exception reaches this clause
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    code = main()
    # Exiting collects every object again, ~0.1 s with Hera's models loaded; they are about
    # to be freed anyway.
    gc.freeze()
    sys.exit(code)
