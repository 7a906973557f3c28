"""The local executor: a local Argo for a subset. Real subprocesses, nothing mocked.

Ordering is checked with the observer's event sequence (all callbacks come from one thread, in
the order the engine saw them), concurrency with its running count.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflows.local import ExecutionResult, Node, execute
from workflows.manifest import ManifestError, load_manifest, parse_workflow

ROOT = Path(__file__).parents[1]
EXAMPLES = Path(os.environ.get("ARGO_EXAMPLES", ROOT.parent / "shared/argo/examples"))


class Recorder:
    """An ExecutionObserver that keeps the order of events and the peak of running tasks."""

    def __init__(self) -> None:
        self._seq = itertools.count()
        self.added: list[Node] = []
        self.started: dict[str, int] = {}
        self.finished: dict[str, tuple[int, bool, dict[str, str]]] = {}
        self.running = 0
        self.max_running = 0

    def task_added(self, node: Node) -> None:
        self.added.append(node)

    def task_started(self, node: Node) -> None:
        assert node in self.added, "task_started before task_added"
        self.started[node.id] = next(self._seq)
        self.running += 1
        self.max_running = max(self.max_running, self.running)

    def task_finished(self, node: Node, succeeded: bool, outputs: dict[str, str]) -> None:
        self.finished[node.id] = (next(self._seq), succeeded, outputs)
        self.running -= 1

    def end(self, node_id: str) -> int:
        return self.finished[node_id][0]

    def after(self, later: str, *earlier: str) -> bool:
        """`later` started only after every one of `earlier` finished."""
        return all(self.started[later] > self.end(e) for e in earlier)

    def max_overlap(self, groups: dict[str, list[str]]) -> int:
        """Peak number of groups running at once, a group spanning its first start to last end."""
        events: list[tuple[int, int]] = []
        for ids in groups.values():
            events.append((min(self.started[i] for i in ids), 1))
            events.append((max(self.end(i) for i in ids), -1))
        running = peak = 0
        for _, delta in sorted(events):
            running += delta
            peak = max(peak, running)
        return peak


def run(
    text: str, tmp_path: Path, parameters: dict[str, str] | None = None, **kwargs: Any
) -> tuple[ExecutionResult, Recorder]:
    recorder = Recorder()
    params = {"dir": str(tmp_path)} if parameters is None else parameters
    result = execute(
        load_manifest(textwrap.dedent(text)),
        parameters=params,
        observer=recorder,
        log_dir=tmp_path / "logs",
        **kwargs,
    )
    return result, recorder


def example(name: str) -> dict[str, Any]:
    path = EXAMPLES / f"{name}.yaml"
    if not path.exists():
        pytest.skip(f"Argo example {path} not found (set ARGO_EXAMPLES to the examples folder)")
    return load_manifest(path.read_text())


def run_example(name: str, tmp_path: Path, parallel: int = 4) -> tuple[ExecutionResult, Recorder]:
    recorder = Recorder()
    result = execute(example(name), observer=recorder, parallel=parallel, log_dir=tmp_path)
    assert result.succeeded, result.failure_logs
    assert result.failed == []
    assert result.workflow_name.startswith(f"{name}-")
    assert len(result.workflow_name) == len(name) + 6
    return result, recorder


# -- Argo's own examples ---------------------------------------------------------------------


def test_argo_dag_diamond(tmp_path: Path) -> None:
    result, rec = run_example("dag-diamond", tmp_path)
    a, b, c, d = (f"{result.workflow_name}.{t}" for t in "ABCD")
    assert set(rec.finished) == {a, b, c, d}
    assert rec.after(b, a) and rec.after(c, a)
    assert rec.after(d, b, c)
    assert (tmp_path / f"{d}.log").read_text() == "D\n"


def test_argo_dag_multiroot(tmp_path: Path) -> None:
    result, rec = run_example("dag-multiroot", tmp_path)
    a, b, c, d = (f"{result.workflow_name}.{t}" for t in "ABCD")
    assert set(rec.finished) == {a, b, c, d}
    assert rec.after(c, a)
    assert rec.after(d, a, b)


def test_argo_dag_nested(tmp_path: Path) -> None:
    result, rec = run_example("dag-nested", tmp_path)
    name = result.workflow_name
    leaves = {f"{name}.{outer}.{inner}" for outer in "ABCD" for inner in "ABCD"}
    assert set(rec.finished) == leaves
    for outer in "ABCD":
        x = f"{name}.{outer}"
        assert rec.after(f"{x}.D", f"{x}.B", f"{x}.C")
        assert (tmp_path / f"{x}.D.log").read_text() == f"{outer}D\n"
    for inner in "ABCD":  # outer D starts only once outer B and C are entirely done
        assert rec.after(f"{name}.D.A", f"{name}.B.{inner}", f"{name}.C.{inner}")


def test_argo_loops_dag(tmp_path: Path) -> None:
    result, rec = run_example("loops-dag", tmp_path)
    name = result.workflow_name
    items = [f"{name}.B({i}:{word})" for i, word in enumerate(["foo", "bar", "baz"])]
    assert set(rec.finished) == {f"{name}.A", f"{name}.C", *items}
    assert [n.item for n in rec.added if n.task == "B"] == ["foo", "bar", "baz"]
    for node_id, word in zip(items, ["foo", "bar", "baz"], strict=True):
        assert rec.after(node_id, f"{name}.A")
        assert (tmp_path / f"{node_id}.log").read_text() == f"{word}\n"
    assert rec.after(f"{name}.C", *items)


@pytest.mark.slow
def test_argo_parallelism_nested_dag(tmp_path: Path) -> None:
    """Sleeps 10 s per job by design: about 80 s."""
    result, rec = run_example("parallelism-nested-dag", tmp_path, parallel=8)
    name = result.workflow_name
    groups = {b: [f"{name}.{b}.{c}" for c in ("c1", "c2", "c3")] for b in ("b2", "b3", "b4")}
    assert len(rec.finished) == 15
    assert rec.max_overlap(groups) == 2
    b1 = [f"{name}.b1.{c}" for c in ("c1", "c2", "c3")]
    for ids in groups.values():
        assert rec.after(ids[0], *b1)
    assert rec.after(f"{name}.b5.c1", *(i for ids in groups.values() for i in ids))


# -- failure, retries ------------------------------------------------------------------------

TOUCH = """
  - name: touch
    inputs: {parameters: [{name: marker}]}
    container:
      command: [python, -c, "import pathlib, sys; pathlib.Path(sys.argv[1]).touch()",
                "{{workflow.parameters.dir}}/{{inputs.parameters.marker}}"]
"""

FAIL_FAST = (
    """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: fail-fast-}
spec:
  entrypoint: main
  arguments: {parameters: [{name: dir, value: /nonexistent}]}
  templates:
  - name: main
    dag:
      tasks:
      - {name: bad, template: fail}
      - name: after-bad
        depends: bad
        template: touch
        arguments: {parameters: [{name: marker, value: after-bad}]}
      - name: sibling
        template: slow-touch
        arguments: {parameters: [{name: marker, value: sibling}]}
      - name: after-sibling
        depends: sibling
        template: touch
        arguments: {parameters: [{name: marker, value: after-sibling}]}
  - name: fail
    container:
      command: [sh, -c, "echo boom; echo on stderr >&2; sleep 0.2; exit 3"]
  - name: slow-touch
    inputs: {parameters: [{name: marker}]}
    container:
      command: [sh, -c, "sleep 0.8; touch {{workflow.parameters.dir}}/{{inputs.parameters.marker}}"]
"""
    + TOUCH
)


def test_a_failed_task_fails_the_run_and_nothing_new_starts(tmp_path: Path) -> None:
    result, rec = run(FAIL_FAST, tmp_path, parallel=4)
    name = result.workflow_name
    assert not result.succeeded
    assert result.failed == [f"{name}.bad"]
    log = result.failure_logs[f"{name}.bad"]
    assert "boom" in log and "on stderr" in log and "exit code 3" in log
    assert (tmp_path / "sibling").exists(), "a sibling already running finishes"
    assert rec.finished[f"{name}.sibling"][1] is True
    assert not (tmp_path / "after-bad").exists(), "a dependant of the failure never starts"
    assert not (tmp_path / "after-sibling").exists(), "fail-fast: no new task in that DAG"
    assert f"{name}.after-bad" not in rec.started
    assert f"{name}.after-sibling" not in rec.started


RETRY = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: retry-}
spec:
  entrypoint: main
  arguments: {parameters: [{name: dir, value: /nonexistent}, {name: limit, value: "0"}]}
  templates:
  - name: main
    dag:
      tasks:
      - {name: flaky, template: flaky}
  - name: flaky
    retryStrategy:
      limit: "{{workflow.parameters.limit}}"
      backoff: {duration: "10s"}
      POLICY
    container:
      command:
      - python
      - -c
      - |
        import pathlib, sys
        counter = pathlib.Path(sys.argv[1])
        count = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(count))
        print("attempt", count)
        sys.exit(0 if count >= 3 else 1)
      - "{{workflow.parameters.dir}}/count"
"""


@pytest.mark.parametrize(
    ("limit", "policy", "succeeded", "attempts"),
    [(2, None, True, 3), (1, None, False, 2), (2, "OnError", False, 1), (2, "Always", True, 3)],
)
def test_retry_strategy_limit(
    tmp_path: Path, limit: int, policy: str | None, succeeded: bool, attempts: int
) -> None:
    text = RETRY.replace("POLICY", f"retryPolicy: {policy}" if policy else "")
    result, _ = run(text, tmp_path, {"dir": str(tmp_path), "limit": str(limit)})
    assert result.succeeded is succeeded
    assert (tmp_path / "count").read_text() == str(attempts)
    node = f"{result.workflow_name}.flaky"
    logs = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert logs == sorted([f"{node}.log"] + [f"{node}.retry-{n}.log" for n in range(1, attempts)])
    if not succeeded:
        assert f"attempt {attempts}" in result.failure_logs[node]


# -- loops, variables, outputs ---------------------------------------------------------------

LOOPS = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: loops-wf}
spec:
  entrypoint: main
  arguments:
    parameters:
    - {name: dir, value: /nonexistent}
    - {name: greeting, value: hello}
  templates:
  - name: main
    dag:
      tasks:
      - name: seq
        template: emit
        withSequence: {start: "1", end: "3", format: "n%02d"}
        arguments: {parameters: [{name: id, value: "seq-{{item}}"}, {name: value, value: "{{item}}"}]}
      - name: count
        template: emit
        withSequence: {count: 2}
        arguments: {parameters: [{name: id, value: "count-{{item}}"}, {name: value, value: "{{ item }}"}]}
      - name: objs
        template: emit
        withItems: [{name: a, size: 1}, {name: b, size: 2}]
        arguments:
          parameters:
          - {name: id, value: "objs-{{item.name}}"}
          - {name: value, value: "{{item.name}}-{{item.size}}"}
      - name: dicts
        template: emit
        withItems: [1, 2]
        arguments: {parameters: [{name: id, value: "dicts-{{item}}"}, {name: value, value: '{"v": {{item}}}'}]}
      - name: gen
        template: emit
        arguments: {parameters: [{name: id, value: gen}, {name: value, value: '[{"k": "x"}, {"k": "y"}]'}]}
      - name: fan
        depends: gen
        template: emit
        withParam: "{{tasks.gen.outputs.parameters.out}}"
        arguments: {parameters: [{name: id, value: "fan-{{item.k}}"}, {name: value, value: "{{item.k}}"}]}
      - name: collect
        depends: "seq && objs && fan.Succeeded"
        template: emit
        arguments:
          parameters:
          - {name: id, value: collect}
          - name: value
            value: "{{tasks.seq.outputs.parameters.out}}|{{tasks.objs.outputs.parameters.out}}|{{tasks.fan.outputs.parameters.out}}|{{tasks.gen.outputs.parameters.out}}"
      - name: named
        template: emit
        arguments:
          parameters:
          - {name: id, value: named}
          - {name: value, value: "{{workflow.name}} {{workflow.parameters.greeting}}"}
  - name: emit
    inputs:
      parameters:
      - {name: id}
      - {name: value}
    outputs:
      parameters:
      - name: out
        valueFrom: {path: "{{workflow.parameters.dir}}/{{inputs.parameters.id}}.out"}
    container:
      command: [python, -c, "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text(sys.argv[2] + chr(10))",
                "{{workflow.parameters.dir}}/{{inputs.parameters.id}}.out", "{{inputs.parameters.value}}"]
"""


def test_loops_variables_and_outputs(tmp_path: Path) -> None:
    result, rec = run(LOOPS, tmp_path, {"dir": str(tmp_path), "greeting": "bonjour"})
    assert result.succeeded, result.failure_logs
    assert result.workflow_name == "loops-wf"
    out = {task: params["out"] for task, params in result.outputs.items()}
    assert out["seq"] == '["n01","n02","n03"]'
    assert out["count"] == '["0","1"]'
    assert out["objs"] == '["a-1","b-2"]'
    assert out["dicts"] == '[{"v":1},{"v":2}]'  # all JSON objects: aggregated as objects
    assert out["gen"] == '[{"k": "x"}, {"k": "y"}]'  # a single task's value, as written
    assert out["fan"] == '["x","y"]'
    assert out["collect"] == (
        '["n01","n02","n03"]|["a-1","b-2"]|["x","y"]|[{"k": "x"}, {"k": "y"}]'
    )
    assert out["named"] == "loops-wf bonjour"  # -p overrides the manifest's value
    ids = {node.id for node in rec.added}
    assert {"loops-wf.seq(0:n01)", "loops-wf.count(1:1)", "loops-wf.fan(1:k:y)"} <= ids
    assert "loops-wf.objs(0:name:a,size:1)" in ids
    assert rec.after("loops-wf.collect", "loops-wf.fan(0:k:x)", "loops-wf.fan(1:k:y)")
    assert rec.finished["loops-wf.fan(1:k:y)"][2] == {"out": "y"}


EMPTY_LOOP = (
    """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: empty-}
spec:
  entrypoint: main
  arguments: {parameters: [{name: dir, value: /nonexistent}]}
  templates:
  - name: main
    dag:
      tasks:
      - name: none
        template: touch
        withParam: "[]"
        arguments: {parameters: [{name: marker, value: "never-{{item}}"}]}
      - name: plain
        depends: none
        template: touch
        arguments: {parameters: [{name: marker, value: plain}]}
      - name: strict
        depends: none.Succeeded
        template: touch
        arguments: {parameters: [{name: marker, value: strict}]}
"""
    + TOUCH
)


def test_an_empty_loop_is_skipped_as_in_argo(tmp_path: Path) -> None:
    result, _ = run(EMPTY_LOOP, tmp_path)
    assert result.succeeded
    assert (tmp_path / "plain").exists(), "depends: X accepts a skipped X"
    assert not (tmp_path / "strict").exists(), "X.Succeeded does not: the task is omitted"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs", "plain"]


OUTPUT_FILES = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: outputs-}
spec:
  entrypoint: write
  arguments: {parameters: [{name: dir, value: /nonexistent}]}
  templates:
  - name: write
    outputs:
      parameters:
      - {name: padded, valueFrom: {path: padded.txt}}
      - {name: absent, valueFrom: {path: absent.txt, default: fallback}}
      - {name: python, valueFrom: {path: python.txt}}
    container:
      workingDir: "{{workflow.parameters.dir}}"
      command:
      - python
      - -c
      - |
        import pathlib, sys
        pathlib.Path("padded.txt").write_text("  x \\n\\n")
        pathlib.Path("python.txt").write_text(sys.executable)
"""


def test_output_files_keep_all_but_one_trailing_newline(tmp_path: Path) -> None:
    result, _ = run(OUTPUT_FILES, tmp_path)
    assert result.succeeded, result.failure_logs
    assert result.outputs == {
        "write": {"padded": "  x \n", "absent": "fallback", "python": sys.executable}
    }


def test_a_missing_output_file_fails_the_task(tmp_path: Path) -> None:
    text = OUTPUT_FILES.replace("default: fallback", "")
    result, rec = run(text, tmp_path)
    assert not result.succeeded
    assert result.failed == [result.workflow_name]
    assert "cannot read" in result.failure_logs[result.workflow_name]
    assert rec.finished[result.workflow_name][1] is False


def test_secret_key_ref_reads_the_callers_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3_SECRET_KEY", "s3cr3t")
    monkeypatch.delenv("OPTIONAL_THING", raising=False)
    text = """
    apiVersion: argoproj.io/v1alpha1
    kind: Workflow
    metadata: {generateName: secrets-}
    spec:
      entrypoint: show
      arguments: {parameters: [{name: dir, value: /nonexistent}]}
      templates:
      - name: show
        container:
          image: ttg:latest
          env:
          - name: SECRET
            valueFrom: {secretKeyRef: {name: store-creds, key: s3.secret-key}}
          - name: MAYBE
            valueFrom: {secretKeyRef: {name: store-creds, key: optional-thing, optional: true}}
          - {name: PLAIN, value: "{{workflow.name}}"}
          command:
          - python
          - -c
          - |
            import json, os, pathlib, sys
            names = ["SECRET", "MAYBE", "PLAIN"]
            pathlib.Path(sys.argv[1]).write_text(json.dumps({n: os.environ.get(n) for n in names}))
          - "{{workflow.parameters.dir}}/env.json"
    """
    result, _ = run(text, tmp_path)
    assert result.succeeded, result.failure_logs
    seen = json.loads((tmp_path / "env.json").read_text())
    assert seen == {"SECRET": "s3cr3t", "MAYBE": None, "PLAIN": result.workflow_name}


# -- parallelism -----------------------------------------------------------------------------

NAPS = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: naps-}
spec:
  entrypoint: main
  WORKFLOW_PARALLELISM
  templates:
  - name: main
    TEMPLATE_PARALLELISM
    dag:
      tasks:
      - {name: nap, template: nap, withSequence: {count: "6"}}
  - name: nap
    container: {command: [sleep, "0.25"]}
"""


@pytest.mark.parametrize(
    ("parallel", "workflow", "template", "peak"),
    [(1, None, None, 1), (8, 2, None, 2), (8, None, 3, 3), (8, None, None, 6), (1, 4, 3, 1)],
)
def test_parallelism_bounds(
    tmp_path: Path, parallel: int, workflow: int | None, template: int | None, peak: int
) -> None:
    text = NAPS.replace(
        "WORKFLOW_PARALLELISM", f"parallelism: {workflow}" if workflow else ""
    ).replace("TEMPLATE_PARALLELISM", f"parallelism: {template}" if template else "")
    result, rec = run(text, tmp_path, {}, parallel=parallel)
    assert result.succeeded
    assert len(rec.finished) == 6
    assert rec.max_running == peak


NESTED_LIMITS = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: nested-limits-}
spec:
  entrypoint: outer
  parallelism: 2
  templates:
  - name: outer
    parallelism: 2
    dag:
      tasks:
      - {name: group, template: inner, withSequence: {count: "3"}}
  - name: inner
    parallelism: 2
    dag:
      tasks:
      - {name: nap, template: nap, withItems: [a, b, c]}
  - name: nap
    container: {command: [sleep, "0.2"]}
"""


def test_nested_parallelism_finishes_within_every_bound(tmp_path: Path) -> None:
    result, rec = run(NESTED_LIMITS, tmp_path, {}, parallel=8)
    assert result.succeeded
    assert len(rec.finished) == 9
    assert rec.max_running == 2
    name = result.workflow_name
    groups = {
        g: [f"{name}.group({g}:{g}).nap({i}:{x})" for i, x in enumerate("abc")] for g in "012"
    }
    assert rec.max_overlap(groups) <= 2


# -- refusals: all checked before anything runs ----------------------------------------------

BASE = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: refuse-}
spec:
  entrypoint: main
  arguments: {parameters: [{name: marker, value: /nonexistent}]}
  templates:
  - name: main
    dag:
      tasks:
      - {name: first, template: touch}
  - name: touch
    container:
      image: python:3.11
      command: [python, -c, "import pathlib, sys; pathlib.Path(sys.argv[1]).touch()",
                "{{workflow.parameters.marker}}"]
  - name: echo
    inputs: {parameters: [{name: msg}]}
    container: {command: [echo, "{{inputs.parameters.msg}}"]}
"""


def _task(d: dict[str, Any], *tasks: dict[str, Any]) -> None:
    d["spec"]["templates"][0]["dag"]["tasks"].extend(tasks)


def _output_of_an_unrelated_task(d: dict[str, Any]) -> None:
    outputs = {"parameters": [{"name": "p", "valueFrom": {"path": "/tmp/p"}}]}
    d["spec"]["templates"][1]["outputs"] = outputs
    _task(d, _echo("{{tasks.first.outputs.parameters.p}}"))


def _echo(value: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "second",
        "template": "echo",
        "arguments": {"parameters": [{"name": "msg", "value": value}]},
        **extra,
    }


def _container(d: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = d["spec"]["templates"][1]["container"]
    return container


REFUSALS: list[tuple[str, Any, str]] = [
    (
        "script template",
        lambda d: d["spec"]["templates"].append({"name": "s", "script": {"source": "echo"}}),
        "spec.templates[3].script: not supported by the local executor",
    ),
    (
        "steps template",
        lambda d: d["spec"]["templates"].append({"name": "s", "steps": [[]]}),
        "spec.templates[3].steps: not supported by the local executor",
    ),
    ("onExit", lambda d: d["spec"].update(onExit="touch"), "spec.onExit: not supported"),
    (
        "expression template",
        lambda d: _container(d)["command"].append("{{=workflow.parameters.marker}}"),
        "spec.templates[1].container.command[4]: '{{=workflow.parameters.marker}}': expression",
    ),
    (
        "steps variable",
        lambda d: _task(d, _echo("{{steps.x.outputs.result}}")),
        "spec.templates[0].dag.tasks[1].arguments.parameters[0].value: '{{steps.x.outputs.result}}' is not supported",
    ),
    (
        "workflow.uid",
        lambda d: _container(d).update(args=["{{ workflow.uid }}"]),
        "spec.templates[1].container.args[0]: '{{workflow.uid}}' is not supported",
    ),
    (
        "depends with ||",
        lambda d: _task(d, {"name": "second", "template": "touch", "depends": "first || first"}),
        "spec.templates[0].dag.tasks[1].depends: only task names joined by '&&' are supported, got 'first || first'",
    ),
    (
        "depends on .Failed",
        lambda d: _task(d, {"name": "second", "template": "touch", "depends": "first.Failed"}),
        "spec.templates[0].dag.tasks[1].depends: only task names joined by '&&'",
    ),
    (
        "unknown template",
        lambda d: _task(d, {"name": "second", "template": "nope"}),
        "spec.templates[0].dag.tasks[1].template: unknown template 'nope'",
    ),
    (
        "unknown dependency",
        lambda d: _task(d, {"name": "second", "template": "touch", "dependencies": ["ghost"]}),
        "spec.templates[0].dag.tasks[1].dependencies: unknown task 'ghost'",
    ),
    (
        "dependency cycle",
        lambda d: _task(
            d,
            {"name": "second", "template": "touch", "depends": "third"},
            {"name": "third", "template": "touch", "depends": "second"},
        ),
        "spec.templates[0].dag.tasks[1].depends: dependency cycle second -> third -> second",
    ),
    (
        "recursive template",
        lambda d: _task(d, {"name": "again", "template": "main"}),
        "spec.templates[0].dag.tasks[1].template: recursive templates are not supported",
    ),
    (
        "unknown container field",
        lambda d: _container(d).update(lifecycle={"preStop": {}}),
        "spec.templates[1].container.lifecycle: not supported by the local executor",
    ),
    (
        "unknown task field",
        lambda d: d["spec"]["templates"][0]["dag"]["tasks"][0].update(when="1 == 1"),
        "spec.templates[0].dag.tasks[0].when: not supported by the local executor",
    ),
    (
        "podSpecPatch",
        lambda d: d["spec"]["templates"][1].update(podSpecPatch="{}"),
        "spec.templates[1].podSpecPatch: not supported",
    ),
    (
        "synchronization",
        lambda d: d["spec"]["templates"][1].update(synchronization={"mutex": {"name": "m"}}),
        "spec.templates[1].synchronization: not supported",
    ),
    (
        "configMapKeyRef",
        lambda d: _container(d).update(
            env=[{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}]
        ),
        "spec.templates[1].container.env[0].valueFrom.configMapKeyRef: not supported",
    ),
    (
        "not a Workflow",
        lambda d: d.update(kind="Pod"),
        "kind: 'Pod' is not supported by the local executor",
    ),
    (
        "a cron workflow with an unknown field",
        lambda d: d.update(
            kind="CronWorkflow",
            metadata={"name": "nightly"},
            spec={"workflowSpec": d["spec"], "schedulez": "x"},
        ),
        "spec.schedulez: not a CronWorkflow field the local executor knows",
    ),
    (
        "dag and container",
        lambda d: d["spec"]["templates"][1].update(dag={"tasks": []}),
        "spec.templates[1]: a template needs exactly one of 'dag' and 'container'",
    ),
    (
        "output of a task not depended on",
        _output_of_an_unrelated_task,
        "spec.templates[0].dag.tasks[1].arguments.parameters[0].value: '{{tasks.first.outputs.parameters.p}}': task 'first' is not a dependency",
    ),
    (
        "item outside a loop",
        lambda d: _task(d, _echo("{{item}}")),
        "spec.templates[0].dag.tasks[1].arguments.parameters[0].value: '{{item}}' is only available",
    ),
    (
        "undeclared input",
        lambda d: _container(d)["command"].append("{{inputs.parameters.nope}}"),
        "spec.templates[1].container.command[4]: '{{inputs.parameters.nope}}': template 'touch' has no input parameter 'nope'",
    ),
    (
        "missing argument",
        lambda d: _task(d, {"name": "second", "template": "echo"}),
        "spec.templates[0].dag.tasks[1].arguments: template 'echo' needs parameter 'msg'",
    ),
    (
        "two loops",
        lambda d: _task(d, _echo("{{item}}", withItems=[1], withParam="[1]")),
        "spec.templates[0].dag.tasks[1].withParam: cannot be combined with withItems",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_refusals_name_the_path_and_nothing_runs(
    tmp_path: Path, mutate: Any, expected: str
) -> None:
    manifest = load_manifest(BASE)
    mutate(manifest)
    marker = tmp_path / "ran"
    with pytest.raises(ManifestError) as caught:
        execute(manifest, parameters={"marker": str(marker)}, log_dir=tmp_path / "logs")
    message = str(caught.value)
    assert "\n" not in message
    assert expected in message
    assert not marker.exists()
    assert not (tmp_path / "logs").exists()


def test_the_refusal_base_manifest_itself_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    result = execute(load_manifest(BASE), parameters={"marker": str(marker)}, log_dir=tmp_path)
    assert result.succeeded
    assert marker.exists()


def test_a_missing_secret_variable_is_refused_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TTG_TEST_MISSING_KEY", raising=False)
    manifest = load_manifest(BASE)
    ref = {"secretKeyRef": {"name": "creds", "key": "ttg-test.missing-key"}}
    _container(manifest)["env"] = [{"name": "KEY", "valueFrom": ref}]
    marker = tmp_path / "ran"
    with pytest.raises(ManifestError) as caught:
        execute(manifest, parameters={"marker": str(marker)}, log_dir=tmp_path / "logs")
    message = str(caught.value)
    assert message.startswith("spec.templates[1].container.env[0].valueFrom.secretKeyRef:")
    assert "'creds'" in message and "'ttg-test.missing-key'" in message
    assert "TTG_TEST_MISSING_KEY" in message
    assert not marker.exists()


def test_an_unknown_parameter_override_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(ManifestError, match=r"spec\.arguments\.parameters: no parameter 'nope'"):
        execute(load_manifest(BASE), parameters={"marker": str(marker), "nope": "1"})
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("spec: [unclosed", "manifest: not valid YAML or JSON"),
        ('{"kind": "Workflow",', "manifest: not valid YAML or JSON"),
        ("a: 1\n---\nb: 2\n", "manifest: expected one document, found 2"),
        ("- just\n- a list\n", "manifest: expected a mapping"),
    ],
)
def test_malformed_documents_are_refused_in_one_line(text: str, expected: str) -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest(text)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_cluster_only_settings_are_accepted_and_ignored(tmp_path: Path) -> None:
    manifest = load_manifest(BASE)
    manifest["metadata"].update(namespace="argo", labels={"a": "b"}, annotations={"c": "d"})
    manifest["spec"].update(
        serviceAccountName="ttg",
        podGC={"strategy": "OnPodSuccess"},
        ttlStrategy={"secondsAfterCompletion": 60},
        securityContext={"runAsNonRoot": True},
        volumes=[{"name": "tmp", "emptyDir": {}}],
        parallelism=2,
    )
    template = manifest["spec"]["templates"][1]
    template.update(
        metrics={"prometheus": [{"name": "d", "help": "h", "gauge": {"value": "{{duration}}"}}]},
        retryStrategy={"limit": 2, "retryPolicy": "Always", "backoff": {"duration": "5s"}},
        activeDeadlineSeconds=600,
    )
    template["container"].update(
        imagePullPolicy="IfNotPresent",
        resources={"requests": {"cpu": "1"}},
        securityContext={"readOnlyRootFilesystem": True},
        volumeMounts=[{"name": "tmp", "mountPath": "/tmp"}],
    )
    parse_workflow(copy.deepcopy(manifest))
    marker = tmp_path / "ran"
    result = execute(manifest, parameters={"marker": str(marker)}, log_dir=tmp_path / "logs")
    assert result.succeeded
    assert marker.exists()


# -- interrupts ------------------------------------------------------------------------------

RUNNER = """
import json, sys
from pathlib import Path
from workflows.local import execute
from workflows.manifest import load_manifest

result = execute(load_manifest(Path(sys.argv[1]).read_text()), parameters={"dir": sys.argv[2]},
                 log_dir=Path(sys.argv[2]) / "logs")
print(json.dumps({"succeeded": result.succeeded, "interrupted": result.interrupted,
                  "failed": result.failed, "name": result.workflow_name}))
"""

LONG = (
    """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: long}
spec:
  entrypoint: main
  arguments: {parameters: [{name: dir, value: /nonexistent}]}
  templates:
  - name: main
    dag:
      tasks:
      - {name: long, template: long}
      - name: after
        depends: long
        template: touch
        arguments: {parameters: [{name: marker, value: after}]}
  - name: long
    container:
      command: [sh, -c, "sleep 30 & echo $! > {{workflow.parameters.dir}}/sleep.pid; wait; touch {{workflow.parameters.dir}}/done"]
"""
    + TOUCH
)


def _alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie waiting for its reaper counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def test_sigterm_kills_running_process_groups_and_fails_the_run(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(LONG)
    (tmp_path / "runner.py").write_text(RUNNER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, str(tmp_path / "runner.py"), str(tmp_path / "wf.yaml"), str(tmp_path)]
    runner = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)
    pid_file = tmp_path / "sleep.pid"
    deadline = time.monotonic() + 15
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.05)
    sleeper = int(pid_file.read_text())
    assert _alive(sleeper)
    started = time.monotonic()
    runner.send_signal(signal.SIGTERM)
    out, _ = runner.communicate(timeout=20)
    assert time.monotonic() - started < 10
    assert runner.returncode == 0
    report = json.loads(out)
    assert report == {
        "succeeded": False,
        "interrupted": True,
        "failed": ["long.long"],
        "name": "long",
    }
    deadline = time.monotonic() + 5
    while _alive(sleeper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(sleeper), "the task's own child (same process group) was killed too"
    assert not (tmp_path / "done").exists()
    assert not (tmp_path / "after").exists()


def test_manifest_written_as_json_runs(tmp_path: Path) -> None:
    manifest = yaml.safe_load(BASE)
    marker = tmp_path / "ran"
    text = json.dumps(manifest)
    result = execute(load_manifest(text), parameters={"marker": str(marker)}, log_dir=tmp_path)
    assert result.succeeded and marker.exists()


def test_a_log_folder_made_by_execute_is_removed_after_success_and_kept_after_failure() -> None:
    ok = execute(load_manifest(ONE_TASK.format(script="echo fine")))
    assert ok.succeeded and ok.log_dir is None
    failed = execute(load_manifest(ONE_TASK.format(script="echo broken >&2; exit 4")))
    assert not failed.succeeded and failed.log_dir is not None and failed.log_dir.is_dir()
    assert "broken" in next(iter(failed.failure_logs.values()))
    shutil.rmtree(failed.log_dir)


ONE_TASK = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {{generateName: logs-}}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {{name: only, template: sh}}
  - name: sh
    container: {{image: busybox, command: [/bin/sh, -c], args: ["{script}"]}}
"""
