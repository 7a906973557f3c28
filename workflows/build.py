"""Spec -> Argo Workflow, built with Hera.

The Workflow is O(1) in size whatever the sweep: it carries the canonical spec as a
parameter and fans out with `withSequence` over the shard count; each pod derives its rows
from its shard index. `run` executes exactly this manifest locally; `submit` sends it to Argo.
"""

from __future__ import annotations

from dataclasses import dataclass

from hera.workflows import DAG, Container, Parameter, Task, Workflow
from hera.workflows import models as m

from steps.spec import Spec

DEFAULT_IMAGE = "ttg-worker:latest"
DEFAULT_CLUSTER_STORE = "s3://ttg/runs"
DEFAULT_S3_SECRET = "ttg-s3"
ENTRYPOINT = "sweep"
# Everything a step writes lives under /tmp: on a cluster that is an emptyDir, because the
# root filesystem is read-only. Output-parameter files carry the run id so that concurrent
# local runs, which share the host's /tmp, never read each other's.
OUTPUTS_DIR = "/tmp/ttg/{{workflow.name}}/outputs"
S3_SECRET_KEYS = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")
OPTIONAL_SECRET_KEYS = frozenset({"AWS_REGION"})


@dataclass(frozen=True)
class BuildOptions:
    store: str = DEFAULT_CLUSTER_STORE
    image: str = DEFAULT_IMAGE
    run_id: str | None = None  # a fixed Workflow name; otherwise Argo's generateName picks one
    s3_secret: str = DEFAULT_S3_SECRET
    compute_retries: int = 2


def _s3_env(options: BuildOptions) -> list[m.EnvVar]:
    """S3 settings from a Secret, never literals; none at all for a folder store."""
    if not options.store.startswith("s3://"):
        return []
    return [
        m.EnvVar(
            name=key,
            value_from=m.EnvVarSource(
                secret_key_ref=m.SecretKeySelector(
                    name=options.s3_secret, key=key, optional=key in OPTIONAL_SECRET_KEYS or None
                )
            ),
        )
        for key in S3_SECRET_KEYS
    ]


def _step_args(extra: list[str]) -> list[str]:
    common = [
        "--spec",
        "{{workflow.parameters.spec}}",
        "--store",
        "{{workflow.parameters.store}}",
        "--run-id",
        "{{workflow.name}}",
    ]
    return common + extra


def build_workflow(spec: Spec, options: BuildOptions = BuildOptions()) -> Workflow:
    env = _s3_env(options)
    with Workflow(
        name=options.run_id,
        generate_name=None if options.run_id else f"{spec.name}-",
        entrypoint=ENTRYPOINT,
        labels={"app.kubernetes.io/name": "ttg", "ttg/sweep": spec.name},
        arguments=[
            Parameter(name="spec", value=spec.to_json()),
            Parameter(name="store", value=options.store),
        ],
    ) as workflow:
        compute = Container(
            name="compute",
            image=options.image,
            command=["python", "-m", "steps.compute"],
            args=_step_args(["--shard", "{{inputs.parameters.shard}}"]),
            env=env or None,
            inputs=[Parameter(name="shard")],
            retry_strategy=m.RetryStrategy(
                limit=m.IntOrString(options.compute_retries),
                retry_policy="Always",
                backoff=m.Backoff(duration="10s", factor=m.IntOrString(2), max_duration="5m"),
            ),
        )
        reduce = Container(
            name="reduce",
            image=options.image,
            command=["python", "-m", "steps.reduce"],
            args=_step_args(["--outputs", OUTPUTS_DIR]),
            env=env or None,
            outputs=[
                Parameter(name="rows", value_from=m.ValueFrom(path=f"{OUTPUTS_DIR}/rows")),
                Parameter(name="best", value_from=m.ValueFrom(path=f"{OUTPUTS_DIR}/best")),
            ],
        )
        with DAG(name=ENTRYPOINT):
            shards = Task(
                name="compute",
                template=compute,
                arguments={"shard": "{{item}}"},
                with_sequence=m.Sequence(count=m.IntOrString(str(spec.shards))),
            )
            shards >> Task(name="reduce", template=reduce)
    return workflow


def render(spec: Spec, options: BuildOptions = BuildOptions()) -> str:
    """The Workflow as YAML: what `render` prints, `run` executes and `submit` sends."""
    return str(build_workflow(spec, options).to_yaml())
