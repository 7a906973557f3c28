"""Which code computed a run: every shard records it, resume recomputes shards of other code,
reduce refuses a mixture, and `verify` recomputes a sample bit for bit against the result."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from steps import layout
from steps.compute import compute_shard
from steps.fingerprint import code_fingerprint
from steps.reduce import ShardError, reduce_run
from steps.shards import read_shard_info
from steps.spec import Spec, parse_spec
from steps.store import Store, open_store
from tests.conftest import S3Server
from workflows.sweep import main

KERNEL = """
import numpy as np

def bowl(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    return {"f": (x - 0.3) ** 2 + (y + 0.2) ** 2 * SCALE, "label": np.where(x > 0, "east", "west")}

SCALE = 1.0
"""


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A user's own module, `userbowl`, importable in this process, edited by the tests."""
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "userbowl.py").write_text(KERNEL)
    monkeypatch.syspath_prepend(str(folder))
    yield folder / "userbowl.py"
    sys.modules.pop("userbowl", None)


def edit(module: Path, scale: str) -> None:
    module.write_text(KERNEL.replace("SCALE = 1.0", f"SCALE = {scale}"))
    sys.modules.pop("userbowl", None)  # a new process would import the new source


SPEC = {
    "name": "bowl",
    "function": "userbowl:bowl",
    "shards": 4,
    "chunk_rows": 50,
    "space": {"x": {"linspace": [-1.0, 1.0, 20]}, "y": {"linspace": [-1.0, 1.0, 30]}},
    "objective": {"column": "f", "goal": "min", "top_k": 5},
}


def spec(**changes: object) -> Spec:
    return parse_spec(SPEC | changes)


def computed(store: Store, run: Spec, indexes: range | list[int]) -> list[bool]:
    return [compute_shard(run, store, "r", i).skipped for i in indexes]


def test_every_shard_records_the_fingerprint_of_the_code_that_computed_it(
    user_module: Path, tmp_path: Path
) -> None:
    store, run = open_store(str(tmp_path / "runs")), spec()
    computed(store, run, range(4))
    info = read_shard_info(store, layout.shard_key("bowl", "r", 2, 4))
    assert info.code is not None
    assert info.code.digest == code_fingerprint(run).digest
    parts = info.code.parts
    assert parts["function"] == "userbowl:bowl" and parts["package"] == "-"
    assert parts["module"].startswith("sha256:")
    assert {"ttg", "numpy", "pyarrow", "python"} <= set(parts)
    summary = reduce_run(store, run, "r").summary
    assert summary["code"]["fingerprint"] == info.code.digest
    record = json.loads((tmp_path / "runs/bowl/r/spec.json").read_text())
    assert record["code_fingerprint"] == info.code.digest


def test_resume_after_a_code_change_recomputes_only_the_shards_of_other_code(
    user_module: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, run = open_store(str(tmp_path / "runs")), spec()
    computed(store, run, [0, 1])  # then the run dies
    edit(user_module, "2.0")
    assert computed(store, run, range(4)) == [False, False, False, False]
    assert "was computed by other code (module changed)" in capsys.readouterr().err
    assert computed(store, run, range(4)) == [True, True, True, True]
    result = reduce_run(store, run, "r")
    fresh = open_store(str(tmp_path / "fresh"))
    computed(fresh, run, range(4))
    assert (
        result.summary["objective"]["best"]
        == reduce_run(fresh, run, "r").summary["objective"]["best"]
    )


def test_bumping_code_version_recomputes_every_shard_on_resume(
    user_module: Path, tmp_path: Path
) -> None:
    store = open_store(str(tmp_path / "runs"))
    computed(store, spec(), range(4))
    bumped = spec(code_version="data-2026-12")
    assert bumped.hash == spec().hash  # the same run, resumed
    assert computed(store, bumped, range(4)) == [False] * 4


def test_reduce_refuses_shards_of_mixed_code_naming_them(user_module: Path, tmp_path: Path) -> None:
    store, run = open_store(str(tmp_path / "runs")), spec()
    computed(store, run, [0, 1, 2])
    edit(user_module, "3.0")
    other = tmp_path / "other"
    computed(open_store(str(other)), run, [3])
    shutil.copy(
        other / layout.shard_key("bowl", "r", 3, 4),
        tmp_path / "runs" / layout.shard_key("bowl", "r", 3, 4),
    )
    with pytest.raises(ShardError) as refused:
        reduce_run(store, run, "r")
    message = str(refused.value)
    assert message.startswith("shards were computed by different code: shard 0 and 2 more by ")
    assert "shard 3 by " in message and "(module changed)" in message
    assert not (tmp_path / "runs/bowl/r/result.parquet").exists()


# --- verify -----------------------------------------------------------------------------------


def finished(store_uri: str, root: Path) -> Path:
    store, run = open_store(store_uri), spec()
    computed(store, run, range(4))
    reduce_run(store, run, "r")
    return root


def verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(["verify", *args])
    except SystemExit as exit_:  # argparse's own errors
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_verify_recomputes_a_sample_and_finds_every_row_equal(
    user_module: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    finished(str(tmp_path / "runs"), tmp_path)
    code, out, err = verify(capsys, str(tmp_path / "runs/bowl/r"), "--sample", "100")
    assert code == 0, err
    assert "verified: 100 of 600 rows recomputed and equal bit for bit" in out
    code, out, _ = verify(capsys, str(tmp_path / "runs/bowl/r"), "--sample", "5000")
    assert code == 0 and "600 of 600 rows" in out


def rewrite_result(path: Path, change: object) -> None:
    table = pq.read_table(path)
    pq.write_table(change(table), path)  # type: ignore[operator]


def test_verify_catches_a_tampered_value_naming_the_column_and_row(
    user_module: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    finished(str(tmp_path / "runs"), tmp_path)
    result = tmp_path / "runs/bowl/r/result.parquet"

    def nudge(table: pa.Table) -> pa.Table:
        f = table["f"].to_pylist()
        f[123] = f[123] + 1e-12  # one value, in its last bits
        return table.set_column(table.schema.get_field_index("f"), "f", pa.array(f))

    rewrite_result(result, nudge)
    code, _, err = verify(capsys, str(tmp_path / "runs/bowl/r"), "--sample", "600")
    assert code == 1
    (line,) = [line for line in err.splitlines() if "column f" in line]
    assert "column f: 1 of 600 sampled rows differ (param_id 123)" in line


def test_verify_catches_a_summary_that_disagrees_with_the_result(
    user_module: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    finished(str(tmp_path / "runs"), tmp_path)
    path = tmp_path / "runs/bowl/r/summary.json"
    summary = json.loads(path.read_text())
    summary["columns"]["f"]["max"] = 99.0
    summary["objective"]["best"] = summary["objective"]["best"][1:]  # the true best dropped
    path.write_text(json.dumps(summary))
    code, _, err = verify(capsys, str(tmp_path / "runs/bowl/r"))
    assert code == 1
    assert "summary: column f max 99.0, the result" in err
    assert "better than the best row's" in err


def test_verify_catches_rows_out_of_place(
    user_module: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    finished(str(tmp_path / "runs"), tmp_path)

    def rotate(table: pa.Table) -> pa.Table:  # every row one place further on
        return table.take(pa.array([*range(1, table.num_rows), 0]))

    rewrite_result(tmp_path / "runs/bowl/r/result.parquet", rotate)
    code, _, err = verify(capsys, str(tmp_path / "runs/bowl/r"))
    assert code == 1 and "not the sweep's rows in param_id order" in err


def test_verify_refuses_to_compare_against_other_code_unless_forced(
    user_module: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    finished(str(tmp_path / "runs"), tmp_path)
    edit(user_module, "2.0")
    code, _, err = verify(capsys, str(tmp_path / "runs/bowl/r"))
    assert code == 2
    assert err.strip() == (
        "error: the current code's fingerprint differs from the run's (module changed): its "
        "rows would differ for that reason alone; --force compares anyway"
    )
    code, _, err = verify(capsys, str(tmp_path / "runs/bowl/r"), "--force")
    assert code == 1 and "column f:" in err


def test_verify_works_on_an_s3_store(
    user_module: Path, tmp_path: Path, s3_env: S3Server, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = f"s3://{s3_env.new_bucket()}/runs"
    finished(uri, tmp_path)
    code, out, err = verify(capsys, f"{uri}/bowl/r", "--sample", "50")
    assert code == 0, err
    assert "verified: 50 of 600 rows" in out


def test_results_of_two_runs_of_different_code_tell_them_apart(
    user_module: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    finished(str(tmp_path / "one"), tmp_path)
    edit(user_module, "2.0")
    finished(str(tmp_path / "two"), tmp_path)
    shown = []
    for store in ("one", "two"):
        assert main(["results", str(tmp_path / store / "bowl/r")]) == 0
        out = capsys.readouterr().out
        (line,) = [
            line
            for line in out.splitlines()
            if "code" in line and "sha256" not in line and "module" in line
        ]
        shown.append(line)
    assert shown[0] != shown[1]


@pytest.mark.parametrize("where", ["folder", "s3"])
def test_run_resume_after_a_code_change_says_what_it_keeps_and_what_it_recomputes(
    where: str, user_module: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from tests.cli import sweep

    spec_file = tmp_path / "bowl.json"
    spec_file.write_text(json.dumps(SPEC))
    if where == "s3":
        server: S3Server = request.getfixturevalue("s3_env")
        uri = f"s3://{server.new_bucket()}/runs"
    else:
        uri = str(tmp_path / "runs")
    store = open_store(uri)
    computed(store, spec(), [0, 1, 2])  # a run killed after three shards
    edit(user_module, "2.0")
    env = {"PYTHONPATH": str(user_module.parent)}
    args = ["--store", uri, "--resume", "--run-id", "r"]
    resumed = sweep("run", str(spec_file), *args, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert (
        "resuming r: keeping 0 of 4 shards, computing 4 "
        "(3 computed by other code: module changed, 1 missing)"
    ) in resumed.stdout
    again = sweep("run", str(spec_file), *args, env=env)
    assert "r is already complete: nothing computed, nothing rewritten" in again.stdout
    verified = sweep("verify", f"{store.uri}/bowl/r", env=env)
    assert verified.returncode == 0, verified.stderr


@pytest.mark.parametrize("goal", ["min", "max"])
def test_verify_of_a_run_with_nan_and_null_rows_finds_them_equal(
    goal: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """NaN equals NaN bit for bit, null equals null, and summary.json's "nan" spelling of a
    best row's non-finite value is that value."""
    document = {
        "name": "holes",
        "function": "tests.kernels:part_nan",
        "shards": 3,
        "space": {"x": {"range": [0, 10]}, "y": {"range": [0, 5]}, "z": {"values": [0, 1]}},
        "objective": {"column": "f", "goal": goal, "top_k": 5},
    }
    run, store = parse_spec(document), open_store(str(tmp_path))
    for index in range(3):
        compute_shard(run, store, "r", index)
    reduce_run(store, run, "r")
    code, out, err = verify(capsys, str(tmp_path / "holes/r"))
    assert code == 0, err
    assert "verified: 100 of 100 rows" in out


# --- verify: honest runs of every kind pass, and what it must catch ---------------------------


MIXED_KEEP = {
    "name": "mixed",
    "function": "tests.kernels:mixed",
    "shards": 3,
    "chunk_rows": 50,
    "seed": 3,
    "samples": 40,
    "space": {
        "g": {"range": [1, 8]},
        "s": {"values": ["a", "b"]},
        "u": {"uniform": [0.0, 2.0]},
        "w": {"normal": [0.0, 1.0]},
        "c": {"choice": [1, 2, 3]},
    },
    "objective": {"column": "score", "goal": "max", "top_k": 7},
}  # outputs of four types (float, int, string, bool); 560 rows


def run_of(document: dict[str, object], root: Path) -> Path:
    spec, store = parse_spec(document), open_store(str(root))
    for index in range(spec.shards):
        compute_shard(spec, store, "r", index)
    reduce_run(store, spec, "r")
    return root / spec.name / "r"


KEEPS = {
    "all": "all",
    "where": {"where": "score > 2.5"},
    "top_k": {"top_k": 20},
}


@pytest.mark.parametrize("keep", KEEPS.values(), ids=KEEPS.keys())
def test_verify_passes_honest_runs_of_every_output_type_and_keep_rule(
    keep: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = run_of(MIXED_KEEP | {"keep": keep}, tmp_path)
    for sample in ("7", "5000"):
        code, _, err = verify(capsys, str(folder), "--sample", sample)
        assert code == 0, err


def test_verify_passes_a_function_with_missing_values_whatever_it_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = run_of(
        {
            "name": "gaps",
            "function": "tests.kernels:none_below_five",
            "vectorized": False,
            "chunk_rows": 5,
            "space": {"x": {"range": [0, 20]}},
        },
        tmp_path,
    )
    for seed in range(6):  # samples that start inside the rows without a value
        code, _, err = verify(capsys, str(folder), "--sample", "4", "--seed", str(seed))
        assert code == 0, err


def test_verify_orders_int64_objectives_beyond_two_to_the_53_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = run_of(
        {
            "name": "big",
            "function": "tests.kernels:nanoseconds",
            "shards": 2,
            "space": {"t": {"range": [2**62 - 40, 2**62 - 1]}},
            "objective": {"column": "stamp", "goal": "min", "top_k": 5},
        },
        tmp_path,
    )
    code, _, err = verify(capsys, str(folder))
    assert code == 0, err


def test_verify_flags_a_function_whose_values_depend_on_its_chunk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """x - mean(x) is not a function of param_id alone: even a sample of every row shows it."""
    folder = run_of(
        {
            "name": "chunky",
            "function": "tests.kernels:centred",
            "chunk_rows": 6,
            "space": {"x": {"range": [0, 12]}},
        },
        tmp_path,
    )
    code, _, err = verify(capsys, str(folder))
    assert code == 1 and "column f:" in err


def test_verify_after_a_code_version_bump_and_resume_compares_with_the_bumped_version(
    user_module: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_store(str(tmp_path / "runs"))
    computed(store, spec(code_version="1"), [0, 1, 2])
    bumped = spec(code_version="2")
    computed(store, bumped, range(4))
    reduce_run(store, bumped, "r")
    code, _, err = verify(capsys, str(tmp_path / "runs/bowl/r"))
    assert code == 0, err


def test_verify_says_in_one_line_when_the_function_fails_now(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = run_of(
        {
            "name": "later",
            "function": "tests.kernels:fails_when_told",
            "space": {"x": {"range": [0, 9]}},
        },
        tmp_path,
    )
    monkeypatch.setenv("TTG_TEST_FAIL_NOW", "1")
    code, _, err = verify(capsys, str(folder))
    assert code == 1
    assert (
        "recompute: tests.kernels:fails_when_told fails now" in err
        and "RuntimeError: broken now" in err
    )


def test_verify_refuses_a_run_whose_module_is_gone_and_a_negative_seed(
    user_module: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    finished(str(tmp_path / "runs"), tmp_path)
    code, _, err = verify(capsys, str(tmp_path / "runs/bowl/r"), "--seed", "-1")
    assert code == 2 and "expected an integer >= 0" in err
    user_module.unlink()
    sys.modules.pop("userbowl", None)
    code, _, err = verify(capsys, str(tmp_path / "runs/bowl/r"))
    assert code == 2 and "cannot import userbowl" in err and "Traceback" not in err


def tamper(folder: Path, change: object, **summary: object) -> None:
    """Rewrite the result (and, like a careful forger, the summary's counts to match)."""
    path = folder / "result.parquet"
    table = change(pq.read_table(path))  # type: ignore[operator]
    pq.write_table(table, path)
    document = json.loads((folder / "summary.json").read_text())
    document.update(summary or {"kept_rows": table.num_rows})
    (folder / "summary.json").write_text(json.dumps(document))


def drop_last(table: pa.Table) -> pa.Table:
    return table.slice(0, table.num_rows - 1)


def reverse(table: pa.Table) -> pa.Table:
    return table.take(pa.array(list(range(table.num_rows))[::-1]))


def duplicate_first(table: pa.Table) -> pa.Table:
    return pa.concat_tables([table.slice(0, 1), table])


def without_label(table: pa.Table) -> pa.Table:
    return table.drop_columns(["label"])


TAMPERS = {
    "where, rows reversed": ("where", reverse, "strictly ascending"),
    "where, a row dropped": ("where", drop_last, "should be kept"),
    "where, a row doubled": ("where", duplicate_first, "strictly ascending"),
    "top_k, a row dropped": ("top_k", drop_last, "should be kept"),
    "all, the last row dropped": ("all", drop_last, "kept_rows"),
    "all, a column deleted": ("all", without_label, "the result lacks it"),
}


@pytest.mark.parametrize("keep,change,message", TAMPERS.values(), ids=TAMPERS.keys())
def test_verify_catches_a_tampered_result_whose_counts_were_forged_to_match(
    keep: str, change: object, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = run_of(MIXED_KEEP | {"keep": KEEPS[keep]}, tmp_path)
    tamper(folder, change)
    code, _, err = verify(capsys, str(folder), "--sample", "5000")
    assert code == 1, err
    assert message in err, err


def test_verify_catches_a_nan_ranked_best_and_a_truncated_best_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document: dict[str, object] = {
        "name": "holes",
        "function": "tests.kernels:part_nan",
        "space": {"x": {"range": [0, 10]}, "y": {"range": [0, 5]}, "z": {"values": [0, 1]}},
        "objective": {"column": "f", "goal": "max", "top_k": 5},
    }
    folder = run_of(document, tmp_path)
    path = folder / "summary.json"
    honest = json.loads(path.read_text())
    nan_row = pq.read_table(folder / "result.parquet").slice(40, 1).to_pylist()[0]  # x == 4: NaN
    forged = json.loads(json.dumps(honest))
    forged["objective"]["best"] = [{k: "nan" if k == "f" else v for k, v in nan_row.items()}]
    forged["objective"]["best"] += honest["objective"]["best"][:4]
    path.write_text(json.dumps(forged))
    code, _, err = verify(capsys, str(folder))
    assert code == 1 and "a best row has no number in f" in err
    truncated = json.loads(json.dumps(honest))
    truncated["objective"]["best"] = truncated["objective"]["best"][:1]
    path.write_text(json.dumps(truncated))
    code, _, err = verify(capsys, str(folder))
    assert code == 1 and "1 best rows, 5 rows with a number were ranked" in err


def test_a_namespace_package_reached_twice_on_sys_path_has_one_fingerprint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pods' working folder and $PYTHONPATH may both name the same folder."""
    (tmp_path / "nsp").mkdir()
    (tmp_path / "nsp" / "fn.py").write_text("def f(x):\n    return {'y': x}\n")
    run = parse_spec({"name": "ns", "function": "nsp.fn:f", "space": {"x": {"range": [0, 3]}}})

    def fingerprint(*paths: str) -> str:
        for name in ("nsp", "nsp.fn"):
            sys.modules.pop(name, None)
        with monkeypatch.context() as patch:
            for path in paths:
                patch.syspath_prepend(path)
            return code_fingerprint(run).digest

    once = fingerprint(str(tmp_path))
    assert fingerprint(str(tmp_path), str(tmp_path / "nsp" / "..")) == once
    (tmp_path / "nsp" / "fn.py").write_text("def f(x):\n    return {'y': x + 1}\n")
    assert fingerprint(str(tmp_path)) != once
