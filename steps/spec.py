"""The sweep spec: load, validate, canonicalise, hash.

A spec arrives as TOML / YAML / JSON from a user, or as canonical JSON from a Workflow
parameter. Both go through `parse_spec`, so a pod validates exactly what the CLI validated.
The canonical form keeps `space` as an ordered list of `[name, axis]` pairs: axis order fixes
the `param_id` order, so it must survive hashing and transport.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

MAX_SHARDS = 10_000
MAX_CHUNK_ROWS = 1 << 24
MAX_ROWS = 1 << 62
MAX_TOP_K = 10_000
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
FUNCTION_RE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")
AXIS_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
RESERVED_COLUMNS = frozenset({"param_id"})

GRID_KINDS = ("linspace", "range", "values", "logspace")
RANDOM_KINDS = ("uniform", "loguniform", "normal", "choice")

Scalar = int | float | str | bool


class SpecError(ValueError):
    """A spec problem, phrased as one line that names the field."""

    def __init__(self, field: str, problem: str) -> None:
        line = f"spec field '{field}': {problem}"
        # User text is echoed back; escaping control characters keeps it one line.
        super().__init__(
            line.encode("unicode_escape").decode("ascii") if not line.isprintable() else line
        )
        self.field = field


@dataclass(frozen=True)
class Axis:
    """One named axis: `kind` is one of GRID_KINDS or RANDOM_KINDS, `args` its arguments."""

    name: str
    kind: str
    args: tuple[Scalar, ...]

    @property
    def is_random(self) -> bool:
        return self.kind in RANDOM_KINDS


@dataclass(frozen=True)
class Objective:
    column: str
    goal: Literal["min", "max"]
    top_k: int


QUANTITY_RE = re.compile(r"^(\d+(\.\d+)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


@dataclass(frozen=True)
class Resources:
    """Kubernetes requests and limits for each pod; the old worker's defaults."""

    cpu_request: str = "100m"
    memory_request: str = "128Mi"
    cpu_limit: str = "500m"
    memory_limit: str = "256Mi"


WHERE_RE = re.compile(r"^\s*([A-Za-z_]\w*)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$")
MAX_KEEP_TOP_K = 1_000_000


@dataclass(frozen=True)
class Keep:
    """Which rows the result keeps: all of them, the best `top_k` by the objective, or those
    `where` a condition holds. The summary always covers every computed row."""

    top_k: int | None = None
    where: tuple[str, str, float] | None = None  # column, operator, number

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
    keep: Keep = Keep()
    # Where the sweep runs, not what it computes: outside the canonical form and the hash.
    resources: Resources = Resources()

    def canonical(self) -> dict[str, Any]:
        """Plain-JSON form with every default filled in and axis order kept (no resources)."""
        return {
            "name": self.name,
            "function": self.function,
            "shards": self.shards,
            "chunk_rows": self.chunk_rows,
            "seed": self.seed,
            "samples": self.samples,
            "vectorized": self.vectorized,
            "space": [[a.name, {a.kind: list(a.args)}] for a in self.axes],
            "objective": None
            if self.objective is None
            else {
                "column": self.objective.column,
                "goal": self.objective.goal,
                "top_k": self.objective.top_k,
            },
            "keep": self.keep.canonical(),
        }

    def to_json(self) -> str:
        """Compact canonical JSON: what travels as the Workflow's `spec` parameter."""
        return json.dumps(self.canonical(), separators=(",", ":"), ensure_ascii=False)

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def with_shards(self, shards: int) -> Spec:
        return replace(self, shards=_int_in(shards, "shards", 1, MAX_SHARDS))


def load_spec(path: str | Path) -> Spec:
    """Read a spec file (by extension: .toml, .yaml/.yml, .json) and validate it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("file", f"no such spec file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError("file", f"cannot read {path}: {exc}") from None
    return parse_spec(_decode(text, path.suffix.lower(), str(path)))


def spec_from_json(text: str) -> Spec:
    """Parse the canonical JSON a pod receives (also accepts any JSON spec)."""
    return parse_spec(_decode(text, ".json", "--spec"))


def _decode(text: str, suffix: str, where: str) -> Any:
    try:
        if suffix == ".toml":
            return tomllib.loads(text)
        if suffix in (".yaml", ".yml"):
            import yaml  # authoring side only: the worker image receives JSON

            return yaml.safe_load(text)
        if suffix == ".json":
            return json.loads(text)
    except Exception as exc:  # every parser has its own error type; all mean "malformed"
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SpecError(
            "file", f"{where} is not valid {suffix[1:].upper()}: {first_line}"
        ) from None
    raise SpecError("file", f"unknown spec format '{suffix}' (use .toml, .yaml, .yml or .json)")


TOP_LEVEL_KEYS = frozenset(
    {
        "name",
        "function",
        "shards",
        "chunk_rows",
        "seed",
        "samples",
        "vectorized",
        "space",
        "objective",
        "keep",
        "resources",
    }
)


def parse_spec(data: Any) -> Spec:
    """Validate a decoded spec document; every error names its field."""
    if not isinstance(data, Mapping):
        raise SpecError("(top level)", "expected a table of settings")
    _reject_unknown(data, TOP_LEVEL_KEYS, "")
    name = _required_str(data, "name")
    if not NAME_RE.match(name):
        raise SpecError(
            "name",
            f"'{name}' must be a DNS-1123 label of at most 40 characters "
            "(lowercase letters, digits and '-', starting and ending with a letter or digit)",
        )
    function = _required_str(data, "function")
    if not FUNCTION_RE.match(function):
        raise SpecError("function", f"'{function}' must look like 'package.module:callable'")
    axes = _parse_space(data.get("space"))
    has_random = any(a.is_random for a in axes)
    samples = _int_in(data.get("samples", 1), "samples", 1, MAX_ROWS)
    if samples > 1 and not has_random:
        raise SpecError("samples", f"is {samples} but the space has no random axis to draw from")
    objective = _parse_objective(data.get("objective"), axes)
    spec = Spec(
        name=name,
        function=function,
        shards=_int_in(data.get("shards", 1), "shards", 1, MAX_SHARDS),
        chunk_rows=_int_in(data.get("chunk_rows", 262_144), "chunk_rows", 1, MAX_CHUNK_ROWS),
        seed=_int_in(data.get("seed", 0), "seed", 0, 2**63 - 1),
        samples=samples,
        vectorized=_bool(data.get("vectorized", True), "vectorized"),
        axes=axes,
        objective=objective,
        keep=_parse_keep(data.get("keep", "all"), objective),
        resources=parse_resources(data.get("resources"), "resources"),
    )
    from steps.space import grid_length  # space imports spec; import here to avoid a cycle

    rows = math.prod(grid_length(a) for a in axes if not a.is_random) * samples
    if rows > MAX_ROWS:
        raise SpecError("space", f"has {rows:,} rows, more than the supported {MAX_ROWS:,}")
    if spec.shards > rows:
        raise SpecError("shards", f"is {spec.shards} but the space has only {rows} rows")
    return spec


def _reject_unknown(data: Mapping[str, Any], known: frozenset[str], prefix: str) -> None:
    for key in data:
        if key not in known:
            hint = _closest(str(key), known)
            raise SpecError(
                f"{prefix}{key}",
                "unknown key"
                + (f" (did you mean '{hint}'?)" if hint else "")
                + f"; known keys: {', '.join(sorted(known))}",
            )


def _closest(key: str, known: frozenset[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return match[0] if match else None


def _required_str(data: Mapping[str, Any], field: str) -> str:
    if field not in data:
        raise SpecError(field, "is required")
    value = data[field]
    if not isinstance(value, str) or not value:
        raise SpecError(field, f"must be a non-empty string, got {value!r}")
    return value


def _int_in(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(field, f"must be an integer, got {value!r}")
    if not low <= value <= high:
        raise SpecError(field, f"must be between {low:,} and {high:,}, got {value:,}")
    return value


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError(field, f"must be true or false, got {value!r}")
    return value


def _finite(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(field, f"must be a number, got {value!r}")
    if not math.isfinite(value):
        raise SpecError(field, f"must be finite, got {value!r}")
    return float(value)


def _parse_space(space: Any) -> tuple[Axis, ...]:
    """Accept a mapping (from TOML/YAML, order kept) or the canonical list of pairs."""
    if space is None:
        raise SpecError("space", "is required: at least one axis")
    if isinstance(space, Mapping):
        pairs = list(space.items())
    elif isinstance(space, Sequence) and not isinstance(space, str):
        pairs = []
        for i, pair in enumerate(space):
            if not (isinstance(pair, Sequence) and not isinstance(pair, str) and len(pair) == 2):
                raise SpecError(f"space[{i}]", "must be a [name, axis] pair")
            pairs.append((pair[0], pair[1]))
    else:
        raise SpecError("space", "must be a table of axes")
    if not pairs:
        raise SpecError("space", "is empty: at least one axis is required")
    axes = []
    seen: set[str] = set()
    for name, body in pairs:
        if not isinstance(name, str) or not AXIS_NAME_RE.match(name):
            raise SpecError(f"space.{name}", "axis names must be Python identifiers (<= 63 chars)")
        if name in RESERVED_COLUMNS:
            raise SpecError(f"space.{name}", "is reserved for the row id column")
        if name in seen:
            raise SpecError(f"space.{name}", "is defined twice")
        seen.add(name)
        axes.append(_parse_axis(name, body))
    return tuple(axes)


def _parse_axis(name: str, body: Any) -> Axis:
    field = f"space.{name}"
    kinds = GRID_KINDS + RANDOM_KINDS
    if not isinstance(body, Mapping) or len(body) != 1:
        raise SpecError(field, f"must be a table with exactly one of: {', '.join(kinds)}")
    ((kind, args),) = body.items()
    if kind not in kinds:
        hint = _closest(str(kind), frozenset(kinds))
        raise SpecError(
            f"{field}.{kind}",
            "unknown axis kind"
            + (f" (did you mean '{hint}'?)" if hint else "")
            + f"; known: {', '.join(kinds)}",
        )
    field = f"{field}.{kind}"
    if not isinstance(args, Sequence) or isinstance(args, str):
        raise SpecError(field, f"must be a list, got {args!r}")
    parser = _AXIS_PARSERS[kind]
    return Axis(name, kind, parser(list(args), field))


def _arity(args: list[Any], n: int, field: str, shape: str) -> None:
    if len(args) != n:
        raise SpecError(field, f"must be {shape}, got {args!r}")


def _parse_spaced(args: list[Any], field: str) -> tuple[Scalar, ...]:
    _arity(args, 3, field, "[start, stop, num]")
    start, stop = _finite(args[0], f"{field}[0]"), _finite(args[1], f"{field}[1]")
    num = _int_in(args[2], f"{field}[2]", 1, MAX_ROWS)
    if num > 1 and start == stop:
        raise SpecError(field, f"start and stop are both {start}: {num} identical points")
    return (start, stop, num)


def _parse_logspace(args: list[Any], field: str) -> tuple[Scalar, ...]:
    start, stop, num = _parse_spaced(args, field)
    for i, exponent in enumerate((start, stop)):
        if abs(float(exponent)) > 308:
            raise SpecError(f"{field}[{i}]", f"exponent {exponent} overflows a float64")
    return (start, stop, num)


def _parse_range(args: list[Any], field: str) -> tuple[Scalar, ...]:
    if len(args) == 2:
        args = [*args, 1]
    _arity(args, 3, field, "[start, stop, step] of integers (stop exclusive)")
    start, stop, step = (_int_in(v, f"{field}[{i}]", -(2**62), 2**62) for i, v in enumerate(args))
    if step == 0:
        raise SpecError(f"{field}[2]", "step must not be 0")
    if len(range(start, stop, step)) == 0:
        raise SpecError(field, f"range({start}, {stop}, {step}) is empty (stop is exclusive)")
    return (start, stop, step)


def _parse_values(args: list[Any], field: str) -> tuple[Scalar, ...]:
    if not args:
        raise SpecError(field, "is empty: give at least one value")
    kinds = {_value_kind(v, f"{field}[{i}]") for i, v in enumerate(args)}
    if kinds == {"int", "float"}:
        return tuple(float(v) for v in args)
    if len(kinds) > 1:
        raise SpecError(field, f"mixes {' and '.join(sorted(kinds))}: one type per axis")
    return tuple(args)


def _value_kind(value: Any, field: str) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        if abs(value) >= 2**63:
            raise SpecError(field, f"{value} does not fit in int64")
        return "int"
    if isinstance(value, float):
        _finite(value, field)
        return "float"
    if isinstance(value, str):
        return "str"
    raise SpecError(field, f"values must be numbers, strings or booleans, got {value!r}")


def _parse_interval(args: list[Any], field: str) -> tuple[Scalar, ...]:
    _arity(args, 2, field, "[low, high]")
    low, high = _finite(args[0], f"{field}[0]"), _finite(args[1], f"{field}[1]")
    if not low < high:
        raise SpecError(field, f"low ({low}) must be below high ({high})")
    return (low, high)


def _parse_loguniform(args: list[Any], field: str) -> tuple[Scalar, ...]:
    low, high = _parse_interval(args, field)
    if float(low) <= 0:
        raise SpecError(f"{field}[0]", f"must be > 0 for a log scale, got {low}")
    return (low, high)


def _parse_normal(args: list[Any], field: str) -> tuple[Scalar, ...]:
    _arity(args, 2, field, "[mean, stddev]")
    mean, std = _finite(args[0], f"{field}[0]"), _finite(args[1], f"{field}[1]")
    if std <= 0:
        raise SpecError(f"{field}[1]", f"stddev must be > 0, got {std}")
    return (mean, std)


_AXIS_PARSERS = {
    "linspace": _parse_spaced,
    "logspace": _parse_logspace,
    "range": _parse_range,
    "values": _parse_values,
    "uniform": _parse_interval,
    "loguniform": _parse_loguniform,
    "normal": _parse_normal,
    "choice": _parse_values,
}

OBJECTIVE_KEYS = frozenset({"column", "goal", "top_k"})


def _parse_objective(data: Any, axes: tuple[Axis, ...]) -> Objective | None:
    import pyarrow as pa

    from steps.space import arrow_type

    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise SpecError("objective", "must be a table with column, goal and top_k")
    _reject_unknown(data, OBJECTIVE_KEYS, "objective.")
    column = data.get("column")
    if not isinstance(column, str) or not column:
        raise SpecError("objective.column", f"must name a result column, got {column!r}")
    goal = data.get("goal", "min")
    if goal not in ("min", "max"):
        raise SpecError("objective.goal", f"must be 'min' or 'max', got {goal!r}")
    if column == "param_id" or any(a.name == column and arrow_type(a) == pa.string() for a in axes):
        raise SpecError("objective.column", f"'{column}' is not a numeric column")
    top_k = _int_in(data.get("top_k", 10), "objective.top_k", 1, MAX_TOP_K)
    return Objective(column=column, goal=goal, top_k=top_k)


RESOURCE_KEYS = frozenset(Resources.__dataclass_fields__)


def parse_resources(data: Any, field: str, base: Resources = Resources()) -> Resources:
    """Overrides of `base` from a table such as `[resources]` (or CLI flags)."""
    if data is None:
        return base
    if not isinstance(data, Mapping):
        raise SpecError(field, f"must be a table with keys {', '.join(sorted(RESOURCE_KEYS))}")
    _reject_unknown(data, RESOURCE_KEYS, f"{field}.")
    values = {}
    for key, value in data.items():
        if (
            not isinstance(value, str | int)
            or isinstance(value, bool)
            or not QUANTITY_RE.match(str(value))
        ):
            raise SpecError(
                f"{field}.{key}",
                f"must be a Kubernetes quantity like '500m' or '256Mi', got {value!r}",
            )
        values[key] = str(value)
    return replace(base, **values)


def _parse_keep(data: Any, objective: Objective | None) -> Keep:
    """`"all"`, `{ top_k = N }` or `{ where = "<column> <op> <number>" }`."""
    if data == "all":
        return Keep()
    if not isinstance(data, Mapping) or len(data) != 1:
        raise SpecError(
            "keep", f'must be "all", {{ top_k = N }} or {{ where = "f < 0.01" }}, got {data!r}'
        )
    ((key, value),) = data.items()
    if key == "top_k":
        if objective is None:
            raise SpecError("keep.top_k", "needs an [objective] to rank rows by")
        return Keep(top_k=_int_in(value, "keep.top_k", 1, MAX_KEEP_TOP_K))
    if key == "where":
        match = WHERE_RE.match(value) if isinstance(value, str) else None
        if match is None:
            raise SpecError(
                "keep.where",
                f'must look like "<column> <op> <number>" (op: < <= > >= == !=), got {value!r}',
            )
        try:
            number = float(match[3])
        except ValueError:
            raise SpecError("keep.where", f"'{match[3]}' is not a number") from None
        return Keep(where=(match[1], match[2], _finite(number, "keep.where")))
    raise SpecError(f"keep.{key}", "unknown key; known keys: top_k, where")
