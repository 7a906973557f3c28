"""The local executor under hostile or huge input: everything it loads, expands, runs and
writes is bounded. Real subprocesses throughout; every test is bounded in time.

- Input: alias bombs, self-referencing aliases, deep nesting, huge, binary or truncated
  files, long values in messages.
- Loops: a loop of more items than `MAX_LOOP_ITEMS` is refused before any task starts, or
  fails its task at expansion, never built.
- Time: template ``activeDeadlineSeconds`` and ``timeout``, ``spec.activeDeadlineSeconds``,
  ``--timeout``.
- Depth: long dependency chains and deep template nesting.
- emptyDir: each attempt gets a private folder for an emptyDir mount, removed afterwards.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli import SWEEP, sweep
from tests.test_exec import BASE, Recorder, _alive, run
from tests.test_warm import PROBE, workdir
from workflows.local import RUN_FOLDER_LOCK, RUN_FOLDER_PREFIX, check_loops, execute, global_scope
from workflows.manifest import (
    MAX_LOOP_ITEMS,
    MAX_MANIFEST_BYTES,
    MAX_TEMPLATE_DEPTH,
    ManifestError,
    load_manifest,
    parse_workflow,
    substitute,
)

ROOT = Path(__file__).parents[1]


def refusal(manifest: dict[str, Any], **kwargs: Any) -> str:
    """The one-line ManifestError `execute` refuses `manifest` with."""
    with pytest.raises(ManifestError) as caught:
        execute(manifest, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


def exec_cli(*args: str, stdin: bytes | None = None, timeout: float = 60) -> tuple[int, str]:
    """`sweep.py exec ARGS` as a user runs it; its exit code and stderr."""
    done = subprocess.run(
        [sys.executable, str(SWEEP), "exec", *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=timeout,
        cwd=ROOT,
    )
    return done.returncode, done.stderr.decode(errors="replace")


def assert_one_line_error(code: int, stderr: str, expected: str) -> None:
    assert code == 2, stderr
    assert "Traceback" not in stderr
    assert stderr.count("\n") == 1 and stderr.startswith("error: "), stderr
    assert expected in stderr


# -- (4) what a manifest may make the executor load ------------------------------------------


def alias_bomb() -> str:
    """A few hundred bytes standing for 9^9 (387 million) strings."""
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for level in range(1, 9):
        name, previous = chr(ord("a") + level), chr(ord("a") + level - 1)
        text += f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
    return text


def test_an_alias_bomb_is_refused_within_a_second_or_two() -> None:
    text = alias_bomb()
    assert len(text) < 500
    began = time.monotonic()
    with pytest.raises(ManifestError, match="more than 1,000,000 values once YAML aliases"):
        load_manifest(text)
    assert time.monotonic() - began < 10


def test_an_alias_bomb_inside_a_workflow_is_refused_before_anything_runs(tmp_path: Path) -> None:
    manifest = load_manifest(BASE)
    bomb = yaml.safe_load(alias_bomb())  # shared lists, as any loader makes them
    manifest["spec"]["templates"][0]["dag"]["tasks"][0]["withItems"] = bomb["i"]
    message = refusal(manifest, parameters={"marker": str(tmp_path / "ran")})
    assert message.startswith("spec.templates[0].dag.tasks[0].withItems")
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("text", ["a: &a [*a]", "a: &a {b: *a}", "spec: &s {templates: [*s]}"])
def test_a_self_referencing_alias_is_refused(text: str) -> None:
    with pytest.raises(ManifestError, match="contains itself"):
        load_manifest(text)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 5000 + "]" * 5000,  # deeper than libyaml (and PyYAML's recursion) takes
        '{"a": ' * 5000 + "1" + "}" * 5000,
        "x: " + "[" * 150 + "]" * 150,  # within the parser's limit, over ours
        '{"x": ' + '{"a": ' * 150 + "1" + "}" * 151,
    ],
    ids=["yaml-5000", "json-5000", "yaml-150", "json-150"],
)
def test_deep_nesting_is_refused_in_one_line(text: str) -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest(text)
    assert "nest" in str(caught.value) and "\n" not in str(caught.value)
    assert len(str(caught.value)) < 200


def test_a_deeply_nested_dict_handed_to_execute_is_refused() -> None:
    manifest = load_manifest(BASE)
    deep: dict[str, Any] = {}
    inner = deep
    for _ in range(3000):
        inner["a"] = {}
        inner = inner["a"]
    manifest["metadata"]["labels"] = deep
    assert "nested more than 100 levels deep" in refusal(manifest)


def test_a_manifest_over_the_size_limit_is_refused_before_parsing() -> None:
    text = BASE + "#" * (MAX_MANIFEST_BYTES + 1) + "\n"
    with pytest.raises(ManifestError, match="larger than 1,572,864 bytes"):
        load_manifest(text)


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d.update(apiVersion="v" * 200_000), "apiVersion: expected"),
        (lambda d: d.update({"k" * 200_000: 1}), ": not supported by the local executor"),
        (lambda d: d["spec"].update(entrypoint="e" * 200_000), "spec.entrypoint: unknown"),
        (
            lambda d: d["spec"]["templates"][1]["container"]["command"].append("{{" * 100_000),
            "spec.templates[1].container.command[4]: unterminated",
        ),
        (
            lambda d: d["spec"]["templates"][1]["container"]["command"].append(
                "{{" + "x" * 100_000 + "}}"
            ),
            "is not supported by the local executor",
        ),
        (lambda d: d["spec"].update(parallelism=-(10**5000)), "spec.parallelism: expected"),
    ],
    ids=["apiVersion", "key", "entrypoint", "unterminated", "variable", "huge-int"],
)
def test_refusals_echo_only_an_excerpt_of_a_long_value(mutate: Any, where: str) -> None:
    manifest = load_manifest(BASE)
    mutate(manifest)
    message = refusal(manifest)
    assert where in message
    assert len(message) < 400


def test_an_integer_too_long_to_convert_is_refused_in_one_line() -> None:
    with pytest.raises(ManifestError, match="an integer of more than 4,300 digits"):
        load_manifest("spec: {parallelism: 1" + "0" * 5000 + "}")


MANIFEST_BYTES = BASE.encode()

BAD_FILES: list[tuple[str, bytes, str]] = [
    ("latin-1", "metadata: {name: caf\xe9}\n".encode("latin-1"), "not UTF-8 text (byte 0xe9"),
    ("binary", bytes(range(256)) * 4, "not UTF-8 text"),
    ("nul bytes", b"apiVersion: v1\x00\x00\x00\n", "not valid YAML or JSON"),
    (
        "truncated mid-document",
        MANIFEST_BYTES[: MANIFEST_BYTES.index(b"{name: first") + 5],
        "not valid YAML or JSON",
    ),
    ("truncated mid-character", "metadata: {name: café".encode()[:-1], "not UTF-8 text"),
    ("nested 5000 deep", b"[" * 5000 + b"]" * 5000, "nesting depth"),
    ("json nested 5000 deep", b'{"a":' * 5000 + b"1" + b"}" * 5000, "nesting depth"),
    ("alias bomb", alias_bomb().encode(), "once YAML aliases are expanded"),
    ("too large", b"#" * (MAX_MANIFEST_BYTES + 10), "larger than 1,572,864 bytes"),
    ("empty", b"", "expected one document, found 0"),
]


@pytest.mark.parametrize("source", ["file", "stdin"])
@pytest.mark.parametrize(
    ("data", "expected"), [f[1:] for f in BAD_FILES], ids=[f[0] for f in BAD_FILES]
)
def test_exec_refuses_a_bad_manifest_in_one_line(
    tmp_path: Path, source: str, data: bytes, expected: str
) -> None:
    if source == "file":
        path = tmp_path / "manifest.yaml"
        path.write_bytes(data)
        code, stderr = exec_cli(str(path))
    else:
        code, stderr = exec_cli("-", stdin=data)
    assert_one_line_error(code, stderr, expected)


def test_exec_refuses_an_endless_file_without_reading_it_whole() -> None:
    code, stderr = exec_cli("/dev/zero", timeout=30)
    assert_one_line_error(code, stderr, "larger than 1,572,864 bytes")


def test_exec_refuses_a_folder_in_one_line(tmp_path: Path) -> None:
    code, stderr = exec_cli(str(tmp_path))
    assert_one_line_error(code, stderr, "cannot read manifest")


# -- (5) loops --------------------------------------------------------------------------------

SEQUENCE = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: seq-}
spec:
  entrypoint: main
  arguments:
    parameters: [{name: dir, value: /nonexistent}, {name: n, value: "3"}]
  templates:
  - name: main
    dag:
      tasks:
      - name: first
        template: touch
        arguments: {parameters: [{name: marker, value: first}]}
      - name: fan
        template: touch
        withSequence: SEQUENCE
        arguments: {parameters: [{name: marker, value: "fan-{{item}}"}]}
  - name: touch
    inputs: {parameters: [{name: marker}]}
    container:
      command: [sh, -c, 'touch "$0/$1"', "{{workflow.parameters.dir}}",
                "{{inputs.parameters.marker}}"]
"""


def sequence(spec: str) -> str:
    return SEQUENCE.replace("SEQUENCE", spec)


@pytest.mark.parametrize(
    ("spec", "overrides", "expected"),
    [
        ('{count: "1000000000"}', {}, "withSequence.count: 1,000,000,000 items, more than"),
        ("{start: 5, end: 100005}", {}, "withSequence.end: 100,001 items"),
        ("{start: 1000000, end: -1000000}", {}, "withSequence.end: 2,000,001 items"),
        ('{count: "{{workflow.parameters.n}}"}', {"n": "1000000000"}, "1,000,000,000 items"),
        ('{count: "1' + "0" * 40 + '"}', {}, "withSequence.count: 10,000,000,000,000"),
        ('{count: "3", format: "%0999999999d"}', {}, "withSequence.format: '%0999999999d' pads"),
    ],
    ids=[
        "literal-count",
        "start-end",
        "counting-down",
        "parameter-override",
        "40-digits",
        "format",
    ],
)
def test_a_huge_sequence_is_refused_before_any_task_starts(
    tmp_path: Path, spec: str, overrides: dict[str, str], expected: str
) -> None:
    began = time.monotonic()
    message = refusal(load_manifest(sequence(spec)), parameters={"dir": str(tmp_path), **overrides})
    assert message.startswith("spec.templates[0].dag.tasks[1].withSequence.")
    assert expected in message
    assert f"{MAX_LOOP_ITEMS:,}" in message or "pads" in message
    assert list(tmp_path.iterdir()) == [], "nothing ran"
    assert time.monotonic() - began < 5


def test_a_literal_huge_sequence_is_refused_by_the_parser_so_lint_sees_it_too() -> None:
    with pytest.raises(ManifestError, match=r"tasks\[1\]\.withSequence\.count: 1,000,000,000"):
        parse_workflow(load_manifest(sequence('{count: "1000000000"}')))


def test_exec_refuses_a_huge_sequence_from_a_p_override_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(sequence('{count: "{{workflow.parameters.n}}"}'))
    code, stderr = exec_cli(str(path), "-p", f"dir={tmp_path}", "-p", "n=1000000000")
    assert_one_line_error(code, stderr, "spec.templates[0].dag.tasks[1].withSequence.count")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wf.yaml"]


def test_a_sequence_at_the_bound_passes_the_check_that_builds_nothing() -> None:
    workflow = parse_workflow(load_manifest(sequence(f'{{count: "{MAX_LOOP_ITEMS}"}}')))
    began = time.monotonic()
    check_loops(workflow, global_scope(workflow, "seq-abcde", {}))
    assert time.monotonic() - began < 0.5


def test_a_literal_with_items_over_the_bound_is_refused() -> None:
    items = "[" + ",".join(["1"] * (MAX_LOOP_ITEMS + 1)) + "]"
    message = refusal(
        load_manifest(sequence("null").replace("withSequence: null", f"withItems: {items}"))
    )
    assert message.startswith("spec.templates[0].dag.tasks[1].withItems: 100,001 items")


FROM_OUTPUTS = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: from-outputs-}
spec:
  entrypoint: main
  arguments: {parameters: [{name: dir, value: /nonexistent}]}
  templates:
  - name: main
    dag:
      tasks:
      - {name: size, template: size}
      - name: fan
        depends: size
        template: touch
        LOOP
        arguments: {parameters: [{name: marker, value: "fan-{{item}}"}]}
  - name: size
    outputs: {parameters: [{name: n, valueFrom: {path: "{{workflow.parameters.dir}}/n"}}]}
    container:
      command: [python, -c, "import sys; open(sys.argv[1], 'w').write(str(eval(sys.argv[2])))",
                "{{workflow.parameters.dir}}/n", VALUE]
  - name: touch
    inputs: {parameters: [{name: marker}]}
    container:
      command: [sh, -c, 'touch "$0/$1"', "{{workflow.parameters.dir}}",
                "{{inputs.parameters.marker}}"]
"""


@pytest.mark.parametrize(
    ("loop", "value", "expected"),
    [
        (
            'withSequence: {count: "{{tasks.size.outputs.parameters.n}}"}',
            '"10 ** 9"',
            "withSequence.count: 1,000,000,000 items, more than the 100,000",
        ),
        (
            'withParam: "{{tasks.size.outputs.parameters.n}}"',
            f'"[0] * {MAX_LOOP_ITEMS + 1}"',
            "withParam: 100,001 items, more than the 100,000",
        ),
    ],
    ids=["withSequence", "withParam"],
)
def test_a_loop_sized_by_a_task_output_fails_its_task_at_expansion(
    tmp_path: Path, loop: str, value: str, expected: str
) -> None:
    text = FROM_OUTPUTS.replace("LOOP", loop).replace("VALUE", value)
    began = time.monotonic()
    result, rec = run(text, tmp_path)
    assert time.monotonic() - began < 20
    name = result.workflow_name
    assert not result.succeeded
    assert result.failed == [f"{name}.fan"]
    assert expected in result.failure_logs[f"{name}.fan"]
    assert "\n" not in result.failure_logs[f"{name}.fan"]
    assert not any(p.name.startswith("fan-") for p in tmp_path.iterdir())
    assert [n.task for n in rec.added] == ["size"], "no loop item was ever made"


# -- (6) time limits --------------------------------------------------------------------------

HANG = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: hang-}
spec:
  entrypoint: main
  arguments: {parameters: [{name: dir, value: /nonexistent}]}
  templates:
  - name: main
    dag:
      tasks:
      - {name: hang, template: hang}
      - {name: after, depends: hang, template: quick}
  - name: hang
    LIMITS
    container:
      command: [sh, -c, 'echo $$ >> "$0/pids"; echo started; sleep 60 & echo $! >> "$0/pids"; wait',
                "{{workflow.parameters.dir}}"]
  - name: quick
    container: {command: [sh, -c, 'touch "$0/after"', "{{workflow.parameters.dir}}"]}
"""


def hang(limits: str) -> str:
    return HANG.replace("LIMITS", limits)


def pids(folder: Path) -> list[int]:
    return [int(line) for line in (folder / "pids").read_text().split()]


def wait_dead(pid_list: list[int], seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while any(_alive(pid) for pid in pid_list) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in pid_list), "a process of the task was left running"


def test_active_deadline_seconds_stops_each_attempt_and_the_attempt_is_retried(
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    result, _ = run(hang("activeDeadlineSeconds: 1\n    retryStrategy: {limit: 1}"), tmp_path)
    elapsed = time.monotonic() - began
    node = f"{result.workflow_name}.hang"
    assert not result.succeeded and result.failed == [node]
    assert 2 <= elapsed < 10, "two attempts of one second each"
    assert len(pids(tmp_path)) == 4, "retried once: a deadline failure is a failed attempt"
    log = result.failure_logs[node]
    assert "exceeded activeDeadlineSeconds 1 (each attempt) of template 'hang'" in log
    assert "SIGTERM" in log
    assert (tmp_path / "logs" / f"{node}.retry-1.log").exists()
    assert not (tmp_path / "after").exists()
    wait_dead(pids(tmp_path))


def test_timeout_bounds_the_node_across_its_retries(tmp_path: Path) -> None:
    limits = 'timeout: "1500ms"\n    retryStrategy: {limit: 10, retryPolicy: Always}'
    began = time.monotonic()
    result, _ = run(hang(limits), tmp_path)
    elapsed = time.monotonic() - began
    node = f"{result.workflow_name}.hang"
    assert not result.succeeded and result.failed == [node]
    assert elapsed < 8
    assert len(pids(tmp_path)) == 2, "the timeout covers every attempt: none is retried"
    assert (
        "exceeded timeout 1500ms (every attempt included) of template 'hang'"
        in (result.failure_logs[node])
    )
    wait_dead(pids(tmp_path))


FLAKY = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: flaky-}
spec:
  entrypoint: main
  arguments: {parameters: [{name: dir, value: /nonexistent}, {name: timeout, value: 1s}]}
  templates:
  - name: main
    dag:
      tasks:
      - name: flaky
        template: flaky
        arguments: {parameters: [{name: timeout, value: "{{workflow.parameters.timeout}}"}]}
  - name: flaky
    inputs: {parameters: [{name: timeout}]}
    timeout: "{{inputs.parameters.timeout}}"
    retryStrategy: {limit: 50}
    container:
      command: [sh, -c, 'echo x >> "$0/attempts"; sleep 0.4; exit 1', "{{workflow.parameters.dir}}"]
"""


def test_a_timeout_from_an_input_parameter_ends_the_retries(tmp_path: Path) -> None:
    """As Argo's dag-task-level-timeout example: ``timeout: "{{inputs.parameters.timeout}}"``."""
    result, _ = run(FLAKY, tmp_path, {"dir": str(tmp_path), "timeout": "1s"})
    attempts = len((tmp_path / "attempts").read_text().split())
    assert not result.succeeded
    assert 2 <= attempts <= 4, attempts
    log = result.failure_logs[f"{result.workflow_name}.flaky"]
    assert "timeout 1s (every attempt included)" in log


def test_a_bad_timeout_from_a_parameter_fails_the_task_in_one_line(tmp_path: Path) -> None:
    result, _ = run(FLAKY, tmp_path, {"dir": str(tmp_path), "timeout": "soon"})
    node = f"{result.workflow_name}.flaky"
    assert result.failed == [node]
    assert result.failure_logs[node] == (
        "timeout: 'soon' is not a duration such as '30s', '5m' or '1h30m'"
    )
    assert not (tmp_path / "attempts").exists()


WORKFLOW_DEADLINE = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: deadline-wf}
spec:
  entrypoint: main
  DEADLINE
  arguments: {parameters: [{name: dir, value: /nonexistent}]}
  templates:
  - name: main
    dag:
      tasks:
      - {name: hang, template: hang}
      - {name: stubborn, template: stubborn}
      - {name: after, depends: "hang && stubborn", template: quick}
  - name: hang
    container:
      command: [sh, -c, 'echo $$ >> "$0/pids"; sleep 60 & echo $! >> "$0/pids"; wait',
                "{{workflow.parameters.dir}}"]
  - name: stubborn
    container:
      command: [sh, -c, 'trap "" TERM; echo $$ >> "$0/pids"; while true; do sleep 0.1; done',
                "{{workflow.parameters.dir}}"]
  - name: quick
    container: {command: [sh, -c, 'touch "$0/after"', "{{workflow.parameters.dir}}"]}
"""


@pytest.mark.parametrize(
    ("deadline", "timeout", "named"),
    [
        ("activeDeadlineSeconds: 1", None, "spec.activeDeadlineSeconds 1"),
        ("", 1.0, "--timeout 1s"),
        ("activeDeadlineSeconds: 100", 1.0, "--timeout 1s"),
    ],
    ids=["spec", "timeout-argument", "the-earlier-one"],
)
def test_the_run_deadline_stops_every_process_group_and_fails_the_run(
    tmp_path: Path, deadline: str, timeout: float | None, named: str
) -> None:
    began = time.monotonic()
    result, rec = run(
        WORKFLOW_DEADLINE.replace("DEADLINE", deadline), tmp_path, parallel=2, timeout=timeout
    )
    elapsed = time.monotonic() - began
    assert 1 <= elapsed < 1 + 3 + 4, "SIGTERM at the deadline, SIGKILL 3 s later"
    assert not result.succeeded and not result.interrupted
    assert result.deadline == named
    assert result.failed[0] == "deadline-wf"
    assert result.failure_logs["deadline-wf"] == (
        f"{named}: the run exceeded its deadline; running tasks were stopped"
    )
    assert set(result.failed) == {"deadline-wf", "deadline-wf.hang", "deadline-wf.stubborn"}
    assert "stopped: the run exceeded its deadline" in result.failure_logs["deadline-wf.hang"]
    assert "deadline-wf.after" not in rec.started and not (tmp_path / "after").exists()
    wait_dead(pids(tmp_path))


def test_a_deadline_of_zero_starts_nothing(tmp_path: Path) -> None:
    """Argo's `argo terminate` sets spec.activeDeadlineSeconds to 0."""
    result, rec = run(WORKFLOW_DEADLINE.replace("DEADLINE", "activeDeadlineSeconds: 0"), tmp_path)
    assert not result.succeeded and result.deadline == "spec.activeDeadlineSeconds 0"
    assert rec.started == {} and not (tmp_path / "pids").exists()


def test_a_warm_forked_task_is_killed_at_its_deadline(tmp_path: Path) -> None:
    text = (PROBE % (workdir(tmp_path), "")).replace(
        "    container:\n", "    activeDeadlineSeconds: 1\n    container:\n", 1
    )
    out = tmp_path / "probe.json"
    began = time.monotonic()
    result = execute(
        load_manifest(text), parameters={"out": str(out), "mode": "sleep"}, log_dir=tmp_path / "l"
    )
    assert time.monotonic() - began < 10
    seen = json.loads(out.read_text())
    assert seen["warm"] is True, "the task was forked from the warm interpreter"
    assert not result.succeeded
    assert "exceeded activeDeadlineSeconds 1" in result.failure_logs[result.workflow_name]
    wait_dead([seen["pid"]])


def test_exec_timeout_fails_the_run_with_exit_1_naming_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(hang(""))
    began = time.monotonic()
    done = sweep("exec", str(path), "-p", f"dir={tmp_path}", "--timeout", "1", timeout=60)
    assert time.monotonic() - began < 30
    assert done.returncode == 1, done.stderr
    assert "--timeout 1s: the run exceeded its deadline" in done.stderr
    assert ".hang" in done.stderr and "Traceback" not in done.stderr
    wait_dead(pids(tmp_path))


def test_run_timeout_stops_a_function_that_never_returns(tmp_path: Path) -> None:
    spec = tmp_path / "hang.toml"
    spec.write_text(
        'name = "hang"\nfunction = "tests.kernels:slow_square"\nshards = 2\nchunk_rows = 10\n'
        "[space]\nx = { range = [0, 20] }\n"
    )
    began = time.monotonic()
    done = sweep(
        "run",
        str(spec),
        "--store",
        str(tmp_path / "runs"),
        "--timeout",
        "2",
        env={"TTG_TEST_CHUNK_SECONDS": "600"},
        timeout=90,
    )
    assert time.monotonic() - began < 60
    assert done.returncode == 1, done.stderr
    assert "--timeout 2s: the run exceeded its deadline" in done.stderr
    assert "compute" in done.stderr


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ('timeout: "30"', "spec.templates[1].timeout: '30' needs a unit, such as '30s'"),
        ("timeout: soon", "spec.templates[1].timeout: 'soon' is not a duration"),
        ("timeout: 30", "spec.templates[1].timeout: expected a string"),
        ("activeDeadlineSeconds: 0", "activeDeadlineSeconds: expected a positive number"),
        ("activeDeadlineSeconds: -5", "activeDeadlineSeconds: expected a positive number"),
        ("activeDeadlineSeconds: 1.5", "activeDeadlineSeconds: expected a positive number"),
        (
            'activeDeadlineSeconds: "x{{workflow.name}}"',
            "activeDeadlineSeconds: expected a number or one variable",
        ),
        (
            'activeDeadlineSeconds: "{{inputs.parameters.nope}}"',
            "template 'hang' has no input parameter 'nope'",
        ),
    ],
)
def test_bad_template_limits_are_refused_before_anything_runs(limits: str, expected: str) -> None:
    assert expected in refusal(load_manifest(hang(limits)))


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["spec"]["templates"][0].update(timeout="5s"),
            "spec.templates[0].timeout: only container templates have one (as Argo)",
        ),
        (
            lambda d: d["spec"]["templates"][0].update(activeDeadlineSeconds=5),
            "spec.templates[0].activeDeadlineSeconds: only container templates have one",
        ),
        (
            lambda d: d["spec"].update(activeDeadlineSeconds="10"),
            "spec.activeDeadlineSeconds: expected an integer >= 0, got '10'",
        ),
        (
            lambda d: d["spec"].update(activeDeadlineSeconds=-1),
            "spec.activeDeadlineSeconds: expected an integer >= 0, got -1",
        ),
    ],
    ids=["dag-timeout", "dag-deadline", "spec-string", "spec-negative"],
)
def test_limits_argo_refuses_are_refused(mutate: Any, expected: str) -> None:
    manifest = load_manifest(hang(""))
    mutate(manifest)
    assert expected in refusal(manifest)


# -- (7) deep DAGs ----------------------------------------------------------------------------


def chain(tasks: int, empty_loops: bool = False, reads_previous: bool = False) -> dict[str, Any]:
    """A DAG of `tasks` tasks, each depending on the one before."""
    dag: list[dict[str, Any]] = []
    for i in range(tasks):
        task: dict[str, Any] = {"name": f"t{i}", "template": "step"}
        if i:
            task["depends"] = f"t{i - 1}"
        if reads_previous and i:
            value = f"{{{{tasks.t{i - 1}.outputs.parameters.out}}}}"
            task["arguments"] = {"parameters": [{"name": "in", "value": value}]}
        if empty_loops:
            task["withItems"] = []
        dag.append(task)
    step: dict[str, Any] = {"name": "step", "container": {"command": ["true"]}}
    if reads_previous:
        step["inputs"] = {"parameters": [{"name": "in", "value": "-"}]}
        step["outputs"] = {"parameters": [{"name": "out", "valueFrom": {"path": "/dev/null"}}]}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "chain-"},
        "spec": {
            "entrypoint": "main",
            "templates": [{"name": "main", "dag": {"tasks": dag}}, step],
        },
    }


def test_a_5000_task_chain_validates_in_seconds() -> None:
    manifest = chain(5000, reads_previous=True)
    began = time.monotonic()
    workflow = parse_workflow(manifest)
    assert time.monotonic() - began < 5
    assert len(workflow.templates["main"].dag or ()) == 5000


def test_a_5000_task_chain_runs_through_the_engine() -> None:
    """Empty loops are skipped without a process, so this times the scheduling alone."""
    began = time.monotonic()
    result = execute(chain(5000, empty_loops=True))
    assert result.succeeded, result.failure_logs
    assert time.monotonic() - began < 15


def test_a_200_task_chain_runs_its_processes_in_order(tmp_path: Path) -> None:
    recorder = Recorder()
    result = execute(chain(200), observer=recorder, log_dir=tmp_path, parallel=4)
    assert result.succeeded, result.failure_logs
    name = result.workflow_name
    for i in range(1, 200):
        assert recorder.after(f"{name}.t{i}", f"{name}.t{i - 1}")


def test_a_5000_task_dependency_cycle_is_refused_in_one_line() -> None:
    manifest = chain(5000)
    manifest["spec"]["templates"][0]["dag"]["tasks"][0]["depends"] = "t4999"
    message = refusal(manifest)
    assert message == (
        "spec.templates[0].dag.tasks[0].depends: dependency cycle"
        " t0 -> t4999 -> t4998 -> t4997 -> ... -> t2 -> t1 -> t0"
    )


def nested(depth: int, back_to: int | None = None) -> dict[str, Any]:
    """`depth` templates, each a DAG calling the next, the last a container."""
    templates: list[dict[str, Any]] = []
    for i in range(depth - 1):
        callee = f"level{i + 1}"
        if back_to is not None and i == depth - 2:
            callee = f"level{back_to}"
        templates.append(
            {"name": f"level{i}", "dag": {"tasks": [{"name": "in", "template": callee}]}}
        )
    templates.append({"name": f"level{depth - 1}", "container": {"command": ["true"]}})
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "nested-"},
        "spec": {"entrypoint": "level0", "templates": templates},
    }


def test_2000_nested_templates_are_refused_in_one_line() -> None:
    began = time.monotonic()
    message = refusal(nested(2000))
    assert time.monotonic() - began < 5
    assert message == (
        f"spec.templates[{MAX_TEMPLATE_DEPTH - 1}].dag.tasks[0].template: templates nest 2000"
        f" deep from the entrypoint, more than the {MAX_TEMPLATE_DEPTH} Argo runs (its"
        " controller stops at a stack depth of 100)"
    )


def test_templates_nested_to_the_limit_run() -> None:
    assert MAX_TEMPLATE_DEPTH == 99
    result = execute(nested(MAX_TEMPLATE_DEPTH))
    assert result.succeeded, result.failure_logs
    assert "templates nest 100 deep" in refusal(nested(MAX_TEMPLATE_DEPTH + 1))


def test_a_2000_template_recursion_is_refused_in_one_line() -> None:
    message = refusal(nested(2000, back_to=0))
    assert message.startswith("spec.templates[1998].dag.tasks[0].template: recursive templates")
    assert "(level0 -> level1 -> level2 -> level3 -> ... -> level1997 -> level1998 -> level0)" in (
        message
    )


# -- (14) emptyDir volumes --------------------------------------------------------------------

OLD_ROOT = Path("/tmp/ttg")  # where output files went before: predictable, shared


@pytest.fixture
def run_id() -> Iterator[str]:
    """A run id, and the old shared path for it cleaned up afterwards."""
    name = f"limits-{uuid.uuid4().hex[:10]}"
    yield name
    planted = OLD_ROOT / name
    if planted.is_symlink() or planted.is_file():
        planted.unlink()
    elif planted.is_dir():
        planted.chmod(0o700)
        planted.rmdir()


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process's tempfile folder, empty, so a test can see what the executor leaves."""
    folder = tmp_path / "temp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


SHARDS = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: RUN_ID}
spec:
  entrypoint: main
  arguments: {parameters: [{name: dir, value: /nonexistent}, {name: fail, value: "0"}]}
  volumes: [{name: tmp, emptyDir: {}}, {name: host, hostPath: {path: /tmp}}]
  templates:
  - name: main
    dag:
      tasks:
      - name: shard
        template: shard
        withItems: [0, 1]
        arguments: {parameters: [{name: shard, value: "{{item}}"}]}
      - name: report
        depends: shard
        template: report
        arguments:
          parameters: [{name: rows, value: "{{tasks.shard.outputs.parameters.rows}}"}]
  - name: shard
    inputs: {parameters: [{name: shard}]}
    outputs:
      parameters:
      - name: rows
        valueFrom: {path: "/tmp/ttg/{{workflow.name}}/shard-{{inputs.parameters.shard}}/rows"}
    container:
      command:
      - python
      - -c
      - |
        import json, os, pathlib, stat, sys
        out = pathlib.Path(sys.argv[1])
        out.mkdir(parents=True, exist_ok=True)
        (out / "rows").write_text(str(10 + int(sys.argv[3])) + "\\n")
        volume = out.parents[2]
        seen = {"out": str(out), "volume": str(volume), "tmpdir": os.environ["TMPDIR"],
                "mode": stat.S_IMODE(volume.parent.stat().st_mode), "cwd": os.getcwd()}
        pathlib.Path(sys.argv[2], f"seen-{sys.argv[3]}.json").write_text(json.dumps(seen))
        sys.exit(int(sys.argv[4]))
      - /tmp/ttg/{{workflow.name}}/shard-{{inputs.parameters.shard}}
      - "{{workflow.parameters.dir}}"
      - "{{inputs.parameters.shard}}"
      - "{{workflow.parameters.fail}}"
      env: [{name: TMPDIR, value: /tmp}]
      workingDir: /tmp/work
      volumeMounts: [{name: tmp, mountPath: /tmp}, {name: host, mountPath: /host}]
  - name: report
    inputs: {parameters: [{name: rows}]}
    container:
      command: [sh, -c, 'echo "$1" > "$0/rows.json"', "{{workflow.parameters.dir}}",
                "{{inputs.parameters.rows}}"]
"""


def shards(run_id: str, tmp_path: Path, fail: str = "0") -> tuple[Any, list[dict[str, Any]]]:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    manifest = load_manifest(SHARDS.replace("RUN_ID", run_id))
    parameters = {"dir": str(out), "fail": fail}
    result = execute(manifest, parameters=parameters, log_dir=tmp_path / "logs", parallel=2)
    seen = [json.loads((out / f"seen-{i}.json").read_text()) for i in (0, 1)]
    return result, seen


def test_each_attempt_gets_a_private_empty_dir_removed_after_success(
    tmp_path: Path, temp_dir: Path, run_id: str
) -> None:
    result, seen = shards(run_id, tmp_path)
    assert result.succeeded, result.failure_logs
    assert json.loads((tmp_path / "out" / "rows.json").read_text()) == ["10", "11"]
    first, second = seen
    assert Path(first["volume"]).parent != Path(second["volume"]).parent, "one folder per pod"
    for attempt in seen:
        pod = Path(attempt["volume"]).parent
        assert pod.parent.parent == temp_dir, "inside the run's own folder, in the temp folder"
        assert attempt["mode"] == 0o700
        assert attempt["tmpdir"] == attempt["volume"], "env values are rewritten"
        assert attempt["cwd"] == str(Path(attempt["volume"]) / "work"), "and workingDir"
        assert not pod.exists(), "removed after the attempt"
    assert list(temp_dir.iterdir()) == [], "the run's folder is removed when it ends"
    assert not (OLD_ROOT / run_id).exists(), "nothing is written to the shared /tmp/ttg"


def test_empty_dirs_are_removed_after_a_failure_too(
    tmp_path: Path, temp_dir: Path, run_id: str
) -> None:
    result, seen = shards(run_id, tmp_path, fail="3")
    assert not result.succeeded
    assert all(not Path(attempt["volume"]).exists() for attempt in seen)
    assert list(temp_dir.iterdir()) == []


def test_the_folders_of_a_run_that_died_are_removed_by_the_next_run(
    tmp_path: Path, temp_dir: Path, run_id: str
) -> None:
    """A run killed with SIGKILL cannot clean up; its lock is free, a live run's is not."""
    dead, alive = temp_dir / f"{RUN_FOLDER_PREFIX}dead.x", temp_dir / f"{RUN_FOLDER_PREFIX}alive.y"
    recent = temp_dir / f"{RUN_FOLDER_PREFIX}recent.z"
    for folder in (dead, alive, recent):
        (folder / "pod-1" / "volume-0").mkdir(parents=True)
        (folder / RUN_FOLDER_LOCK).touch()
        if folder is not recent:  # one just made may not be locked yet: it is left alone
            os.utime(folder / RUN_FOLDER_LOCK, (time.time() - 120, time.time() - 120))
    other = temp_dir / f"{RUN_FOLDER_PREFIX}not-a-run"
    other.mkdir()
    lock = os.open(alive / RUN_FOLDER_LOCK, os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result, _ = shards(run_id, tmp_path)
        assert result.succeeded, result.failure_logs
    finally:
        os.close(lock)
    assert sorted(p.name for p in temp_dir.iterdir()) == [alive.name, other.name, recent.name]


def test_a_symlink_planted_at_the_old_path_is_not_written_through(
    tmp_path: Path, run_id: str
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    try:
        OLD_ROOT.mkdir(exist_ok=True)
        (OLD_ROOT / run_id).symlink_to(victim)
    except OSError as exc:
        pytest.skip(f"cannot plant a symlink in {OLD_ROOT}: {exc}")
    result, _ = shards(run_id, tmp_path)
    assert result.succeeded, result.failure_logs
    assert list(victim.iterdir()) == []


def test_a_foreign_folder_at_the_old_path_does_not_break_the_run(
    tmp_path: Path, run_id: str
) -> None:
    try:
        OLD_ROOT.mkdir(exist_ok=True)
        (OLD_ROOT / run_id).mkdir(mode=0o500)  # as if another user's: not writable
    except OSError as exc:
        pytest.skip(f"cannot make a folder in {OLD_ROOT}: {exc}")
    result, _ = shards(run_id, tmp_path)
    assert result.succeeded, result.failure_logs


RETRIED = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: retried-}
spec:
  entrypoint: flaky
  arguments: {parameters: [{name: dir, value: /nonexistent}]}
  volumes: [{name: scratch, emptyDir: {medium: Memory}}]
  templates:
  - name: flaky
    retryStrategy: {limit: 1}
    container:
      command: [sh, -c]
      args:
      - >-
        ls -A /scratch/data >> {{workflow.parameters.dir}}/listing;
        echo "--" >> {{workflow.parameters.dir}}/listing;
        touch /scratch/data/left-behind;
        test -e {{workflow.parameters.dir}}/second || { touch {{workflow.parameters.dir}}/second; exit 1; }
      volumeMounts: [{name: scratch, mountPath: /scratch/data/, subPath: sub/dir}]
"""


def test_a_retry_starts_with_an_empty_folder_as_a_new_pod_does(tmp_path: Path) -> None:
    result, _ = run(RETRIED, tmp_path)
    assert result.succeeded, result.failure_logs
    assert (tmp_path / "listing").read_text() == "--\n--\n", "both attempts saw it empty"


def test_values_substituted_into_a_field_stay_host_paths(tmp_path: Path) -> None:
    """The ``--store /tmp/runs`` case: a parameter's value is never rewritten, even under
    the mount path; what the manifest writes literally is."""
    assert str(tmp_path).startswith("/tmp/"), "this test needs a tmp_path under /tmp"
    text = """
    apiVersion: argoproj.io/v1alpha1
    kind: Workflow
    metadata: {generateName: host-}
    spec:
      entrypoint: write
      arguments: {parameters: [{name: dir, value: /nonexistent}]}
      volumes: [{name: tmp, emptyDir: {}}]
      templates:
      - name: write
        container:
          command: [sh, -c, 'touch "$0/marker" /tmp/literal && echo "$1" > "$0/literal-path"',
                    "{{workflow.parameters.dir}}", /tmp/literal]
          volumeMounts: [{name: tmp, mountPath: /tmp}]
    """
    result, _ = run(text, tmp_path)
    assert result.succeeded, result.failure_logs
    assert (tmp_path / "marker").exists(), "the parameter's /tmp/... path is the host's"
    literal = (tmp_path / "literal-path").read_text().strip()
    assert literal != "/tmp/literal" and literal.endswith("/literal")
    assert not Path(literal).exists(), "the attempt's folder is gone"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/tmp", "<v>"),
        ("/tmp/", "<v>/"),
        ("/tmp/ttg/{{x}}/rows", "<v>/ttg/X/rows"),
        ("--out=/tmp/a", "--out=<v>/a"),
        ("echo hi > /tmp/o.txt; cat '/tmp/o.txt'", "echo hi > <v>/o.txt; cat '<v>/o.txt'"),
        ("PATH=/bin:/tmp/bin", "PATH=/bin:<v>/bin"),
        ("/tmpfile /var/tmp tmp/x ./tmp", "/tmpfile /var/tmp tmp/x ./tmp"),
        ("{{x}}/tmp/a", "X/tmp/a"),
        ("/tmp{{x}}", "/tmpX"),
        ("/data/cache/x /data/x", "<c>/x <d>/x"),
    ],
)
def test_which_written_paths_are_rewritten(text: str, expected: str) -> None:
    paths = {"/tmp": "<v>", "/data": "<d>", "/data/cache": "<c>"}
    assert substitute(text, {"x": "X"}, paths) == expected
    assert substitute("{{x}}", {"x": "/tmp/a"}, paths) == "/tmp/a", "values are never rewritten"


@pytest.mark.parametrize(
    ("mounts", "expected"),
    [
        ([{"name": "nope", "mountPath": "/tmp"}], "volumeMounts[0].name: no volume 'nope'"),
        ([{"name": "tmp", "mountPath": "tmp"}], "volumeMounts[0].mountPath: expected an absolute"),
        ([{"name": "tmp", "mountPath": "/"}], "volumeMounts[0].mountPath: expected an absolute"),
        (
            [{"name": "tmp", "mountPath": "/a"}, {"name": "tmp", "mountPath": "/a/"}],
            "volumeMounts[1].mountPath: '/a' is mounted twice",
        ),
        (
            [{"name": "tmp", "mountPath": "/a", "subPath": "../x"}],
            "volumeMounts[0].subPath: expected a relative path inside the volume",
        ),
        (
            [{"name": "tmp", "mountPath": "/a", "subPathExpr": "$(X)"}],
            "volumeMounts[0].subPathExpr: not supported by the local executor",
        ),
    ],
)
def test_empty_dir_mounts_that_cannot_be_emulated_are_refused(
    mounts: list[dict[str, str]], expected: str
) -> None:
    manifest = load_manifest(BASE)
    manifest["spec"]["volumes"] = [
        {"name": "tmp", "emptyDir": {}},
        {"name": "cfg", "configMap": {}},
    ]
    manifest["spec"]["templates"][1]["container"]["volumeMounts"] = mounts
    message = refusal(manifest)
    assert message.startswith("spec.templates[1].container.") and expected in message


def test_mounts_of_other_volume_kinds_are_left_alone(tmp_path: Path) -> None:
    manifest = load_manifest(BASE)
    manifest["spec"]["volumes"] = [{"name": "cfg", "configMap": {"name": "c"}}]
    container = manifest["spec"]["templates"][1]["container"]
    container["volumeMounts"] = [{"name": "cfg", "mountPath": "/tmp", "subPathExpr": "$(X)"}]
    marker = tmp_path / "ran"
    result = execute(manifest, parameters={"marker": str(marker)}, log_dir=tmp_path / "logs")
    assert result.succeeded and marker.exists()


def test_run_never_writes_through_a_symlink_at_the_old_outputs_path(
    tmp_path: Path, run_id: str
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    try:
        OLD_ROOT.mkdir(exist_ok=True)
        (OLD_ROOT / run_id).symlink_to(victim)
    except OSError as exc:
        pytest.skip(f"cannot plant a symlink in {OLD_ROOT}: {exc}")
    temp = tmp_path / "temp"
    temp.mkdir()
    spec = tmp_path / "tiny.toml"
    spec.write_text(
        'name = "tiny"\nfunction = "tests.kernels:slow_square"\nshards = 2\nchunk_rows = 10\n'
        "[space]\nx = { range = [0, 20] }\n"
    )
    done = sweep(
        "run",
        str(spec),
        "--store",
        str(tmp_path / "runs"),
        "--run-id",
        run_id,
        env={"TMPDIR": str(temp), "TTG_TEST_CHUNK_SECONDS": "0"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "runs" / "tiny" / run_id / "_SUCCESS").exists()
    assert list(victim.iterdir()) == []
    assert not [p for p in temp.iterdir() if p.name.startswith(RUN_FOLDER_PREFIX)]


def test_sigterm_removes_the_runs_empty_dir_folders(tmp_path: Path) -> None:
    manifest = tmp_path / "wf.yaml"
    manifest.write_text(
        textwrap.dedent(
            """
            apiVersion: argoproj.io/v1alpha1
            kind: Workflow
            metadata: {generateName: stopped-}
            spec:
              entrypoint: hang
              arguments: {parameters: [{name: dir, value: /nonexistent}]}
              volumes: [{name: tmp, emptyDir: {}}]
              templates:
              - name: hang
                container:
                  command: [sh, -c, 'echo /tmp > "$0/volume"; sleep 60', "{{workflow.parameters.dir}}"]
                  volumeMounts: [{name: tmp, mountPath: /tmp}]
            """
        )
    )
    temp = tmp_path / "temp"
    temp.mkdir()
    runner = subprocess.Popen(
        [sys.executable, str(SWEEP), "exec", str(manifest), "-p", f"dir={tmp_path}"],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(temp)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "volume").exists():
            assert time.monotonic() < deadline, "the task never started"
            time.sleep(0.05)
        volume = Path((tmp_path / "volume").read_text().strip())
        assert volume.is_dir() and volume.is_relative_to(temp)
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=20) == 130
    finally:
        runner.kill()
        runner.wait()
    assert not [p for p in temp.iterdir() if p.name.startswith(RUN_FOLDER_PREFIX)]
