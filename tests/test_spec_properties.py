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
