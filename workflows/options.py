"""What a TTG manifest is built from, without Hera: the options, their defaults, the names
of the step modules.

The CLI parses its arguments and starts work (`run` warms the task interpreter) with these
alone; importing Hera takes ~0.4 s, which only rendering needs (workflows/build.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from steps.spec import Resources

__all__ = [
    "DEFAULT_CLUSTER_STORE",
    "DEFAULT_IMAGE",
    "DEFAULT_PARALLELISM",
    "DEFAULT_S3_SECRET",
    "DEFAULT_SERVICE_ACCOUNT",
    "KINDS",
    "MAX_SHARDS_IN_STATUS",
    "BuildError",
    "BuildOptions",
    "CronOptions",
]

DEFAULT_IMAGE = "ttg-worker:latest"
DEFAULT_CLUSTER_STORE = "s3://ttg/runs"
DEFAULT_S3_SECRET = "ttg-s3"
DEFAULT_SERVICE_ACCOUNT = "ttg-workflow"
DEFAULT_PARALLELISM = 10  # pods at once: sensible for a three-node kind cluster
KINDS = ("workflow", "cron", "template")
# Argo keeps a Workflow's node status in the object, which etcd caps at ~1 MiB even with the
# node list compressed (workflow/packer/packer.go): ~5,000 shards fill it (docs/scaling.md).
MAX_SHARDS_IN_STATUS = 4_000
COMPUTE_MODULE, REDUCE_MODULE = "steps.compute", "steps.reduce"  # the pods' `python -m`


class BuildError(ValueError):
    """Options that cannot make a manifest (one line, exit 2)."""


@dataclass(frozen=True)
class BuildOptions:
    store: str = DEFAULT_CLUSTER_STORE
    image: str = DEFAULT_IMAGE
    image_pull_policy: str = "IfNotPresent"  # kind-loaded images are never pulled
    run_id: str | None = None  # a fixed Workflow name; otherwise generateName picks one
    namespace: str | None = None
    service_account: str = DEFAULT_SERVICE_ACCOUNT
    s3_secret: str = DEFAULT_S3_SECRET
    parallelism: int = DEFAULT_PARALLELISM
    compute_retries: int = 3
    active_deadline_seconds: int = 24 * 3600
    resources: Resources | None = None  # None: the spec's `[resources]`


@dataclass(frozen=True)
class CronOptions:
    schedules: tuple[str, ...]
    timezone: str = "UTC"
    concurrency_policy: str = "Forbid"  # a slow run never overlaps the next
    starting_deadline_seconds: int = 600
    successful_history: int = 3
    failed_history: int = 3
