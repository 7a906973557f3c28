"""The parsed manifest: small frozen dataclasses `workflows.local` runs without further
checks, and the errors a refused manifest raises.

Argo's field reference: https://argo-workflows.readthedocs.io/en/latest/fields/
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workflows.retries import RetryExpression

__all__ = [
    "Container",
    "DagTask",
    "Dependency",
    "EnvVar",
    "ManifestError",
    "Mount",
    "OutputParameter",
    "Parameter",
    "RetryStrategy",
    "SecretRef",
    "Sequence",
    "Template",
    "UnresolvedError",
    "Workflow",
]


class ManifestError(ValueError):
    """A manifest the local executor refuses; the message is one line naming the path."""


class UnresolvedError(KeyError):
    """A ``{{...}}`` variable with no value in the scope it was substituted in."""


@dataclass(frozen=True)
class Parameter:
    """A named string; ``value`` None means it must be supplied by the caller."""

    name: str
    value: str | None


@dataclass(frozen=True)
class OutputParameter:
    """An output read from a file the container wrote (``valueFrom.path``)."""

    name: str
    path: str
    default: str | None


@dataclass(frozen=True)
class SecretRef:
    """``valueFrom.secretKeyRef``; locally read from the environment variable `variable`."""

    name: str
    key: str
    optional: bool


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str
    secret: SecretRef | None


@dataclass(frozen=True)
class Mount:
    """A container's mount of an ``emptyDir`` volume: locally a folder private to each attempt.

    `path` is the mountPath without a trailing slash; `sub_path` the folder of the volume
    mounted there ("" for the whole volume)."""

    volume: str
    path: str
    sub_path: str


@dataclass(frozen=True)
class Container:
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: tuple[EnvVar, ...]
    working_dir: str | None
    mounts: tuple[Mount, ...] = ()  # emptyDir mounts only: others are host paths locally


@dataclass(frozen=True)
class Sequence:
    """``withSequence``; strings because each may hold a variable."""

    count: str | None
    start: str | None
    end: str | None
    format: str | None


@dataclass(frozen=True)
class Dependency:
    """One term of ``depends``: a task name, optionally ``.Succeeded``."""

    task: str
    succeeded_only: bool


@dataclass(frozen=True)
class DagTask:
    name: str
    template: str
    arguments: tuple[Parameter, ...]
    depends: tuple[Dependency, ...]
    with_items: tuple[Any, ...] | None
    with_param: str | None
    with_sequence: Sequence | None
    reads: frozenset[str] = frozenset()  # tasks whose outputs its fields use

    @property
    def looped(self) -> bool:
        return (
            self.with_items is not None
            or self.with_param is not None
            or self.with_sequence is not None
        )


@dataclass(frozen=True)
class RetryStrategy:
    limit: str
    policy: str | None
    expression: RetryExpression | None = None  # the subset `workflows.retries` evaluates


@dataclass(frozen=True)
class Template:
    """Exactly one of `container` and `dag` is set."""

    name: str
    inputs: tuple[Parameter, ...]
    outputs: tuple[OutputParameter, ...]
    container: Container | None
    dag: tuple[DagTask, ...] | None
    retry: RetryStrategy | None
    parallelism: int | None
    # Container templates only; strings because each may hold a variable.
    deadline: str | None = None  # activeDeadlineSeconds: seconds per attempt (per pod)
    timeout: str | None = None  # a duration ("30s", "5m") for the node, all attempts together


@dataclass(frozen=True)
class Workflow:
    name: str | None
    generate_name: str | None
    entrypoint: str
    parameters: tuple[Parameter, ...]
    parallelism: int | None
    templates: Mapping[str, Template]
    deadline: int | None = None  # spec.activeDeadlineSeconds
