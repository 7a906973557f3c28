"""The validators of a spec document's fields: the scalar settings, the `space` table (into
`Axis` values), `objective`, `keep` and `resources`.

Each raises a SpecError that names its field; `steps.spec.parse_spec` calls them in order
and assembles the `Spec`. numpy and pyarrow are imported only when an axis or an objective is
checked, not with `steps.spec`, which the CLI imports before anything heavy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from steps.axis import GRID_KINDS, RANDOM_KINDS, Axis, Scalar
from steps.spec_error import SpecError, field_path, shown
from steps.spec_keys import OBJECTIVE_KEYS, RESOURCE_KEYS, TOP_LEVEL_KEYS, closest, reject_unknown
from steps.spec_limits import MAX_KEEP_TOP_K, MAX_ROWS, MAX_TOP_K
from steps.spec_parts import Keep, Objective, Resources

__all__ = [
    "AXIS_NAME_RE",
    "MAX_QUANTITY_CHARS",
    "QUANTITY_RE",
    "RESERVED_COLUMNS",
    "WHERE_RE",
    "boolean",
    "int_in",
    "parse_keep",
    "parse_objective",
    "parse_resources",
    "parse_space",
    "quantity_value",
    "required_str",
]


# \A...\Z, not ^...$: `$` also matches before a trailing newline, so "demo\n" would pass.
AXIS_NAME_RE = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
RESERVED_COLUMNS = frozenset({"param_id"})

# ASCII digits only: \d also matches other scripts' digits, which Kubernetes refuses.
QUANTITY_RE = re.compile(r"\A([0-9]+(\.[0-9]+)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?\Z")
MAX_QUANTITY_CHARS = 32
MAX_GPUS = 16  # per pod: more than any node carries (8 on the largest GPU nodes today)

WHERE_RE = re.compile(r"\A\s*([A-Za-z_]\w*)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*\Z")


def required_str(data: Mapping[str, Any], field: str) -> str:
    if field not in data:
        raise SpecError(field, "is required")
    value = data[field]
    if not isinstance(value, str) or not value:
        raise SpecError(field, f"must be a non-empty string, got {shown(value)}")
    return value


def int_in(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(field, f"must be an integer, got {shown(value)}")
    if not low <= value <= high:
        raise SpecError(field, f"must be between {low:,} and {high:,}, got {shown(value)}")
    return value


def boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError(field, f"must be true or false, got {shown(value)}")
    return value


def _finite(value: Any, field: str) -> float:
    """A finite float64; an integer only if it is exactly one (2**53 + 1 is not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(field, f"must be a number, got {shown(value)}")
    if isinstance(value, int):
        return _exact_float(value, field)
    if not math.isfinite(value):
        raise SpecError(field, f"must be finite, got {shown(value)}")
    return float(value)


def _exact_float(value: int, field: str) -> float:
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if number != value:
        raise SpecError(
            field,
            f"the integer {shown(value)} is not exactly a float64 (the axis is float64): "
            "write the float you mean",
        )
    return number


def parse_space(space: Any) -> tuple[Axis, ...]:
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
        if not isinstance(name, str) or not AXIS_NAME_RE.fullmatch(name):
            raise SpecError(
                field_path("space", name), "axis names must be Python identifiers (<= 63 chars)"
            )
        if name in RESERVED_COLUMNS:
            raise SpecError(field_path("space", name), "is reserved for the row id column")
        if name in seen:
            raise SpecError(field_path("space", name), "is defined twice")
        seen.add(name)
        axes.append(_parse_axis(name, body))
    return tuple(axes)


def _parse_axis(name: str, body: Any) -> Axis:
    field = f"space.{name}"
    kinds = GRID_KINDS + RANDOM_KINDS
    if not isinstance(body, Mapping) and name in TOP_LEVEL_KEYS:  # TOML's most common slip
        raise SpecError(
            field,
            f"is not an axis: '{name}' is a top-level key, and TOML puts every key written "
            "after [space] into [space]; write it above the first [table]",
        )
    if not isinstance(body, Mapping) or len(body) != 1:
        raise SpecError(field, f"must be a table with exactly one of: {', '.join(kinds)}")
    ((kind, args),) = body.items()
    if kind not in kinds:
        hint = closest(str(kind), frozenset(kinds))
        raise SpecError(
            field_path(field, kind),
            "unknown axis kind"
            + (f" (did you mean '{hint}'?)" if hint else "")
            + f"; known: {', '.join(kinds)}",
        )
    field = f"{field}.{kind}"
    if not isinstance(args, Sequence) or isinstance(args, str):
        raise SpecError(field, f"must be a list, got {shown(args)}")
    parser = _AXIS_PARSERS[kind]
    axis = Axis(name, kind, parser(list(args), field))
    _check_arithmetic(axis, field)
    return axis


def _check_arithmetic(axis: Axis, field: str) -> None:
    """A float axis whose arithmetic overflows (a linspace spanning -1.7e308..1.7e308, a
    normal with a huge stddev) would yield inf or NaN from finite arguments: refuse it."""
    from steps.axis_values import extremes  # numpy: loaded here, not with steps.spec

    for value in extremes(axis).tolist():
        if not math.isfinite(value):
            raise SpecError(
                field,
                f"{axis.kind} {shown(list(axis.args))} reaches {value} in float64 arithmetic "
                "(its span overflows): narrow it",
            )


def _arity(args: list[Any], n: int, field: str, shape: str) -> None:
    if len(args) != n:
        raise SpecError(field, f"must be {shape}, got {shown(args)}")


def _parse_spaced(args: list[Any], field: str) -> tuple[Scalar, ...]:
    _arity(args, 3, field, "[start, stop, num]")
    start, stop = _finite(args[0], f"{field}[0]"), _finite(args[1], f"{field}[1]")
    num = int_in(args[2], f"{field}[2]", 1, MAX_ROWS)
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
    start, stop, step = (int_in(v, f"{field}[{i}]", -(2**62), 2**62) for i, v in enumerate(args))
    if step == 0:
        raise SpecError(f"{field}[2]", "step must not be 0")
    if len(range(start, stop, step)) == 0:
        raise SpecError(field, f"range({start}, {stop}, {step}) is empty (stop is exclusive)")
    return (start, stop, step)


def _parse_values(args: list[Any], field: str) -> tuple[Scalar, ...]:
    if not args:
        raise SpecError(field, "is empty: give at least one value")
    kinds = {_value_kind(v, f"{field}[{i}]") for i, v in enumerate(args)}
    if kinds == {"int", "float"}:  # a float axis: each integer must be exactly a float64
        return tuple(
            _exact_float(v, f"{field}[{i}]") if isinstance(v, int) else v
            for i, v in enumerate(args)
        )
    if len(kinds) > 1:
        raise SpecError(field, f"mixes {' and '.join(sorted(kinds))}: one type per axis")
    return tuple(args)


def _value_kind(value: Any, field: str) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise SpecError(field, f"{shown(value)} does not fit in int64")
        return "int"
    if isinstance(value, float):
        _finite(value, field)
        return "float"
    if isinstance(value, str):
        return "str"
    raise SpecError(field, f"values must be numbers, strings or booleans, got {shown(value)}")


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


def parse_objective(data: Any, axes: tuple[Axis, ...]) -> Objective | None:
    import pyarrow as pa

    from steps.axis_values import arrow_type

    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise SpecError("objective", "must be a table with column, goal and top_k")
    reject_unknown(data, OBJECTIVE_KEYS, "objective")
    column = data.get("column")
    if not isinstance(column, str) or not column:
        raise SpecError("objective.column", f"must name a result column, got {shown(column)}")
    goal = data.get("goal", "min")
    if goal not in ("min", "max"):
        raise SpecError("objective.goal", f"must be 'min' or 'max', got {shown(goal)}")
    if column == "param_id" or any(a.name == column and arrow_type(a) == pa.string() for a in axes):
        raise SpecError("objective.column", f"{shown(column)} is not a numeric column")
    top_k = int_in(data.get("top_k", 10), "objective.top_k", 1, MAX_TOP_K)
    on_nan = data.get("on_nan", "ignore")
    if on_nan not in ("ignore", "fail"):
        raise SpecError("objective.on_nan", f"must be 'ignore' or 'fail', got {shown(on_nan)}")
    return Objective(column=column, goal=goal, top_k=top_k, on_nan=on_nan)


def parse_resources(data: Any, field: str, base: Resources = Resources()) -> Resources:  # noqa: B008 (a frozen dataclass)
    """Overrides of `base` from a table such as `[resources]` (or CLI flags)."""
    if data is None:
        return base
    if not isinstance(data, Mapping):
        raise SpecError(field, f"must be a table with keys {', '.join(sorted(RESOURCE_KEYS))}")
    reject_unknown(data, RESOURCE_KEYS, field)
    quantities: dict[str, str] = {}
    for key, value in data.items():
        if key == "gpu":
            continue
        text = _quantity(value)
        if text is None:
            raise SpecError(
                field_path(field, key),
                f"must be a Kubernetes quantity like '500m' or '256Mi', got {shown(value)}",
            )
        quantities[key] = text
    gpu = _gpu_count(data["gpu"], field_path(field, "gpu")) if "gpu" in data else base.gpu
    resources = replace(base, **quantities, gpu=gpu)
    for kind in ("cpu", "memory"):  # what the API server refuses a pod for
        request, limit = getattr(resources, f"{kind}_request"), getattr(resources, f"{kind}_limit")
        if quantity_value(limit) <= 0:
            raise SpecError(field_path(field, f"{kind}_limit"), f"must be more than 0, got {limit}")
        if quantity_value(request) > quantity_value(limit):
            raise SpecError(
                field_path(field, f"{kind}_request"),
                f"{request} is more than {kind}_limit {limit}: Kubernetes refuses such a pod",
            )
    return resources


_SCALE = {
    "": 1.0,
    "m": 1e-3,
    **{unit: 1000.0 ** (n + 1) for n, unit in enumerate("kMGTPE")},
    **{unit: 1024.0 ** (n + 1) for n, unit in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
}


def quantity_value(text: str) -> float:
    """A Kubernetes quantity that QUANTITY_RE accepts, as a number: "500m" is 0.5."""
    match = QUANTITY_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"not a quantity: {text!r}")
    return float(match[1]) * _SCALE[match[3] or ""]


def _gpu_count(value: Any, field: str) -> int:
    """A whole number of GPUs; digits as text too, as a CLI flag gives them."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    return int_in(value, field, 0, MAX_GPUS)


def _quantity(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    if isinstance(value, int) and not 0 <= value < 2**63:  # str() of a huge int can raise
        return None
    text = str(value)
    ok = len(text) <= MAX_QUANTITY_CHARS and QUANTITY_RE.fullmatch(text)
    return text if ok else None


def parse_keep(data: Any, objective: Objective | None) -> Keep:
    """`"all"`, `{ top_k = N }` or `{ where = "<column> <op> <number>" }`."""
    if data == "all":
        return Keep()
    if not isinstance(data, Mapping) or len(data) != 1:
        raise SpecError(
            "keep",
            f'must be "all", {{ top_k = N }} or {{ where = "f < 0.01" }}, got {shown(data)}',
        )
    ((key, value),) = data.items()
    if key == "top_k":
        if objective is None:
            raise SpecError("keep.top_k", "needs an [objective] to rank rows by")
        return Keep(top_k=int_in(value, "keep.top_k", 1, MAX_KEEP_TOP_K))
    if key == "where":
        match = WHERE_RE.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise SpecError(
                "keep.where",
                f'must look like "<column> <op> <number>" (op: < <= > >= == !=), got {shown(value)}',
            )
        if re.fullmatch(r"[-+]?[0-9]+", match[3]):  # an integer stays one: int64 is exact
            whole = int(match[3])
            if abs(whole) >= 2**64:
                raise SpecError("keep.where", f"{shown(whole)} is beyond any integer column")
            return Keep(where=(match[1], match[2], whole))
        try:
            number = float(match[3]) if match[3].isascii() else math.nan
        except ValueError:
            raise SpecError("keep.where", f"{shown(match[3])} is not a number") from None
        return Keep(where=(match[1], match[2], _finite(number, "keep.where")))
    raise SpecError(field_path("keep", key), "unknown key; known keys: top_k, where")
