"""Adaptive refinement (`[refine]`): stages of one Workflow, each zooming into the best points
of the one before, with a result that does not depend on how the sweep was cut.

Most tests run the stages in process, step by step as the Workflow orders them (compute a
stage's shards, zoom, compute the next around the zoom's centres, ..., reduce); the target
and the CLI run through `sweep.py run`, which executes the rendered Workflow locally."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from steps import compute, layout, parquet, reduce, shard_check
from steps.compute import compute_shard
from steps.kernels import BOWL_MINIMUM
from steps.reduce import ShardError, reduce_run, zoom_outputs
from steps.spec import Spec, SpecError, load_spec, parse_spec
from steps.stages import Centres, decode_centres, stages_of, total_rows, total_shards
from steps.store import Store, open_store
from tests.cli import sweep
from tests.conftest import ROOT
from workflows.results import open_run
from workflows.verify import verify_run

BOWL: dict[str, Any] = {
    "name": "bowl",
    "function": "steps.kernels:bowl",
    "space": {
        "x": {"linspace": [-2.0, 2.0, 9]},
        "y": {"linspace": [-2.0, 2.0, 9]},
        "z": {"linspace": [-2.0, 2.0, 9]},
    },
    "objective": {"column": "f", "goal": "min", "top_k": 10},
    "refine": {"stages": 3, "top_k": 2, "points": 5},
}  # 729 rows, then 2 stages of 2 boxes of 125: 1,229 rows


def bowl(**changes: Any) -> Spec:
    return parse_spec(BOWL | changes)


def run_stages(store: Store, spec: Spec, run_id: str, wrong: int | None = None) -> None:
    """Every stage as the Workflow runs it; `wrong`: zoom that stage around other points (the
    third and fourth best rather than the best two), as a broken pipeline would."""
    centres: Centres = ()
    for stage in stages_of(spec):
        for index in range(stage.first_shard, stage.first_shard + stage.shards):
            compute_shard(spec, store, run_id, index, centres)
        if stage.number < len(stages_of(spec)) - 1:
            outputs = zoom_outputs(store, spec, run_id, stage.number)
            centres = decode_centres(spec, outputs["centres"])
            if wrong == stage.number + 1:
                infos = shard_check.verify_shards(store, spec, run_id, through=stage.number)
                top = reduce.stage_summaries(spec, infos)
                rows = top[stage.number].top[2:4]
                centres = tuple(tuple(r[a.name] for a in spec.axes) for r in rows)


def data_bytes(path: Path) -> bytes:
    """A Parquet file without its footer: the data pages only."""
    blob = path.read_bytes()
    return blob[: len(blob) - 8 - int.from_bytes(blob[-8:-4], "little")]


# --- the spec ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change,field,words",
    [
        ({"objective": None}, "refine", "needs an [objective]"),
        ({"refine": {"stages": 3, "points": 2}}, "refine.points", "between 4"),
        ({"refine": {"stages": 3, "points": 3}}, "refine.points", "between 4"),
        ({"refine": {"stages": 1}}, "refine.stages", "between 2"),
        ({"refine": {"stages": 11}}, "refine.stages", "between 2"),
        ({"refine": {"top_k": 2}}, "refine.stages", "is required"),
        ({"refine": {"stages": 3, "top_k": 4}}, "refine.top_k", "objective.top_k to at least 16"),
        ({"refine": {"stages": 3, "step": 2}}, "refine.step", "unknown key"),
        ({"refine": "yes"}, "refine", "must be a table"),
        ({"space": {"n": {"range": [0, 9]}}}, "refine", "needs a float grid axis"),
        (
            {"space": {"x": {"linspace": [0.0, 1.0, 1]}, "v": {"values": [0.1, 0.2]}}},
            "refine",
            "needs a float grid axis",
        ),
        (
            {"space": {"x": {"linspace": [0.0, 1.0, 2]}}, "refine": {"stages": 2}},
            "refine.points",
            "only 2 points",
        ),
        ({"space": {"stage": {"linspace": [0.0, 1.0, 5]}}}, "space.stage", "stage column"),
        (
            {
                "space": {"x": {"linspace": [0.0, 1.0, 3]}},
                "refine": {"stages": 2, "top_k": 4, "points": 5},
                "objective": {"column": "f", "top_k": 16},
            },
            "refine.top_k",
            "only 3 rows",
        ),
        (
            {"space": {"x": {"linspace": [0.0, 1.0, 3]}}, "refine": {"stages": 2}},
            "refine.points",
            "only 3 points: a zoomed grid needs at least 4, or its step would not shrink",
        ),
        (
            {
                "space": {"x": {"linspace": [0.0, 1.0, 9]}, "s": {"values": ["é" * 25_000]}},
                "function": "tests.kernels:mixed",
            },
            "refine.top_k",
            "over the limit of 65,536 (space.s has long values)",
        ),
        (
            {
                "function": "tests.kernels:mixed",
                "space": {f"a{i}": {"linspace": [0.0, 1.0, 2]} for i in range(7)},
                "refine": {"stages": 10, "top_k": 16, "points": 1001},
                "objective": {"column": "f", "top_k": 256},
            },
            "refine",
            "more than the supported",
        ),
    ],
)
def test_combinations_that_cannot_refine_are_refused_in_one_line(
    change: dict[str, Any], field: str, words: str
) -> None:
    document = {k: v for k, v in (BOWL | change).items() if v is not None}
    with pytest.raises(SpecError) as caught:
        parse_spec(document)
    assert caught.value.field == field and words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_refine_key_in_the_wrong_table_says_where_it_belongs() -> None:
    document = BOWL | {"objective": {"column": "f", "stages": 3}}
    with pytest.raises(SpecError, match=r"belongs in \[refine\]"):
        parse_spec(document)


def test_refine_is_part_of_the_hash_and_a_flat_spec_keeps_its_form() -> None:
    flat = parse_spec({k: v for k, v in BOWL.items() if k != "refine"})
    assert "refine" not in flat.canonical()
    assert bowl().hash != flat.hash
    assert bowl().hash != bowl(refine={"stages": 3, "top_k": 2, "points": 7}).hash
    assert parse_spec(json.loads(bowl().to_json())) == bowl()


def test_the_stages_are_one_param_id_space_and_one_run_of_shards() -> None:
    spec = bowl(shards=3)
    stages = stages_of(spec)
    assert [(s.offset, s.rows) for s in stages] == [(0, 729), (729, 250), (979, 250)]
    # about as many rows per shard as the first stage: 243 there, so 250 rows in 2 shards
    assert [(s.first_shard, s.shards) for s in stages] == [(0, 3), (3, 2), (5, 2)]
    assert (total_rows(spec), total_shards(spec)) == (1229, 7)
    for stage in stages:
        ranges = [
            stage.shard_range(i) for i in range(stage.first_shard, stage.first_shard + stage.shards)
        ]
        assert ranges[0][0] == stage.offset and ranges[-1][1] == stage.offset + stage.rows
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))


# --- the pipeline ------------------------------------------------------------------------


@pytest.mark.parametrize("shards,chunk_rows", [(3, 50), (7, 13), (2, 1000)])
def test_the_result_is_byte_identical_whatever_the_sharding_and_chunking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shards: int, chunk_rows: int
) -> None:
    monkeypatch.setattr(parquet, "MIN_ROW_GROUP_ROWS", 64)  # several result row groups
    monkeypatch.setattr(parquet, "MAX_ROW_GROUP_ROWS", 64)
    run_stages(open_store(str(tmp_path / "a")), bowl(shards=1, chunk_rows=100_000), "r")
    run_stages(open_store(str(tmp_path / "b")), bowl(shards=shards, chunk_rows=chunk_rows), "r")
    reduce_run(open_store(str(tmp_path / "a")), bowl(shards=1, chunk_rows=100_000), "r")
    reduce_run(open_store(str(tmp_path / "b")), bowl(shards=shards, chunk_rows=chunk_rows), "r")
    a, b = (tmp_path / side / "bowl/r/result.parquet" for side in "ab")
    assert pq.read_table(a).equals(pq.read_table(b))
    assert data_bytes(a) == data_bytes(b)


def test_every_row_says_its_stage_in_stage_then_param_id_order(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    spec = bowl(shards=2)
    run_stages(store, spec, "r")
    outcome = reduce_run(store, spec, "r")
    table = pq.read_table(tmp_path / "bowl/r/result.parquet")
    assert table.schema.names[:3] == ["param_id", "stage", "x"]
    assert str(table.schema.field("stage").type) == "int32"
    assert table["param_id"].to_pylist() == list(range(1229))
    stage = table["stage"].to_numpy()
    assert np.all(np.diff(stage) >= 0) and np.bincount(stage).tolist() == [729, 250, 250]
    summary = outcome.summary
    assert [s["rows"] for s in summary["stages"]] == [729, 250, 250]
    bests = [s["best"][0]["f"] for s in summary["stages"]]
    assert bests[0] > bests[1] > bests[2] == summary["objective"]["best"][0]["f"]


def test_a_zoomed_stage_spans_one_previous_step_around_each_best_point(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    spec = bowl()
    run_stages(store, spec, "r")
    summary = reduce_run(store, spec, "r").summary
    table = pq.read_table(tmp_path / "bowl/r/result.parquet")
    centres = summary["stages"][1]["centres"]
    assert centres[0] != centres[1]  # distinct points, in rank order
    for box, centre in enumerate(centres):
        rows = table.slice(729 + box * 125, 125)
        assert set(rows["stage"].to_pylist()) == {1}
        for axis in "xyz":
            values = rows[axis].to_numpy()
            assert values.min() == pytest.approx(max(-2.0, centre[axis] - 0.5))
            assert values.max() == pytest.approx(min(2.0, centre[axis] + 0.5))
            assert len(set(values)) == 5


def test_reduce_refuses_a_stage_zoomed_around_other_points(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    spec = bowl()
    run_stages(store, spec, "r", wrong=2)
    with pytest.raises(
        ShardError,
        match=r"shard 2 \(stage 2\) was zoomed around .* but the best points of stage 1 are",
    ):
        reduce_run(store, spec, "r")
    assert not (tmp_path / "bowl/r/result.parquet").exists()


def test_verify_finds_a_stage_zoomed_around_other_points_that_slipped_past_reduce(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(str(tmp_path))
    spec = bowl()
    run_stages(store, spec, "r", wrong=2)
    monkeypatch.setattr(shard_check, "centres_problem", lambda spec, infos: None)
    reduce_run(store, spec, "r")  # a reduce without the check: the run looks complete
    report = verify_run(open_run(str(tmp_path / "bowl/r")), sample=2000, seed=0)
    assert not report.ok
    assert any(p.startswith("summary: stage 2 zoomed around") for p in report.problems)
    assert any(p.startswith("column x:") or p.startswith("column f:") for p in report.problems)


def test_verify_recomputes_every_stage_of_a_good_run(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    spec = bowl(shards=2)
    run_stages(store, spec, "r")
    reduce_run(store, spec, "r")
    report = verify_run(open_run(str(tmp_path / "bowl/r")), sample=5000, seed=0)
    assert report.ok, report.problems
    assert report.sampled == 1229


def test_compute_resumes_a_zoomed_shard_only_around_the_same_points(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    spec = bowl()
    run_stages(store, spec, "r")
    key = layout.shard_key("bowl", "r", 1, total_shards(spec))
    before = (tmp_path / key).stat().st_mtime_ns
    info = compute.read_shard_info(store, key)
    same = decode_centres(spec, info.centres or "")
    assert compute_shard(spec, store, "r", 1, same).skipped
    other = (same[1], same[0])
    assert not compute_shard(spec, store, "r", 1, other).skipped
    assert (tmp_path / key).stat().st_mtime_ns != before


def test_random_axes_keep_the_best_points_draw_in_zoomed_stages(tmp_path: Path) -> None:
    spec = parse_spec(
        {
            "name": "noisy",
            "function": "tests.kernels:bowl_with_noise",
            "samples": 3,
            "space": {
                "x": {"linspace": [-1.0, 1.0, 9]},
                "y": {"linspace": [-1.0, 1.0, 9]},
                "u": {"uniform": [0.0, 1.0]},
            },
            "objective": {"column": "f", "goal": "min"},
            "refine": {"stages": 2, "top_k": 2, "points": 5},
        }
    )
    store = open_store(str(tmp_path))
    run_stages(store, spec, "r")
    summary = reduce_run(store, spec, "r").summary
    table = pq.read_table(tmp_path / "noisy/r/result.parquet")
    assert table.num_rows == 243 + 2 * 25  # samples only in the first stage
    for box, centre in enumerate(summary["stages"][1]["centres"]):
        assert set(table.slice(243 + box * 25, 25)["u"].to_pylist()) == {centre["u"]}
    assert verify_run(open_run(str(tmp_path / "noisy/r")), sample=1000, seed=1).ok


def test_keep_top_k_keeps_the_best_of_every_stage_and_verifies(tmp_path: Path) -> None:
    spec = bowl(keep={"top_k": 20})
    store = open_store(str(tmp_path))
    run_stages(store, spec, "r")
    outcome = reduce_run(store, spec, "r")
    table = pq.read_table(tmp_path / "bowl/r/result.parquet")
    assert table.num_rows == 20 and outcome.summary["rows"] == 1229
    assert table["stage"].to_pylist()[-1] == 2 and table["param_id"].to_pylist() == sorted(
        table["param_id"].to_pylist()
    )
    report = verify_run(open_run(str(tmp_path / "bowl/r")), sample=1229, seed=0)
    assert report.ok, report.problems


@pytest.mark.parametrize(
    "shard,centres,words",
    [
        ("0", "[[0.0,0.0,0.0],[0.5,0.0,0.0]]", "is for a zoomed stage's shards"),
        ("1", "", "is required"),
        ("1", "not json", "is not JSON"),
        ("1", "[[0.0,0.0,0.0]]", "a list of 2 points"),
        ("1", '[[0.0,0.0,"a"],[0.5,0.0,0.0]]', "is not a value of axis z"),
        ("1", "[[0.0,0.0,9.0],[0.5,0.0,0.0]]", "is not a value of axis z"),
    ],
)
def test_compute_refuses_centres_it_cannot_zoom_around(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shard: str, centres: str, words: str
) -> None:
    argv = ["--spec", bowl().to_json(), "--store", str(tmp_path), "--run-id", "r"]
    argv += ["--outputs", str(tmp_path / "out"), "--shard", shard, "--centres", centres]
    assert compute.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and words in err and "\n" not in err


# --- through `run`: the rendered Workflow, executed locally -------------------------------


def test_the_example_reaches_the_target_through_run(tmp_path: Path) -> None:
    """Issue 16's target: 5 stages of 21 points per axis around the best 2 find a 3-D bowl's
    minimum (0, at an irrational point) within 1e-6 in fewer than 200,000 evaluations."""
    store = tmp_path / "runs"
    done = sweep(
        "run", str(ROOT / "workflows/sweeps/refine.toml"), "--store", str(store), "--run-id", "t"
    )
    assert done.returncode == 0, done.stderr
    run = store / "refine/t"
    summary = json.loads((run / "summary.json").read_text())
    table = pq.read_table(run / "result.parquet")
    assert summary["rows"] == table.num_rows == 83_349 < 200_000
    best = summary["objective"]["best"][0]
    assert best["f"] < 1e-6 and best["stage"] == 4
    assert math.dist([best[a] for a in "xyz"], BOWL_MINIMUM) < 1e-3
    assert [s["stage"] for s in summary["stages"]] == [0, 1, 2, 3, 4]
    assert "83,349/83,349 rows" in done.stdout
    verified = sweep("verify", str(run), "--sample", "3000")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    shown = sweep("results", str(run), "--plot", str(tmp_path / "stages.png"))
    assert shown.returncode == 0, shown.stderr
    assert "5 stages, each zooming around the last one's best" in shown.stdout
    assert (tmp_path / "stages.png").stat().st_size > 10_000


def test_a_stage_with_too_few_ranked_rows_fails_the_run_in_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "sparse.toml"
    spec.write_text(
        'name = "sparse"\nfunction = "tests.kernels:only_at_zero"\n'
        "[space]\nx = { linspace = [-1.0, 1.0, 5] }\n"
        '[objective]\ncolumn = "f"\n[refine]\nstages = 2\ntop_k = 2\n'
    )
    done = sweep("run", str(spec), "--store", str(tmp_path / "runs"))
    assert done.returncode != 0
    assert "stage 0 ranked 1 row(s), fewer than refine.top_k = 2" in done.stdout + done.stderr
    assert not list((tmp_path / "runs").rglob("result.parquet"))


SMALL = """
name = "bowl"
function = "steps.kernels:bowl"
shards = 2
[space]
x = { linspace = [-2.0, 2.0, 9] }
y = { linspace = [-2.0, 2.0, 9] }
z = { linspace = [-2.0, 2.0, 9] }
[objective]
column = "f"
[refine]
stages = 3
top_k = 2
points = 5
"""


def test_a_refined_run_resumes_keeping_every_stage_it_can(tmp_path: Path) -> None:
    spec = tmp_path / "bowl.toml"
    spec.write_text(SMALL)
    store = tmp_path / "runs"
    first = sweep("run", str(spec), "--store", str(store), "--run-id", "r")
    assert first.returncode == 0, first.stderr
    run = store / "bowl/r"
    before = data_bytes(run / "result.parquet")
    for name in ("_SUCCESS", "result.parquet", "shards/shard-00003-of-00004.parquet"):
        (run / name).unlink()
    again = sweep("run", str(spec), "--store", str(store), "--resume", "--run-id", "r")
    assert again.returncode == 0, again.stderr
    assert "keeping 3 of 4 shards, computing 1 (1 missing)" in again.stdout + again.stderr
    assert data_bytes(run / "result.parquet") == before
    listed = sweep("list", "--store", str(store), "--json")
    (entry,) = json.loads(listed.stdout)["runs"]
    assert (entry["state"], entry["shards"], entry["shards_written"]) == ("complete", 4, 4)


def test_the_plot_outlines_every_zoomed_box_where_the_rule_puts_it(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from workflows.plot import plot_run
    from workflows.plot_data import choose_shape
    from workflows.plot_stages import draw_stages

    store = open_store(str(tmp_path))
    spec = bowl()
    run_stages(store, spec, "r")
    reduce_run(store, spec, "r")
    run = open_run(str(tmp_path / "bowl/r"))
    drawn = plot_run(run, tmp_path / "plot.png")
    assert drawn.best is not None and drawn.best.value == run.best_rows[0]["f"]
    ax = Figure().add_subplot()
    kind, axes = choose_shape(spec)
    assert kind == "heatmap" and draw_stages(ax, run, axes) == 4  # 2 stages of 2 boxes
    boxes = [p for p in ax.patches if isinstance(p, Rectangle)]
    centre = run.summary["stages"][2]["centres"][0]
    half = 0.5 * 2 / 4  # stage 2: the previous stage's step, 0.5 / ((5 - 1) / 2)
    x0, y0 = boxes[2].get_xy()
    assert (x0, y0) == pytest.approx((centre["x"] - half, centre["y"] - half))
    assert boxes[2].get_width() == pytest.approx(2 * half)


def test_the_readme_shows_the_example_sweeps_refine_table() -> None:
    import re
    import tomllib

    readme = (ROOT / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```toml\n(.*?)```", readme, re.S) if "[refine]" in b]
    example = tomllib.loads((ROOT / "workflows/sweeps/refine.toml").read_text())
    assert tomllib.loads(block)["refine"] == example["refine"]


# --- what a hostile review found -------------------------------------------------------------


def finished(tmp_path: Path, **changes: Any) -> Path:
    store = open_store(str(tmp_path))
    spec = bowl(**changes)
    run_stages(store, spec, "r")
    reduce_run(store, spec, "r")
    return tmp_path / "bowl/r"


@pytest.mark.parametrize(
    "tamper,words",
    [
        (lambda s: s["stages"][1]["best"][0].update(f=123.0), "stage 1's best rows are not"),
        (lambda s: s["stages"][2].update(rows=7), "summary: stage 2 says"),
        (lambda s: s["stages"][1].update(first_param_id=1), "summary: stage 1 says"),
        (lambda s: s["stages"].pop(), "does not list the run's 3 stages"),
        (lambda s: s["stages"][2]["centres"][0].update(x=10**30), "stage 2 centres are unusable"),
        (lambda s: s["stages"][2]["centres"][0].update(x="abc"), "stage 2 centres are unusable"),
    ],
)
def test_verify_holds_every_claim_of_the_stages_table_to_the_result(
    tmp_path: Path, tamper: Any, words: str
) -> None:
    run = finished(tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    tamper(summary)
    (run / "summary.json").write_text(json.dumps(summary))
    done = sweep("verify", str(run))
    assert done.returncode == 1, done.stdout + done.stderr
    assert words in done.stdout + done.stderr and "Traceback" not in done.stderr


def test_verify_ranks_stages_by_param_id_not_by_the_stored_stage_column(tmp_path: Path) -> None:
    run = finished(tmp_path)
    table = pq.read_table(run / "result.parquet")
    stage = table["stage"].to_numpy().copy()
    stage[stage == 1] = 2
    index = table.schema.get_field_index("stage")
    table = table.set_column(index, "stage", pa.array(stage))
    pq.write_table(table, run / "result.parquet")
    done = sweep("verify", str(run), "--sample", "2000", "--force")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "column stage:" in done.stdout + done.stderr


def test_a_malformed_stages_table_is_one_line_for_the_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    run = finished(tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    summary["stages"][2]["centres"][0]["x"] = None
    (run / "summary.json").write_text(json.dumps(summary))
    done = sweep("results", str(run), "--plot", str(tmp_path / "p.png"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "its summary its stage 2 centres are unusable" in done.stderr


def test_centres_must_be_values_their_axes_can_take() -> None:
    spec = parse_spec(
        {
            "name": "mix",
            "function": "tests.kernels:mixed",
            "space": {
                "x": {"linspace": [0.0, 1.0, 5]},
                "n": {"range": [0, 3]},
                "s": {"values": ["a", "b"]},
                "u": {"uniform": [0.0, 1.0]},
            },
            "objective": {"column": "f"},
            "refine": {"stages": 2},
        }
    )
    assert decode_centres(spec, '[[0.5, 2, "b", 0.25]]') == ((0.5, 2, "b", 0.25),)
    for bad in (
        '[[0.5, 10000000000000000000000, "b", 0.25]]',
        '[[0.5, -5, "b", 0.25]]',
        '[[0.5, 2, "zzz", 0.25]]',
        '[[0.5, 2, "b", 1e300]]',
        '[[0.5, 2.0, "b", 0.25]]',
        '[[0.5, true, "b", 0.25]]',
    ):
        with pytest.raises(SpecError, match="is not a value of axis"):
            decode_centres(spec, bad)


def test_logs_name_a_refined_runs_shards_by_number(tmp_path: Path) -> None:
    spec = tmp_path / "bowl.toml"
    spec.write_text(SMALL)
    env = {"TTG_LOG_DIR": str(tmp_path / "logs")}
    done = sweep("run", str(spec), "--store", str(tmp_path / "runs"), "--run-id", "lg", env=env)
    assert done.returncode == 0, done.stderr
    shard = sweep("logs", "lg", "3", env=env)
    assert shard.returncode == 0, shard.stderr
    assert [h for h in shard.stdout.splitlines() if h.startswith("==> ")] == [
        "==> lg.compute-2(0:3) <=="
    ]
    every = sweep("logs", "lg", "compute", env=env)
    headers = [h for h in every.stdout.splitlines() if h.startswith("==> ")]
    assert headers == [
        f"==> lg.compute-{s}({i}:{n}) <=="
        for s, i, n in [(0, 0, 0), (0, 1, 1), (1, 0, 2), (2, 0, 3)]
    ]


def test_the_line_plot_of_a_refined_run_marks_the_best_of_every_stage(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from workflows.plot import plot_run

    store = open_store(str(tmp_path))
    spec = parse_spec(
        {
            "name": "line",
            "function": "tests.kernels:parabola",
            "space": {"x": {"linspace": [-1.0, 1.0, 9]}},
            "objective": {"column": "y", "goal": "min"},
            "refine": {"stages": 4, "top_k": 1, "points": 9},
        }
    )
    run_stages(store, spec, "r")
    reduce_run(store, spec, "r")
    run = open_run(str(tmp_path / "line/r"))
    drawn = plot_run(run, tmp_path / "line.png")
    assert drawn.kind == "line" and drawn.best is not None
    assert drawn.best.param_id == run.best_rows[0]["param_id"] >= 9  # a zoomed stage's row


def test_status_counts_every_stages_shards_of_a_templated_workflow() -> None:
    from hera.workflows import models as m

    from workflows.argo_status import workflow_status

    spec = load_spec(ROOT / "workflows/sweeps/refine.toml")
    workflow = m.Workflow(
        metadata=m.ObjectMeta(name="refine-abc"),
        spec=m.WorkflowSpec(workflow_template_ref=m.WorkflowTemplateRef(name="refine")),
        status=m.WorkflowStatus(
            phase="Running",
            stored_workflow_template_spec=m.WorkflowSpec(
                arguments=m.Arguments(parameters=[m.Parameter(name="spec", value=spec.to_json())])
            ),
        ),
    )
    assert workflow_status(workflow, "ttg").shards.total == total_shards(spec) == 10


def test_a_flat_grid_of_as_many_rows_stays_far_from_the_minimum() -> None:
    """The README's comparison: the example's 83,349 rows as one flat grid (44³ ≥ them)
    get no nearer than 1e-3, where its five stages reach below 1e-6."""
    from steps.kernels import bowl as bowl_function

    side = math.ceil(83_349 ** (1 / 3))
    assert side**3 >= 83_349 and side == 44
    axis = np.linspace(-2.0, 2.0, side)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    assert bowl_function(x, y, z)["f"].min() > 1e-3


def test_plan_bounds_what_a_where_keeps_of_the_zoomed_stages(tmp_path: Path) -> None:
    """`plan` times the first stage only, so for zoomed rows a `where` may keep any share:
    it says its kept rows are at most, and they are at least what a run keeps."""
    spec = tmp_path / "kept.toml"
    spec.write_text(SMALL.replace("shards = 2\n", 'shards = 2\nkeep = { where = "f < 0.5" }\n'))
    planned = sweep("plan", str(spec), "--json")
    assert planned.returncode == 0, planned.stderr
    estimate = json.loads(planned.stdout)
    assert estimate["kept_rows_at_most"] is True
    done = sweep("run", str(spec), "--store", str(tmp_path / "runs"), "--run-id", "k")
    assert done.returncode == 0, done.stderr
    kept = pq.read_metadata(tmp_path / "runs/bowl/k/result.parquet").num_rows
    assert 0 < kept <= estimate["kept_rows"]
    shown = sweep("plan", str(spec))
    assert "rows kept in the result (at most)" in shown.stdout
