"""The parameter space decodes any param_id range exactly as an independent oracle does."""

from __future__ import annotations

import hashlib
import itertools
import math

import numpy as np
import pytest

from steps.parquet import MAX_ROW_GROUP_ROWS, MIN_ROW_GROUP_ROWS
from steps.space import Space, shard_alignment, shard_range
from steps.spec import SpecError, parse_spec

MASK = (1 << 64) - 1


def spec_with(space: dict, samples: int = 1, seed: int = 7) -> dict:
    return {
        "name": "t",
        "function": "steps.kernels:rosenbrock",
        "space": space,
        "samples": samples,
        "seed": seed,
    }


# --- an independent oracle: itertools.product + numpy for grids, pure-Python SplitMix64 ----


def oracle_grid(kind: str, args: list) -> list:
    if kind == "linspace":
        return list(np.linspace(args[0], args[1], args[2]))
    if kind == "logspace":
        return list(np.logspace(args[0], args[1], args[2]))
    if kind == "range":
        return list(range(*args))
    return list(args)


def oracle_u(seed: int, axis: str, stream: int, pid: int) -> float:
    key = int.from_bytes(
        hashlib.sha256(f"ttg\0{seed}\0{axis}\0{stream}".encode()).digest()[:8], "little"
    )
    z = (key + pid * 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    z ^= z >> 31
    return (z >> 11) / 2.0**53


def oracle_random(kind: str, args: list, seed: int, axis: str, pid: int) -> object:
    u = oracle_u(seed, axis, 0, pid)
    if kind == "uniform":
        return args[0] + (args[1] - args[0]) * u
    if kind == "loguniform":
        low, high = math.log(args[0]), math.log(args[1])
        return math.exp(low + (high - low) * u)
    if kind == "normal":
        u2 = oracle_u(seed, axis, 1, pid)
        return args[0] + args[1] * math.sqrt(-2.0 * math.log1p(-u)) * math.cos(2.0 * math.pi * u2)
    return args[min(int(u * len(args)), len(args) - 1)]


def oracle_rows(space: dict, samples: int, seed: int) -> list[dict]:
    grid = [
        (n, oracle_grid(*next(iter(a.items())))) for n, a in space.items() if next(iter(a)) in GRID
    ]
    rows = []
    pid = 0
    for point in itertools.product(*(values for _, values in grid)):
        for _ in range(samples):
            row = {"param_id": pid, **dict(zip([n for n, _ in grid], point, strict=True))}
            for name, axis in space.items():
                ((kind, args),) = axis.items()
                if kind not in GRID:
                    row[name] = oracle_random(kind, args, seed, name, pid)
            rows.append(row)
            pid += 1
    return rows


GRID = {"linspace", "logspace", "range", "values"}

SPACES = {
    "linspace": {"x": {"linspace": [-2.0, 2.0, 7]}, "y": {"linspace": [0.1, 0.3, 3]}},
    "logspace": {"lr": {"logspace": [-5, -1, 9]}},
    "range": {"n": {"range": [1, 20, 3]}, "m": {"range": [10, 0, -4]}},
    "values": {
        "k": {"values": [0.1, 0.5, 0.9]},
        "mode": {"values": ["fast", "exact"]},
        "flag": {"values": [True, False]},
    },
    "mixed grid": {
        "a": {"range": [0, 3]},
        "b": {"values": [1, 2]},
        "c": {"linspace": [0.0, 1.0, 4]},
    },
}
RANDOM_SPACES = {
    "uniform": {"u": {"uniform": [-1.0, 3.0]}},
    "loguniform": {"v": {"loguniform": [1e-5, 1e-1]}},
    "normal": {"w": {"normal": [2.0, 0.5]}},
    "choice": {"c": {"choice": ["a", "b", "c"]}},
    "grid and random": {
        "g": {"values": [1, 2, 3]},
        "u": {"uniform": [0.0, 1.0]},
        "w": {"normal": [0.0, 1.0]},
    },
}


def decoded_rows(space: dict, samples: int = 1, seed: int = 7) -> list[dict]:
    s = Space(parse_spec(spec_with(space, samples, seed)))
    columns = {name: values.tolist() for name, values in s.decode(0, s.rows).items()}
    return [{k: v[i] for k, v in columns.items()} for i in range(s.rows)]


@pytest.mark.parametrize("space", SPACES.values(), ids=SPACES.keys())
def test_grid_axes_decode_exactly_like_itertools_product(space: dict) -> None:
    assert decoded_rows(space) == oracle_rows(space, samples=1, seed=7)


@pytest.mark.parametrize("space", RANDOM_SPACES.values(), ids=RANDOM_SPACES.keys())
def test_random_axes_decode_like_a_scalar_splitmix_oracle(space: dict) -> None:
    got = decoded_rows(space, samples=5, seed=11)
    want = oracle_rows(space, samples=5, seed=11)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.keys() == w.keys()
        for key in g:
            if isinstance(w[key], float):
                # numpy's vectorised exp/log/cos may differ from libm in the last bit
                assert g[key] == pytest.approx(w[key], rel=1e-13, abs=1e-300), key
            else:
                assert g[key] == w[key], key


def test_any_sub_range_decodes_to_the_same_rows_as_the_whole() -> None:
    spec = parse_spec(
        spec_with(
            {"g": {"range": [0, 13]}, "u": {"uniform": [0, 1]}, "c": {"choice": [1, 2]}}, samples=7
        )
    )
    s = Space(spec)
    whole = s.decode(0, s.rows)
    for start, stop in [(0, 1), (5, 6), (10, 50), (90, 91), (37, s.rows)]:
        part = s.decode(start, stop)
        for name in whole:
            np.testing.assert_array_equal(part[name], whole[name][start:stop])


def test_samples_are_consecutive_and_differ() -> None:
    s = Space(parse_spec(spec_with({"g": {"values": [1, 2]}, "u": {"uniform": [0, 1]}}, samples=4)))
    columns = s.decode(0, s.rows)
    assert columns["g"].tolist() == [1, 1, 1, 1, 2, 2, 2, 2]
    assert len(set(columns["u"].tolist())) == 8


def test_seed_changes_every_draw_and_axis_names_draw_independently() -> None:
    one = Space(
        parse_spec(
            spec_with({"a": {"uniform": [0, 1]}, "b": {"uniform": [0, 1]}}, samples=1000, seed=1)
        )
    )
    two = Space(
        parse_spec(
            spec_with({"a": {"uniform": [0, 1]}, "b": {"uniform": [0, 1]}}, samples=1000, seed=2)
        )
    )
    c1, c2 = one.decode(0, 1000), two.decode(0, 1000)
    assert not np.any(c1["a"] == c2["a"])
    assert abs(np.corrcoef(c1["a"], c1["b"])[0, 1]) < 0.1


def test_random_draws_have_the_right_distributions() -> None:
    n = 200_000
    space = {
        "u": {"uniform": [2.0, 4.0]},
        "v": {"loguniform": [1e-4, 1.0]},
        "w": {"normal": [1.0, 3.0]},
        "c": {"choice": ["a", "b", "c", "d"]},
    }
    columns = Space(parse_spec(spec_with(space, samples=n))).decode(0, n)
    assert columns["u"].min() >= 2.0 and columns["u"].max() < 4.0
    assert columns["u"].mean() == pytest.approx(3.0, abs=0.01)
    assert np.log10(columns["v"]).mean() == pytest.approx(-2.0, abs=0.02)
    assert columns["w"].mean() == pytest.approx(1.0, abs=0.03)
    assert columns["w"].std() == pytest.approx(3.0, rel=0.01)
    _, counts = np.unique(columns["c"], return_counts=True)
    assert counts.min() / counts.max() > 0.97


def test_rows_is_the_grid_size_times_samples() -> None:
    spec = parse_spec(spec_with({"a": {"linspace": [0, 1, 3163]}, "b": {"linspace": [0, 1, 3163]}}))
    assert Space(spec).rows == 10_004_569
    spec = parse_spec(spec_with({"a": {"range": [0, 10]}, "u": {"uniform": [0, 1]}}, samples=6))
    assert Space(spec).rows == 60


def test_a_huge_space_decodes_its_last_rows_without_materialising_anything() -> None:
    spec = parse_spec(
        spec_with(
            {
                "a": {"linspace": [0, 1, 100_000]},
                "b": {"range": [0, 100_000]},
                "u": {"uniform": [0, 1]},
            },
            samples=1000,
        )
    )
    s = Space(spec)
    assert s.rows == 10**13
    columns = s.decode(s.rows - 3, s.rows)
    assert columns["param_id"].tolist() == [10**13 - 3, 10**13 - 2, 10**13 - 1]
    assert columns["a"].tolist() == [1.0, 1.0, 1.0] and columns["b"].tolist() == [99_999] * 3


SHARDINGS = [
    (10, 3),
    (10_004_569, 8),
    (7, 7),
    (1000, 999),
    (2**40 + 5, 10_000),
    (10**6, 16),
    (1800, 6),
]


@pytest.mark.parametrize("rows,count", SHARDINGS)
def test_shard_ranges_are_contiguous_nonempty_and_balanced_within_a_quarter(
    rows: int, count: int
) -> None:
    ranges = [shard_range(i, count, rows) for i in range(count)]
    assert ranges[0][0] == 0 and ranges[-1][1] == rows
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    sizes = [stop - start for start, stop in ranges]
    assert min(sizes) >= 1
    assert max(sizes) - min(sizes) <= max(1, max(sizes) // 4)


@pytest.mark.parametrize("rows,count", SHARDINGS)
def test_shards_start_on_every_row_group_boundary_they_can(rows: int, count: int) -> None:
    unit = shard_alignment(count, rows)
    assert unit & (unit - 1) == 0 and unit <= MAX_ROW_GROUP_ROWS
    assert unit == 1 or unit >= MIN_ROW_GROUP_ROWS  # smaller units align no row group
    starts = [shard_range(i, count, rows)[0] for i in range(count)]
    assert all(start % unit == 0 for start in starts)
    # shards hold four units or more (the last may end in a partial one), so a row group of
    # at most `unit` rows (a power of two: steps/parquet.py) never straddles two shards
    sizes = [b - a for a, b in itertools.pairwise([*starts, rows])]
    assert unit == 1 or (min(sizes[:-1], default=4 * unit) >= 4 * unit and sizes[-1] > 3 * unit)


def test_the_default_sweep_is_cut_on_its_row_groups() -> None:
    # Rosenbrock's four 8-byte columns make row groups of 2^18 rows: shards are whole groups
    assert shard_alignment(8, 10_004_569) == 1 << 18


# --- edge values decode exactly -------------------------------------------------------------


def decoded(axis: dict, samples: int = 1) -> list:
    s = Space(parse_spec(spec_with({"v": axis}, samples=samples)))
    return s.decode(0, s.rows)["v"].tolist()


def test_strings_decode_exactly_trailing_nuls_included() -> None:
    values = ["a\x00", "a", "\x00", "", "b\x00\x00", "é\U0001f600\u2028"]
    assert decoded({"values": values}) == values
    drawn = decoded({"choice": ["a\x00", "a"]}, samples=200)
    assert set(drawn) == {"a\x00", "a"}


def test_a_long_string_value_costs_a_pointer_per_row_not_its_length() -> None:
    s = Space(
        parse_spec(spec_with({"v": {"values": ["x" * 20_000, "y"]}, "n": {"range": [0, 50_000]}}))
    )
    column = s.decode(0, s.rows)["v"]
    assert column.dtype == object and column.nbytes == 8 * s.rows  # not 80 KB a row
    assert column[0] == "x" * 20_000 and column[-1] == "y"


def test_signed_zeros_and_int64_extremes_decode_exactly() -> None:
    zeros = decoded({"values": [-0.0, 0.0]})
    assert [math.copysign(1, z) for z in zeros] == [-1, 1]
    extremes = [-(2**63), 2**63 - 1, 0]
    assert decoded({"values": extremes}) == extremes
    tiny_and_huge = [5e-324, -1.7976931348623157e308, 2.0**-1074 * 3]
    assert decoded({"values": tiny_and_huge}) == tiny_and_huge


def test_mixed_integers_and_floats_form_a_float_axis_only_when_exact() -> None:
    assert decoded({"values": [1, 0.5, 2**53]}) == [1.0, 0.5, 2.0**53]
    with pytest.raises(SpecError, match="not exactly a float64") as error:
        parse_spec(spec_with({"v": {"values": [0.5, 2**53 + 1]}}))
    assert error.value.field == "space.v.values[1]"


@pytest.mark.parametrize(
    "axis",
    [
        {"linspace": [-1.7e308, 1.7e308, 3]},
        {"linspace": [-1.7e308, 1.7e308, 1]},
        {"linspace": [1.7976931348623157e308, -1.7976931348623157e308, 2]},
        {"uniform": [-1.7e308, 1.7e308]},
        {"normal": [0.0, 1e308]},
        {"normal": [1.7e308, 1e307]},
        {"linspace": [0, 10**400, 3]},
    ],
)
def test_an_axis_whose_float_arithmetic_overflows_is_refused(axis: dict) -> None:
    with pytest.raises(SpecError) as error:
        parse_spec(spec_with({"v": axis}))
    assert error.value.field.startswith("space.v."), str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "axis",
    [
        {"linspace": [-8.9e307, 8.9e307, 5]},
        {"linspace": [1.7976931348623157e308, 0.0, 7]},
        {"logspace": [-308, 308, 5]},
        {"uniform": [-8.9e307, 8.9e307]},
        {"normal": [0.0, 1e306]},
        {"loguniform": [5e-324, 1e308]},
    ],
)
def test_an_axis_near_the_float_limits_decodes_finite_values(axis: dict) -> None:
    values = np.asarray(
        decoded(axis, samples=1 if "linspace" in axis or "logspace" in axis else 2000)
    )
    assert np.isfinite(values).all()


@pytest.mark.parametrize(
    "space,samples",
    [
        ({"x": {"linspace": [-2.0, 2.0, 7]}, "y": {"logspace": [-3.0, 1.0, 5]}}, 1),
        (
            {
                "n": {"range": [3, 40, 4]},
                "s": {"values": ["a", "bb", "c"]},
                "u": {"uniform": [0.0, 1.0]},
            },
            3,
        ),
        ({"x": {"linspace": [0.0, 1.0, 200_000]}, "k": {"values": [1, 2]}}, 1),  # x: not tabled
    ],
)
def test_a_contiguous_range_decodes_as_the_same_rows_one_by_one(space: dict, samples: int) -> None:
    """`decode` makes runs of an axis's points; `decode_ids` gathers them row by row."""
    spec = parse_spec({"name": "d", "function": "m:f", "space": space, "samples": samples})
    decoded = Space(spec)
    rows = decoded.rows
    for start, stop in [
        (0, rows),
        (1, min(rows, 37)),
        (rows // 3, rows // 3 + 1001),
        (rows - 5, rows),
        (9, 9),
    ]:
        stop = min(stop, rows)
        runs = decoded.decode(start, stop)
        one_by_one = decoded.decode_ids(np.arange(start, stop, dtype=np.int64))
        assert list(runs) == list(one_by_one) == ["param_id", *space]
        for name in runs:
            assert runs[name].dtype == one_by_one[name].dtype
            assert np.array_equal(runs[name], one_by_one[name]), (name, start, stop)
            if runs[name].dtype.kind == "f":
                assert (
                    runs[name].view(np.uint64).tolist() == one_by_one[name].view(np.uint64).tolist()
                )
