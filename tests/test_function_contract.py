"""What a user's function may and may not do to the result: its inputs, its output types."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from steps.compute import compute_shard
from steps.function import FunctionError
from steps.reduce import reduce_run
from steps.space import Space
from steps.spec import Spec, parse_spec
from steps.store import open_store


def grid(function: str, **extra: object) -> Spec:
    return parse_spec(
        {
            "name": "g",
            "function": function,
            "shards": 2,
            "chunk_rows": 7,
            "space": {"x": {"linspace": [-1.0, 1.0, 5]}, "y": {"range": [0, 6]}},
        }
        | extra
    )


def run(spec: Spec, root: Path) -> pa.Table:
    store = open_store(str(root))
    for index in range(spec.shards):
        compute_shard(spec, store, "r", index)
    reduce_run(store, spec, "r")
    return pq.read_table(root / spec.name / "r" / "result.parquet")


@pytest.mark.parametrize(
    "function",
    [
        "tests.kernels:zeroes_its_inputs",
        "tests.kernels:meddles_later",
        "tests.kernels:copies_before_changing",
    ],
)
def test_nothing_a_function_does_to_its_inputs_changes_the_stored_axes(
    function: str, tmp_path: Path
) -> None:
    spec = grid(function)
    table = run(spec, tmp_path)
    decoded = Space(spec).decode(0, Space(spec).rows)
    for column in ("param_id", "x", "y"):
        assert np.array_equal(table[column].to_numpy(), decoded[column]), column
    scale = 2 if function.endswith("copies_before_changing") else 1
    assert np.array_equal(table["f"].to_numpy(), decoded["x"] * scale + decoded["y"])


def test_int64_beyond_two_to_the_53_sweeps_exactly_in_axes_outputs_statistics_and_top_k(
    tmp_path: Path,
) -> None:
    top = 2**62 - 3
    spec = parse_spec(
        {
            "name": "big",
            "function": "tests.kernels:nanoseconds",
            "shards": 3,
            "chunk_rows": 4,
            "space": {"t": {"range": [top - 20, top, 1]}},
            "objective": {"column": "stamp", "goal": "max", "top_k": 3},
        }
    )
    store = open_store(str(tmp_path))
    for index in range(3):
        compute_shard(spec, store, "r", index)
    outcome = reduce_run(store, spec, "r")
    table = pq.read_table(tmp_path / "big/r/result.parquet")
    t = list(range(top - 20, top))
    assert table["t"].to_pylist() == t
    stamps = [v * 1_000_000_000 + 7 for v in t]
    wrapped = np.array(t, dtype=np.int64) * 1_000_000_000 + 7  # int64 arithmetic wraps
    assert table["stamp"].to_pylist() == wrapped.tolist()
    assert stamps != wrapped.tolist()  # the test means something: these are not small numbers
    columns = outcome.summary["columns"]
    assert (columns["t"]["min"], columns["t"]["max"]) == (t[0], t[-1])
    assert columns["stamp"]["max"] == int(wrapped.max())
    best = outcome.summary["objective"]["best"]
    expected = sorted(zip(wrapped.tolist(), range(20), strict=True), key=lambda p: (-p[0], p[1]))
    assert [row["stamp"] for row in best] == [value for value, _ in expected[:3]]


def test_top_k_ranks_integers_beyond_two_to_the_53_by_value_not_by_param_id(
    tmp_path: Path,
) -> None:
    # 2**53 + 1 and 2**53 are one float apart from nothing: as floats they tie.
    spec = parse_spec(
        {
            "name": "tie",
            "function": "tests.kernels:copies_before_changing",
            "space": {
                "x": {"values": [1.0]},
                "y": {"values": [2**53 + 1, 2**53]},
            },
            "objective": {"column": "y", "goal": "min", "top_k": 1},
        }
    )
    store = open_store(str(tmp_path))
    compute_shard(spec, store, "r", 0)
    best = reduce_run(store, spec, "r").summary["objective"]["best"]
    assert best[0]["y"] == 2**53 and best[0]["param_id"] == 1


WORKING_TYPES = ["bool", "large_string", "uint64", "float32", "int8"]
REFUSED_TYPES = {
    "timestamp": "timestamp[ns]",
    "date": "date32[day]",
    "decimal": "decimal128(2, 1)",
    "binary": "binary",
    "list": "list<item: int64>",
    "dictionary": "dictionary<values=string, indices=int32, ordered=0>",
    "float16": "halffloat",
}


@pytest.mark.parametrize("kind", WORKING_TYPES)
def test_outputs_of_every_storable_type_work_end_to_end(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TTG_TEST_OUTPUT_TYPE", kind)
    spec = parse_spec(
        {
            "name": "typed",
            "function": "tests.kernels:typed_outputs",
            "shards": 2,
            "chunk_rows": 3,
            "space": {"x": {"range": [0, 10]}},
            "objective": {"column": "f", "top_k": 2},
        }
    )
    store = open_store(str(tmp_path))
    for index in range(2):
        compute_shard(spec, store, "r", index)
    outcome = reduce_run(store, spec, "r")
    table = pq.read_table(tmp_path / "typed/r/result.parquet")
    assert outcome.summary["columns"]["out"]["count"] == 10
    assert outcome.summary["columns"]["out"]["min"] == min(table["out"].to_pylist())
    assert outcome.summary["objective"]["best"][0]["out"] == table["out"][0].as_py()


@pytest.mark.parametrize("kind,arrow_type", REFUSED_TYPES.items(), ids=REFUSED_TYPES.keys())
def test_outputs_of_other_arrow_types_are_refused_in_one_line_naming_the_column(
    kind: str, arrow_type: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TTG_TEST_OUTPUT_TYPE", kind)
    spec = parse_spec(
        {
            "name": "typed",
            "function": "tests.kernels:typed_outputs",
            "space": {"x": {"range": [0, 4]}},
        }
    )
    with pytest.raises(FunctionError) as refused:
        compute_shard(spec, open_store(str(tmp_path)), "r", 0)
    message = str(refused.value)
    assert f"column 'out' of type {arrow_type}, which TTG does not store" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "condition",
    ["stamp > {edge}", "stamp >= {edge}", "stamp == {edge}", "stamp != {edge}", "stamp < {edge}"],
)
def test_keep_where_compares_int64_beyond_two_to_the_53_exactly(
    condition: str, tmp_path: Path
) -> None:
    top = 2**62 - 3
    t = list(range(top - 20, top))
    stamps = (np.array(t, dtype=np.int64) * 1_000_000_000 + 7).tolist()  # as compute stores them
    edge = sorted(stamps)[10]
    spec = parse_spec(
        {
            "name": "big",
            "function": "tests.kernels:nanoseconds",
            "shards": 2,
            "chunk_rows": 4,
            "space": {"t": {"range": [top - 20, top, 1]}},
            "keep": {"where": condition.format(edge=edge)},
        }
    )
    kept = run(spec, tmp_path)["stamp"].to_pylist()
    ops = {
        "stamp > {edge}": lambda v: v > edge,
        "stamp >= {edge}": lambda v: v >= edge,
        "stamp == {edge}": lambda v: v == edge,
        "stamp != {edge}": lambda v: v != edge,
        "stamp < {edge}": lambda v: v < edge,
    }
    assert kept == [v for v in stamps if ops[condition](v)]


@pytest.mark.parametrize(
    "condition,kept",
    [
        ("y < 2.5", [0, 1, 2]),
        ("y >= 2.5", [3, 4, 5]),
        ("y == 2.5", []),
        ("y != 2.5", [0, 1, 2, 3, 4, 5]),
        ("y > -1e30", [0, 1, 2, 3, 4, 5]),
        ("y < 9999999999999999999", [0, 1, 2, 3, 4, 5]),
    ],
)
def test_keep_where_on_an_integer_column_with_any_number(
    condition: str, kept: list[int], tmp_path: Path
) -> None:
    spec = grid("tests.kernels:copies_before_changing", keep={"where": condition})
    table = run(spec, tmp_path)
    assert sorted(set(table["y"].to_pylist())) == kept


@pytest.mark.parametrize("chunk_rows", [3, 5, 7, 20])
def test_a_chunk_of_only_missing_values_is_stored_whatever_the_chunking(
    chunk_rows: int, tmp_path: Path
) -> None:
    """A scalar function returning None for the first five rows: with chunks of 5 or fewer
    rows, whole chunks hold no value (Arrow type null); the result must not care."""
    spec = parse_spec(
        {
            "name": "gaps",
            "function": "tests.kernels:none_below_five",
            "vectorized": False,
            "chunk_rows": chunk_rows,
            "shards": 2,
            "space": {"x": {"range": [0, 20]}},
        }
    )
    table = run(spec, tmp_path)
    assert table.schema.field("f").type == pa.float64()
    assert table["f"].to_pylist() == [None] * 5 + [float(x) for x in range(5, 20)]


def scalar_run(function: str, tmp_path: Path, chunk_rows: int = 5) -> pa.Table:
    spec = parse_spec(
        {
            "name": "kinds",
            "function": function,
            "vectorized": False,
            "chunk_rows": chunk_rows,
            "space": {"x": {"range": [0, 20]}},
        }
    )
    return run(spec, tmp_path)


def test_a_column_never_changes_kind_silently_between_chunks(tmp_path: Path) -> None:
    """A string "1.5" in one chunk and the number 1.5 in the next is refused, not cast."""
    with pytest.raises(
        FunctionError, match="returned column 's' of type double, but string before"
    ):
        scalar_run("tests.kernels:text_then_number", tmp_path)


def test_a_type_no_all_none_chunk_could_know_is_refused_with_the_remedy(tmp_path: Path) -> None:
    with pytest.raises(
        FunctionError, match="an earlier chunk had no value in it, so it was taken as double"
    ):
        scalar_run("tests.kernels:none_then_text", tmp_path)
    # with chunks that hold values from the start, the same function sweeps
    table = scalar_run("tests.kernels:none_then_text", tmp_path / "big", chunk_rows=20)
    assert table["s"].to_pylist() == [None] * 5 + ["1.5"] * 15


def test_any_base_exception_of_the_function_is_its_failure_not_a_crash(tmp_path: Path) -> None:
    """A BaseException subclass is no `Exception`: it must still be a user-code failure
    (exit 3, not retried), not an uncaught crash (exit 1, retried)."""
    spec = parse_spec(
        {
            "name": "halt",
            "function": "tests.kernels:raises_a_base_exception",
            "space": {"x": {"range": [0, 4]}},
        }
    )
    with pytest.raises(FunctionError, match="raised Halt: stop"):
        compute_shard(spec, open_store(str(tmp_path)), "r", 0)
