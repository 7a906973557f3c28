"""`python workflows/sweep.py`: the TTG command line. Thin: parse, call, print.

Exit codes: 0 success, 1 a run failed, 2 bad input (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Run as a script, Python puts workflows/ itself first on sys.path, where its modules could
# shadow installed ones; the project root is what imports should resolve against.
_HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == _HERE:
    sys.path[0] = str(_HERE.parent)

from rich.console import Console  # noqa: E402

from steps import layout  # noqa: E402
from steps.function import FunctionError, import_function  # noqa: E402
from steps.spec import Spec, SpecError, load_spec  # noqa: E402
from steps.store import StoreError, open_store  # noqa: E402
from workflows.build import DEFAULT_CLUSTER_STORE, DEFAULT_IMAGE, BuildOptions, render  # noqa: E402
from workflows.local import ExecutionResult, execute  # noqa: E402
from workflows.manifest import ManifestError, load_manifest  # noqa: E402
from workflows.progress import ProgressDisplay  # noqa: E402
from workflows.report import print_run_report  # noqa: E402
from workflows.runs import RunChoiceError, choose_run_id  # noqa: E402

DEFAULT_SPEC = _HERE / "sweeps" / "rosenbrock.toml"
DEFAULT_LOCAL_STORE = "runs"


class UsageError(Exception):
    """Bad input found by the CLI itself."""


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


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    spec = _load(args.spec, args.shards)
    store = open_store(args.store)
    import_function(spec.function)  # fail now, not in every pod
    run_id = choose_run_id(store, spec, args.run_id, args.resume)
    options = BuildOptions(store=store.uri, run_id=run_id)
    manifest = load_manifest(render(spec, options))
    began = time.perf_counter()
    with ProgressDisplay(console, f"{spec.name}", spec) as progress:
        result = execute(manifest, parallel=args.parallel, observer=progress)
    if not result.succeeded:
        return _report_failure(console, result)
    summary = json.loads(store.get_bytes(layout.summary_key(spec.name, result.workflow_name)))
    result_url = store.url(layout.result_key(spec.name, result.workflow_name))
    print_run_report(console, summary, result_url, time.perf_counter() - began)
    console.print(
        f"run id: {result.workflow_name}   summary: {store.url(layout.summary_key(spec.name, result.workflow_name))}"
    )
    return 0


def _report_failure(console: Console, result: ExecutionResult) -> int:
    err = Console(stderr=True)
    if result.interrupted:
        err.print(f"run {result.workflow_name} interrupted; running tasks were stopped")
        return 130
    for node_id in result.failed:
        err.print(f"[red]failed[/red]: {node_id}")
        tail = result.failure_logs.get(node_id, "").rstrip()
        if tail:
            err.print(tail, markup=False, highlight=False)
    err.print(f"run {result.workflow_name} failed; task logs in {result.log_dir}")
    return 1


# --- exec / render -------------------------------------------------------------------------


def cmd_exec(args: argparse.Namespace, console: Console) -> int:
    parameters = dict(_split_parameter(p) for p in args.parameter)
    text = sys.stdin.read() if args.manifest == "-" else _read_manifest(args.manifest)
    manifest = load_manifest(text)
    with ProgressDisplay(console, "workflow") as progress:
        result = execute(manifest, parameters, parallel=args.parallel, observer=progress)
    if not result.succeeded:
        return _report_failure(console, result)
    console.print(
        f"[green]Succeeded[/green]: {result.workflow_name}: "
        f"{progress.tasks_done} tasks in {progress.seconds:.1f}s"
    )
    return 0


def _read_manifest(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read manifest {path}: {exc.strerror}") from None


def _split_parameter(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise UsageError(f"-p expects NAME=VALUE, got '{text}'")
    return name, value


def cmd_render(args: argparse.Namespace, console: Console) -> int:
    spec = _load(args.spec, args.shards)
    if args.run_id is not None and not layout.RUN_ID_RE.match(args.run_id):
        raise UsageError(f"--run-id '{args.run_id}' must be a DNS-1123 label")
    open_store(args.store)  # validates the scheme
    sys.stdout.write(
        render(spec, BuildOptions(store=args.store, image=args.image, run_id=args.run_id))
    )
    return 0


# --- wiring --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sweep.py", description="TTG: large parameter sweeps on Argo Workflows."
    )
    sub = parser.add_subparsers(dest="command", required=True)

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
    run.set_defaults(handler=cmd_run)

    exe = sub.add_parser(
        "exec", help="execute an Argo Workflow manifest locally (a supported subset)"
    )
    exe.add_argument("manifest", help="Workflow YAML/JSON file, or - for stdin")
    exe.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE")
    exe.add_argument("--parallel", type=_positive, default=os.cpu_count() or 1)
    exe.set_defaults(handler=cmd_exec)

    ren = sub.add_parser("render", help="print the sweep's Argo Workflow as YAML")
    ren.add_argument("spec", nargs="?", help=f"sweep spec (default: {DEFAULT_SPEC.name})")
    ren.add_argument("--shards", type=_positive)
    ren.add_argument("--image", default=DEFAULT_IMAGE)
    ren.add_argument("--store", default=DEFAULT_CLUSTER_STORE)
    ren.add_argument("--run-id", help="fixed Workflow name instead of generateName")
    ren.set_defaults(handler=cmd_render)
    return parser


BAD_INPUT: tuple[type[Exception], ...] = (
    SpecError,
    StoreError,
    FunctionError,
    ManifestError,
    RunChoiceError,
    UsageError,
)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    handler: Callable[[argparse.Namespace, Console], int] = args.handler
    try:
        return handler(args, console)
    except BAD_INPUT as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
