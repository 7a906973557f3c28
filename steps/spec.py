"""The sweep spec: load, validate, canonicalise, hash.

A spec arrives as TOML / YAML / JSON from a user, or as canonical JSON from a Workflow
parameter; both go through `parse_spec`, so a pod validates exactly what the CLI validated.
The canonical form keeps `space` as an ordered list of `[name, axis]` pairs, because axis
order fixes the `param_id` order. This is the public entry (`Spec`, `parse_spec`,
`load_spec`, `spec_from_json`); the field validators (steps.spec_validate), the document
readers (steps.spec_document) and the parts (steps.axis, steps.spec_parts) are re-exported.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steps.axis import GRID_KINDS, RANDOM_KINDS, Axis, Scalar, space_rows
from steps.placement import Scheduling, parse_scheduling
from steps.refine import Refine, box_rows, parse_refine
from steps.spec_document import decode_document, read_document
from steps.spec_error import SpecError, field_path, shown
from steps.spec_keys import OBJECTIVE_KEYS, RESOURCE_KEYS, TOP_LEVEL_KEYS, reject_unknown
from steps.spec_limits import (
    MAX_CHUNK_ROWS,
    MAX_DEPTH,
    MAX_KEEP_TOP_K,
    MAX_NODES,
    MAX_ROWS,
    MAX_SHARDS,
    MAX_SPEC_BYTES,
    MAX_SPEC_FILE_BYTES,
    MAX_TOP_K,
)
from steps.spec_parts import Keep, Objective, Resources
from steps.spec_tree import check_tree
from steps.spec_validate import (
    AXIS_NAME_RE,
    MAX_QUANTITY_CHARS,
    QUANTITY_RE,
    RESERVED_COLUMNS,
    WHERE_RE,
    boolean,
    int_in,
    parse_keep,
    parse_objective,
    parse_resources,
    parse_space,
    required_str,
)

__all__ = [
    "AXIS_NAME_RE",
    "FUNCTION_RE",
    "GRID_KINDS",
    "MAX_CHUNK_ROWS",
    "MAX_DEPTH",
    "MAX_KEEP_TOP_K",
    "MAX_NODES",
    "MAX_QUANTITY_CHARS",
    "MAX_ROWS",
    "MAX_SHARDS",
    "MAX_SPEC_BYTES",
    "MAX_SPEC_FILE_BYTES",
    "MAX_TOP_K",
    "NAME_RE",
    "OBJECTIVE_KEYS",
    "QUANTITY_RE",
    "RANDOM_KINDS",
    "RESERVED_COLUMNS",
    "RESOURCE_KEYS",
    "TOP_LEVEL_KEYS",
    "WHERE_RE",
    "Axis",
    "Keep",
    "Objective",
    "Resources",
    "Scalar",
    "Spec",
    "SpecError",
    "load_spec",
    "parse_resources",
    "parse_spec",
    "shown",
    "spec_from_json",
]


# \A...\Z, not ^...$: `$` also matches before a trailing newline, so "demo\n" would pass.
NAME_RE = re.compile(r"\A[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?\Z")
FUNCTION_RE = re.compile(r"\A[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*\Z")


@dataclass(frozen=True)
class Spec:
    name: str
    function: str
    shards: int
    chunk_rows: int
    seed: int
    samples: int
    vectorized: bool
    axes: tuple[Axis, ...]
    objective: Objective | None
    keep: Keep = Keep()  # noqa: RUF009 (a frozen dataclass)
    # Declared by the user when code changed that the fingerprint cannot see (a compiled
    # extension, a data file): part of each shard's code fingerprint, not of the spec hash,
    # so `run --resume` after a bump recomputes the shards rather than refusing the run.
    code_version: str | None = None
    # How the sweep runs, not what it computes: outside the canonical form and the hash.
    resources: Resources = Resources()  # noqa: RUF009 (a frozen dataclass)
    scheduling: Scheduling = Scheduling()  # noqa: RUF009 (a frozen dataclass)
    retry_user_errors: bool = False  # retry a deterministic error in the function (flaky I/O)
    refine: Refine | None = None  # stages zooming into the best points (steps/stages.py)

    def canonical(self) -> dict[str, Any]:
        """Plain-JSON form with every default filled in and axis order kept (no resources);
        `code_version` only when set, so specs without it keep their form and hash."""
        form = self._hashed()
        if self.code_version is not None:
            form["code_version"] = self.code_version
        return form

    def _hashed(self) -> dict[str, Any]:
        """What the spec hash covers: the canonical form without `code_version`; `refine` only
        when set, so specs without it keep their hash."""
        form = {
            "name": self.name,
            "function": self.function,
            "shards": self.shards,
            "chunk_rows": self.chunk_rows,
            "seed": self.seed,
            "samples": self.samples,
            "vectorized": self.vectorized,
            "space": [[a.name, {a.kind: list(a.args)}] for a in self.axes],
            "objective": None if self.objective is None else self.objective.canonical(),
            "keep": self.keep.canonical(),
        }
        if self.refine is not None:
            form["refine"] = self.refine.canonical()
        return form

    def to_json(self) -> str:
        """Compact canonical JSON: what travels as the Workflow's `spec` parameter."""
        return json.dumps(self.canonical(), separators=(",", ":"), ensure_ascii=False)

    @property
    def hash(self) -> str:
        """sha256 of the compact canonical JSON without `code_version` (see there)."""
        text = json.dumps(self._hashed(), separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def document(self) -> dict[str, Any]:
        """The canonical form plus how it runs: the document `parse_spec` turns into this spec."""
        return {
            **self.canonical(),
            "resources": dataclasses.asdict(self.resources),
            "scheduling": self.scheduling.document(),
            "retry_user_errors": self.retry_user_errors,
        }

    def with_fields(self, **changes: Any) -> Spec:
        """This spec with some fields replaced (a CLI override such as `--shards`), validated by
        `parse_spec` like the same fields of a spec file: one validator per value."""
        return parse_spec({**self.document(), **changes})


def load_spec(path: str | Path) -> Spec:
    """Read a spec file (by extension: .toml, .yaml/.yml, .json) and validate it: see
    `steps.spec_document.read_document` for what a file may be."""
    return parse_spec(read_document(path))


def spec_from_json(text: str) -> Spec:
    """Parse the canonical JSON a pod receives (also accepts any JSON spec)."""
    return parse_spec(decode_document(text, ".json", "--spec"))


MAX_CODE_VERSION_CHARS = 64


def parse_spec(data: Any) -> Spec:
    """Validate a decoded spec document; every error names its field."""
    check_tree(data)
    if not isinstance(data, Mapping):
        raise SpecError("(top level)", "expected a table of settings")
    reject_unknown(data, TOP_LEVEL_KEYS, "")
    name = required_str(data, "name")
    if not NAME_RE.fullmatch(name):
        raise SpecError(
            "name",
            f"{shown(name)} must be a DNS-1123 label of at most 40 characters "
            "(lowercase letters, digits and '-', starting and ending with a letter or digit)",
        )
    function = required_str(data, "function")
    if not FUNCTION_RE.fullmatch(function):
        raise SpecError("function", f"{shown(function)} must look like 'package.module:callable'")
    if function.partition(":")[0] == "__main__":
        raise SpecError(
            "function",
            "'__main__' is whichever program runs (the CLI here, a step in a pod), not your "
            "module: put the function in a module file and name that",
        )
    axes = parse_space(data.get("space"))
    has_random = any(a.is_random for a in axes)
    samples = int_in(data.get("samples", 1), "samples", 1, MAX_ROWS)
    if samples > 1 and not has_random:
        raise SpecError("samples", f"is {samples} but the space has no random axis to draw from")
    objective = parse_objective(data.get("objective"), axes)
    rows = space_rows(axes, samples)
    spec = Spec(
        name=name,
        function=function,
        shards=int_in(data.get("shards", 1), "shards", 1, MAX_SHARDS),
        chunk_rows=int_in(data.get("chunk_rows", 262_144), "chunk_rows", 1, MAX_CHUNK_ROWS),
        seed=int_in(data.get("seed", 0), "seed", 0, 2**63 - 1),
        samples=samples,
        vectorized=boolean(data.get("vectorized", True), "vectorized"),
        axes=axes,
        objective=objective,
        keep=parse_keep(data.get("keep", "all"), objective),
        code_version=_code_version(data.get("code_version")),
        resources=parse_resources(data.get("resources"), "resources"),
        scheduling=parse_scheduling(data.get("scheduling")),
        retry_user_errors=boolean(data.get("retry_user_errors", False), "retry_user_errors"),
        refine=parse_refine(data.get("refine"), axes, objective, rows),
    )
    if rows > MAX_ROWS:
        raise SpecError("space", f"has {shown(rows)} rows, more than the supported {MAX_ROWS:,}")
    if spec.refine is not None:
        later = (spec.refine.stages - 1) * spec.refine.top_k * box_rows(axes, spec.refine)
        if rows + later > MAX_ROWS:
            raise SpecError(
                "refine",
                f"makes {shown(rows + later)} rows over all stages, more than the supported "
                f"{MAX_ROWS:,}",
            )
    if spec.shards > rows:
        raise SpecError("shards", f"is {spec.shards} but the space has only {rows} rows")
    _check_size(spec)
    return spec


def _code_version(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_CODE_VERSION_CHARS:
        raise SpecError(
            "code_version",
            f"must be a non-empty string of at most {MAX_CODE_VERSION_CHARS} characters, "
            f"got {shown(value)}",
        )
    if not value.isprintable():
        raise SpecError("code_version", f"must be printable text, got {shown(value)}")
    return value


def _check_size(spec: Spec) -> None:
    """The canonical spec travels as one command-line argument: see MAX_SPEC_BYTES."""
    size = len(spec.to_json().encode())
    if size <= MAX_SPEC_BYTES:
        return
    canonical = spec.canonical()
    parts = {key: _json_size(value) for key, value in canonical.items()}
    field = max(parts, key=parts.__getitem__)
    if field == "space":
        axis = max(spec.axes, key=lambda a: _json_size(list(a.args)))
        field = f"{field_path('space', axis.name)}.{axis.kind}"
    raise SpecError(
        field,
        f"makes the canonical spec {size:,} bytes, over the limit of {MAX_SPEC_BYTES:,} (the "
        "spec travels as one command-line argument of every pod): give a long axis as a "
        "range, linspace or logspace instead of listing its values",
    )


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
