"""The bad-input catalogue: every mistake a user can make at the command line gets exit 2
and one to three lines on stderr that say what and where, never a traceback.

Each row is (command line, expected text). `{tmp}` is a scratch folder and `{spec:NAME}` a
spec file written from SPECS[NAME]; the CLI runs in-process, so an uncaught exception fails
the test with its traceback instead of passing unnoticed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import S3Server
from workflows.sweep import main

GOOD = 'name = "demo"\nfunction = "steps.kernels:rosenbrock"\nshards = 2\n[space]\nx = { linspace = [0.0, 1.0, 4] }\ny = { range = [0, 3] }\n'


def good_with(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


SPECS: dict[str, str] = {
    "good": GOOD,
    "no-name": good_with('name = "demo"\n', ""),
    "upper-name": good_with('"demo"', '"Demo"'),
    "long-name": good_with('"demo"', '"' + "a" * 41 + '"'),
    "dotted-name": good_with('"demo"', '"my.sweep"'),
    "no-function": good_with('function = "steps.kernels:rosenbrock"\n', ""),
    "function-no-colon": good_with("steps.kernels:rosenbrock", "steps.kernels.rosenbrock"),
    "shards-zero": good_with("shards = 2", "shards = 0"),
    "shards-negative": good_with("shards = 2", "shards = -4"),
    "shards-huge": good_with("shards = 2", "shards = 100000"),
    "shards-string": good_with("shards = 2", 'shards = "2"'),
    "shards-over-rows": good_with("shards = 2", "shards = 13"),
    "chunk-rows-zero": good_with("shards = 2", "shards = 2\nchunk_rows = 0"),
    "samples-without-random": good_with("shards = 2", "shards = 2\nsamples = 5"),
    "seed-float": good_with("shards = 2", "shards = 2\nseed = 1.5"),
    "misspelled-key": good_with("shards = 2", "shard = 2"),
    "unknown-section": GOOD + "[extras]\nfoo = 1\n",
    "empty-space": good_with("x = { linspace = [0.0, 1.0, 4] }\ny = { range = [0, 3] }\n", ""),
    "unknown-axis-kind": good_with("linspace = [0.0, 1.0, 4]", "gridspace = [0.0, 1.0, 4]"),
    "linspace-nan": good_with("[0.0, 1.0, 4]", "[nan, 1.0, 4]"),
    "linspace-inf": good_with("[0.0, 1.0, 4]", "[0.0, inf, 4]"),
    "linspace-num-zero": good_with("[0.0, 1.0, 4]", "[0.0, 1.0, 0]"),
    "range-reversed": good_with("[0, 3]", "[3, 0]"),
    "range-step-zero": good_with("[0, 3]", "[0, 3, 0]"),
    "values-empty": good_with("range = [0, 3]", "values = []"),
    "values-mixed": good_with("range = [0, 3]", 'values = [1, "a"]'),
    "uniform-reversed": good_with("range = [0, 3]", "uniform = [1.0, 0.0]"),
    "loguniform-zero": good_with("range = [0, 3]", "loguniform = [0.0, 1.0]"),
    "normal-negative-std": good_with("range = [0, 3]", "normal = [0.0, -1.0]"),
    "objective-bad-goal": GOOD + '[objective]\ncolumn = "f"\ngoal = "best"\n',
    "resources-bad": GOOD + '[resources]\nmemory_limit = "lots"\n',
    "axis-named-param-id": good_with("y = { range", "param_id = { range"),
    "module-missing": good_with("steps.kernels:rosenbrock", "no_such_module:f"),
    "attribute-missing": good_with("steps.kernels:rosenbrock", "steps.kernels:no_such_function"),
    "not-callable": good_with("steps.kernels:rosenbrock", "steps.kernels:annotations"),
    "exits-at-import": good_with("steps.kernels:rosenbrock", "tests.exits_at_import:f"),
    "main-module": good_with("steps.kernels:rosenbrock", "__main__:main"),
    "refine-no-objective": GOOD + "[refine]\nstages = 3\n",
    "refine-few-points": GOOD + '[objective]\ncolumn = "f"\n[refine]\nstages = 3\npoints = 2\n',
    "refine-no-float-axis": good_with("x = { linspace = [0.0, 1.0, 4] }\n", "")
    + '[objective]\ncolumn = "f"\n[refine]\nstages = 3\n',
}
MALFORMED = {
    "bad.toml": 'name = "x"\nshards = [',
    "bad.yaml": "name: [unclosed",
    "bad.json": '{"name": ',
    "list.json": "[1, 2]",
    "spec.ini": "name = x",
    "manifest.yaml": "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {generateName: x-}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    script: {image: python, source: print(1)}\n",
}

CATALOGUE: list[tuple[str, str]] = [
    # spec fields: (missing, wrong type, zero, negative, huge, NaN/inf, empty, unknown, reversed, names)
    ("run {spec:no-name}", "spec field 'name': is required"),
    ("run {spec:upper-name}", "spec field 'name'"),
    ("run {spec:long-name}", "at most 40 characters"),
    ("render {spec:dotted-name}", "DNS-1123"),
    ("run {spec:no-function}", "spec field 'function': is required"),
    ("run {spec:function-no-colon}", "'package.module:callable'"),
    ("run {spec:shards-zero}", "spec field 'shards'"),
    ("run {spec:shards-negative}", "spec field 'shards'"),
    ("run {spec:shards-huge}", "spec field 'shards': must be between 1 and 10,000"),
    ("run {spec:shards-string}", "spec field 'shards': must be an integer"),
    ("run {spec:shards-over-rows}", "space has only 12 rows"),
    ("run {spec:chunk-rows-zero}", "spec field 'chunk_rows'"),
    ("run {spec:samples-without-random}", "no random axis"),
    ("run {spec:seed-float}", "spec field 'seed': must be an integer"),
    ("run {spec:misspelled-key}", "did you mean 'shards'"),
    ("run {spec:unknown-section}", "spec field 'extras': unknown key"),
    ("run {spec:empty-space}", "spec field 'space'"),
    ("run {spec:unknown-axis-kind}", "spec field 'space.x.gridspace': unknown axis kind"),
    ("run {spec:linspace-nan}", "must be finite"),
    ("run {spec:linspace-inf}", "must be finite"),
    ("run {spec:refine-no-objective}", "spec field 'refine': needs an [objective]"),
    ("render {spec:refine-few-points}", "spec field 'refine.points': must be between 4"),
    ("plan {spec:refine-no-float-axis}", "spec field 'refine': needs a float grid axis"),
    ("run {spec:linspace-num-zero}", "spec field 'space.x.linspace[2]'"),
    ("run {spec:range-reversed}", "is empty (stop is exclusive)"),
    ("run {spec:range-step-zero}", "step must not be 0"),
    ("run {spec:values-empty}", "spec field 'space.y.values': is empty"),
    ("run {spec:values-mixed}", "one type per axis"),
    ("run {spec:uniform-reversed}", "must be below high"),
    ("run {spec:loguniform-zero}", "must be > 0 for a log scale"),
    ("run {spec:normal-negative-std}", "stddev must be > 0"),
    ("run {spec:objective-bad-goal}", "spec field 'objective.goal'"),
    ("render {spec:resources-bad}", "spec field 'resources.memory_limit'"),
    ("run {spec:axis-named-param-id}", "reserved for the row id"),
    # the function reference
    ("run {spec:module-missing}", "cannot import module 'no_such_module'"),
    ("run {spec:attribute-missing}", "has no callable 'no_such_function'"),
    ("run {spec:not-callable}", "has no callable 'annotations'"),
    ("run {spec:exits-at-import}", "cannot import module 'tests.exits_at_import'"),
    ("run {spec:main-module}", "'__main__' is whichever program runs"),
    # files
    ("run {tmp}/missing.toml", "no such spec file"),
    ("run {file:bad.toml}", "is not valid TOML"),
    ("run {file:bad.yaml}", "is not valid YAML"),
    ("render {file:bad.json}", "is not valid JSON"),
    ("run {file:list.json}", "expected a table of settings"),
    ("run {file:spec.ini}", "unknown spec format '.ini'"),
    ("exec {tmp}/missing.yaml", "cannot read manifest"),
    ("exec {file:bad.yaml}", "manifest"),
    ("exec {file:manifest.yaml}", "spec.templates[0].script: not supported by the local executor"),
    # flags
    ("run --shards 0", "expected a positive integer"),
    ("run --shards many", "expected a positive integer"),
    ("run --parallel -1", "expected a positive integer"),
    ("run --run-id Not_A_Label", "must be a DNS-1123 label"),
    ("run --resume --store {tmp}/empty", "no run of 'rosenbrock' with this spec"),
    ("render --kind daily", "invalid choice"),
    ("render --kind cron", "needs at least one --cron schedule"),
    ("render --cpu-limit 2cores", "'resource flags.cpu_limit'"),
    ("render --run-id UPPER", "must be a DNS-1123 label"),
    ("exec {file:manifest.yaml} -p broken", "-p expects NAME=VALUE"),
    ("submit --poll 0", "expected a positive number of seconds"),
    ("frobnicate", "invalid choice"),
    # stores
    ("run --store gs://bucket/x", "unsupported store scheme 'gs://'"),
    ("run --store ftp://host/x", "unsupported store scheme 'ftp://'"),
    ("render --store file://host/x", "file:///absolute/path"),
    ("run --store s3://", "S3 URI needs a bucket"),
    ("run --store s3://Bad_Bucket/x", "not a valid S3 bucket name"),
    ("run --store s3://no-such-bucket/x", "bucket 'no-such-bucket' does not exist"),
    ("run {spec:good} --store {tmp}/good.toml", "good.toml is a file, not a folder"),
    ("run --store file:///tmp/x%00y", "holds a NUL character"),
    ("run --store file:///tmp/x%FF%FE", "is not UTF-8 text"),
    ("run --store file:///tmp/runs?a=1", "has a query or a fragment"),
    ("run {spec:good} --store {tmp}/good.toml/runs", "is below a file"),
    # flags that override a spec field go through the spec's own validation
    ("run {spec:good} --shards 13", "spec field 'shards': is 13 but the space has only 12 rows"),
    ("render {spec:good} --shards 13", "spec field 'shards': is 13 but the space has only 12 rows"),
    ("submit {spec:good} --shards 13", "spec field 'shards': is 13 but the space has only 12 rows"),
    # a Workflow's status holds one node per pod: more than fit in etcd's object limit
    ("render --shards 4001", "4,001 shards do not fit in a Workflow's status"),
    ("submit --shards 4001", "--node-status-offload"),
    ("run --store s3://{bucket}/x {env:TTG_S3_ATTEMPTS=many}", "TTG_S3_ATTEMPTS must be a number"),
    (
        "run {spec:good} --store {tmp}/runs {env:TTG_PROGRESS_SECONDS=abc}",
        "TTG_PROGRESS_SECONDS must be",
    ),
    (
        "run {spec:good} --store {tmp}/runs {env:TTG_PROGRESS_SECONDS=-1}",
        "TTG_PROGRESS_SECONDS must be",
    ),
    ("run --store s3://{bucket}/x {env:AWS_SECRET_ACCESS_KEY=wrong}", "SignatureDoesNotMatch"),
    ("run --store s3://{bucket}/x {env:AWS_ACCESS_KEY_ID=nobody}", "InvalidAccessKeyId"),
    # the Argo Server's settings
    ("status some-run {env:ARGO_SERVER=}", "ARGO_SERVER"),
    ("status some-run {env:ARGO_SERVER=localhost:2746} {env:ARGO_SECURE=maybe}", "ARGO_SECURE"),
]


def expand(line: str, tmp: Path, monkeypatch: pytest.MonkeyPatch, s3: S3Server) -> list[str]:
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TTG_S3_ATTEMPTS", "1")
    for variable in ("ARGO_SERVER", "ARGO_SECURE", "ARGO_TOKEN", "ARGO_NAMESPACE"):
        monkeypatch.delenv(variable, raising=False)
    args = []
    for word in line.split():
        env = re.fullmatch(r"\{env:(\w+)=(.*)\}", word)
        if env:
            monkeypatch.setenv(env[1], env[2])
            continue
        spec = re.fullmatch(r"\{spec:([\w-]+)\}", word)
        if spec:
            (tmp / f"{spec[1]}.toml").write_text(SPECS[spec[1]])
            word = str(tmp / f"{spec[1]}.toml")
        document = re.fullmatch(r"\{file:([\w.-]+)\}", word)
        if document:
            (tmp / document[1]).write_text(MALFORMED[document[1]])
            word = str(tmp / document[1])
        args.append(word.replace("{tmp}", str(tmp)).replace("{bucket}", "ttg-catalogue"))
    return args


def test_the_catalogue_has_at_least_forty_distinct_bad_inputs() -> None:
    assert len({line for line, _ in CATALOGUE}) >= 40


@pytest.mark.parametrize("line,expected", CATALOGUE, ids=[line for line, _ in CATALOGUE])
def test_bad_input_exits_2_with_one_to_three_lines_and_no_traceback(
    line: str,
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    s3_server: S3Server,
) -> None:
    args = expand(line, tmp_path, monkeypatch, s3_server)
    monkeypatch.chdir(tmp_path)  # the default ./runs store lands in the scratch folder
    try:
        code = main(args)
    except SystemExit as exit_:  # argparse's own errors
        code = int(exit_.code or 0)
    stderr = capsys.readouterr().err
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert 1 <= len(lines) <= 3, stderr
    assert expected in stderr, stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    "args,env",
    [
        (["status", "some-run"], {"ARGO_NAMESPACE": "ttg\n", "ARGO_SERVER": "localhost:1"}),
        (["run", "--run-id", "nightly\n"], {}),
        (["render", "--run-id", "nightly\n"], {}),
        (["results", "nightly\n"], {}),
    ],
    ids=["namespace", "run id", "render run id", "results run id"],
)
def test_a_name_with_a_trailing_newline_is_refused_not_matched(
    args: list[str],
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`$` in a pattern also matches before a final newline; every name check must not."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    code = main(args)
    stderr = capsys.readouterr().err
    assert code == 2 and "Traceback" not in stderr, stderr
    assert not (tmp_path / "runs").exists()


def test_a_manifest_task_or_parameter_name_with_a_trailing_newline_is_refused() -> None:
    from workflows.manifest import ManifestError, parse_workflow

    def manifest(task: str, parameter: str) -> dict[str, object]:
        return {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": {"generateName": "x-"},
            "spec": {
                "entrypoint": "main",
                "arguments": {"parameters": [{"name": parameter, "value": "1"}]},
                "templates": [
                    {"name": "main", "dag": {"tasks": [{"name": task, "template": "leaf"}]}},
                    {"name": "leaf", "container": {"image": "x", "command": ["true"]}},
                ],
            },
        }

    parse_workflow(manifest("a", "p"))  # the well-formed one passes
    for task, parameter in (("a\n", "p"), ("a", "p\n")):
        with pytest.raises(ManifestError):
            parse_workflow(manifest(task, parameter))
