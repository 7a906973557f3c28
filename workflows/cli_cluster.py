"""`render`, `submit`, `schedule` and `status`: a sweep's manifests for a cluster, and the
Argo Server that runs them.

Argo's CronWorkflows: https://argo-workflows.readthedocs.io/en/latest/cron-workflows/
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from steps import layout
from steps.spec import RESOURCE_KEYS, Resources, Spec, parse_resources
from steps.store import StoreError, open_store
from workflows import options as defaults
from workflows.cli_args import (
    DEFAULT_SPEC,
    CliParser,
    UsageError,
    load_spec_arg,
    positive,
    positive_seconds,
)
from workflows.options import BuildOptions, CronOptions

if TYPE_CHECKING:
    from datetime import datetime

    from hera.workflows import Workflow
    from rich.console import Console

    from workflows import argo

__all__ = ["add_commands"]

WorkflowLike = TypeVar("WorkflowLike", bound="Workflow")  # Workflow, CronWorkflow, WorkflowTemplate


def add_commands(sub: argparse._SubParsersAction[CliParser]) -> None:
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


def cmd_render(args: argparse.Namespace) -> int:
    from workflows.build import render

    spec = load_spec_arg(args.spec, args.shards)
    if args.run_id is not None and not layout.RUN_ID_RE.fullmatch(args.run_id):
        raise UsageError(f"--run-id '{args.run_id}' must be a DNS-1123 label")
    options = replace(_build_options(args, spec, args.namespace), run_id=args.run_id)
    cron = CronOptions(schedules=tuple(args.cron or ()), timezone=args.timezone)
    sys.stdout.write(render(spec, options, args.kind, cron))
    return 0


DEFAULT_POLL_SECONDS = 5.0


def _add_cluster_build_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of every command that builds a sweep's manifest for a cluster."""
    parser.add_argument("spec", nargs="?", help=f"sweep spec (default: {DEFAULT_SPEC.name})")
    parser.add_argument("--shards", type=positive, help="override the spec's shard count")
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
        type=positive,
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
    for key in Resources.__dataclass_fields__:  # in field order: --help reads the same each time
        flag = "--" + key.replace("_", "-")
        if key == "gpu":
            parser.add_argument(
                flag, metavar="N", help="nvidia.com/gpu of each compute pod (default: the spec's)"
            )
        else:
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
    if not args.store.startswith(("s3://", "file://")) and not Path(args.store).is_absolute():
        print(
            f"warning: --store {args.store} is a relative folder: the pods would resolve it in"
            " their working folder (/app, read-only), so they cannot write there; give an"
            " s3:// store the cluster reaches",
            file=sys.stderr,
        )
    from steps.stages import total_shards  # numpy: not for `--help`

    count = total_shards(spec)
    if count > defaults.MAX_SHARDS_IN_STATUS and not args.node_status_offload:
        stages = f" (over {spec.refine.stages} stages)" if spec.refine else ""
        raise UsageError(
            f"{count:,} shards{stages} do not fit in a Workflow's status (at most"
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

    spec = load_spec_arg(args.spec, args.shards)
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


def _add_argo_commands(sub: argparse._SubParsersAction[CliParser]) -> None:
    submit = sub.add_parser("submit", help="send the sweep's Workflow to the Argo Server")
    _add_cluster_build_arguments(submit)
    _add_namespace_argument(submit)
    submit.add_argument(
        "--wait", action="store_true", help="follow the run, then print its summary"
    )
    submit.add_argument(
        "--poll",
        type=positive_seconds,
        default=DEFAULT_POLL_SECONDS,
        metavar="SECONDS",
        help=f"with --wait: seconds between status reads (default: {DEFAULT_POLL_SECONDS:g})",
    )
    submit.add_argument(
        "--timeout",
        type=positive_seconds,
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
