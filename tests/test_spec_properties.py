"""Property: whatever document arrives, the parser either accepts it and the space decodes
consistently, or raises the project's own SpecError — never anything else."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from steps.space import Space
from steps.spec import SpecError, parse_spec, spec_from_json

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
small_int = st.integers(min_value=-5, max_value=60)
number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64), st.integers(-(10**6), 10**6)
)
scalar = st.one_of(
    st.integers(-10, 10), st.floats(-10, 10), st.text("abc", max_size=3), st.booleans()
)
axis = st.one_of(
    st.builds(lambda a, b, n: {"linspace": [a, b, n]}, number, number, small_int),
    st.builds(lambda a, b, n: {"logspace": [a, b, n]}, number, number, small_int),
    st.builds(lambda *r: {"range": list(r)}, small_int, small_int, st.integers(-4, 4)),
    st.builds(lambda v: {"values": v}, st.lists(scalar, max_size=4)),
    st.builds(lambda a, b: {"uniform": [a, b]}, number, number),
    st.builds(lambda a, b: {"loguniform": [a, b]}, number, number),
    st.builds(lambda a, b: {"normal": [a, b]}, number, number),
    st.builds(lambda v: {"choice": v}, st.lists(scalar, max_size=4)),
    st.dictionaries(st.sampled_from(["linspace", "range", "grid", "values"]), junk, max_size=2),
    junk,
)
finite = st.floats(-1e6, 1e6, allow_nan=False)
sane_axis = st.one_of(  # mostly valid axes, so that accepted specs get decoded too
    st.builds(
        lambda a, b, n: {"linspace": [a, a + b + 1e-3, n]},
        finite,
        st.floats(0, 100),
        st.integers(1, 40),
    ),
    st.builds(
        lambda a, b, n: {"logspace": [a, a + b + 1e-3, n]},
        st.floats(-5, 5),
        st.floats(0, 3),
        st.integers(1, 9),
    ),
    st.builds(
        lambda a, n, k: {"range": [a, a + n * k, k]},
        st.integers(-50, 50),
        st.integers(1, 20),
        st.integers(1, 3),
    ),
    st.builds(lambda v: {"values": v}, st.lists(st.integers(-5, 5), min_size=1, max_size=4)),
    st.builds(
        lambda v: {"values": v},
        st.lists(st.text("abc", min_size=1, max_size=3), min_size=1, max_size=3),
    ),
    st.builds(lambda a, b: {"uniform": [a, a + b + 1e-3]}, finite, st.floats(0, 10)),
    st.builds(
        lambda a, b: {"loguniform": [a, a * (1 + b)]}, st.floats(1e-6, 1e3), st.floats(0.01, 100)
    ),
    st.builds(lambda a, b: {"normal": [a, b]}, finite, st.floats(0.01, 10)),
    st.builds(lambda v: {"choice": v}, st.lists(st.booleans(), min_size=1, max_size=2)),
)
axis_name = st.one_of(
    st.sampled_from(["x", "y", "lr", "param_id", "mode", "n2"]), st.text(max_size=6)
)
any_document = st.fixed_dictionaries(
    {
        "name": st.one_of(st.sampled_from(["sweep", "a-b", "x1"]), st.text(max_size=45)),
        "function": st.one_of(st.just("steps.kernels:rosenbrock"), st.text(max_size=12)),
        "space": st.one_of(st.dictionaries(axis_name, axis, max_size=4), junk),
    },
    optional={
        "shards": st.one_of(st.integers(-2, 12), junk),
        "chunk_rows": st.one_of(st.integers(-2, 50), junk),
        "seed": st.one_of(st.integers(-2, 2**64), junk),
        "samples": st.one_of(st.integers(-1, 6), junk),
        "vectorized": st.one_of(st.booleans(), junk),
        "objective": st.one_of(
            st.fixed_dictionaries(
                {"column": st.text("fxy", min_size=1, max_size=2)},
                optional={"goal": st.sampled_from(["min", "max", "best"]), "top_k": small_int},
            ),
            junk,
        ),
        "shard": junk,
    },
)
likely_document = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["sweep", "a-b", "x1"]),
        "function": st.just("steps.kernels:rosenbrock"),
        "space": st.dictionaries(
            st.sampled_from(["x", "y", "lr", "mode", "n2"]), sane_axis, min_size=1, max_size=3
        ),
    },
    optional={
        "shards": st.integers(1, 3),
        "chunk_rows": st.integers(1, 50),
        "seed": st.integers(0, 2**63 - 1),
        "samples": st.integers(1, 6),
        "objective": st.fixed_dictionaries(
            {"column": st.just("f"), "goal": st.sampled_from(["min", "max"])}
        ),
    },
)
document = st.one_of(likely_document, any_document)


def grid_points(kind: str, args: tuple[Any, ...]) -> int:
    if kind in ("linspace", "logspace"):
        return int(args[2])
    if kind == "range":
        return len(range(*args))
    return len(args)


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    if a.dtype.kind == "f":
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_array_equal(a[~np.isnan(a)], b[~np.isnan(b)])
    else:
        np.testing.assert_array_equal(a, b)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=document, where=st.floats(0, 1), split=st.floats(0, 1))
def test_a_document_is_accepted_and_decodes_consistently_or_raises_spec_error(
    doc: dict[str, Any], where: float, split: float
) -> None:
    try:
        spec = parse_spec(doc)
    except SpecError as error:
        assert "\n" not in str(error) and str(error).startswith("spec field '")
        assert len(str(error)) < 600, str(error)  # every echoed value is bounded
        event("refused")
        return
    event("accepted")
    assert spec_from_json(spec.to_json()) == spec
    assert spec_from_json(spec.to_json()).hash == spec.hash
    space = Space(spec)
    assert (
        space.rows
        == math.prod(grid_points(a.kind, a.args) for a in spec.axes if not a.is_random)
        * spec.samples
    )
    assert 1 <= spec.shards <= space.rows
    start = int(where * max(0, space.rows - 50))
    stop = min(space.rows, start + 50)
    middle = start + int(split * (stop - start))
    whole, left, right = (
        space.decode(start, stop),
        space.decode(start, middle),
        space.decode(middle, stop),
    )
    assert list(whole) == ["param_id", *(a.name for a in spec.axes)]
    np.testing.assert_array_equal(whole["param_id"], np.arange(start, stop))
    for name, values in whole.items():
        assert len(values) == stop - start
        assert_same(values, np.concatenate([left[name], right[name]]))


# --- TOML, YAML and JSON agree, and every accepted value arrives exactly ------------------
#
# Documents with edge values (any Unicode text but lone surrogates, NULs included; every
# finite float: -0.0, subnormals, the largest; int64's extremes; booleans), written in each
# format by a small emitter, must load to the same spec or the same one-line error; and each
# value a spec accepts must come back bit for bit from Space.decode and from a Parquet file
# written as compute writes it.

text_value = st.text(max_size=10)
float_value = st.floats(allow_nan=False, allow_infinity=False)
int64 = st.integers(-(2**63), 2**63 - 1)
positive = st.floats(min_value=5e-324, allow_infinity=False)
value_list = st.one_of(
    st.lists(text_value, min_size=1, max_size=5),
    st.lists(float_value, min_size=1, max_size=5),
    st.lists(int64, min_size=1, max_size=5),
    st.lists(st.booleans(), min_size=1, max_size=3),
    st.lists(st.one_of(float_value, st.integers(-(2**54), 2**54)), min_size=1, max_size=5),
)
edge_axis = st.one_of(
    st.builds(lambda v: {"values": v}, value_list),
    st.builds(lambda v: {"choice": v}, value_list),
    st.builds(lambda a, b, n: {"linspace": [a, b, n]}, float_value, float_value, st.integers(1, 9)),
    st.builds(
        lambda a, b, n: {"logspace": [a, b, n]},
        st.floats(-308, 308),
        st.floats(-308, 308),
        st.integers(1, 9),
    ),
    st.builds(
        lambda a, n, k: {"range": [a, a + n * k, k]},
        st.integers(-(2**62) + 100, 2**62 - 100),
        st.integers(1, 9),
        st.sampled_from([-3, -1, 1, 2]),
    ),
    st.builds(lambda ab: {"uniform": sorted(ab)}, st.tuples(float_value, float_value)),
    st.builds(lambda ab: {"loguniform": sorted(ab)}, st.tuples(positive, positive)),
    st.builds(lambda a, b: {"normal": [a, b]}, float_value, positive),
)
edge_document = st.fixed_dictionaries(
    {
        "name": st.from_regex(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?", fullmatch=True),
        "function": st.just("steps.kernels:rosenbrock"),
        "space": st.dictionaries(
            st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
            edge_axis,
            min_size=1,
            max_size=3,
        ),
    },
    optional={
        "shards": st.integers(1, 4),
        "chunk_rows": st.integers(1, 64),
        "seed": st.integers(0, 2**63 - 1),
        "samples": st.integers(1, 3),
        "vectorized": st.booleans(),
        "objective": st.fixed_dictionaries(
            {"column": text_value.filter(bool)},
            optional={"goal": st.sampled_from(["min", "max"]), "top_k": st.integers(1, 20)},
        ),
        "keep": st.sampled_from(["all", {"where": "f < 0.5"}, {"where": "g >= -1e-300"}]),
        "resources": st.fixed_dictionaries(
            {},
            optional={
                "cpu_limit": st.sampled_from(["1", "500m", 2]),
                "memory_request": st.sampled_from(["1Gi", "256Mi", ".5Gi"]),
            },
        ),
    },
)


def toml_string(text: str) -> str:
    escaped = (
        '\\"'
        if c == '"'
        else "\\\\"
        if c == "\\"
        else f"\\u{ord(c):04X}"
        if c < " " or c == "\x7f"
        else c
        for c in text
    )
    return '"' + "".join(escaped) + '"'


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # finite here; TOML reads Python's repr of a float exactly
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def to_toml(document: dict[str, Any]) -> str:
    return "".join(f"{toml_string(k)} = {toml_value(v)}\n" for k, v in document.items())


def to_yaml(document: dict[str, Any]) -> str:
    import yaml

    class Quoting(yaml.SafeDumper):
        """Every string double-quoted: a plain one may read differently in YAML 1.1 and 1.2."""

    Quoting.add_representer(
        str, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style='"')
    )
    return yaml.dump(document, Dumper=Quoting, sort_keys=False, allow_unicode=True, width=1 << 30)


def outcome(load: Any) -> tuple[str, ...]:
    """What loading gives, comparable across formats: the canonical JSON (floats by repr, so
    -0.0 is not 0.0) and the resources, or the error's field and message."""
    try:
        spec = load()
    except SpecError as error:
        assert "\n" not in str(error) and len(str(error)) < 600, str(error)
        return ("refused", error.field, str(error))
    return ("accepted", spec.to_json(), repr(spec.resources))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=edge_document, bom=st.booleans())
def test_toml_yaml_and_json_load_every_document_to_the_same_spec_or_the_same_error(
    doc: dict[str, Any], bom: bool
) -> None:
    """`bom`: the file starts with a UTF-8 byte-order mark, as some editors write it."""
    import json
    import tempfile
    from pathlib import Path

    from steps.spec import load_spec

    expected = outcome(lambda: parse_spec(doc))
    event(expected[0])
    with tempfile.TemporaryDirectory() as folder:
        for suffix, text in (
            (".json", json.dumps(doc)),
            (".toml", to_toml(doc)),
            (".yaml", to_yaml(doc)),
        ):
            path = Path(folder) / f"spec{suffix}"
            path.write_text(text, encoding="utf-8-sig" if bom else "utf-8")
            assert outcome(lambda p=path: load_spec(p)) == expected, (suffix, text)


def same(a: Any, b: Any) -> bool:
    """Identical values: same type, and floats the same bits (repr tells -0.0 from 0.0)."""
    return type(a) is type(b) and repr(a) == repr(b)


def expected_grid(kind: str, args: tuple[Any, ...]) -> list[Any]:
    if kind == "linspace":
        return np.linspace(args[0], args[1], args[2]).tolist()
    if kind == "logspace":
        return np.logspace(args[0], args[1], args[2]).tolist()
    if kind == "range":
        return list(range(*args))
    return list(args)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=edge_document)
def test_every_accepted_value_round_trips_exactly_into_the_columns_and_parquet(
    doc: dict[str, Any],
) -> None:
    import itertools
    import tempfile
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    from steps.parquet import open_writer
    from steps.space import arrow_type

    try:
        spec = parse_spec(doc)
    except SpecError:
        event("refused")
        return
    event("accepted")
    for axis in spec.axes:  # the spec holds the values as written (ints exactly as floats)
        given_values = doc["space"][axis.name][axis.kind]
        if axis.kind in ("values", "choice"):
            floats = any(isinstance(v, float) for v in given_values)
            for held, written in zip(axis.args, given_values, strict=True):
                if floats and type(written) is int:  # Python compares int and float exactly
                    assert type(held) is float and held == written, (held, written)
                else:
                    assert same(held, written)
    space = Space(spec)
    columns = space.decode(0, space.rows)
    rows = {name: values.tolist() for name, values in columns.items()}
    grid = [a for a in spec.axes if not a.is_random]
    points = itertools.product(*(expected_grid(a.kind, a.args) for a in grid))
    expected = [point for point in points for _ in range(spec.samples)]
    for i, axis in enumerate(grid):
        assert all(same(row[i], got) for row, got in zip(expected, rows[axis.name], strict=True))
    for axis in spec.axes:
        if axis.kind == "choice":
            assert all(any(same(v, a) for a in axis.args) for v in rows[axis.name])
        elif axis.is_random:
            assert np.isfinite(columns[axis.name]).all()
        if arrow_type(axis) == pa.float64():
            assert np.isfinite(columns[axis.name]).all()
    table = pa.table(
        {
            "param_id": pa.array(columns["param_id"], type=pa.int64()),
            **{a.name: pa.array(columns[a.name], type=arrow_type(a)) for a in spec.axes},
        }
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "shard.parquet"
        writer = open_writer(path, table.schema, spec)
        writer.write_table(table)
        writer.close()
        stored = pq.read_table(path)
    assert stored.schema == table.schema
    for name, values in rows.items():
        assert all(same(a, b) for a, b in zip(stored[name].to_pylist(), values, strict=True)), name


@settings(max_examples=200, deadline=None)
@given(doc=likely_document, shards=st.one_of(st.integers(-2, 12), junk))
def test_overriding_shards_is_validated_exactly_as_the_same_field_of_a_spec_file(
    doc: dict[str, Any], shards: Any
) -> None:
    try:
        spec = parse_spec(doc)
    except SpecError:
        return
    assert outcome(lambda: spec.with_fields(shards=shards)) == outcome(
        lambda: parse_spec(doc | {"shards": shards})
    )
