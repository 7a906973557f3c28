"""Spec -> Argo Workflow, CronWorkflow or WorkflowTemplate, built with Hera.

All three kinds share one workflow spec: a DAG whose `compute` task fans out with
`withSequence` over the shard count and whose `reduce` task follows. The Workflow is O(1) in
size whatever the sweep: the canonical spec travels as a parameter and each pod derives its
rows from its shard index. `run` executes exactly this manifest locally; `submit` sends it to
Argo. The cluster settings (security, resources, GC, TTL, metrics) are written for a
read-only root filesystem: everything a step writes lives on the `/tmp` emptyDir.

Hera: https://hera.readthedocs.io/
Argo's Workflow spec: https://argo-workflows.readthedocs.io/en/latest/fields/
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from hera.workflows import (
    DAG,
    Container,
    Counter,
    CronWorkflow,
    Histogram,
    Label,
    Parameter,
    Task,
    Workflow,
    WorkflowTemplate,
)
from hera.workflows import models as m

from steps import exit_codes
from steps.spec import Spec
from steps.stages import stages_of, total_rows
from workflows.build_pods import (
    OPTIONAL_SECRET_KEYS,
    RUN_AS_GID,
    RUN_AS_UID,
    S3_SECRET_KEYS,
    container_security,
    pod_security,
    requirements,
    s3_env,
    scheduling,
)
from workflows.options import (
    COMPUTE_MODULE,
    KINDS,
    REDUCE_MODULE,
    BuildError,
    BuildOptions,
    CronOptions,
)

__all__ = [
    "COMPUTE_OUTPUTS",
    "ENTRYPOINT",
    "OPTIONAL_SECRET_KEYS",
    "OUTPUTS_ROOT",
    "REDUCE_OUTPUTS",
    "RUN_AS_GID",
    "RUN_AS_UID",
    "S3_SECRET_KEYS",
    "SHARD_SECONDS_BUCKETS",
    "build",
    "build_cron_workflow",
    "build_workflow",
    "build_workflow_template",
    "render",
    "retry_expression",
]

ENTRYPOINT = "sweep"
# Output-parameter files live under /tmp, the emptyDir: on a cluster each pod has its own, and
# the local executor emulates that (a fresh private folder per attempt, removed after it), so
# no run ever writes to the host's shared /tmp. The run id and shard keep the paths distinct.
OUTPUTS_ROOT = "/tmp/ttg/{{workflow.name}}"
COMPUTE_OUTPUTS = OUTPUTS_ROOT + "/shard-{{inputs.parameters.shard}}"
REDUCE_OUTPUTS = OUTPUTS_ROOT + "/reduce"
ZOOM_OUTPUTS = OUTPUTS_ROOT + "/zoom-{{inputs.parameters.stage}}"
SHARD_SECONDS_BUCKETS: list[float | m.Amount] = [1, 5, 15, 60, 300, 900, 3600, 14400]


def _labels(spec: Spec) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "ttg",
        "app.kubernetes.io/component": "sweep",
        "ttg/sweep": spec.name,
    }


def _annotations(spec: Spec) -> dict[str, str]:
    stages = stages_of(spec)
    rows = total_rows(spec)
    shards = f"{spec.shards} shards"
    if len(stages) > 1:
        shards += f", then {len(stages) - 1} zoomed stages of {stages[1].shards}"
    return {
        "workflows.argoproj.io/title": f"TTG sweep {spec.name}",
        "workflows.argoproj.io/description": (
            f"`{spec.function}` over {rows:,} parameter combinations in {shards} "
            f"(spec {spec.hash[:12]})"
        ),
    }


def _step_args(outputs: str, extra: list[str]) -> list[str]:
    return [
        "--spec",
        "{{workflow.parameters.spec}}",
        "--store",
        "{{workflow.parameters.store}}",
        "--run-id",
        "{{workflow.name}}",
        "--outputs",
        outputs,
        *extra,
    ]


def _compute_metrics(spec: Spec) -> list[Any]:
    """Per-template Prometheus metrics; labelled by sweep only, never by shard (cardinality).

    Argo (operator.go, executeTemplate) evaluates a retried template's metrics once per
    attempt that is followed by another, on the attempt, and once when the shard ends, on the
    retry node: the duration help says so, the failure counter counts both Failed and Error
    attempts (an evicted pod is Error), and `rows` has a default because every field is
    substituted before `when` is checked, and a failed attempt writes no `rows` file."""
    label = [Label(key="sweep", value=spec.name)]
    return [
        Histogram(
            name="ttg_shard_duration_seconds",
            help=(
                "Wall time of compute shards: each retried attempt on its own, and each"
                " shard when it ends, all its attempts and retry backoff included"
            ),
            labels=label,
            buckets=SHARD_SECONDS_BUCKETS,
            value="{{duration}}",
        ),
        Counter(
            name="ttg_rows_computed_total",
            help="Rows written by succeeded compute shards",
            labels=label,
            when="{{status}} == Succeeded",
            value="{{outputs.parameters.rows}}",
        ),
        Counter(
            name="ttg_shard_failures_total",
            help="Compute shard attempts that ended Failed or Error",
            labels=label,
            when="{{status}} == Failed || {{status}} == Error",
            value="1",
        ),
    ]


def retry_expression(retry_user_errors: bool) -> str:
    """When Argo retries a failed compute attempt: unless its exit code says the failure is
    deterministic (steps/exit_codes.py), so a bug in the user's function fails at once and a
    hiccup is retried. `lastRetry.exitCode` is a string, "-1" when the attempt has none (a pod
    deleted, evicted or lost: status Error), so it is compared as text, which cannot fail to
    evaluate; an Error is retried whatever code it carries."""
    codes = [
        code
        for code in exit_codes.DETERMINISTIC
        if not (retry_user_errors and code == exit_codes.USER_CODE)
    ]
    listed = ", ".join(f'"{code}"' for code in codes)
    return f'lastRetry.status == "Error" || lastRetry.exitCode not in [{listed}]'


def _compute_retries(spec: Spec, options: BuildOptions) -> m.RetryStrategy:
    """Argo ANDs `retryPolicy` with `expression` (operator.go, processNodeRetries): `Always`
    lets the expression decide for Failed and Error attempts alike. Backoff waits 15 s, 30 s,
    60 s, ... each at most `cap`; no `maxDuration`, which counts from the first attempt's
    start and would leave a shard that ran longer than it with no retry at all."""
    return m.RetryStrategy(
        limit=m.IntOrString(options.compute_retries),
        retry_policy="Always",
        expression=retry_expression(spec.retry_user_errors),
        backoff=m.Backoff(duration="15s", factor=m.IntOrString(2), cap="10m"),
    )


def _define_templates(spec: Spec, options: BuildOptions) -> None:
    """The compute and reduce containers and the DAG; called inside a Hera workflow context.
    A refined sweep's DAG has a fan-out and a reduce per stage (`_stage_tasks`)."""
    env = s3_env(options)
    resources = options.resources or spec.resources
    common: dict[str, Any] = {
        "image": options.image,
        "image_pull_policy": options.image_pull_policy,
        "env": env,
        "security_context": container_security(),
        "volume_mounts": [m.VolumeMount(name="tmp", mount_path="/tmp")],
    }
    refined = spec.refine is not None
    centres = ["--centres", "{{inputs.parameters.centres}}"] if refined else []
    compute = Container(
        name="compute",
        command=["python", "-m", COMPUTE_MODULE],
        args=_step_args(COMPUTE_OUTPUTS, ["--shard", "{{inputs.parameters.shard}}", *centres]),
        inputs=[Parameter(name="shard"), *([Parameter(name="centres")] if refined else [])],
        outputs=[
            Parameter(
                name="rows",
                value_from=m.ValueFrom(path=f"{COMPUTE_OUTPUTS}/rows", default="0"),
            )
        ],
        retry_strategy=_compute_retries(spec, options),
        metrics=_compute_metrics(spec),
        resources=requirements(resources, resources.gpu),
        **common,
    )
    reduce = Container(
        name="reduce",
        command=["python", "-m", REDUCE_MODULE],
        args=_step_args(REDUCE_OUTPUTS, []),
        outputs=[
            Parameter(name=name, value_from=m.ValueFrom(path=f"{REDUCE_OUTPUTS}/{name}"))
            for name in ("rows", "best_value", "best")
        ],
        resources=requirements(resources),
        **common,
    )
    if refined:
        zoom = Container(
            name="zoom",
            command=["python", "-m", REDUCE_MODULE],
            args=_step_args(ZOOM_OUTPUTS, ["--stage", "{{inputs.parameters.stage}}"]),
            inputs=[Parameter(name="stage")],
            outputs=[
                Parameter(name=name, value_from=m.ValueFrom(path=f"{ZOOM_OUTPUTS}/{name}"))
                for name in ("centres", "best_value", "best")
            ],
            resources=requirements(resources),
            **common,
        )
        with DAG(name=ENTRYPOINT):
            _stage_tasks(spec, compute, zoom, reduce)
        return
    with DAG(name=ENTRYPOINT):
        shards = Task(
            name="compute",
            template=compute,
            arguments={"shard": "{{item}}"},
            with_sequence=m.Sequence(count=m.IntOrString(str(spec.shards))),
        )
        shards >> Task(name="reduce", template=reduce)


def _stage_tasks(spec: Spec, compute: Container, zoom: Container, reduce: Container) -> None:
    """Per stage a fan-out over its shards, then a zoom (the reduce of a stage before the
    last) whose `centres` output feeds the next stage's pods, and the run's reduce last."""
    previous: Task | None = None
    stages = stages_of(spec)
    for stage in stages:
        centres = (
            "" if previous is None else f"{{{{tasks.{previous.name}.outputs.parameters.centres}}}}"
        )
        shards = Task(
            name=f"compute-{stage.number}",
            template=compute,
            arguments={"shard": "{{item}}", "centres": centres},
            with_sequence=m.Sequence(
                start=m.IntOrString(str(stage.first_shard)), count=m.IntOrString(str(stage.shards))
            ),
        )
        if previous is not None:
            previous >> shards
        last = stage.number == len(stages) - 1
        previous = (
            Task(name="reduce", template=reduce)
            if last
            else Task(
                name=f"zoom-{stage.number}", template=zoom, arguments={"stage": str(stage.number)}
            )
        )
        shards >> previous


def _workflow_settings(spec: Spec, options: BuildOptions) -> dict[str, Any]:
    """Everything of the workflow spec that every kind shares."""
    return {
        "namespace": options.namespace,
        "labels": _labels(spec),
        "annotations": _annotations(spec),
        "entrypoint": ENTRYPOINT,
        "arguments": [
            Parameter(name="spec", value=spec.to_json()),
            Parameter(name="store", value=options.store),
        ],
        "service_account_name": options.service_account,
        "security_context": pod_security(),
        "volumes": [m.Volume(name="tmp", empty_dir=m.EmptyDirVolumeSource())],
        "parallelism": options.parallelism,
        "active_deadline_seconds": options.active_deadline_seconds,
        **scheduling(spec),
        "pod_gc": m.PodGC(strategy="OnPodSuccess"),  # failed pods stay for `kubectl logs`
        "ttl_strategy": m.TTLStrategy(
            seconds_after_success=7 * 86400, seconds_after_failure=14 * 86400
        ),
    }


def build_workflow(spec: Spec, options: BuildOptions = BuildOptions()) -> Workflow:
    with Workflow(
        name=options.run_id,
        generate_name=None if options.run_id else f"{spec.name}-",
        **_workflow_settings(spec, options),
    ) as workflow:
        _define_templates(spec, options)
    return workflow


def _for_submitted_runs(spec: Spec, options: BuildOptions) -> dict[str, Any]:
    """Settings of a kind that creates Workflows: created runs carry the labels and title too."""
    settings = _workflow_settings(spec, replace(options, run_id=None))
    settings["workflow_metadata"] = m.WorkflowMetadata(
        labels=_labels(spec), annotations=_annotations(spec)
    )
    return settings


def build_cron_workflow(spec: Spec, options: BuildOptions, cron: CronOptions) -> CronWorkflow:
    """Each scheduled run is a new Workflow with its own name, so its own run id in the store."""
    with CronWorkflow(
        name=spec.name,
        schedules=list(cron.schedules),
        timezone=cron.timezone,
        concurrency_policy=cron.concurrency_policy,
        starting_deadline_seconds=cron.starting_deadline_seconds,
        successful_jobs_history_limit=cron.successful_history,
        failed_jobs_history_limit=cron.failed_history,
        **_for_submitted_runs(spec, options),
    ) as workflow:
        _define_templates(spec, options)
    return workflow


def build_workflow_template(spec: Spec, options: BuildOptions = BuildOptions()) -> WorkflowTemplate:
    """Register once, submit many: `argo submit --from workflowtemplate/<name>`."""
    with WorkflowTemplate(name=spec.name, **_for_submitted_runs(spec, options)) as template:
        _define_templates(spec, options)
    return template


def build(
    spec: Spec, options: BuildOptions, kind: str = "workflow", cron: CronOptions | None = None
) -> Workflow:
    builders: dict[str, Callable[[], Workflow]] = {
        "workflow": lambda: build_workflow(spec, options),
        "template": lambda: build_workflow_template(spec, options),
        "cron": lambda: build_cron_workflow(spec, options, cron or CronOptions(schedules=())),
    }
    if kind not in builders:
        raise BuildError(f"unknown kind '{kind}': use one of {', '.join(KINDS)}")
    if kind == "cron" and (cron is None or not cron.schedules):
        raise BuildError("a CronWorkflow needs at least one --cron schedule")
    return builders[kind]()


def render(
    spec: Spec,
    options: BuildOptions = BuildOptions(),
    kind: str = "workflow",
    cron: CronOptions | None = None,
) -> str:
    """YAML of one kind: what `render` prints, `run` executes and `submit` sends."""
    return str(build(spec, options, kind, cron).to_yaml())
