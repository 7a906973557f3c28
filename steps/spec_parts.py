"""The parts of a spec besides its axes (steps.axis): the objective, which rows to keep, and the
resources of each pod. Frozen values; steps.spec_validate builds them from a document, and
`Keep` knows its own canonical form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Keep", "Objective", "Resources"]


@dataclass(frozen=True)
class Objective:
    """What ranks rows. `on_nan`: rows whose objective is NaN or null are kept and counted but
    never ranked ("ignore"), or fail the shard ("fail")."""

    column: str
    goal: Literal["min", "max"]
    top_k: int
    on_nan: Literal["ignore", "fail"] = "ignore"

    def canonical(self) -> dict[str, Any]:
        """`on_nan` only when it is not the default, so specs without it keep their hash."""
        form: dict[str, Any] = {"column": self.column, "goal": self.goal, "top_k": self.top_k}
        if self.on_nan != "ignore":
            form["on_nan"] = self.on_nan
        return form


@dataclass(frozen=True)
class Resources:
    """Kubernetes requests and limits for each pod; the old worker's defaults. `gpu`: how many
    `nvidia.com/gpu` each compute pod gets (an extended resource: a whole number, a limit)."""

    cpu_request: str = "100m"
    memory_request: str = "128Mi"
    cpu_limit: str = "500m"
    memory_limit: str = "256Mi"
    gpu: int = 0


@dataclass(frozen=True)
class Keep:
    """Which rows the result keeps: all of them, the best `top_k` by the objective, or those
    `where` a condition holds. The summary always covers every computed row."""

    top_k: int | None = None
    where: tuple[str, str, int | float] | None = None  # column, operator, number

    @property
    def everything(self) -> bool:
        return self.top_k is None and self.where is None

    def canonical(self) -> str | dict[str, Any]:
        if self.top_k is not None:
            return {"top_k": self.top_k}
        if self.where is not None:
            column, op, number = self.where
            return {"where": f"{column} {op} {number!r}"}
        return "all"
