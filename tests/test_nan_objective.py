"""NaN and null in the objective (issue 12).

A function that returns NaN or null in the objective column for part of the space completes:
the rows are kept in the result and counted in the summary (`objective.nans`, `.nulls`), never
ranked in top-k or `best` whatever the goal, never matched by `keep.where`, and drawn as
missing by `--plot`. `[objective] on_nan = "fail"` restores the strict check that fails the
shard. In-process on the folder store and a real S3 server, then end to end through `run` and
through `exec` of the rendered Workflow.

The sweep (tests.kernels:part_nan): x in 0..9, y in 0..4, z in {0, 1}, so param_id =
10x + 2y + z and f = x + y/10 + z/100, except NaN for x == 4 and for x == 6, z == 0, and null
for x == 8, z == 1: 100 rows, 15 NaN, 5 null, 80 numbers.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from steps import layout, parquet
from steps.compute import compute_shard
from steps.function import FunctionError
from steps.reduce import ReduceOutcome, output_parameters, reduce_run
from steps.spec import Spec, parse_spec
from steps.store import Store, open_store
from tests.cli import sweep
from workflows import plot, results
from workflows.sweep import main

HOLES: dict[str, Any] = {
    "name": "holes",
    "function": "tests.kernels:part_nan",
    "space": {"x": {"range": [0, 10]}, "y": {"range": [0, 5]}, "z": {"values": [0, 1]}},
}
ROWS, NANS, NULLS = 100, 15, 5


def holes(goal: str = "max", top_k: int = 5, **extra: Any) -> Spec:
    """The sweep above; `on_nan` and the rest of the objective through `objective`."""
    objective = {"column": "f", "goal": goal, "top_k": top_k} | extra.pop("objective", {})
    return parse_spec(HOLES | {"shards": 3, "chunk_rows": 7, "objective": objective} | extra)


def expected_f() -> list[float | None]:
    """The objective of every row, by param_id, computed independently of the kernel."""
    rows: list[float | None] = []
    for x in range(10):
        for y in range(5):
            for z in (0, 1):
                if x == 8 and z == 1:
                    rows.append(None)
                elif x == 4 or (x == 6 and z == 0):
                    rows.append(math.nan)
                else:
                    rows.append(x + y / 10 + z / 100)
    return rows


def numbers() -> dict[int, float]:
    return {i: f for i, f in enumerate(expected_f()) if f is not None and not math.isnan(f)}


def best_ids(goal: str, k: int) -> list[int]:
    """The k best param_ids among the rows that have a number, ties by param_id."""
    sign = 1 if goal == "min" else -1
    return sorted(numbers(), key=lambda i: (sign * numbers()[i], i))[:k]


def run_all(store: Store, spec: Spec, run_id: str = "r") -> ReduceOutcome:
    for index in range(spec.shards):
        compute_shard(spec, store, run_id, index)
    return reduce_run(store, spec, run_id)


def result_of(store: Store, spec: Spec, run_id: str = "r") -> pa.Table:
    return pq.read_table(io.BytesIO(store.get_bytes(layout.result_key(spec.name, run_id))))


def strict_json(blob: bytes) -> Any:
    """JSON as the standard has it: NaN and Infinity are not JSON."""

    def refuse(token: str) -> None:
        raise ValueError(f"{token} is not JSON")

    return json.loads(blob, parse_constant=refuse)


def summary_of(store: Store, spec: Spec, run_id: str = "r") -> dict[str, Any]:
    return strict_json(store.get_bytes(layout.summary_key(spec.name, run_id)))


def data_bytes(blob: bytes) -> bytes:
    """A Parquet file without its footer: the data pages only."""
    return blob[: len(blob) - 8 - int.from_bytes(blob[-8:-4], "little")]


@pytest.fixture(params=["folder", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "s3":
        server = request.getfixturevalue("s3_env")
        return open_store(f"s3://{server.new_bucket()}/runs")
    return open_store(str(tmp_path / "runs"))


# --- compute and reduce, in-process -----------------------------------------------------------


@pytest.mark.parametrize("goal", ["min", "max"])
def test_a_sweep_with_nan_and_null_objectives_completes_and_keeps_every_row(
    store: Store, goal: str
) -> None:
    spec = holes(goal)
    outcome = run_all(store, spec)
    table = result_of(store, spec)
    assert outcome.rows == table.num_rows == ROWS
    assert table["param_id"].to_pylist() == list(range(ROWS))
    f = table["f"]
    assert f.null_count == NULLS and pc.sum(pc.is_nan(f)).as_py() == NANS
    stored = f.to_pylist()
    for i, want in enumerate(expected_f()):
        if want is None or math.isnan(want):
            assert stored[i] is None if want is None else math.isnan(stored[i])
        else:
            assert stored[i] == want


@pytest.mark.parametrize("goal", ["min", "max"])
def test_the_summary_counts_nan_and_null_rows_and_never_ranks_them(store: Store, goal: str) -> None:
    spec = holes(goal)
    outcome = run_all(store, spec)
    summary = summary_of(store, spec)  # strict JSON, though a best row holds NaN in g
    assert summary == json.loads(json.dumps(outcome.summary))
    objective = summary["objective"]
    assert (objective["nans"], objective["nulls"]) == (NANS, NULLS)
    column = summary["columns"]["f"]
    assert (column["count"], column["nans"], column["nulls"]) == (80, NANS, NULLS)
    values = list(numbers().values())
    assert (column["min"], column["max"]) == (min(values), max(values))
    assert column["mean"] == pytest.approx(sum(values) / len(values), rel=1e-12)
    assert [row["param_id"] for row in objective["best"]] == best_ids(goal, 5)
    assert all(isinstance(row["f"], float) and math.isfinite(row["f"]) for row in objective["best"])
    best_value = output_parameters(outcome)["best_value"]
    assert float(best_value) == numbers()[best_ids(goal, 1)[0]]
    if goal == "max":  # the best row's g is NaN: spelled as a string, never as bare NaN
        assert objective["best"][0]["g"] == "nan"


def test_fewer_numbers_than_top_k_gives_fewer_best_rows_and_none_at_all_is_fine(
    tmp_path: Path,
) -> None:
    store = open_store(str(tmp_path))
    few = parse_spec(
        {
            "name": "few",
            "function": "tests.kernels:mostly_nan",
            "shards": 2,
            "chunk_rows": 4,
            "space": {"x": {"range": [0, 30]}},
            "objective": {"column": "f", "goal": "min", "top_k": 8},
        }
    )
    best = run_all(store, few).summary["objective"]
    assert [row["param_id"] for row in best["best"]] == [28, 21, 14, 7, 0]
    assert (best["nans"], best["nulls"]) == (25, 0)
    none = few.with_fields(name="none", space={"x": {"range": [1, 7]}})
    outcome = run_all(store, none)
    assert outcome.rows == 6 and outcome.summary["objective"]["best"] == []
    assert outcome.summary["objective"]["nans"] == 6
    assert output_parameters(outcome)["best_value"] == ""


# --- keep --------------------------------------------------------------------------------------


@pytest.mark.parametrize("goal", ["min", "max"])
def test_keep_top_k_never_keeps_a_nan_or_null_row_ahead_of_a_number(
    store: Store, goal: str
) -> None:
    """pyarrow 26 itself places NaN after every number, in either order (and nulls last);
    TTG filters them out before ranking rather than rely on that (see the next test)."""
    spec = holes(goal, keep={"top_k": 10})
    outcome = run_all(store, spec)
    kept = result_of(store, spec)
    assert kept["param_id"].to_pylist() == sorted(best_ids(goal, 10))
    assert outcome.summary["kept_rows"] == 10 and outcome.summary["rows"] == ROWS
    assert outcome.summary["objective"]["nans"] == NANS  # the summary still covers every row


@pytest.mark.parametrize("goal", ["min", "max"])
def test_keep_top_k_beyond_the_rows_with_a_number_keeps_just_those(
    tmp_path: Path, goal: str
) -> None:
    """Documented choice: `top_k = N` keeps the best N rows that have a number; when fewer
    than N do, it keeps fewer than N rows, never NaN or null ones to make up the count."""
    store = open_store(str(tmp_path))
    spec = holes(goal, keep={"top_k": 90})
    outcome = run_all(store, spec)
    kept = result_of(store, spec)
    assert kept["param_id"].to_pylist() == sorted(numbers())
    assert outcome.rows == outcome.summary["kept_rows"] == 80
    all_nan = parse_spec(
        {
            "name": "empty",
            "function": "tests.kernels:mostly_nan",
            "space": {"x": {"range": [1, 7]}},
            "objective": {"column": "f", "goal": goal},
            "keep": {"top_k": 3},
        }
    )
    assert run_all(store, all_nan).rows == 0
    assert result_of(store, all_nan).num_rows == 0


@pytest.mark.parametrize(
    ("where", "matches"),
    [
        ("f < 1", lambda f: f < 1),
        ("f >= 0", lambda f: f >= 0),
        ("f != 5", lambda f: f != 5),  # IEEE says NaN != 5: here NaN matches nothing
        ("f == 5", lambda f: f == 5),
    ],
)
def test_keep_where_never_matches_a_nan_or_null_objective(
    store: Store, where: str, matches: Any
) -> None:
    spec = holes(keep={"where": where})
    outcome = run_all(store, spec)
    expected = sorted(i for i, f in numbers().items() if matches(f))
    assert result_of(store, spec)["param_id"].to_pylist() == expected
    assert outcome.rows == len(expected) and expected


def test_keep_where_on_a_column_that_is_nan_in_the_best_row_does_not_fail_reduce(
    tmp_path: Path,
) -> None:
    """The best row (goal max) has g = NaN: `g != 0` must not keep it, and reduce, which
    holds the best rows against the kept ones, must agree that it is not kept."""
    store = open_store(str(tmp_path))
    spec = holes("max", keep={"where": "g != 0"})
    outcome = run_all(store, spec)
    g = [
        float(x * y) if not (x == 9 and z == 1) else math.nan
        for x in range(10)
        for y in range(5)
        for z in (0, 1)
    ]
    expected = [i for i, v in enumerate(g) if not math.isnan(v) and v != 0]
    assert result_of(store, spec)["param_id"].to_pylist() == expected
    assert outcome.summary["objective"]["best"][0]["param_id"] == 99


# --- shard invariance --------------------------------------------------------------------------


@pytest.mark.parametrize("keep", ["all", {"top_k": 90}, {"where": "f != 5"}])
def test_the_result_is_byte_identical_whatever_the_sharding_with_nans_present(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep: Any
) -> None:
    monkeypatch.setattr(parquet, "MIN_ROW_GROUP_ROWS", 16)  # several result row groups
    monkeypatch.setattr(parquet, "MAX_ROW_GROUP_ROWS", 16)
    blobs, bests = [], []
    for shards, chunk_rows in [(1, 100), (3, 7), (7, 3)]:
        store = open_store(str(tmp_path / f"s{shards}"))
        spec = holes("max", keep=keep, shards=shards, chunk_rows=chunk_rows)
        outcome = run_all(store, spec)
        blobs.append(data_bytes(store.get_bytes(layout.result_key("holes", "r"))))
        objective = outcome.summary["objective"]
        bests.append((objective["best"], objective["nans"], objective["nulls"]))
    assert blobs[0] == blobs[1] == blobs[2]
    assert bests[0] == bests[1] == bests[2]


# --- on_nan = "fail" ---------------------------------------------------------------------------


def test_on_nan_fail_fails_the_shard_naming_it_and_the_first_param_id(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    spec = holes(objective={"on_nan": "fail"})
    assert compute_shard(spec, store, "r", 0).rows == 33  # param_id 0..32: all numbers
    with pytest.raises(
        FunctionError,
        match=r"shard 1, param_id \[40, 47\): tests.kernels:part_nan returned NaN or null in "
        r"objective column 'f' at param_id 40 \(7 rows in this chunk\)",
    ):
        compute_shard(spec, store, "r", 1)
    by_x = holes(objective={"on_nan": "fail"}, shards=10)  # shard 8: x == 8, nulls, no NaN
    with pytest.raises(
        FunctionError, match=r"shard 8, param_id \[80, 87\).* at param_id 81 \(3 rows"
    ):
        compute_shard(by_x, store, "t", 8)
    assert not (tmp_path / "holes/r/shards/shard-00001-of-00003.parquet").exists()


# --- results and --plot ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> dict[str, results.FinishedRun]:
    """One finished run per goal, for the reading side."""
    root = tmp_path_factory.mktemp("nan-results")
    runs = {}
    for goal in ("min", "max"):
        spec = holes(goal).with_fields(name=f"holes-{goal}")
        run_all(open_store(str(root)), spec, f"{goal}-aaaaa")
        runs[goal] = results.open_run(str(root / spec.name / f"{goal}-aaaaa"))
    return runs


@pytest.mark.parametrize("goal", ["min", "max"])
def test_results_prints_how_many_objectives_were_nan_or_null(
    finished: dict[str, results.FinishedRun], capsys: pytest.CaptureFixture[str], goal: str
) -> None:
    run = finished[goal]
    assert main(["results", str(run.ref.url), "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "15 NaN and 5 null in objective column 'f'" in out
    assert "never ranked" in out and f"best 3 by {goal} f" in out


@pytest.mark.parametrize("goal", ["min", "max"])
def test_the_heatmap_marks_cells_without_a_number_missing_and_scales_over_numbers(
    finished: dict[str, results.FinishedRun], goal: str
) -> None:
    run = finished[goal]
    kind, axes = plot.choose_shape(run.spec)
    assert kind == "heatmap" and [g.name for g in axes] == ["x", "y"]
    grid, best = plot.reduce_to_grid(plot.iter_column(run, "f"), 1, axes, goal)  # type: ignore[arg-type]
    cells = plot.heatmap_cells(grid)
    assert cells.shape == (10, 5)
    assert np.ma.getmaskarray(cells).tolist() == [[x == 4] * 5 for x in range(10)]
    f = numbers()
    pick = min if goal == "min" else max
    for y in range(5):  # a cell keeps the number among its NaN and null rows
        assert cells[6, y] == f[60 + 2 * y + 1]  # z=0 is NaN
        assert cells[8, y] == f[80 + 2 * y]  # z=1 is null
        assert cells[9, y] == pick(f[90 + 2 * y], f[91 + 2 * y])
    norm = plot._norm(grid)
    assert (norm.vmin, norm.vmax) == (float(cells.min()), float(cells.max()))
    assert best == plot.Best(f[best_ids(goal, 1)[0]], best_ids(goal, 1)[0])


@pytest.mark.parametrize("goal", ["min", "max"])
def test_the_plot_says_what_it_drew_as_missing_and_stars_a_number(
    finished: dict[str, results.FinishedRun], tmp_path: Path, goal: str
) -> None:
    run = finished[goal]
    drawn = plot.plot_run(run, tmp_path / "holes.png")
    assert drawn.kind == "heatmap" and drawn.missing == 5
    assert "5 cells without a finite value, drawn as missing" in drawn.describe()
    assert drawn.best is not None and drawn.best.param_id == run.best_rows[0]["param_id"]
    h = plot.histogram(run, plot.Target("f", goal))  # type: ignore[arg-type]
    assert int(h.counts.sum()) == 80 and h.missing == h.hidden == NANS + NULLS


def test_the_line_leaves_gaps_where_a_point_has_no_number(tmp_path: Path) -> None:
    spec = parse_spec(
        {
            "name": "line",
            "function": "tests.kernels:mostly_nan",
            "shards": 2,
            "space": {"x": {"range": [0, 30]}},
            "objective": {"column": "f", "goal": "min"},
        }
    )
    run_all(open_store(str(tmp_path)), spec)
    run = results.open_run(str(tmp_path / "line/r"))
    line, best = plot.reduce_to_grid(plot.iter_column(run, "f"), 1, plot.grid_axes(spec), "min")
    assert [i for i, v in enumerate(line) if not math.isnan(v)] == [0, 7, 14, 21, 28]
    assert best == plot.Best(-28.0, 28)
    drawn = plot.plot_run(run, tmp_path / "line.png")
    assert (drawn.kind, drawn.missing, drawn.best) == ("line", 25, best)
    assert "25 points without a finite value" in drawn.describe()


def test_the_best_tracker_never_picks_nan_even_beside_an_infinity() -> None:
    """NaN read as +-inf would tie with a real infinity and could win on param_id."""
    for goal, infinity in (("min", math.inf), ("max", -math.inf)):
        tracker = plot.BestTracker(goal)  # type: ignore[arg-type]
        tracker.update(np.array([0, 1, 2]), np.array([math.nan, infinity, math.nan]))
        assert tracker.best == plot.Best(infinity, 1)
        tracker.update(np.array([3]), np.array([math.nan]))
        assert tracker.best == plot.Best(infinity, 1)


# --- end to end: `run` and `exec` of the rendered Workflow, on a folder and on S3 ------------

HOLES_TOML = """
name = "holes"
function = "tests.kernels:part_nan"
shards = 3
chunk_rows = 7

[space]
x = { range = [0, 10] }
y = { range = [0, 5] }
z = { values = [0, 1] }

[objective]
column = "f"
goal = "max"
top_k = 5
"""


@pytest.mark.parametrize("how", ["run", "exec"])
def test_run_and_exec_complete_with_nan_objectives_on_a_folder_and_on_s3(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    spec_file = tmp_path / "holes.toml"
    spec_file.write_text(HOLES_TOML)
    run_id = f"holes-{how}a"
    if how == "run":
        done = sweep("run", str(spec_file), "--store", store.uri, "--run-id", run_id, timeout=120)
    else:
        rendered = sweep("render", str(spec_file), "--store", store.uri, "--run-id", run_id)
        assert rendered.returncode == 0, rendered.stderr
        done = sweep("exec", "-", "--parallel", "2", stdin=rendered.stdout, timeout=120)
    assert done.returncode == 0, done.stderr
    spec = holes("max")
    assert result_of(store, spec, run_id).num_rows == ROWS
    summary = summary_of(store, spec, run_id)
    assert (summary["objective"]["nans"], summary["objective"]["nulls"]) == (NANS, NULLS)
    assert [row["param_id"] for row in summary["objective"]["best"]] == best_ids("max", 5)
    uri = store.url(layout.run_prefix("holes", run_id))
    assert main(["results", uri]) == 0
    assert "15 NaN and 5 null in objective column 'f'" in capsys.readouterr().out


def test_run_with_on_nan_fail_exits_1_naming_the_shard_and_param_id(tmp_path: Path) -> None:
    spec_file = tmp_path / "strict.toml"
    spec_file.write_text(HOLES_TOML + 'on_nan = "fail"\n')
    done = sweep("run", str(spec_file), "--store", str(tmp_path / "runs"), "--run-id", "s")
    assert done.returncode == 1
    assert "shard 1, param_id [40, 47)" in done.stderr
    assert "NaN or null in objective column 'f' at param_id 40" in done.stderr
    assert not (tmp_path / "runs/holes/s/_SUCCESS").exists()
