"""`list`, `delete` and `logs`: the runs a store holds, removing them, and their tasks' logs."""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
from pathlib import Path

from workflows.cli_args import DEFAULT_LOCAL_STORE, CliParser, UsageError

__all__ = ["add_commands"]


def add_commands(sub: argparse._SubParsersAction[CliParser]) -> None:
    listing = sub.add_parser("list", help="the runs in a store: state, rows, start, duration, code")
    listing.add_argument(
        "--store",
        default=DEFAULT_LOCAL_STORE,
        help="folder, file:// or s3:// URI (default: ./runs)",
    )
    listing.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    listing.set_defaults(handler=cmd_list)

    delete = sub.add_parser("delete", help="remove a run, or only its shards, from its store")
    delete.add_argument(
        "run", metavar="RUN_OR_URI", help="a run id in --store, a run folder or URI"
    )
    delete.add_argument(
        "--store",
        default=DEFAULT_LOCAL_STORE,
        help="where a bare run id is looked up (default: ./runs)",
    )
    delete.add_argument(
        "--shards-only",
        action="store_true",
        help="keep the result, summary and _SUCCESS of a complete run; remove its shards",
    )
    delete.add_argument("--yes", action="store_true", help="do not ask before deleting")
    delete.set_defaults(handler=cmd_delete)

    logs = sub.add_parser("logs", help="a run's task logs: kept locally, else from the Argo Server")
    logs.add_argument("run", metavar="RUN", help="the run id (the Workflow's name), or NAME/RUN_ID")
    logs.add_argument(
        "task",
        nargs="?",
        metavar="TASK",
        help="compute, a shard number such as 3, compute(3:3), or reduce",
    )
    logs.add_argument("-n", "--namespace", help="on Argo: the namespace (default: $ARGO_NAMESPACE)")
    logs.set_defaults(handler=cmd_logs)


def cmd_list(args: argparse.Namespace) -> int:
    from steps.store import FileStore, open_store
    from workflows.run_list import list_runs
    from workflows.terminal import make_console

    store = open_store(args.store)
    if isinstance(store, FileStore) and not store.root.is_dir():
        raise UsageError(f"no store at {args.store}: no such folder")
    store.probe()  # a missing bucket or bad keys are an error, not an empty store
    runs = list_runs(store)
    if args.json:
        print(json.dumps({"store": args.store, "runs": [r.document() for r in runs]}, indent=2))
        return 0
    console = make_console()
    if not runs:
        console.print(f"no runs in {args.store}", soft_wrap=True)
        return 0
    if not console.is_terminal:  # a pipe or a file: no row wraps, every id stays whole
        console = make_console(width=200)
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"runs in {args.store}")
    for column in ("name", "run id", "state", "rows", "shards", "started", "duration", "code"):
        table.add_column(column, justify="right" if column in ("rows", "duration") else "left")
    style = {"complete": "green", "failed": "red", "incomplete": "yellow"}
    for run in runs:
        table.add_row(
            run.name,
            run.run_id,
            Text(run.state, style=style[run.state]),
            "-" if run.rows is None else f"{run.rows:,}",
            f"{run.shards_written}/{run.shards if run.shards is not None else '?'}",
            (run.started_at or "-")[:19].replace("T", " "),  # UTC, to the second
            "-" if run.seconds is None else f"{run.seconds:.1f}s",
            run.code or "-",
        )
    console.print(table)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from steps import layout
    from steps.store import FileStore
    from workflows.results import find_run_in
    from workflows.run_list import is_complete, run_objects
    from workflows.run_logs import run_log_dir

    ref = find_run_in(args.run, args.store)
    store = ref.store
    keys = run_objects(store, ref.name, ref.run_id)
    if not keys:
        raise UsageError(f"no run {ref.run_id} at {ref.url}")
    what = "run"
    if args.shards_only:
        if not is_complete(ref):
            raise UsageError(
                f"run {ref.run_id} is not complete (no readable result with _SUCCESS): its "
                "shards are all there is of it (delete the whole run, or resume it first)"
            )
        prefix = ref.key(layout.shards_prefix) + "/"
        keys = [key for key in keys if key.startswith(prefix)]
        what = "shards of run"
    if not keys:
        print(f"nothing to delete: run {ref.run_id} has no shards left")
        return 0
    if not args.yes and not _confirm(
        f"delete the {what} {ref.run_id} ({len(keys)} objects) at {ref.url}?"
    ):
        print("nothing deleted", file=sys.stderr)
        return 1
    for key in keys:
        store.remove(key)
    if isinstance(store, FileStore):  # a folder store keeps folders; leave none empty behind
        _prune_empty(store.root / layout.run_prefix(ref.name, ref.run_id))
    if not args.shards_only:  # the run's local task logs go with it
        shutil.rmtree(run_log_dir(ref.name, ref.run_id), ignore_errors=True)
    print(f"deleted {len(keys)} objects: the {what} {ref.run_id} at {ref.url}")
    return 0


def _prune_empty(folder: Path) -> None:
    """Remove the empty folders of a run folder, deepest first, and the run folder if empty."""
    for path in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
        with contextlib.suppress(OSError):
            path.rmdir()
    with contextlib.suppress(OSError):
        folder.rmdir()


def _confirm(question: str) -> bool:
    """Ask on the terminal; no answer (end of input) is no."""
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        print(file=sys.stderr)
        return False
    return answer.strip().lower() in ("y", "yes")


def cmd_logs(args: argparse.Namespace) -> int:
    from workflows.run_logs import log_dirs, task_logs

    try:
        folders = log_dirs(args.run)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if len(folders) > 1:
        named = ", ".join(f"{f.parent.name}/{f.name}" for f in folders)
        raise UsageError(
            f"run id {args.run} is in several sweeps' logs ({named}): give NAME/RUN_ID"
        )
    if not folders:
        return _argo_logs(args)
    paths = task_logs(folders[0], args.task)
    if not paths:
        what = f"task '{args.task}'" if args.task else "task log"
        raise UsageError(f"run {args.run} has no {what} in {folders[0]}")
    for path in paths:
        print(f"==> {path.name.removesuffix('.log')} <==")
        sys.stdout.write(path.read_text(errors="replace"))
    return 0


def _argo_logs(args: argparse.Namespace) -> int:
    import os

    from workflows import argo
    from workflows.argo_logs import workflow_logs
    from workflows.run_logs import log_root

    if not os.environ.get("ARGO_SERVER"):
        raise UsageError(
            f"no local logs of {args.run} (in {log_root()}), and ARGO_SERVER is not set to "
            "ask the Argo Server"
        )
    config = argo.ArgoConfig.from_env(args.namespace)
    pod = None
    workflow = args.run.rpartition("/")[2]  # NAME/RUN_ID: on Argo, the run id is the name
    for line in workflow_logs(config, workflow, args.task):
        if line.pod != pod:
            print(f"==> {line.pod} <==")
            pod = line.pod
        print(line.content)
    return 0
