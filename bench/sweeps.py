"""The benchmark's sweep: the default Rosenbrock spec, optionally resized to about N rows."""

from __future__ import annotations

import math
from pathlib import Path

from steps.space import Space, grid_length
from steps.spec import Spec, load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = ROOT / "workflows" / "sweeps" / "rosenbrock.toml"


def bench_spec(
    rows: int | None = None, path: Path = DEFAULT_SPEC, shards: int | None = None
) -> Spec:
    """The spec at `path`; with `rows`, every linspace axis gets the same length so that the
    grid has about `rows` rows (the square root for two axes: 10**8 -> 10,000 x 10,000); with
    `shards`, that many shards (or as many as there are rows)."""
    spec = load_spec(path)
    if shards is not None:
        spec = spec.with_fields(shards=min(shards, rows_of(spec) if rows is None else rows))
    if rows is None:
        return spec
    if spec.samples != 1 or any(a.is_random for a in spec.axes):
        raise ValueError(f"{path}: the benchmark resizes pure grid sweeps only")
    linspaces = [a for a in spec.axes if a.kind == "linspace"]
    if not linspaces:
        raise ValueError(f"{path} has no linspace axis to resize")
    others = math.prod(grid_length(a) for a in spec.axes if a.kind != "linspace")
    side = max(2, round((rows / others) ** (1 / len(linspaces))))
    canonical = spec.canonical()
    for _, body in canonical["space"]:
        if "linspace" in body:
            start, stop, _num = body["linspace"]
            body["linspace"] = [start, stop, side]
    resized = parse_spec(canonical)
    return resized.with_fields(shards=min(resized.shards, rows_of(resized)))


def rows_of(spec: Spec) -> int:
    return Space(spec).rows
