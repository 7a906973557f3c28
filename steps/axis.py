"""One axis of a parameter space: its name, kind and arguments, and how many points a grid
axis has.

Both the spec (which validates axes) and the space (which decodes them) need this; it imports
neither of them, nor anything outside the standard library, so `import steps.spec` stays
cheap. An axis's values as numpy and Arrow arrays are in steps.axis_values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["GRID_KINDS", "RANDOM_KINDS", "Axis", "Scalar", "grid_length", "space_rows"]


GRID_KINDS = ("linspace", "range", "values", "logspace")
RANDOM_KINDS = ("uniform", "loguniform", "normal", "choice")

Scalar = int | float | str | bool


@dataclass(frozen=True)
class Axis:
    """One named axis: `kind` is one of GRID_KINDS or RANDOM_KINDS, `args` its arguments."""

    name: str
    kind: str
    args: tuple[Scalar, ...]

    @property
    def is_random(self) -> bool:
        return self.kind in RANDOM_KINDS


def grid_length(axis: Axis) -> int:
    """Number of points on a grid axis."""
    if axis.kind in ("linspace", "logspace"):
        return int(axis.args[2])
    if axis.kind == "range":
        start, stop, step = (int(v) for v in axis.args)
        return len(range(start, stop, step))
    if axis.kind == "values":
        return len(axis.args)
    raise ValueError(f"{axis.kind} is not a grid axis")


def space_rows(axes: Iterable[Axis], samples: int) -> int:
    """Rows of a space: its grid's points, each drawn `samples` times (arithmetic only)."""
    return math.prod(grid_length(a) for a in axes if not a.is_random) * samples
