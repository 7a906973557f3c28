"""`results RUN_OR_URI [--top N] [--plot FILE.png]`: finding a run, its tables, its plots.

Small sweeps are run once per module through the real CLI (`run`, subprocesses and all);
`results` is then called in-process through `sweep.main`, which is the same code path
without paying an interpreter start per assertion.
"""

from __future__ import annotations

import json
import shutil
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from steps.spec import Spec, parse_spec
from tests.cli import sweep
from tests.conftest import S3Server
from workflows import plot, plot_data, report, results
from workflows.sweep import main

GRID2 = """
name = "bowl"
function = "steps.kernels:rosenbrock"
shards = 3
[space]
x = { linspace = [-2.0, 2.0, 60] }
y = { linspace = [-1.0, 3.0, 50] }
[objective]
column = "f"
goal = "min"
top_k = 5
"""

LINE = """
name = "line"
function = "steps.kernels:rosenbrock"
shards = 2
seed = 7
samples = 50
[space]
x = { linspace = [-2.0, 2.0, 40] }
y = { uniform = [-1.0, 3.0] }
[objective]
column = "f"
goal = "min"
"""

RANDOM_ONLY = """
name = "cloud"
function = "steps.kernels:rosenbrock"
shards = 2
seed = 3
samples = 2000
[space]
x = { uniform = [-2.0, 2.0] }
y = { normal = [1.0, 1.0] }
[objective]
column = "f"
goal = "min"
"""

# Three grid axes (one of strings) and two random ones: the heatmap over g and c must reduce
# over s and the 15 draws of each grid point. Maximised, to exercise the other goal.
MIXED = """
name = "mixed"
function = "tests.kernels:mixed"
shards = 3
chunk_rows = 64
seed = 11
samples = 15
[space]
g = { range = [1, 9] }
s = { values = ["a", "b"] }
u = { uniform = [0.0, 2.0] }
w = { normal = [0.0, 1.0] }
c = { values = [1, 2, 3, 4, 5] }
[objective]
column = "score"
goal = "max"
top_k = 3
"""


def run_sweep(spec_text: str, store: str, run_id: str, tmp: Path) -> None:
    """A sweep through the real CLI; the task subprocesses import `tests.kernels` from ROOT."""
    spec = tmp / f"{run_id}.toml"
    spec.write_text(spec_text)
    done = sweep("run", str(spec), "--store", store, "--run-id", run_id, timeout=120)
    assert done.returncode == 0, done.stderr


@dataclass(frozen=True)
class Runs:
    root: Path  # holds ./runs, the default store, for the bare-run-id case

    @property
    def store(self) -> Path:
        return self.root / "runs"

    def folder(self, name: str, run_id: str) -> Path:
        return self.store / name / run_id


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("results")
    store = str(root / "runs")
    for text, run_id in [
        (GRID2, "bowl-aaaaa"),
        (LINE, "line-aaaaa"),
        (RANDOM_ONLY, "cloud-aaaaa"),
        (MIXED, "mixed-aaaaa"),
    ]:
        run_sweep(text, store, run_id, root)
    return Runs(root)


def results_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["results", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def summary_of(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG header; fails unless it is a PNG."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


# --- finding a run ----------------------------------------------------------------------------


def test_results_of_a_run_folder_shows_best_rows_statistics_and_provenance(
    runs: Runs, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = runs.folder("bowl", "bowl-aaaaa")
    summary = summary_of(folder)
    code, out, err = results_cli(capsys, str(folder))
    assert code == 0, err
    best = summary["objective"]["best"][0]
    assert "best 5 by min f" in out
    assert str(best["param_id"]) in out
    assert "columns" in out and "NaNs" in out and "mean" in out
    for column in ("param_id", "x", "y", "f"):
        assert f" {column} " in out
    assert "3,000" in out  # rows, and each column's count
    assert summary["spec_hash"][:12] in out
    assert "bowl-aaaaa" in out and "steps.kernels:rosenbrock" in out
    assert "reduce seconds" in out and "numpy" in out and "pyarrow" in out


def test_results_accepts_a_file_uri_and_a_file_inside_the_run(
    runs: Runs, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = runs.folder("bowl", "bowl-aaaaa")
    for given in (folder.as_uri(), str(folder / "result.parquet"), str(folder) + "/"):
        run = results.open_run(given)
        assert (run.ref.name, run.ref.run_id, run.rows) == ("bowl", "bowl-aaaaa", 3000)
    code, out, _ = results_cli(capsys, folder.as_uri(), "--top", "2")
    assert code == 0 and "best 2 by min f" in out


def test_a_bare_run_id_is_looked_up_in_the_default_store(
    runs: Runs, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(runs.root)
    code, out, err = results_cli(capsys, "line-aaaaa")
    assert code == 0, err
    assert "line-aaaaa" in out and "2,000" in out


def test_top_limits_the_rows_and_says_when_fewer_are_stored(
    runs: Runs, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = runs.folder("bowl", "bowl-aaaaa")
    best = summary_of(folder)["objective"]["best"]
    _, out, _ = results_cli(capsys, str(folder), "--top", "2")
    assert "best 2 by min f" in out
    assert str(best[1]["param_id"]) in out and str(best[2]["param_id"]) not in out
    _, out, _ = results_cli(capsys, str(folder), "--top", "50")
    assert "only the best 5 rows are stored" in out and "best 5 by min f" in out
    _, out, _ = results_cli(capsys, str(folder))  # the default of 10 is no request for 10
    assert "--top" not in out and "best 5 by min f" in out
    assert [r["param_id"] for r in results.top_rows(results.open_run(str(folder)), 50)] == [
        r["param_id"] for r in best
    ]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("nosuch-abcde", "no run 'nosuch-abcde' in runs/"),
        ("no/such/folder", "no run folder no/such/folder"),
        ("s3://bucket-only", "s3://bucket[/prefix]/<name>/<run_id>"),
        ("file://host/x/y/z", "file:///absolute/path"),
    ],
)
def test_an_unknown_run_is_one_line_and_exit_2(
    given: str,
    expected: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = results_cli(capsys, given)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and expected in err


def test_a_folder_that_is_no_run_is_refused(runs: Runs, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = results_cli(capsys, str(runs.store / "bowl"))
    assert code == 2 and "no TTG run at" in err and err.count("\n") == 1


def test_an_incomplete_run_is_refused_as_not_complete(
    runs: Runs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "runs" / "bowl" / "bowl-bbbbb"
    shutil.copytree(runs.folder("bowl", "bowl-aaaaa"), folder)
    (folder / "_SUCCESS").unlink()
    code, out, err = results_cli(capsys, str(folder))
    assert code == 2 and out == ""
    assert "not complete" in err and "bowl-bbbbb" in err and err.count("\n") == 1


def test_the_cli_end_to_end_exit_codes(runs: Runs, tmp_path: Path) -> None:
    """The script itself: exit 0 with tables, exit 2 with one line and no traceback."""
    folder = runs.folder("bowl", "bowl-aaaaa")
    ok = sweep("results", str(folder), "--top", "1", cwd=tmp_path, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "best 1 by min f" in ok.stdout
    bad = sweep("results", "missing-zzzzz", "--top", "0", cwd=tmp_path, timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--top" in bad.stderr


def test_results_and_plot_of_an_s3_run(
    s3_env: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = s3_env.new_bucket()
    run_sweep(GRID2, f"s3://{bucket}/x", "bowl-s3aaa", tmp_path)
    uri = f"s3://{bucket}/x/bowl/bowl-s3aaa"
    out_png = tmp_path / "s3.png"
    code, out, err = results_cli(capsys, uri, "--top", "3", "--plot", str(out_png))
    assert code == 0, err
    assert "best 3 by min f" in out and "heatmap of min f over x and y" in out
    assert f"{uri}/result.parquet" in out.replace("\n", "").replace("│", "").replace(" ", "")
    assert png_size(out_png)[0] > 400
    run = results.open_run(uri)
    drawn = plot.plot_run(run, out_png)
    assert drawn.best is not None and drawn.best.param_id == run.best_rows[0]["param_id"]
    code, _, err = results_cli(capsys, f"s3://{bucket}/x/bowl/bowl-nosuch")
    assert code == 2 and "no TTG run at" in err


# --- plots ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "run_id", "kind", "axes"),
    [
        ("bowl", "bowl-aaaaa", "heatmap", ("x", "y")),
        ("mixed", "mixed-aaaaa", "heatmap", ("g", "c")),
        ("line", "line-aaaaa", "line", ("x",)),
        ("cloud", "cloud-aaaaa", "histogram", ()),
    ],
)
def test_plot_draws_what_fits_the_space_and_marks_the_best_row(
    runs: Runs,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    run_id: str,
    kind: str,
    axes: tuple[str, ...],
) -> None:
    folder = runs.folder(name, run_id)
    out_png = tmp_path / f"{name}.png"
    code, out, err = results_cli(capsys, str(folder), "--plot", str(out_png))
    assert code == 0, err
    assert f"plot: {kind}" in out
    width, height = png_size(out_png)
    assert 600 <= width <= 3000 and 400 <= height <= 3000
    drawn = plot.plot_run(results.open_run(str(folder)), tmp_path / "again.png")
    assert (drawn.kind, drawn.axes) == (kind, axes)
    best = summary_of(folder)["objective"]["best"][0]
    assert drawn.best is not None
    assert (drawn.best.param_id, drawn.best.value) == (best["param_id"], best[drawn.target.column])


def mixed_columns(runs: Runs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    table = pq.read_table(runs.folder("mixed", "mixed-aaaaa") / "result.parquet")
    return table["g"].to_numpy(), table["c"].to_numpy(), table["score"].to_numpy()


def test_the_heatmap_cell_is_the_best_over_every_other_axis_and_draw(
    runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Streamed in tiny batches, the grid equals a brute-force reduction of the whole table."""
    run = results.open_run(str(runs.folder("mixed", "mixed-aaaaa")))
    kind, axes = plot.choose_shape(run.spec)
    assert kind == "heatmap" and [g.name for g in axes] == ["g", "c"]
    monkeypatch.setattr(plot_data, "BATCH_ROWS", 97)  # many batches, none aligned with a cell
    grid, best = plot.reduce_to_grid(plot.iter_column(run, "score"), run.spec.samples, axes, "max")
    g, c, score = mixed_columns(runs)
    expected = [[score[(g == gv) & (c == cv)].max() for cv in range(1, 6)] for gv in range(1, 9)]
    assert grid.shape == (8, 5)
    np.testing.assert_array_equal(grid, np.array(expected))
    top = summary_of(runs.folder("mixed", "mixed-aaaaa"))["objective"]["best"][0]
    assert best == plot.Best(top["score"], top["param_id"])


def test_a_long_axis_is_drawn_in_blocks_that_keep_their_best_point(runs: Runs) -> None:
    """Blocks bound the grid whatever the sweep's size, and never lose the best value."""
    run = results.open_run(str(runs.folder("mixed", "mixed-aaaaa")))
    _, axes = plot.choose_shape(run.spec)
    assert plot.blocks_for(axes, limit=3) == (3, 2)  # 8 points -> 3 blocks, 5 -> 3 blocks
    grid, _ = plot.reduce_to_grid(
        plot.iter_column(run, "score"), run.spec.samples, axes, "max", (3, 2)
    )
    g, c, score = mixed_columns(runs)
    gi, ci = (g - 1) // 3, (c - 1) // 2
    expected = [[score[(gi == i) & (ci == j)].max() for j in range(3)] for i in range(3)]
    np.testing.assert_array_equal(grid, np.array(expected))
    assert grid.max() == score.max()


def test_the_line_is_the_best_per_point_of_its_axis(runs: Runs) -> None:
    run = results.open_run(str(runs.folder("line", "line-aaaaa")))
    _, axes = plot.choose_shape(run.spec)
    line, _ = plot.reduce_to_grid(plot.iter_column(run, "f"), run.spec.samples, axes, "min")
    table = pq.read_table(runs.folder("line", "line-aaaaa") / "result.parquet")
    x, f = table["x"].to_numpy(), table["f"].to_numpy()
    np.testing.assert_array_equal(line, [f[x == v].min() for v in np.unique(x)])


def test_the_histogram_counts_every_finite_row(runs: Runs) -> None:
    run = results.open_run(str(runs.folder("cloud", "cloud-aaaaa")))
    h = plot.histogram(run, plot.Target("f", "min"))
    assert int(h.counts.sum()) + h.hidden == run.rows == 2000
    assert h.log  # Rosenbrock values span many orders of magnitude


def spec_of(space: str, objective: str = "") -> Spec:
    return parse_spec(
        {
            "name": "s",
            "function": "m:f",
            "space": json.loads(space),
            **({"objective": json.loads(objective)} if objective else {}),
            **({"samples": 4} if "uniform" in space else {}),
        }
    )


def test_the_shape_follows_the_grid_axes_with_most_points() -> None:
    def shape(space: str) -> tuple[str, list[str]]:
        kind, axes = plot.choose_shape(spec_of(space))
        return kind, [g.name for g in axes]

    three = (
        '{"a": {"range": [0, 3]}, "b": {"values": [1, 2, 3, 4, 5]}, "c": {"linspace": [0, 1, 9]}}'
    )
    assert shape(three) == ("heatmap", ["b", "c"])
    one_point = '{"a": {"values": [1]}, "b": {"range": [0, 10]}, "u": {"uniform": [0, 1]}}'
    assert shape(one_point) == ("line", ["b"])
    assert shape('{"u": {"uniform": [0, 1]}, "a": {"values": ["only"]}}') == ("histogram", [])


def test_without_an_objective_the_first_numeric_output_is_drawn_lower_is_better() -> None:
    spec = spec_of('{"a": {"range": [0, 3]}}')
    schema = pa.schema(
        [("param_id", pa.int64()), ("a", pa.int64()), ("tag", pa.string()), ("v", pa.float32())]
    )
    assert plot.choose_target(spec, schema) == plot.Target("v", "min")
    with pytest.raises(plot.PlotError, match="no output column is numeric"):
        plot.choose_target(spec, schema.remove(3))
    with_objective = spec_of('{"a": {"range": [0, 3]}}', '{"column": "v", "goal": "max"}')
    assert plot.choose_target(with_objective, schema) == plot.Target("v", "max")


def test_without_matplotlib_the_plot_is_one_line_naming_the_extra(
    runs: Runs, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    folder = runs.folder("bowl", "bowl-aaaaa")
    code, out, err = results_cli(capsys, str(folder), "--plot", str(tmp_path / "p.png"))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "pip install 'ttg[plot]'" in err
    assert not (tmp_path / "p.png").exists()


def test_a_plot_file_of_an_unknown_format_or_folder_is_refused(
    runs: Runs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = runs.folder("bowl", "bowl-aaaaa")
    code, _, err = results_cli(capsys, str(folder), "--plot", str(tmp_path / "plot.txt"))
    assert code == 2 and "name the file .png" in err and err.count("\n") == 1
    code, _, err = results_cli(capsys, str(folder), "--plot", str(tmp_path / "no" / "p.png"))
    assert code == 2 and "does not exist" in err


# --- NaN and null objectives (more in tests/test_nan_objective.py) -------------------------


def test_a_run_without_nan_or_null_objectives_says_nothing_about_them(
    runs: Runs, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = runs.folder("bowl", "bowl-aaaaa")
    objective = summary_of(folder)["objective"]
    assert (objective["nans"], objective["nulls"]) == (0, 0)
    _, out, _ = results_cli(capsys, str(folder))
    assert "never ranked" not in out and "no row has a number" not in out


def test_the_unranked_counts_come_from_the_objective_or_from_an_older_summarys_columns() -> None:
    columns = {"f": {"count": 7, "nans": 2, "nulls": 1}}
    objective: dict[str, Any] = {"column": "f", "goal": "min", "best": []}
    older = {"objective": objective, "columns": columns}
    assert report.unranked_counts(older) == (2, 1)
    newer = {**older, "objective": {**objective, "nans": 5, "nulls": 0}}
    assert report.unranked_counts(newer) == (5, 0)
    assert report.unranked_note(newer) == (
        "5 NaN in objective column 'f': those rows are in the result, never ranked"
    )
    forged = {**older, "objective": {**objective, "nans": -1, "nulls": "x"}}
    assert report.unranked_counts(forged) == (2, 1)
    assert report.unranked_counts({"rows": 1}) == (0, 0)


def test_fewer_best_rows_than_top_k_are_explained_by_the_rows_without_a_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_sweep(
        """
name = "few"
function = "tests.kernels:mostly_nan"
shards = 2
[space]
x = { range = [0, 30] }
[objective]
column = "f"
goal = "min"
top_k = 8
""",
        str(tmp_path / "runs"),
        "few-aaaaa",
        tmp_path,
    )
    code, out, err = results_cli(capsys, str(tmp_path / "runs/few/few-aaaaa"), "--top", "10")
    assert code == 0, err
    assert "--top 10: only 5 rows have a number in objective column 'f'; showing 5" in out
    assert "best 5 by min f" in out and "25 NaN in objective column 'f'" in out
