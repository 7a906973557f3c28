"""The function contract: import the user's callable, call it on a chunk, check its columns.

A vectorized function is called once per chunk with each axis as a keyword array (and
`param_id` if its signature asks for it). A scalar one (`vectorized = false`) is called once
per row with Python scalars: the migration path from a per-parameter loop, and slow.
Either returns columns: a mapping of arrays (scalars per row for a scalar function), a
pyarrow Table, or a pandas DataFrame.

The arrays a function receives are its own copies: the stored `param_id` and axis columns
are built from the decoded arrays, which no user code ever sees, so nothing a function does
with its inputs (in place, through `.base`, kept for later) can change what the result says
was swept. (Read-only views were not enough: a view's `.base` can be made writeable again.)
A copy costs one memcpy per axis per chunk. Output columns must be of a type that every part
of TTG (statistics, top-k, summary.json, results, plots) handles: `STORABLE` says which.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from steps.refine import STAGE_COLUMN
from steps.spec import Spec

__all__ = ["STORABLE", "ChunkFunction", "FunctionError", "import_function", "storable"]


class FunctionError(Exception):
    """The user's function could not be loaded, failed, or returned the wrong thing."""


def storable(dtype: pa.DataType) -> bool:
    """Numbers, booleans and text: what statistics, top-k and JSON summaries handle exactly."""
    return bool(
        pa.types.is_boolean(dtype)
        or pa.types.is_integer(dtype)
        or pa.types.is_float32(dtype)
        or pa.types.is_float64(dtype)
        or pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
    )


STORABLE = "booleans, integers, float32/float64 or strings"


def import_function(reference: str) -> Callable[..., Any]:
    """Import `package.module:callable`; FunctionError with one line if that fails."""
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:  # a module may call sys.exit() at import
        raise FunctionError(
            f"cannot import module '{module_name}' for function '{reference}': "
            f"{type(exc).__name__}: {exc}"
        ) from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise FunctionError(
            f"module '{module_name}' has no callable '{attribute}' (function '{reference}')"
        )
    return function


class ChunkFunction:
    """The spec's function bound to the spec's axes: columns in, a pyarrow Table out."""

    def __init__(self, spec: Spec, schema: pa.Schema | None = None) -> None:
        """`schema`: the output columns' types, if known (verify knows the result's);
        otherwise the first chunk fixes them."""
        self.spec = spec
        self.function = import_function(spec.function)
        self.axis_names = [a.name for a in spec.axes]
        self.stage_column = STAGE_COLUMN if spec.refine is not None else None
        self.wants_param_id = _accepts(self.function, "param_id")
        self.schema = schema
        self.defaulted: set[str] = set()  # columns typed float64 for want of any value

    def __call__(self, columns: Mapping[str, np.ndarray]) -> pa.Table:
        """The function gets copies of `columns` (see the module docstring)."""
        kwargs = {name: columns[name].copy() for name in self.axis_names}
        if self.wants_param_id:
            kwargs["param_id"] = columns["param_id"].copy()
        rows = len(columns["param_id"])
        raw = (
            self._call_vectorized(kwargs) if self.spec.vectorized else self._call_rows(kwargs, rows)
        )
        outputs = self._check(_as_columns(raw, self.spec.vectorized), rows)
        return self._conform(outputs)

    def _call_vectorized(self, kwargs: dict[str, np.ndarray]) -> Any:
        return self.function(**kwargs)

    def _call_rows(self, kwargs: dict[str, np.ndarray], rows: int) -> dict[str, list[Any]]:
        collected: dict[str, list[Any]] = {}
        as_lists = {name: values.tolist() for name, values in kwargs.items()}
        for i in range(rows):
            result = self.function(**{name: values[i] for name, values in as_lists.items()})
            if not isinstance(result, Mapping):
                raise FunctionError(
                    f"a scalar function must return a mapping of column to value, got {type(result).__name__}"
                )
            if i == 0:
                collected = {str(name): [] for name in result}
            if len(result) != len(collected) or any(name not in collected for name in result):
                raise FunctionError(
                    f"returned columns {sorted(result)} at row {i}, but {sorted(collected)} before"
                )
            for name, value in result.items():
                collected[name].append(value)
        return collected

    def _check(self, outputs: dict[str, pa.Array], rows: int) -> dict[str, pa.Array]:
        if not outputs:
            raise FunctionError("returned no columns")
        for name, values in outputs.items():
            if name == "param_id" or name in self.axis_names:
                raise FunctionError(f"returned a column '{name}', which is the name of an axis")
            if name == self.stage_column:
                raise FunctionError(f"returned a column '{name}': a refined sweep's stage column")
            if len(values) != rows:
                raise FunctionError(
                    f"returned {len(values)} values for column '{name}', expected {rows}"
                )
            if not (storable(values.type) or pa.types.is_null(values.type)):
                raise FunctionError(
                    f"returned column '{name}' of type {values.type}, which TTG does not store "
                    f"(use {STORABLE}; e.g. int64 nanoseconds for a time, text for a decimal)"
                )
        return outputs

    def _conform(self, outputs: dict[str, pa.Array]) -> pa.Table:
        """Keep every chunk on the first chunk's types, so row groups (and shards) agree.

        A column with no value at all (Arrow type null: all None) takes the type the schema
        has for it, or float64 — a missing number — before any: otherwise whether a sweep of
        a function that returns None for part of the space fails would depend on whether
        some chunk held only missing values. Other types never change silently: an integer
        may widen to a float or another integer, exactly (a checked cast), and nothing else
        (a string "1.5" does not become the number 1.5)."""
        known = {} if self.schema is None else {f.name: f.type for f in self.schema}
        columns: dict[str, pa.Array] = {}
        for name, values in outputs.items():
            if pa.types.is_null(values.type):
                if name not in known:
                    self.defaulted.add(name)
                values = values.cast(known.get(name, pa.float64()))
            columns[name] = values
        table = pa.table(columns)
        if self.schema is None:
            self.schema = table.schema
            return table
        if table.schema.names != self.schema.names:
            raise FunctionError(
                f"returned columns {table.schema.names}, but {self.schema.names} before"
            )
        for field, before in zip(table.schema, self.schema.types, strict=True):
            if field.type != before and not _widens(field.type, before):
                raise FunctionError(self._type_change(field.name, field.type, before))
        try:
            return table.cast(self.schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise FunctionError(f"column types changed between chunks ({exc})") from None

    def _type_change(self, name: str, now: pa.DataType, before: pa.DataType) -> str:
        if name in self.defaulted:
            return (
                f"returned column '{name}' of type {now}; an earlier chunk had no value in it, "
                f"so it was taken as {before}: return the same type in every chunk (a missing "
                "number as NaN, or a typed array such as pa.array(values, type=pa.string()))"
            )
        return f"returned column '{name}' of type {now}, but {before} before"


def _widens(now: pa.DataType, before: pa.DataType) -> bool:
    """Whether values of type `now` can join a column of type `before` without changing
    kind: integers into integers or floats, float32 into float64 (the cast checks each)."""
    if pa.types.is_integer(now):
        return bool(pa.types.is_integer(before) or pa.types.is_floating(before))
    return bool(pa.types.is_float32(now) and pa.types.is_float64(before))


def _accepts(function: Callable[..., Any], name: str) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _as_columns(raw: Any, vectorized: bool) -> dict[str, pa.Array]:
    if isinstance(raw, pa.Table):
        return {name: raw[name].combine_chunks() for name in raw.column_names}
    if isinstance(raw, Mapping):
        return {str(name): _as_array(name, values, vectorized) for name, values in raw.items()}
    if type(raw).__module__.startswith("pandas") and hasattr(raw, "columns"):
        table = pa.Table.from_pandas(raw, preserve_index=False)
        return {name: table[name].combine_chunks() for name in table.column_names}
    raise FunctionError(
        f"must return a mapping of columns, a pyarrow Table or a pandas DataFrame, got {type(raw).__name__}"
    )


def _as_array(name: Any, values: Any, vectorized: bool) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    array = np.asarray(values) if vectorized else values
    if vectorized and array.ndim != 1:
        raise FunctionError(f"column '{name}' must be one-dimensional, got shape {array.shape}")
    try:
        return pa.array(array)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise FunctionError(f"column '{name}' cannot be stored: {exc}") from None
