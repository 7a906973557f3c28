"""Where a sweep's pods run: the `[scheduling]` table of a spec, as a value and its validator.

Node selectors, tolerations and a priority class say nothing about what a sweep computes, so
like `[resources]` they stay outside the canonical form and the spec hash; the builder
renders them on the Workflow, for every pod of it. Each value is checked here as the API
server would check it, so a typo fails at `render`, not as a pod that never schedules.
Kubernetes' definitions: https://kubernetes.io/docs/concepts/scheduling-eviction/
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from steps.spec_error import SpecError, field_path, shown
from steps.spec_keys import SCHEDULING_KEYS, TOLERATION_KEYS, reject_unknown

__all__ = ["Scheduling", "Toleration", "parse_scheduling"]

OPERATORS = ("Equal", "Exists")
EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
MAX_SELECTORS = 64
MAX_TOLERATIONS = 64

# Kubernetes' label syntax (apimachinery validation): an optional DNS-subdomain prefix and '/',
# then a name of at most 63 characters; a value of at most 63, possibly empty.
_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_SUBDOMAIN = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
LABEL_KEY_RE = re.compile(rf"(?:{_SUBDOMAIN}/)?{_NAME}")
LABEL_VALUE_RE = re.compile(rf"(?:{_NAME})?")
PRIORITY_CLASS_RE = re.compile(_SUBDOMAIN)


@dataclass(frozen=True)
class Toleration:
    """One Kubernetes toleration; `None` where the spec left a field out."""

    key: str | None = None
    operator: str = "Equal"
    value: str | None = None
    effect: str | None = None
    toleration_seconds: int | None = None

    def document(self) -> dict[str, Any]:
        fields = {
            "key": self.key,
            "operator": self.operator,
            "value": self.value,
            "effect": self.effect,
            "toleration_seconds": self.toleration_seconds,
        }
        return {name: value for name, value in fields.items() if value is not None}


@dataclass(frozen=True)
class Scheduling:
    """Where the sweep's pods may run and how they rank; empty: wherever Kubernetes likes."""

    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[Toleration, ...] = ()
    priority_class: str | None = None

    def document(self) -> dict[str, Any]:
        """The `[scheduling]` table that `parse_scheduling` turns back into this value."""
        form: dict[str, Any] = {}
        if self.node_selector:
            form["node_selector"] = dict(self.node_selector)
        if self.tolerations:
            form["tolerations"] = [t.document() for t in self.tolerations]
        if self.priority_class is not None:
            form["priority_class"] = self.priority_class
        return form


def parse_scheduling(data: Any) -> Scheduling:
    """The `[scheduling]` table of a spec."""
    if data is None:
        return Scheduling()
    if not isinstance(data, Mapping):
        raise SpecError(
            "scheduling", f"must be a table with keys {', '.join(sorted(SCHEDULING_KEYS))}"
        )
    reject_unknown(data, SCHEDULING_KEYS, "scheduling")
    priority = data.get("priority_class")
    if priority is not None and not (
        isinstance(priority, str) and len(priority) <= 253 and PRIORITY_CLASS_RE.fullmatch(priority)
    ):
        raise SpecError(
            "scheduling.priority_class",
            f"must name a PriorityClass (a DNS-1123 subdomain), got {shown(priority)}",
        )
    tolerations = data.get("tolerations", [])
    if not isinstance(tolerations, list) or len(tolerations) > MAX_TOLERATIONS:
        raise SpecError(
            "scheduling.tolerations",
            f"must be a list of at most {MAX_TOLERATIONS} tables, got {shown(tolerations)}",
        )
    return Scheduling(
        node_selector=_node_selector(data.get("node_selector", {})),
        tolerations=tuple(
            _toleration(item, f"scheduling.tolerations[{index}]")
            for index, item in enumerate(tolerations)
        ),
        priority_class=priority,
    )


def _node_selector(data: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(data, Mapping) or len(data) > MAX_SELECTORS:
        raise SpecError(
            "scheduling.node_selector",
            f"must be a table of at most {MAX_SELECTORS} node labels, got {shown(data)}",
        )
    for key, value in data.items():
        where = field_path("scheduling.node_selector", key)
        if not _label_key(key):
            raise SpecError(where, "is not a Kubernetes label key (e.g. 'nvidia.com/gpu.present')")
        if not (isinstance(value, str) and LABEL_VALUE_RE.fullmatch(value)):
            raise SpecError(
                where, f"must be a label value (text of at most 63 characters), got {shown(value)}"
            )
    return tuple(sorted(data.items()))


def _label_key(key: str) -> bool:
    """A label (or taint) key: a DNS subdomain prefix of at most 253 characters and a '/',
    then a name of at most 63 (LABEL_KEY_RE bounds the name)."""
    prefix, _, _ = key.rpartition("/")
    return len(prefix) <= 253 and LABEL_KEY_RE.fullmatch(key) is not None


def _toleration(data: Any, field: str) -> Toleration:
    if not isinstance(data, Mapping):
        raise SpecError(field, f"must be a table with keys {', '.join(sorted(TOLERATION_KEYS))}")
    reject_unknown(data, TOLERATION_KEYS, field)
    # Kubernetes reads an empty key, value or effect as one left out (only "" is empty).
    key, value, effect = (
        None if data.get(f) == "" else data.get(f) for f in ("key", "value", "effect")
    )
    operator, seconds = data.get("operator", "Equal"), data.get("toleration_seconds")
    if operator not in OPERATORS:
        raise SpecError(f"{field}.operator", f"must be 'Equal' or 'Exists', got {shown(operator)}")
    if key is not None and not (isinstance(key, str) and _label_key(key)):
        raise SpecError(f"{field}.key", f"is not a Kubernetes taint key, got {shown(key)}")
    if key is None and operator != "Exists":
        raise SpecError(f"{field}.key", "is required unless operator is 'Exists' (all taints)")
    if value is not None and not (isinstance(value, str) and LABEL_VALUE_RE.fullmatch(value)):
        raise SpecError(f"{field}.value", f"must be a taint value, got {shown(value)}")
    if operator == "Exists" and value:
        raise SpecError(f"{field}.value", "must be empty when operator is 'Exists'")
    if effect is not None and effect not in EFFECTS:
        raise SpecError(
            f"{field}.effect", f"must be one of {', '.join(EFFECTS)}, got {shown(effect)}"
        )
    if seconds is not None:
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 <= seconds < 2**63:
            raise SpecError(
                f"{field}.toleration_seconds",
                f"must be a whole number of seconds, got {shown(seconds)}",
            )
        if effect != "NoExecute":
            raise SpecError(f"{field}.toleration_seconds", "applies only to effect 'NoExecute'")
    return Toleration(key, operator, value, effect, seconds)
