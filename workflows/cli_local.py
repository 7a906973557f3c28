"""`run` and `exec`: a sweep's Workflow, or any supported manifest, executed here."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from steps import layout
from steps.spec import Spec
from steps.store import Store, open_store
from workflows import options as defaults
from workflows.cli_args import (
    DEFAULT_LOCAL_STORE,
    DEFAULT_SPEC,
    CliParser,
    UsageError,
    called_as_ttg,
    load_spec_arg,
    positive,
    positive_seconds,
)
from workflows.options import BuildOptions

if TYPE_CHECKING:
    from rich.console import Console

    from workflows.local import ExecutionResult
    from workflows.runs import ResumePlan

__all__ = ["add_commands"]


def add_commands(sub: argparse._SubParsersAction[CliParser]) -> None:
    run = sub.add_parser("run", help="render the sweep's Workflow and execute it locally")
    run.add_argument("spec", nargs="?", help=f"sweep spec (default: {DEFAULT_SPEC.name})")
    run.add_argument(
        "--store",
        default=DEFAULT_LOCAL_STORE,
        help="folder, file:// or s3:// URI (default: ./runs)",
    )
    run.add_argument("--shards", type=positive, help="override the spec's shard count")
    run.add_argument(
        "--parallel",
        type=positive,
        default=os.cpu_count() or 1,
        help="tasks at once (default: CPU count)",
    )
    run.add_argument("--run-id", help="name of the run (default: <name>-xxxxx)")
    run.add_argument(
        "--resume", action="store_true", help="continue an unfinished run (default: the latest one)"
    )
    run.add_argument(
        "--timeout",
        type=positive_seconds,
        metavar="SECONDS",
        help="stop the run and fail it after this long (default: no limit)",
    )
    run.set_defaults(handler=cmd_run)

    exe = sub.add_parser(
        "exec", help="execute an Argo Workflow manifest locally (a supported subset)"
    )
    exe.add_argument("manifest", help="Workflow YAML/JSON file, or - for stdin")
    exe.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE")
    exe.add_argument("--parallel", type=positive, default=os.cpu_count() or 1)
    exe.add_argument(
        "--timeout",
        type=positive_seconds,
        metavar="SECONDS",
        help="stop the run and fail it after this long, as spec.activeDeadlineSeconds would",
    )
    exe.set_defaults(handler=cmd_exec)


def cmd_run(args: argparse.Namespace) -> int:
    from workflows.warm import discard, launch

    # The tasks fork from a warm interpreter; it imports numpy and pyarrow while we render
    # (and the S3 client, 0.2 s a task otherwise, for an S3 store).
    modules = [defaults.COMPUTE_MODULE, defaults.REDUCE_MODULE]
    server = launch([*modules, "steps.store_s3"] if args.store.startswith("s3://") else modules)
    try:
        from workflows.terminal import make_console  # rich: after the server is started

        return _run(args, make_console(), server)
    finally:
        if server is not None:
            discard(server)


def _run(args: argparse.Namespace, console: Console, server: subprocess.Popen[bytes] | None) -> int:
    from steps.function import import_function
    from workflows.local import execute, generated_name
    from workflows.manifest import load_manifest
    from workflows.progress import ProgressDisplay
    from workflows.render_cache import cached_render
    from workflows.report import print_stored_report
    from workflows.results import RunRef
    from workflows.run_list import clear_failed, is_complete, mark_failed
    from workflows.run_logs import run_log_dir
    from workflows.runs import choose_run_id

    spec = load_spec_arg(args.spec, args.shards)
    store = open_store(args.store)
    store.probe()  # a missing bucket, bad keys or an unwritable folder fail here, not per pod
    import_function(spec.function)  # fail now, not in every pod
    chosen = choose_run_id(store, spec, args.run_id, args.resume)
    run_id = chosen or generated_name(f"{spec.name}-")  # named here: its logs are kept by it
    kept_rows = 0
    if args.resume and chosen is not None:
        if is_complete(RunRef(store, spec.name, run_id)):
            console.print(
                f"{run_id} is already complete: nothing computed, nothing rewritten "
                f"(result: {store.url(layout.result_key(spec.name, run_id))})",
                soft_wrap=True,
            )
            return 0
        plan = _resume_plan(store, spec, run_id)
        console.print(plan.describe(run_id), soft_wrap=True)
        kept_rows = plan.kept_rows
        clear_failed(store, spec.name, run_id)  # running again: not failed until it fails
    options = BuildOptions(store=store.uri, run_id=run_id)
    manifest = load_manifest(cached_render(spec, options))  # what `render` prints
    logs = run_log_dir(spec.name, run_id)
    shutil.rmtree(logs, ignore_errors=True)  # an earlier execution's: they would read as this one's
    began = time.perf_counter()
    with ProgressDisplay(console, f"{spec.name}", spec, kept_rows=kept_rows) as progress:
        result = execute(
            manifest,
            parallel=args.parallel,
            observer=progress,
            warm_server=server,
            timeout=args.timeout,
            log_dir=logs,
        )
    if not result.succeeded:
        if not result.interrupted:
            problem = mark_failed(store, spec.name, run_id, "; ".join(result.failed) or "failed")
            if problem:
                print(
                    f"(the failure could not be recorded in the store: {problem})", file=sys.stderr
                )
        return _report_failure(result, _resume_command(args, result.workflow_name))
    print_stored_report(
        console, store, spec.name, result.workflow_name, time.perf_counter() - began
    )
    return 0


def _resume_plan(store: Store, spec: Spec, run_id: str) -> ResumePlan:
    from steps.compute import fingerprint_of
    from workflows.runs import resume_plan

    return resume_plan(store, spec, run_id, fingerprint_of(spec))


def _resume_command(args: argparse.Namespace, run_id: str) -> str:
    """The command that continues this run: as the user called TTG, with what fixes the spec
    and the store (the spec hash depends on `--shards`), and the run id."""
    called = ["ttg"] if called_as_ttg() else [sys.executable, sys.argv[0]]
    words = [*called, "run", *([args.spec] if args.spec else [])]
    if args.store != DEFAULT_LOCAL_STORE:
        words += ["--store", args.store]
    if args.shards is not None:
        words += ["--shards", str(args.shards)]
    return shlex.join([*words, "--resume", "--run-id", run_id])


def _report_failure(result: ExecutionResult, resume: str | None = None) -> int:
    from rich.text import Text

    from workflows.terminal import make_console

    err = make_console(stderr=True)
    if result.interrupted:
        err.print(f"run {result.workflow_name} interrupted; running tasks were stopped")
        if resume:
            err.print(f"resume it with: {resume}", soft_wrap=True, markup=False, highlight=False)
        return 130
    for node_id in result.failed:
        err.print(Text.assemble(("failed", "red"), f": {node_id}"), soft_wrap=True)
        tail = result.failure_logs.get(node_id, "").rstrip()
        if tail:
            err.print(tail, markup=False, highlight=False, soft_wrap=True)
    err.print(f"run {result.workflow_name} failed; task logs in {result.log_dir}", soft_wrap=True)
    if resume:
        err.print(
            f"once fixed, resume it with: {resume}", soft_wrap=True, markup=False, highlight=False
        )
    return 1


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
