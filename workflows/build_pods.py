"""What every pod of a rendered Workflow gets: its user and security context, requests and
limits (GPUs included), placement, and the S3 settings from a Secret.

Kubernetes pod security: https://kubernetes.io/docs/tasks/configure-pod-container/security-context/
"""

from __future__ import annotations

from typing import Any

from hera.workflows import models as m

from steps.spec import Resources, Spec
from workflows.options import BuildOptions

__all__ = [
    "GPU_RESOURCE",
    "OPTIONAL_SECRET_KEYS",
    "RUN_AS_GID",
    "RUN_AS_UID",
    "S3_SECRET_KEYS",
    "container_security",
    "pod_security",
    "requirements",
    "s3_env",
    "scheduling",
]

# The worker image's user (docker/Dockerfile) must match.
RUN_AS_UID = 10001
RUN_AS_GID = 10001
GPU_RESOURCE = "nvidia.com/gpu"  # the NVIDIA device plugin's extended resource
S3_SECRET_KEYS = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")
OPTIONAL_SECRET_KEYS = frozenset({"AWS_REGION"})


def s3_env(options: BuildOptions) -> list[m.EnvVar] | None:
    """S3 settings from a Secret, never literals; none at all for a folder store."""
    if not options.store.startswith("s3://"):
        return None
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


def requirements(resources: Resources, gpus: int = 0) -> m.ResourceRequirements:
    """A GPU is an extended resource: a limit only (Kubernetes makes the request equal it)."""
    limits = {
        "cpu": m.Quantity(resources.cpu_limit),
        "memory": m.Quantity(resources.memory_limit),
    }
    if gpus:
        limits[GPU_RESOURCE] = m.Quantity(str(gpus))
    return m.ResourceRequirements(
        requests={
            "cpu": m.Quantity(resources.cpu_request),
            "memory": m.Quantity(resources.memory_request),
        },
        limits=limits,
    )


def scheduling(spec: Spec) -> dict[str, Any]:
    """The spec's `[scheduling]`, for every pod of the Workflow (workflow-level fields)."""
    placement = spec.scheduling
    return {
        "node_selector": dict(placement.node_selector) or None,
        "tolerations": [
            m.Toleration(
                key=t.key,
                operator=t.operator,
                value=t.value,
                effect=t.effect,
                toleration_seconds=t.toleration_seconds,
            )
            for t in placement.tolerations
        ]
        or None,
        "pod_priority_class_name": placement.priority_class,
    }


def container_security() -> m.SecurityContext:
    return m.SecurityContext(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        capabilities=m.Capabilities(drop=["ALL"]),
    )


def pod_security() -> m.PodSecurityContext:
    return m.PodSecurityContext(
        run_as_non_root=True,
        run_as_user=RUN_AS_UID,
        run_as_group=RUN_AS_GID,
        fs_group=RUN_AS_GID,
        seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
    )
