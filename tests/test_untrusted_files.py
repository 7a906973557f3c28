"""Every file TTG reads but did not just write — spec.json, summary.json, result.parquet — is
untrusted input: damaged, truncated, wrongly typed or non-UTF-8 content gives one line and
exit 2 (or, inside a pod, a refusal naming the file), never a traceback or a wrong answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from steps import layout
from steps.compute import RunMismatchError, compute_shard
from steps.reduce import reduce_run
from steps.spec import Spec, parse_spec
from steps.store import open_store
from workflows import results
from workflows.runs import RunChoiceError, choose_run_id
from workflows.sweep import main

SPEC = {
    "name": "tiny",
    "function": "tests.kernels:mixed",
    "shards": 2,
    "seed": 1,
    "samples": 3,
    "space": {
        "g": {"range": [1, 4]},
        "s": {"values": ["[bold]x[/bold]", "[objective]"]},
        "u": {"uniform": [0.0, 1.0]},
        "w": {"normal": [0.0, 1.0]},
        "c": {"choice": [1, 2]},
    },
    "objective": {"column": "score", "goal": "max", "top_k": 4},
}


def finished(root: Path, document: dict[str, object] = SPEC, run_id: str = "r") -> Path:
    spec = parse_spec(document)
    store = open_store(str(root))
    for index in range(spec.shards):
        compute_shard(spec, store, run_id, index)
    reduce_run(store, spec, run_id)
    return root / spec.name / run_id


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_exit_2(code: int, err: str, *expected: str) -> None:
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, err


DAMAGES: dict[str, Callable[[bytes], bytes]] = {
    "truncated": lambda blob: blob[: len(blob) // 2],
    "not UTF-8": lambda blob: b"\xff\xfe" + blob,
    "binary": lambda blob: bytes(range(256)) * 4,
    "empty": lambda blob: b"",
    "a JSON array": lambda blob: b"[1, 2, 3]",
    "deeply nested": lambda blob: b"[" * 100_000 + b"]" * 100_000,
    "a 5,000-digit number": lambda blob: b'{"rows": ' + b"9" * 5000 + b"}",
}
WRONG_TYPES = {
    "rows as text": ("rows", "many", "field 'rows' is not a count"),
    "columns as a list": ("columns", [], "field 'columns' is not an object"),
    "objective as text": ("objective", "min", "field 'objective' is not an object"),
    "best as a number": (
        "objective",
        {"column": "score", "goal": "max", "best": 3},
        "field 'objective.best' is not a list of rows",
    ),
}


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
@pytest.mark.parametrize("name", ["summary.json", "spec.json"])
def test_results_of_a_run_with_a_damaged_record_is_one_line(
    damage: Callable[[bytes], bytes],
    name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = finished(tmp_path)
    (folder / name).write_bytes(damage((folder / name).read_bytes()))
    code, _, err = cli(capsys, "results", str(folder))
    one_line_exit_2(code, err, name)


@pytest.mark.parametrize("field,value,message", WRONG_TYPES.values(), ids=WRONG_TYPES.keys())
def test_results_of_a_wrongly_typed_summary_names_the_field(
    field: str, value: object, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = finished(tmp_path)
    summary = json.loads((folder / "summary.json").read_text())
    summary[field] = value
    (folder / "summary.json").write_text(json.dumps(summary))
    code, _, err = cli(capsys, "results", str(folder))
    one_line_exit_2(code, err, message)


def test_results_refuses_a_summary_of_another_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = finished(tmp_path)
    other = finished(tmp_path / "other", SPEC | {"seed": 2})
    (folder / "summary.json").write_bytes((other / "summary.json").read_bytes())
    code, _, err = cli(capsys, "results", str(folder))
    one_line_exit_2(code, err, "spec.json and summary.json are of different specs")


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_a_plot_of_a_damaged_result_is_one_line(
    damage: Callable[[bytes], bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = finished(tmp_path)
    result = folder / "result.parquet"
    result.write_bytes(damage(result.read_bytes()))
    code, _, err = cli(capsys, "results", str(folder), "--plot", str(tmp_path / "p.png"))
    one_line_exit_2(code, err, "result.parquet")
    assert not (tmp_path / "p.png").exists()


def test_a_plot_of_a_result_with_a_row_outside_the_sweep_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    folder = finished(tmp_path)
    table = pq.read_table(folder / "result.parquet")
    pq.write_table(
        table.set_column(0, "param_id", pc.add(table["param_id"], 10**6)), folder / "result.parquet"
    )
    code, _, err = cli(capsys, "results", str(folder), "--plot", str(tmp_path / "p.png"))
    one_line_exit_2(code, err, "param_id outside the sweep's 0..17")


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_resume_of_a_run_with_a_damaged_spec_json_is_one_line(
    damage: Callable[[bytes], bytes], tmp_path: Path
) -> None:
    spec: Spec = parse_spec(SPEC)
    store = open_store(str(tmp_path))
    compute_shard(spec, store, "r", 0)
    record = tmp_path / layout.spec_key("tiny", "r")
    record.write_bytes(damage(record.read_bytes()))
    with pytest.raises(RunChoiceError, match=r"spec\.json .*start a new run instead"):
        choose_run_id(store, spec, "r", resume=True)
    with pytest.raises(RunMismatchError, match="refusing to write into this run"):
        compute_shard(spec, store, "r", 1)


def test_messages_and_tables_show_bracketed_text_as_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = finished(tmp_path)
    code, out, err = cli(capsys, "results", str(folder))
    assert code == 0, err
    assert "[bold]x[/bold]" in out and "[objective]" in out  # values of the axis `s`
    bare = finished(tmp_path / "bare", {k: v for k, v in SPEC.items() if k != "objective"})
    code, out, err = cli(capsys, "results", str(bare))
    assert code == 0, err
    assert "no objective in the spec, so no best rows were kept (add [objective])" in out


def test_a_run_has_a_duration_of_zero_or_more_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = finished(tmp_path)
    started = json.loads((folder / "spec.json").read_text())["started_at"]
    ended = json.loads((folder / "summary.json").read_text())["finished_at"]
    assert len(started) == len(ended)  # one precision at both ends
    assert datetime.fromisoformat(ended) >= datetime.fromisoformat(started)
    run = results.open_run(str(folder))
    assert run.seconds is not None and run.seconds >= 0
    skewed = json.loads((folder / "spec.json").read_text())
    skewed["started_at"] = "2999-01-01T00:00:00.000+00:00"  # a pod whose clock is ahead
    (folder / "spec.json").write_text(json.dumps(skewed))
    assert results.open_run(str(folder)).seconds is None
    code, out, _ = cli(capsys, "results", str(folder))
    assert code == 0 and "-" in out.split("duration")[1].splitlines()[0]


def test_plots_of_values_beyond_float_exactness_and_range_are_drawn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """int64 beyond 2**53 (a line) and values spanning -1e308..1e308 (a histogram)."""
    big: dict[str, object] = {
        "name": "big",
        "function": "tests.kernels:nanoseconds",
        "space": {"t": {"range": [2**62 - 40, 2**62 - 1]}},
        "objective": {"column": "stamp", "goal": "max"},
    }
    wide: dict[str, object] = {
        "name": "wide",
        "function": "tests.kernels:extremes",
        "samples": 200,
        "space": {"u": {"uniform": [0.0, 1.0]}},
        "objective": {"column": "f"},
    }
    for name, document in (("big", big), ("wide", wide)):
        folder = finished(tmp_path / name, document)
        code, out, err = cli(capsys, "results", str(folder), "--plot", str(tmp_path / "p.png"))
        assert code == 0, err
        assert "plot: " in out


def test_a_plot_refuses_a_summary_whose_range_does_not_cover_the_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wide = {
        "name": "wide",
        "function": "tests.kernels:extremes",
        "samples": 200,
        "space": {"u": {"uniform": [0.0, 1.0]}},
    }
    folder = finished(tmp_path, wide)
    summary = json.loads((folder / "summary.json").read_text())
    summary["columns"]["f"]["max"] = 0.0  # forged: the result holds 1e308
    (folder / "summary.json").write_text(json.dumps(summary))
    code, _, err = cli(capsys, "results", str(folder), "--plot", str(tmp_path / "p.png"))
    one_line_exit_2(code, err, "lie outside the min and max summary.json gives")
