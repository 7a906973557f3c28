"""Retries that know a bug from a hiccup: the steps' exit codes (steps/exit_codes.py), the
compute template's `retryStrategy.expression` (workflows/build.py) and the local executor
evaluating it (workflows/retries.py), end to end through `run` and through `exec` of the
rendered Workflow, on a folder and on S3. Real subprocesses throughout; the test kernels
(tests/retry_kernels.py) record each attempt's pid, so attempts are counted whether a run
failed or succeeded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from steps import exit_codes
from steps.spec import parse_spec
from tests.cli import sweep
from tests.conftest import ROOT, S3Server
from workflows.build import retry_expression
from workflows.local import execute
from workflows.manifest import ManifestError, load_manifest
from workflows.retries import Attempt, ExpressionError, parse_expression, retry_refusal

SHARDS = 2
LIMIT = 3  # BuildOptions.compute_retries: attempts of a retried failure are 1 + LIMIT


def spec_text(function: str, extra: str = "") -> str:
    return (
        f'name = "retries"\nfunction = "tests.retry_kernels:{function}"\nshards = {SHARDS}\n'
        f"{extra}\n[space]\nx = {{ range = [0, 10] }}\n"
    )


@pytest.fixture(params=["folder", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "folder":
        return str(tmp_path / "runs")
    s3: S3Server = request.getfixturevalue("s3_env")  # AWS_* set for every subprocess
    return f"s3://{s3.new_bucket()}/runs"


def sweep_run(how: str, spec: str, store: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`run` the spec, or `exec` the Workflow `render` makes of it: run id `r` either way."""
    path = tmp_path / "retries.toml"
    path.write_text(spec)
    # TMPDIR: the logs a failed run keeps stay in the test's own folder
    env = {"TTG_TEST_ATTEMPTS": str(tmp_path / "attempts"), "TMPDIR": str(tmp_path)}
    if how == "run":
        return sweep("run", str(path), "--store", store, "--run-id", "r", env=env)
    rendered = sweep("render", str(path), "--store", store, "--run-id", "r")
    assert rendered.returncode == 0, rendered.stderr
    manifest = tmp_path / "workflow.yaml"
    manifest.write_text(rendered.stdout)
    return sweep("exec", str(manifest), env=env)


def attempts(tmp_path: Path) -> int:
    """Processes that called the function: one per attempt (a retry is a new process)."""
    path = tmp_path / "attempts"
    return len(set(path.read_text().split())) if path.exists() else 0


def attempt_logs(done: subprocess.CompletedProcess[str], shard: int) -> list[Path]:
    """The executor's log of each attempt of a failed run's compute shard: .log, .retry-N.log."""
    log_dir = Path(done.stderr.rsplit("task logs in ", 1)[1].split()[0])
    return sorted(log_dir.glob(f"r.compute({shard}:{shard})*.log"))


# --- end to end: run and exec, folder and S3 --------------------------------------------------


@pytest.mark.parametrize("how", ["run", "exec"])
def test_a_raising_function_is_attempted_once(how: str, store: str, tmp_path: Path) -> None:
    done = sweep_run(how, spec_text("raises"), store, tmp_path)
    assert done.returncode == 1
    assert "raised ZeroDivisionError: a bug in the user's function" in done.stderr
    assert attempts(tmp_path) == SHARDS, "one attempt per shard, not 1 + retryStrategy.limit"
    for shard in range(SHARDS):
        (log,) = attempt_logs(done, shard)
        text = log.read_text()
        assert f"failed: exit code {exit_codes.USER_CODE}" in text
        assert "not retried: retryStrategy.expression is false (lastRetry.exitCode '3'" in text


@pytest.mark.parametrize("how", ["run", "exec"])
def test_retry_user_errors_retries_a_raising_function(how: str, store: str, tmp_path: Path) -> None:
    done = sweep_run(how, spec_text("raises", "retry_user_errors = true"), store, tmp_path)
    assert done.returncode == 1
    assert attempts(tmp_path) == SHARDS * (1 + LIMIT)
    logs = attempt_logs(done, 0)
    assert [p.name for p in logs] == ["r.compute(0:0).log"] + [
        f"r.compute(0:0).retry-{n}.log" for n in range(1, LIMIT + 1)
    ]


@pytest.mark.parametrize("how", ["run", "exec"])
def test_an_attempt_killed_like_an_oom_killed_pod_is_retried_and_the_run_completes(
    how: str, store: str, tmp_path: Path
) -> None:
    done = sweep_run(how, spec_text("killed_once"), store, tmp_path)
    assert done.returncode == 0, done.stderr
    assert attempts(tmp_path) == SHARDS * 2, "each shard: killed once, then computed"
    assert sorted(p.name for p in tmp_path.glob("killed-*")) == ["killed-0", "killed-5"]
    if store.startswith("s3://"):
        from steps.store import open_store

        assert open_store(store).exists("retries/r/_SUCCESS")
    else:
        assert (Path(store) / "retries/r/_SUCCESS").is_file()


def test_a_store_error_is_retried(store: str, tmp_path: Path) -> None:
    """The store fails every attempt (a folder under a file; an S3 bucket that does not
    exist): exit code 4, retried up to the limit, then the run fails."""
    if store.startswith("s3://"):
        store = store.replace("s3://", "s3://no-such-", 1)
    else:
        (tmp_path / "a-file").write_text("")
        store = str(tmp_path / "a-file" / "runs")
    done = sweep_run("exec", spec_text("computes"), store, tmp_path)
    assert done.returncode == 1
    for shard in range(SHARDS):
        logs = attempt_logs(done, shard)
        assert len(logs) == 1 + LIMIT
        assert all(f"failed: exit code {exit_codes.STORE}" in p.read_text() for p in logs)


# --- the steps' exit codes --------------------------------------------------------------------


def step(
    module: str, spec: str, store: Path | str, *extra: str, **env: str
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", module, "--spec", spec, "--store", str(store)]
    return subprocess.run(
        [*command, "--run-id", "r", *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TTG_TEST_ATTEMPTS": os.devnull, **env},
    )


def a_spec(function: str, seed: int = 0) -> str:
    document = {"name": "codes", "function": function, "shards": 1, "seed": seed}
    return parse_spec(document | {"space": {"x": {"range": [0, 5, 1]}}}).to_json()


def test_each_kind_of_failure_has_its_exit_code(tmp_path: Path) -> None:
    computes, file = a_spec("tests.retry_kernels:computes"), tmp_path / "a-file"
    file.write_text("")
    cases = {
        "ok": (computes, tmp_path / "ok", "0"),
        "raises": (a_spec("tests.retry_kernels:raises"), tmp_path / "raises", "0"),
        "no module": (a_spec("tests.no_such_module:f"), tmp_path / "no-module", "0"),
        "bad shard": (computes, tmp_path / "bad-shard", "9"),
        "store fails": (computes, file / "runs", "0"),
        "run of another spec": (a_spec("tests.retry_kernels:computes", 1), tmp_path / "ok", "0"),
    }
    done = {
        name: step("steps.compute", s, store, "--shard", i) for name, (s, store, i) in cases.items()
    }
    assert {name: d.returncode for name, d in done.items()} == {
        "ok": exit_codes.OK,
        "raises": exit_codes.USER_CODE,
        "no module": exit_codes.USER_CODE,
        "bad shard": exit_codes.BAD_INPUT,
        "store fails": exit_codes.STORE,
        "run of another spec": exit_codes.BAD_INPUT,
    }, {name: d.stderr[-300:] for name, d in done.items()}
    assert step("steps.reduce", computes, tmp_path / "none").returncode == exit_codes.FAILED
    nobody = {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "TTG_S3_ATTEMPTS": "1"}  # refused
    outage = step("steps.reduce", computes, "s3://ttg/runs", **nobody)
    assert outage.returncode == exit_codes.STORE, outage.stderr


# --- the rendered expression ------------------------------------------------------------------

CODES = ["-1", "0", "1", "2", "3", "4", "64", "137", "143"]


@pytest.mark.parametrize("opt_in", [False, True])
def test_the_rendered_expression_retries_all_but_deterministic_failures(opt_in: bool) -> None:
    expression = parse_expression(retry_expression(opt_in))
    never = {"2"} | (set() if opt_in else {"3"})
    for code in CODES:
        assert expression.evaluate(Attempt("Failed", code)) is (code not in never), code
        assert expression.evaluate(Attempt("Error", code)), "an Error is always retried"


# --- the evaluator: what expr says, and refusals --------------------------------------------

# Expected values from expr-lang v1.17.8 with Argo v4.1.2's environment (GetFuncMap, asInt =
# builtin.Int, variables expanded from "lastRetry.exitCode" and "lastRetry.status").
AS_EXPR_SAYS = [
    ("asInt(lastRetry.exitCode) > 1", "Failed", "2", True),
    ("asInt(lastRetry.exitCode) > 1", "Error", "-1", False),
    ('lastRetry.status != "Error"', "Error", "1", False),
    ("lastRetry.status != 'Error'", "Failed", "1", True),
    ('!(lastRetry.exitCode in ["2","3"])', "Failed", "3", False),
    ('lastRetry.exitCode in ["1", "137",]', "Failed", "137", True),
    ("asInt(lastRetry.exitCode) not in [2, 3]", "Failed", "4", True),
    ("asInt(lastRetry.exitCode) in [-1, 137]", "Error", "-1", True),
    (
        'lastRetry.status == "Error" || lastRetry.exitCode == "1" && lastRetry.exitCode == "2"',
        "Failed",
        "1",
        False,
    ),
    (
        '(lastRetry.status == "Error" || lastRetry.exitCode == "1") && lastRetry.exitCode != "2"',
        "Failed",
        "1",
        True,
    ),
    ('asInt("-1") == -1 && asInt("+5") == 5 && asInt("007") == 7', "Failed", "0", True),
    ("!!(lastRetry.exitCode == '0') || false", "Failed", "0", True),
    ("lastRetry.exitCode in []", "Failed", "0", False),
]


@pytest.mark.parametrize(("text", "status", "code", "expected"), AS_EXPR_SAYS)
def test_expressions_evaluate_as_argo_evaluates_them(
    text: str, status: str, code: str, expected: bool
) -> None:
    assert parse_expression(text).evaluate(Attempt(status, code)) is expected


REFUSED = {
    "lastRetry.exitCode == 3": "text == int: always false",
    "lastRetry.exitCode in [2, 3]": "text in a list of int: always false",
    '!lastRetry.exitCode in ["2"]': "! applies to text here",
    'lastRetry.message matches "x"': "'lastRetry.message' is not supported by the local executor",
    "asInt(lastRetry.duration) < 120": "'lastRetry.duration' is not supported",
    "retries < 2": "'retries' is not supported",
    "asFloat(lastRetry.exitCode) > 1": "'asFloat' is not supported",
    'lastRetry.status == "Error" or true': "unexpected 'or'",
    "asInt(lastRetry.status) > 0": "a status is never a number",
    "asInt('x') > 0": "not an integer",
    "lastRetry.exitCode": "is text, not true or false",
    'lastRetry.exitCode == "1" == true': "put a chain of comparisons in ( )",
    "{{inputs.parameters.retry}} == true": "{{...}} substitutions",
    "(true": "unexpected the end (expected ')')",
    'lastRetry.exitCode + "1" == "11"': '\'+ "1" == "11"\' is not supported',
    "(" * 40 + "true" + ")" * 40: "nested more than 32 levels",
    "true || " * 600 + "true": "longer than 4096 characters",
}

REFUSING = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: refuse-}
spec:
  entrypoint: main
  templates:
  - name: main
    dag: {tasks: [{name: first, template: touch}]}
  - name: touch
    retryStrategy: {limit: 2}
    container: {command: [touch, MARKER]}
"""


@pytest.mark.parametrize("text", list(REFUSED), ids=range(len(REFUSED)))
def test_an_unsupported_expression_is_refused_in_one_line_before_any_task_starts(
    text: str, tmp_path: Path
) -> None:
    manifest = yaml.safe_load(REFUSING.replace("MARKER", str(tmp_path / "ran")))
    manifest["spec"]["templates"][1]["retryStrategy"]["expression"] = text
    with pytest.raises(ManifestError) as caught:
        execute(manifest, log_dir=tmp_path / "logs")
    message = str(caught.value)
    assert message.startswith("spec.templates[1].retryStrategy.expression: "), message
    assert REFUSED[text] in message and "\n" not in message and len(message) < 400, message
    assert not (tmp_path / "ran").exists()


def test_policy_and_expression_must_both_allow_a_retry() -> None:
    codes = parse_expression('lastRetry.exitCode != "3"')
    failed, error, user = Attempt("Failed", "1"), Attempt("Error", "-1"), Attempt("Failed", "3")
    assert retry_refusal(None, None, failed) == ""  # OnFailure, Argo's default
    assert "OnFailure does not retry an attempt with status Error" in retry_refusal(
        None, None, error
    )
    assert retry_refusal(None, codes, error) == ""  # an expression makes the default Always
    assert "expression is false" in retry_refusal(None, codes, user)
    assert "OnError does not retry" in retry_refusal("OnError", codes, failed)
    assert retry_refusal("OnError", codes, error) == ""
    assert retry_refusal("OnTransientError", None, failed) and retry_refusal(
        "OnTransientError", None, error
    )
    with pytest.raises(ExpressionError):
        parse_expression("")


EXIT_CODE_RETRIES = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: codes-}
spec:
  entrypoint: main
  arguments: {parameters: [{name: code}, {name: log}]}
  templates:
  - name: main
    dag: {tasks: [{name: step, template: step}]}
  - name: step
    retryStrategy:
      limit: 4
      expression: asInt(lastRetry.exitCode) > 1
    container:
      command: [sh, -c, 'echo x >> "$1"; exit "$0"', "{{workflow.parameters.code}}", "{{workflow.parameters.log}}"]
"""


@pytest.mark.parametrize(("code", "expected"), [(1, 1), (2, 5), (3, 5)])
def test_exec_honours_an_expression_on_exit_codes(code: int, expected: int, tmp_path: Path) -> None:
    """Argo's documented example: retry only when the exit code is greater than 1."""
    log = tmp_path / "attempts"
    result = execute(
        load_manifest(EXIT_CODE_RETRIES),
        parameters={"code": str(code), "log": str(log)},
        log_dir=tmp_path / "logs",
    )
    assert not result.succeeded
    assert len(log.read_text().split()) == expected


STATUS_RETRIES = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: status-}
spec:
  entrypoint: main
  arguments: {parameters: [{name: script}, {name: log}]}
  templates:
  - name: main
    dag: {tasks: [{name: step, template: step}]}
  - name: step
    retryStrategy: {limit: 2, STRATEGY}
    outputs: {parameters: [{name: out, valueFrom: {path: /nonexistent/out}}]}
    container:
      command: [sh, -c, 'echo x >> "$0"; {{workflow.parameters.script}}', "{{workflow.parameters.log}}"]
"""


@pytest.mark.parametrize(
    ("script", "strategy", "expected"),
    [
        ("kill -9 $$", 'expression: lastRetry.exitCode == "137"', 3),  # as Argo's emissary says
        ("kill -9 $$", "retryPolicy: OnError", 1),  # a killed process is Failed, not Error
        ("exit 0", 'expression: lastRetry.status == "Error" && lastRetry.exitCode == "0"', 3),
        ("exit 0", "retryPolicy: OnFailure", 1),  # an unreadable output: Error, as Argo's wait
        ("exit 0", "retryPolicy: OnError", 3),
    ],
)
def test_a_failed_attempt_is_what_argo_would_record(
    script: str, strategy: str, expected: int, tmp_path: Path
) -> None:
    log = tmp_path / "attempts"
    result = execute(
        load_manifest(STATUS_RETRIES.replace("STRATEGY", strategy)),
        parameters={"script": script, "log": str(log)},
        log_dir=tmp_path / "logs",
    )
    assert not result.succeeded
    assert len(log.read_text().split()) == expected
