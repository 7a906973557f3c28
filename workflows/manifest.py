"""Parse an Argo Workflow manifest and check it against the subset the local executor runs.

`exec` is a local Argo for a subset, so it must refuse what it cannot run faithfully *before*
any task starts, with one line naming the exact place, e.g.
``spec.templates[1].script: not supported by the local executor``. Everything is therefore
checked here, once: the shape of every object, template and dependency references, cycles,
and every ``{{...}}`` variable against the scope it is used in. What passes becomes small
frozen dataclasses that `workflows.local` runs without further checks.

Supported variables (whitespace inside the braces allowed, as in Argo):
``{{workflow.name}}``, ``{{workflow.parameters.NAME}}``, ``{{inputs.parameters.NAME}}``,
``{{item}}``, ``{{item.KEY}}``, ``{{tasks.NAME.outputs.parameters.P}}``.

Cluster-only settings with no local effect are accepted and ignored; `IGNORED` lists them and
is the one place to extend. Variables inside ignored settings are neither evaluated nor checked:
they never reach a local process (template metrics, for instance, use ``{{status}}``).

A manifest is untrusted input, so everything about it is bounded before it is walked, and a
refusal echoes at most a short excerpt of a user's value (`shown`): the text (1.5 MiB, the
most etcd stores in one object), the values once YAML aliases are expanded (an alias bomb of
a few hundred bytes can stand for 10^9 of them; a self-referencing alias for infinitely many),
their nesting (100 levels), loops (100,000 items: ten times the 10,000 shards a sweep may have)
and template calls (99 templates deep, as Argo's controller, which fails a node at stack
depth 100). Every walk of the model is iterative, so none of these can exhaust the stack.
"""

from __future__ import annotations

import bisect
import functools
import json
import re
import reprlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, NoReturn

import yaml

from workflows.retries import ExpressionError, RetryExpression, parse_expression

API_VERSION = "argoproj.io/v1alpha1"

# Bounds on what a manifest may make the executor hold or walk (see the module docstring).
MAX_MANIFEST_BYTES = 1536 * 1024  # etcd's default request limit: no cluster stores more
MAX_MANIFEST_VALUES = 1_000_000  # mappings, lists and scalars, counted with aliases expanded
MAX_VALUE_DEPTH = 100  # mappings and lists inside one another
MAX_LOOP_ITEMS = 100_000  # items of one withItems / withParam / withSequence loop
MAX_TEMPLATE_DEPTH = 99  # templates on one call chain, entrypoint and leaf included

# Keys the local executor reads and honours, per kind of object.
SUPPORTED: dict[str, frozenset[str]] = {
    "workflow": frozenset({"apiVersion", "kind", "metadata", "spec"}),
    "metadata": frozenset({"name", "generateName"}),
    "spec": frozenset(
        {"entrypoint", "arguments", "parallelism", "templates", "activeDeadlineSeconds", "volumes"}
    ),
    "arguments": frozenset({"parameters"}),
    "argument": frozenset({"name", "value"}),
    "template": frozenset(
        {
            "name",
            "inputs",
            "outputs",
            "dag",
            "container",
            "retryStrategy",
            "parallelism",
            "activeDeadlineSeconds",
            "timeout",
        }
    ),
    "inputs": frozenset({"parameters"}),
    "input": frozenset({"name", "value", "default"}),
    "outputs": frozenset({"parameters"}),
    "output": frozenset({"name", "valueFrom"}),
    "output.valueFrom": frozenset({"path", "default"}),
    "retryStrategy": frozenset({"limit", "retryPolicy", "expression"}),
    "dag": frozenset({"tasks"}),
    "task": frozenset(
        {
            "name",
            "template",
            "arguments",
            "dependencies",
            "depends",
            "withItems",
            "withParam",
            "withSequence",
        }
    ),
    "withSequence": frozenset({"count", "start", "end", "format"}),
    "container": frozenset({"command", "args", "env", "workingDir", "volumeMounts"}),
    "volumeMount": frozenset({"name", "mountPath", "subPath"}),
    "env": frozenset({"name", "value", "valueFrom"}),
    "env.valueFrom": frozenset({"secretKeyRef"}),
    "secretKeyRef": frozenset({"name", "key", "optional"}),
}

# Accepted but ignored locally: cluster-only settings with no local effect. The project's own
# rendered Workflow carries these, so refusing them would refuse our own output.
IGNORED: dict[str, frozenset[str]] = {
    "metadata": frozenset({"namespace", "labels", "annotations"}),
    "spec": frozenset(
        {
            "serviceAccountName",
            "podGC",
            "ttlStrategy",
            "securityContext",
            "podMetadata",
            "workflowMetadata",
            "podDisruptionBudget",
            "nodeSelector",
            "tolerations",
            "affinity",
            "imagePullSecrets",
            "priorityClassName",
            "archiveLogs",
            "metrics",
        }
    ),
    "template": frozenset(
        {
            "metadata",
            "metrics",
            "nodeSelector",
            "tolerations",
            "affinity",
            "serviceAccountName",
            "securityContext",
        }
    ),
    "container": frozenset(
        {
            "image",
            "imagePullPolicy",
            "resources",
            "securityContext",
            "ports",
            "name",
        }
    ),
    "retryStrategy": frozenset({"backoff"}),
    "volumeMount": frozenset({"readOnly", "mountPropagation", "recursiveReadOnly"}),
    "argument": frozenset({"description"}),
    "input": frozenset({"description"}),
    "output": frozenset({"description"}),
}

RETRY_POLICIES = frozenset({"Always", "OnFailure", "OnError", "OnTransientError"})

_FIELD_NAME = re.compile(r"\A[a-zA-Z0-9][-a-zA-Z0-9]*\Z")  # Argo's template and task names
_PARAM_NAME = re.compile(r"\A[-a-zA-Z0-9_]+\Z")  # Argo's parameter names
_VARIABLE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_TASK_OUTPUT = re.compile(r"\{\{\s*tasks\.([a-zA-Z0-9][-a-zA-Z0-9]*)\.outputs\.parameters\.")
_DEPENDS_TERM = re.compile(r"^\s*([a-zA-Z0-9][-a-zA-Z0-9]*)(\.Succeeded)?\s*$")
_FORMS = re.compile(
    r"^(?:workflow\.name"
    r"|workflow\.parameters\.(?P<wp>[-a-zA-Z0-9_]+)"
    r"|inputs\.parameters\.(?P<ip>[-a-zA-Z0-9_]+)"
    r"|(?P<item>item)(?:\.(?P<ik>.+))?"
    r"|tasks\.(?P<t>[a-zA-Z0-9][-a-zA-Z0-9]*)\.outputs\.parameters\.(?P<tp>[-a-zA-Z0-9_]+))$",
    re.DOTALL,
)
_SUPPORTED_FORMS = (
    "workflow.name, workflow.parameters.NAME, inputs.parameters.NAME, item, item.KEY, "
    "tasks.NAME.outputs.parameters.P"
)


class ManifestError(ValueError):
    """A manifest the local executor refuses; the message is one line naming the path."""


class UnresolvedError(KeyError):
    """A ``{{...}}`` variable with no value in the scope it was substituted in."""


@dataclass(frozen=True)
class Parameter:
    """A named string; ``value`` None means it must be supplied by the caller."""

    name: str
    value: str | None


@dataclass(frozen=True)
class OutputParameter:
    """An output read from a file the container wrote (``valueFrom.path``)."""

    name: str
    path: str
    default: str | None


@dataclass(frozen=True)
class SecretRef:
    """``valueFrom.secretKeyRef``; locally read from the environment variable `variable`."""

    name: str
    key: str
    optional: bool


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str
    secret: SecretRef | None


@dataclass(frozen=True)
class Mount:
    """A container's mount of an ``emptyDir`` volume: locally a folder private to each attempt.

    `path` is the mountPath without a trailing slash; `sub_path` the folder of the volume
    mounted there ("" for the whole volume)."""

    volume: str
    path: str
    sub_path: str


@dataclass(frozen=True)
class Container:
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: tuple[EnvVar, ...]
    working_dir: str | None
    mounts: tuple[Mount, ...] = ()  # emptyDir mounts only: others are host paths locally


@dataclass(frozen=True)
class Sequence:
    """``withSequence``; strings because each may hold a variable."""

    count: str | None
    start: str | None
    end: str | None
    format: str | None


@dataclass(frozen=True)
class Dependency:
    """One term of ``depends``: a task name, optionally ``.Succeeded``."""

    task: str
    succeeded_only: bool


@dataclass(frozen=True)
class DagTask:
    name: str
    template: str
    arguments: tuple[Parameter, ...]
    depends: tuple[Dependency, ...]
    with_items: tuple[Any, ...] | None
    with_param: str | None
    with_sequence: Sequence | None
    reads: frozenset[str] = frozenset()  # tasks whose outputs its fields use

    @property
    def looped(self) -> bool:
        return (
            self.with_items is not None
            or self.with_param is not None
            or self.with_sequence is not None
        )


@dataclass(frozen=True)
class RetryStrategy:
    limit: str
    policy: str | None
    expression: RetryExpression | None = None  # the subset `workflows.retries` evaluates


@dataclass(frozen=True)
class Template:
    """Exactly one of `container` and `dag` is set."""

    name: str
    inputs: tuple[Parameter, ...]
    outputs: tuple[OutputParameter, ...]
    container: Container | None
    dag: tuple[DagTask, ...] | None
    retry: RetryStrategy | None
    parallelism: int | None
    # Container templates only; strings because each may hold a variable.
    deadline: str | None = None  # activeDeadlineSeconds: seconds per attempt (per pod)
    timeout: str | None = None  # a duration ("30s", "5m") for the node, all attempts together


@dataclass(frozen=True)
class Workflow:
    name: str | None
    generate_name: str | None
    entrypoint: str
    parameters: tuple[Parameter, ...]
    parallelism: int | None
    templates: Mapping[str, Template]
    deadline: int | None = None  # spec.activeDeadlineSeconds


def secret_variable(key: str) -> str:
    """The environment variable a secret key is read from locally: ``aws-key.id`` → ``AWS_KEY_ID``."""
    return re.sub(r"[^A-Za-z0-9]", "_", key.upper())


def substitute(text: str, values: Mapping[str, str], paths: Mapping[str, str] | None = None) -> str:
    """Replace every ``{{name}}`` in one pass (values are not rescanned), as Argo does.

    `paths` maps folders (emptyDir mount paths) to the folders that stand for them locally.
    Only the literal text is rewritten — what the manifest wrote, never a substituted value —
    where a path starts (at the start, or after a space, a quote or one of ``=:,;|&<>([{``)
    with such a folder and goes on at a component boundary (the end, ``/``, a space, a quote
    or one of ``:,;|&<>)]}``): ``/tmp/out`` and ``--out=/tmp`` are rewritten for a mount at
    ``/tmp``, but ``/tmpfile``, ``/var/tmp`` and ``{{inputs.parameters.dir}}/tmp`` are not."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name not in values:
            raise UnresolvedError(name)
        return values[name]

    found = _find_variables(text)
    edits = [(m.start(), m.end(), value(m)) for m in found]
    if paths:
        ends = [m.end() for m in found]
        for m in _path_pattern(tuple(sorted(paths, key=len, reverse=True))).finditer(text):
            i = bisect.bisect_right(ends, m.start())  # the first variable ending after it starts
            if i == len(found) or found[i].start() >= m.end():  # not inside a variable
                edits.append((m.start(), m.end(), paths[m.group(1)]))
        edits.sort()
    pieces: list[str] = []
    position = 0
    for start, end, replacement in edits:
        pieces += [text[position:start], replacement]
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


@functools.lru_cache(maxsize=64)
def _path_pattern(folders: tuple[str, ...]) -> re.Pattern[str]:
    """Where a path starting with one of `folders` (longest first) is written in a string."""
    alternatives = "|".join(re.escape(folder) for folder in folders)
    before = r"""(?:^|(?<=[\s'"`=:,;|&<>(\[{]))"""
    after = r"""(?=\Z|[/\s'"`:,;|&<>)\]}])"""
    return re.compile(f"{before}({alternatives}){after}")


def variables(text: str) -> list[str]:
    """The names of the ``{{...}}`` variables in `text`, as written (stripped)."""
    return [match.group(1).strip() for match in _find_variables(text)]


def _find_variables(text: str) -> list[re.Match[str]]:
    """The ``{{...}}`` in `text`, in linear time. A search for ``}}`` from each of n unclosed
    ``{{`` would cost n^2 steps (minutes for a 200 KB string), so none runs past the last
    ``}}``: before it, every ``{{`` finds its ``}}`` and the match consumes the scan."""
    last = text.rfind("}}")
    return [] if last < 0 else list(_VARIABLE.finditer(text, 0, last + 2))


def shown(value: Any) -> str:
    """A user's value as a message echoes it: its repr, cut to a few dozen characters, one
    line. Every refusal formats user values with this, so a huge value cannot flood the
    terminal (or take minutes to format)."""
    try:
        return _SHORT.repr(value)
    except Exception:  # e.g. an int too long to convert to text
        return f"<{type(value).__name__}>"


def clipped(text: str) -> str:
    """A user's text cut as `shown` cuts it, for a message that quotes it no further."""
    return text if len(text) <= _SHORT.maxstring else shown(text)[1:-1]


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80
_SHORT.maxlong = 40
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 6
_SHORT.maxlevel = 3


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1,
    "m": 60,
    "h": 3600,
}


def parse_duration(text: str) -> float:
    """Seconds in a Go duration (``30s``, ``1h30m``, ``1.5m``, ``-5s``, ``0``), the format of
    a template's ``timeout``; ValueError otherwise. A bare number of seconds is accepted too,
    as Argo's controller accepts it at run time (its linter refuses one written literally)."""
    rest = text.strip()
    if re.fullmatch(r"[-+]?\d+", rest):
        return float(int(rest))
    sign = -1.0 if rest.startswith("-") else 1.0
    rest = rest[1:] if rest[:1] in ("-", "+") else rest
    seconds, position = 0.0, 0
    while position < len(rest):
        part = _DURATION_PART.match(rest, position)
        if part is None:
            break
        seconds += float(part.group(1)) * _DURATION_UNITS[part.group(2)]
        position = part.end()
    if not rest or position < len(rest):
        raise ValueError(f"{shown(text)} is not a duration such as '30s', '5m' or '1h30m'")
    return sign * seconds


def decode_manifest(data: bytes, source: str) -> str:
    """The text of a manifest read as bytes; read at most ``MAX_MANIFEST_BYTES + 1`` of them,
    so that an endless or huge input is refused without being read whole."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{source}: {_too_large()}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            f"{source}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})"
        ) from None


def _too_large() -> str:
    return (
        f"larger than {MAX_MANIFEST_BYTES:,} bytes, the most a cluster stores in one object"
        " (etcd's request limit)"
    )


def load_manifest(text: str) -> dict[str, Any]:
    """Parse one YAML or JSON document into a mapping; anything else is a `ManifestError`.

    Bounded in size (`MAX_MANIFEST_BYTES`) before parsing and in values, aliases expanded,
    and nesting (`check_size`) after; libyaml parses it where it is installed (6x faster
    than PyYAML's own parser, and it refuses nesting past 1,000 levels itself)."""
    if len(text) * 4 > MAX_MANIFEST_BYTES and len(text.encode("utf-8", "replace")) > (
        MAX_MANIFEST_BYTES
    ):
        raise ManifestError(f"manifest: {_too_large()}")
    try:
        documents = [doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]
    except yaml.YAMLError as exc:
        raise ManifestError(f"manifest: not valid YAML or JSON: {_yaml_problem(exc)}") from None
    except RecursionError:  # PyYAML's own parser recurses once per level of nesting
        raise ManifestError(f"manifest: nested more than {MAX_VALUE_DEPTH} levels deep") from None
    except (ValueError, OverflowError) as exc:  # a scalar no constructor takes: 5,000 digits
        problem = (str(exc).splitlines() or [type(exc).__name__])[0]
        if "integer string conversion" in problem:
            problem = "an integer of more than 4,300 digits"
        raise ManifestError(f"manifest: not valid YAML or JSON: {problem[:200]}") from None
    if len(documents) != 1:
        raise ManifestError(f"manifest: expected one document, found {len(documents)}")
    if not isinstance(documents[0], dict):
        raise ManifestError("manifest: expected a mapping (a Workflow object) at the top level")
    check_size(documents[0])
    return documents[0]


def check_size(manifest: Any) -> None:
    """Refuse a manifest of more than `MAX_MANIFEST_VALUES` values once YAML aliases are
    expanded, nested more than `MAX_VALUE_DEPTH` deep, or containing itself.

    Aliases make a loaded manifest a graph that every later walk expands, so this counts what
    those walks would visit, iteratively, and stops at the first value over a bound: an alias
    bomb is refused after a million steps, whatever it stands for, and ``&a [*a]`` at once."""
    count = 0
    keys: list[Any] = []  # the path to the container being walked
    open_ids: list[int] = []  # its ancestors (and itself), to find a value inside itself
    on_path: set[int] = set()
    stack: list[Iterator[tuple[Any, Any]]] = [iter([("", manifest)])]
    while stack:
        try:
            key, value = next(stack[-1])
        except StopIteration:
            stack.pop()
            if open_ids:
                on_path.discard(open_ids.pop())
                keys.pop()
            continue
        count += 1
        if count > MAX_MANIFEST_VALUES:
            _fail(
                _key_path([*keys, key]),
                f"the manifest holds more than {MAX_MANIFEST_VALUES:,} values once YAML aliases"
                " are expanded",
            )
        if not isinstance(value, dict | list | tuple):
            continue
        if id(value) in on_path:
            _fail(_key_path([*keys, key]), "contains itself (a self-referencing YAML alias)")
        if len(open_ids) >= MAX_VALUE_DEPTH:
            _fail(_key_path([*keys, key]), f"nested more than {MAX_VALUE_DEPTH} levels deep")
        on_path.add(id(value))
        open_ids.append(id(value))
        keys.append(key)
        stack.append(iter(value.items()) if isinstance(value, dict) else enumerate(value))


def _key_path(keys: list[Any]) -> str:
    """``spec.templates[0].name``; the middle of a very deep path elided."""
    parts = [f"[{key}]" if isinstance(key, int) else f".{_short_key(key)}" for key in keys[1:]]
    if len(parts) > 14:  # keys[0], skipped above, is the root's own (empty) key
        parts = [*parts[:8], "...", *parts[-5:]]
    return "".join(parts).lstrip(".") or "manifest"


def _short_key(key: Any) -> str:
    text = str(key) if isinstance(key, str) else shown(key)
    return text if len(text) <= 60 else f"{text[:28]}...{text[-28:]}"


def parse_workflow(manifest: Mapping[str, Any]) -> Workflow:
    """Check a loaded manifest against the subset; return it typed, or raise `ManifestError`."""
    check_size(manifest)
    return _Parser().parse(as_workflow(manifest))


# What a CronWorkflow adds around its workflowSpec: scheduling, which has no meaning for one
# local run started now.
CRON_ONLY_KEYS = frozenset(
    {
        "schedule",
        "schedules",
        "timezone",
        "concurrencyPolicy",
        "startingDeadlineSeconds",
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
        "suspend",
        "stopStrategy",
        "when",
        "workflowSpec",
        "workflowMetadata",
    }
)


def as_workflow(manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    """The Workflow that one run of a WorkflowTemplate or CronWorkflow creates, as Argo does.

    A WorkflowTemplate's spec is a workflow spec; a CronWorkflow's is its `workflowSpec`. The
    run is named `<name>-` plus five random characters. Anything else passes unchanged.
    """
    kind = manifest.get("kind") if isinstance(manifest, Mapping) else None
    if kind not in ("WorkflowTemplate", "CronWorkflow"):
        return manifest
    metadata = _mapping(manifest.get("metadata"), "metadata")
    name = _string(metadata.get("name"), "metadata.name")
    spec = _mapping(manifest.get("spec"), "spec")
    if kind == "CronWorkflow":
        for key in spec:
            if key not in CRON_ONLY_KEYS:
                _fail(f"spec.{key}", "not a CronWorkflow field the local executor knows")
        spec = _mapping(spec.get("workflowSpec"), "spec.workflowSpec")
    return {
        "apiVersion": manifest.get("apiVersion"),
        "kind": "Workflow",
        "metadata": {"generateName": f"{name}-"},
        "spec": spec,
    }


try:  # libyaml's parser where installed: 6x faster, and never deeper than 1,000 levels
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - PyYAML without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]


class _Loader(_SafeLoader):
    """Safe YAML without timestamp resolution: Argo keeps ``2024-01-01`` a string."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The parser's complaint, cut short: it may quote the input (an alias or a tag)."""
    problem = getattr(exc, "problem", None) or (str(exc).splitlines() or ["?"])[0]
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{problem[:200]}{where}"


def _fail(path: str, message: str) -> NoReturn:
    raise ManifestError(f"{path}: {message}".replace("\r", " ").replace("\n", " "))


def _mapping(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        _fail(path, f"expected a mapping, got {_kind(value)}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        _fail(path, f"expected a list, got {_kind(value)}")
    return value


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        _fail(path, f"expected a string, got {_kind(value)}")
    return value


def _scalar(value: Any, path: str) -> str:
    """A parameter value: strings as they are, numbers and booleans as JSON writes them."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return scalar_text(value)
    _fail(path, f"expected a string, got {_kind(value)}")


def _int(value: Any, path: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        _fail(path, f"expected an integer >= {minimum}, got {shown(value)}")
    return value


def _kind(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def scalar_text(value: Any) -> str:
    """How Argo renders a JSON value inside a string: strings raw, the rest as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _check_keys(obj: Mapping[str, Any], path: str, kind: str) -> None:
    allowed = SUPPORTED[kind] | IGNORED.get(kind, frozenset())
    for key in obj:
        if key not in allowed:
            where = _short_key(key)
            _fail(f"{path}.{where}" if path else where, "not supported by the local executor")


@dataclass(frozen=True)
class _Use:
    """A string read from the manifest, to check its variables once the whole model is known."""

    path: str
    text: str
    scope: str  # "arguments" (spec.arguments), "global", "template", "task", "task-arguments"
    template: str | None = None
    task: str | None = None


class _Parser:
    """Parse in one pass, collecting strings; then check references and variables."""

    def __init__(self) -> None:
        self.uses: list[_Use] = []
        self.template_paths: dict[str, str] = {}
        self.task_paths: dict[tuple[str, str], str] = {}
        self.depends_field: dict[tuple[str, str], str] = {}
        self.empty_dirs: frozenset[str] = frozenset()  # names of the emptyDir volumes
        self.volumes: frozenset[str] = frozenset()  # names of all volumes

    def parse(self, raw: Mapping[str, Any]) -> Workflow:
        raw = _mapping(raw, "manifest")
        _check_keys(raw, "", "workflow")
        api = raw.get("apiVersion")
        if api != API_VERSION:
            _fail("apiVersion", f"expected {API_VERSION!r}, got {shown(api)}")
        if raw.get("kind") != "Workflow":
            _fail(
                "kind",
                f"{shown(raw.get('kind'))} is not supported by the local executor"
                " (Workflow, WorkflowTemplate or CronWorkflow)",
            )
        name, generate_name = self._metadata(_mapping(raw.get("metadata"), "metadata"))
        spec = _mapping(raw.get("spec"), "spec")
        _check_keys(spec, "spec", "spec")
        self._volumes(spec.get("volumes"))
        deadline = spec.get("activeDeadlineSeconds")
        workflow = Workflow(
            name=name,
            generate_name=generate_name,
            entrypoint=_string(spec.get("entrypoint"), "spec.entrypoint"),
            parameters=self._workflow_parameters(spec.get("arguments")),
            parallelism=None
            if spec.get("parallelism") is None
            else _int(spec["parallelism"], "spec.parallelism", 1),
            templates=self._templates(spec.get("templates")),
            deadline=None if deadline is None else _int(deadline, "spec.activeDeadlineSeconds", 0),
        )
        _Checker(workflow, self).check()
        return workflow

    def _volumes(self, raw: Any) -> None:
        """Only names and kinds matter locally: emptyDir is emulated, the rest are host paths."""
        names: set[str] = set()
        empty_dirs: set[str] = set()
        for i, entry in enumerate(_list(raw or [], "spec.volumes")):
            at = f"spec.volumes[{i}]"
            name = _string(_mapping(entry, at).get("name"), f"{at}.name")
            if name in names:
                _fail(f"{at}.name", f"duplicate volume name {shown(name)}")
            names.add(name)
            if entry.get("emptyDir") is not None:
                _mapping(entry["emptyDir"], f"{at}.emptyDir")  # medium, sizeLimit: no effect
                empty_dirs.add(name)
        self.volumes, self.empty_dirs = frozenset(names), frozenset(empty_dirs)

    def _metadata(self, metadata: dict[str, Any]) -> tuple[str | None, str | None]:
        _check_keys(metadata, "metadata", "metadata")
        name = metadata.get("name")
        generate_name = metadata.get("generateName")
        if name is None and generate_name is None:
            _fail("metadata", "needs 'name' or 'generateName'")
        if name is not None:
            self.uses.append(_Use("metadata.name", _string(name, "metadata.name"), "global"))
        if generate_name is not None:
            text = _string(generate_name, "metadata.generateName")
            self.uses.append(_Use("metadata.generateName", text, "global"))
        return name, generate_name

    def _workflow_parameters(self, arguments: Any) -> tuple[Parameter, ...]:
        if arguments is None:
            return ()
        arguments = _mapping(arguments, "spec.arguments")
        _check_keys(arguments, "spec.arguments", "arguments")
        return self._parameters(
            arguments.get("parameters"), "spec.arguments.parameters", "argument", "arguments"
        )

    def _parameters(
        self,
        raw: Any,
        path: str,
        kind: str,
        scope: str,
        template: str | None = None,
        task: str | None = None,
    ) -> tuple[Parameter, ...]:
        params: list[Parameter] = []
        seen: set[str] = set()
        for i, entry in enumerate(_list(raw or [], path)):
            at = f"{path}[{i}]"
            entry = _mapping(entry, at)
            _check_keys(entry, at, kind)
            name = _string(entry.get("name"), f"{at}.name")
            if not _PARAM_NAME.match(name):
                _fail(f"{at}.name", f"{shown(name)} is not a valid parameter name")
            if name in seen:
                _fail(f"{at}.name", f"duplicate parameter {shown(name)}")
            seen.add(name)
            value: str | None = None
            for field in ("value", "default"):  # an input's `value` wins over its `default`
                if value is None and entry.get(field) is not None:
                    value = _scalar(entry[field], f"{at}.{field}")
                    self.uses.append(_Use(f"{at}.{field}", value, scope, template, task))
            params.append(Parameter(name, value))
        return tuple(params)

    def _templates(self, raw: Any) -> dict[str, Template]:
        templates: dict[str, Template] = {}
        for i, entry in enumerate(_list(raw, "spec.templates")):
            path = f"spec.templates[{i}]"
            template = self._template(_mapping(entry, path), path)
            if template.name in templates:
                _fail(f"{path}.name", f"duplicate template name {shown(template.name)}")
            templates[template.name] = template
            self.template_paths[template.name] = path
        return templates

    def _template(self, raw: dict[str, Any], path: str) -> Template:
        _check_keys(raw, path, "template")
        name = _string(raw.get("name"), f"{path}.name")
        if not _FIELD_NAME.match(name):
            _fail(f"{path}.name", f"{shown(name)} is not a valid template name")
        has_dag, has_container = raw.get("dag") is not None, raw.get("container") is not None
        if has_dag == has_container:
            _fail(path, "a template needs exactly one of 'dag' and 'container'")
        inputs = self._inputs(raw.get("inputs"), f"{path}.inputs", name)
        outputs = self._outputs(raw.get("outputs"), f"{path}.outputs", name)
        if has_dag and outputs:
            _fail(f"{path}.outputs", "only container templates can have outputs locally")
        retry = self._retry(raw.get("retryStrategy"), f"{path}.retryStrategy", name)
        if has_dag and retry is not None:
            _fail(f"{path}.retryStrategy", "only container templates can be retried locally")
        parallelism = raw.get("parallelism")
        deadline, timeout = self._limits(raw, path, name, has_dag)
        return Template(
            name=name,
            inputs=inputs,
            outputs=outputs,
            container=self._container(raw["container"], f"{path}.container", name)
            if has_container
            else None,
            dag=self._dag(raw["dag"], f"{path}.dag", name) if has_dag else None,
            retry=retry,
            parallelism=None
            if parallelism is None
            else _int(parallelism, f"{path}.parallelism", 1),
            deadline=deadline,
            timeout=timeout,
        )

    def _limits(
        self, raw: dict[str, Any], path: str, template: str, has_dag: bool
    ) -> tuple[str | None, str | None]:
        """``activeDeadlineSeconds`` (an IntOrString) and ``timeout`` (a duration), as Argo's
        linter takes them: on container templates only, literal or one variable."""
        deadline, timeout = raw.get("activeDeadlineSeconds"), raw.get("timeout")
        for key, value in (("activeDeadlineSeconds", deadline), ("timeout", timeout)):
            if value is not None and has_dag:
                _fail(f"{path}.{key}", "only container templates have one (as Argo)")
        if deadline is not None:
            at = f"{path}.activeDeadlineSeconds"
            deadline = _scalar(deadline, at)
            self.uses.append(_Use(at, deadline, "template", template))
            literal = "{{" not in deadline
            if literal and not (re.fullmatch(r"[-+]?\d+", deadline) and int(deadline) > 0):
                _fail(at, f"expected a positive number of seconds, got {shown(deadline)}")
            if not literal and not (deadline.startswith("{{") and deadline.endswith("}}")):
                _fail(at, f"expected a number or one variable, got {shown(deadline)}")
        if timeout is not None:
            at = f"{path}.timeout"
            timeout = _string(timeout, at)
            self.uses.append(_Use(at, timeout, "template", template))
            if "{{" not in timeout:
                if re.fullmatch(r"\s*[-+]?\d+\s*", timeout):
                    _fail(at, f"{shown(timeout)} needs a unit, such as '30s' or '5m' (as Argo)")
                try:
                    parse_duration(timeout)
                except ValueError as exc:
                    _fail(at, str(exc))
        return deadline, timeout

    def _inputs(self, raw: Any, path: str, template: str) -> tuple[Parameter, ...]:
        if raw is None:
            return ()
        raw = _mapping(raw, path)
        _check_keys(raw, path, "inputs")
        return self._parameters(
            raw.get("parameters"), f"{path}.parameters", "input", "template", template
        )

    def _outputs(self, raw: Any, path: str, template: str) -> tuple[OutputParameter, ...]:
        if raw is None:
            return ()
        raw = _mapping(raw, path)
        _check_keys(raw, path, "outputs")
        outputs: list[OutputParameter] = []
        for i, entry in enumerate(_list(raw.get("parameters") or [], f"{path}.parameters")):
            at = f"{path}.parameters[{i}]"
            entry = _mapping(entry, at)
            _check_keys(entry, at, "output")
            name = _string(entry.get("name"), f"{at}.name")
            if not _PARAM_NAME.match(name) or any(o.name == name for o in outputs):
                _fail(f"{at}.name", f"{shown(name)} is not a valid, unique parameter name")
            source = _mapping(entry.get("valueFrom"), f"{at}.valueFrom")
            _check_keys(source, f"{at}.valueFrom", "output.valueFrom")
            file = _string(source.get("path"), f"{at}.valueFrom.path")
            self.uses.append(_Use(f"{at}.valueFrom.path", file, "template", template))
            default = None
            if source.get("default") is not None:
                default = _scalar(source["default"], f"{at}.valueFrom.default")
                self.uses.append(_Use(f"{at}.valueFrom.default", default, "template", template))
            outputs.append(OutputParameter(name, file, default))
        return tuple(outputs)

    def _retry(self, raw: Any, path: str, template: str) -> RetryStrategy | None:
        if raw is None:
            return None
        raw = _mapping(raw, path)
        _check_keys(raw, path, "retryStrategy")
        limit = _scalar(raw.get("limit", "0"), f"{path}.limit")
        if "{{" not in limit and not re.fullmatch(r"[0-9]{1,9}", limit):
            _fail(f"{path}.limit", f"expected a non-negative integer, got {shown(limit)}")
        self.uses.append(_Use(f"{path}.limit", limit, "template", template))
        policy = raw.get("retryPolicy")
        if policy is not None and policy not in RETRY_POLICIES:
            _fail(
                f"{path}.retryPolicy",
                f"expected one of {sorted(RETRY_POLICIES)}, got {shown(policy)}",
            )
        expression = None
        if raw.get("expression") not in (None, ""):  # "" is none, as in Argo's controller
            try:
                expression = parse_expression(_string(raw["expression"], f"{path}.expression"))
            except ExpressionError as exc:
                _fail(f"{path}.expression", str(exc))
        return RetryStrategy(limit, policy, expression)

    def _container(self, raw: Any, path: str, template: str) -> Container:
        raw = _mapping(raw, path)
        _check_keys(raw, path, "container")
        command = self._strings(raw.get("command"), f"{path}.command", template)
        if not command:
            _fail(
                f"{path}.command", "required locally (there is no image entrypoint to fall back on)"
            )
        working_dir = raw.get("workingDir")
        if working_dir is not None:
            working_dir = _string(working_dir, f"{path}.workingDir")
            self.uses.append(_Use(f"{path}.workingDir", working_dir, "template", template))
        return Container(
            command=command,
            args=self._strings(raw.get("args"), f"{path}.args", template),
            env=tuple(
                self._env(entry, f"{path}.env[{i}]", template)
                for i, entry in enumerate(_list(raw.get("env") or [], f"{path}.env"))
            ),
            working_dir=working_dir,
            mounts=self._mounts(raw.get("volumeMounts"), f"{path}.volumeMounts"),
        )

    def _mounts(self, raw: Any, path: str) -> tuple[Mount, ...]:
        """The container's emptyDir mounts; mounts of other volumes are not looked into."""
        mounts: list[Mount] = []
        for i, entry in enumerate(_list(raw or [], path)):
            at = f"{path}[{i}]"
            entry = _mapping(entry, at)
            name = _string(entry.get("name"), f"{at}.name")
            if name not in self.volumes:
                _fail(f"{at}.name", f"no volume {shown(name)} in spec.volumes")
            if name not in self.empty_dirs:
                continue  # a host path locally, as before: nothing to emulate
            _check_keys(entry, at, "volumeMount")
            folder = _string(entry.get("mountPath"), f"{at}.mountPath").rstrip("/")
            if not folder.startswith("/") or "{{" in folder:
                _fail(f"{at}.mountPath", f"expected an absolute path, got {shown(folder or '/')}")
            if any(m.path == folder for m in mounts):
                _fail(f"{at}.mountPath", f"{shown(folder)} is mounted twice")
            sub_path = _string(entry.get("subPath", ""), f"{at}.subPath").strip("/")
            if "{{" in sub_path or ".." in sub_path.split("/"):
                _fail(
                    f"{at}.subPath",
                    f"expected a relative path inside the volume, got {shown(sub_path)}",
                )
            mounts.append(Mount(name, folder, sub_path))
        return tuple(mounts)

    def _strings(self, raw: Any, path: str, template: str) -> tuple[str, ...]:
        items = _list(raw or [], path)
        for i, item in enumerate(items):
            self.uses.append(
                _Use(f"{path}[{i}]", _string(item, f"{path}[{i}]"), "template", template)
            )
        return tuple(items)

    def _env(self, raw: Any, path: str, template: str) -> EnvVar:
        raw = _mapping(raw, path)
        _check_keys(raw, path, "env")
        name = _string(raw.get("name"), f"{path}.name")
        if raw.get("value") is not None and raw.get("valueFrom") is not None:
            _fail(path, "has both 'value' and 'valueFrom'")
        if raw.get("valueFrom") is None:
            value = _string(raw.get("value", ""), f"{path}.value")
            self.uses.append(_Use(f"{path}.value", value, "template", template))
            return EnvVar(name, value, None)
        source = _mapping(raw["valueFrom"], f"{path}.valueFrom")
        _check_keys(source, f"{path}.valueFrom", "env.valueFrom")
        at = f"{path}.valueFrom.secretKeyRef"
        ref = _mapping(source.get("secretKeyRef"), at)
        _check_keys(ref, at, "secretKeyRef")
        secret = SecretRef(
            name=_string(ref.get("name"), f"{at}.name"),
            key=_string(ref.get("key"), f"{at}.key"),
            optional=bool(ref.get("optional", False)),
        )
        # Secrets are resolved before any task starts, so only workflow-level variables apply.
        self.uses.append(_Use(f"{at}.name", secret.name, "global"))
        self.uses.append(_Use(f"{at}.key", secret.key, "global"))
        return EnvVar(name, "", secret)

    def _dag(self, raw: Any, path: str, template: str) -> tuple[DagTask, ...]:
        raw = _mapping(raw, path)
        _check_keys(raw, path, "dag")
        tasks: list[DagTask] = []
        names: set[str] = set()
        for i, entry in enumerate(_list(raw.get("tasks") or [], f"{path}.tasks")):
            at = f"{path}.tasks[{i}]"
            task = self._task(_mapping(entry, at), at, template)
            if task.name in names:
                _fail(f"{at}.name", f"duplicate task name {shown(task.name)}")
            names.add(task.name)
            tasks.append(task)
            self.task_paths[(template, task.name)] = at
            self.depends_field[(template, task.name)] = (
                "depends" if "depends" in entry else "dependencies"
            )
        entries = [entry for entry in raw.get("tasks") or [] if isinstance(entry, dict)]
        if any("depends" in e for e in entries) and any("dependencies" in e for e in entries):
            _fail(f"{path}.tasks", "cannot mix 'depends' and 'dependencies' in one DAG (as Argo)")
        return tuple(tasks)

    def _task(self, raw: dict[str, Any], path: str, template: str) -> DagTask:
        _check_keys(raw, path, "task")
        first_use = len(self.uses)
        name = _string(raw.get("name"), f"{path}.name")
        if not _FIELD_NAME.match(name):
            _fail(f"{path}.name", f"{shown(name)} is not a valid task name")
        loops = [
            key for key in ("withItems", "withParam", "withSequence") if raw.get(key) is not None
        ]
        if len(loops) > 1:
            _fail(f"{path}.{loops[1]}", f"cannot be combined with {loops[0]}")
        arguments: tuple[Parameter, ...] = ()
        if raw.get("arguments") is not None:
            args = _mapping(raw["arguments"], f"{path}.arguments")
            _check_keys(args, f"{path}.arguments", "arguments")
            arguments = self._parameters(
                args.get("parameters"),
                f"{path}.arguments.parameters",
                "argument",
                "task-arguments",
                template,
                name,
            )
        with_param = None
        if raw.get("withParam") is not None:
            with_param = _string(raw["withParam"], f"{path}.withParam")
            self.uses.append(_Use(f"{path}.withParam", with_param, "task", template, name))
        task = DagTask(
            name=name,
            template=_string(raw.get("template"), f"{path}.template"),
            arguments=arguments,
            depends=self._depends(raw, path),
            with_items=self._with_items(raw.get("withItems"), f"{path}.withItems", template, name),
            with_param=with_param,
            with_sequence=self._sequence(
                raw.get("withSequence"), f"{path}.withSequence", template, name
            ),
        )
        reads = {
            match.group(1)
            for use in self.uses[first_use:]
            for match in _TASK_OUTPUT.finditer(use.text)
        }
        return replace(task, reads=frozenset(reads))

    def _depends(self, raw: dict[str, Any], path: str) -> tuple[Dependency, ...]:
        if raw.get("depends") is not None and raw.get("dependencies") is not None:
            _fail(f"{path}.depends", "cannot be combined with 'dependencies'")
        if raw.get("dependencies") is not None:
            names = _list(raw["dependencies"], f"{path}.dependencies")
            return tuple(
                Dependency(_string(n, f"{path}.dependencies[{i}]"), False)
                for i, n in enumerate(names)
            )
        if raw.get("depends") is None:
            return ()
        expression = _string(raw["depends"], f"{path}.depends")
        terms = [_DEPENDS_TERM.match(term) for term in expression.split("&&")]
        if not all(terms):
            _fail(
                f"{path}.depends",
                f"only task names joined by '&&' are supported, got {shown(expression)}",
            )
        return tuple(Dependency(m.group(1), m.group(2) is not None) for m in terms if m)

    def _with_items(self, raw: Any, path: str, template: str, task: str) -> tuple[Any, ...] | None:
        if raw is None:
            return None
        items = _list(raw, path)
        if len(items) > MAX_LOOP_ITEMS:
            _fail(path, too_many_items(len(items)))
        for i, item in enumerate(items):
            if item is None:
                _fail(f"{path}[{i}]", "null items are not supported")
            for at, text in _strings_in(item, f"{path}[{i}]"):
                self.uses.append(_Use(at, text, "task", template, task))
        return tuple(items)

    def _sequence(self, raw: Any, path: str, template: str, task: str) -> Sequence | None:
        if raw is None:
            return None
        raw = _mapping(raw, path)
        _check_keys(raw, path, "withSequence")
        fields: dict[str, str | None] = {}
        for key in ("count", "start", "end", "format"):
            value = raw.get(key)
            fields[key] = None if value is None else _scalar(value, f"{path}.{key}")
            if fields[key] is None:
                continue
            text = fields[key] or ""
            self.uses.append(_Use(f"{path}.{key}", text, "task", template, task))
            if key != "format" and "{{" not in text and not re.fullmatch(r"-?\d+", text.strip()):
                _fail(f"{path}.{key}", f"expected an integer, got {shown(text)}")
        if (fields["count"] is None) == (fields["end"] is None):
            _fail(path, "needs exactly one of 'count' and 'end' (as Argo)")
        self._sequence_size(fields, path)
        return Sequence(fields["count"], fields["start"], fields["end"], fields["format"])

    @staticmethod
    def _sequence_size(fields: Mapping[str, str | None], path: str) -> None:
        """Refuse a literal sequence of more than `MAX_LOOP_ITEMS` numbers, by arithmetic.
        (One sized by workflow parameters is refused as soon as they are known, by the
        executor; one sized by task outputs when it expands.)"""
        texts = [fields[key] or "0" for key in ("start", "count", "end")]
        if any("{{" in text for text in texts):
            return
        key = "count" if fields["count"] is not None else "end"
        if any(len(text.strip()) > 100 for text in texts):
            _fail(f"{path}.{key}", f"{shown(fields[key])} is too large")
        start, count, end = (int(text) for text in texts)
        size = count if fields["count"] is not None else abs(end - start) + 1
        if size > MAX_LOOP_ITEMS:
            _fail(f"{path}.{key}", too_many_items(size))


def _strings_in(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string inside a JSON-like value, with its path, in document order."""
    stack = [(path, value)]
    while stack:
        at, current = stack.pop()
        if isinstance(current, str):
            yield at, current
        elif isinstance(current, dict):
            stack.extend(reversed([(f"{at}.{_short_key(k)}", v) for k, v in current.items()]))
        elif isinstance(current, list):
            stack.extend(reversed([(f"{at}[{i}]", v) for i, v in enumerate(current)]))


def too_many_items(items: int) -> str:
    """Why a loop of `items` items is refused."""
    return f"{items:,} items, more than the {MAX_LOOP_ITEMS:,} one loop may have locally"


def _chain(names: list[str]) -> str:
    """``a -> b -> c``, eliding the middle of a long chain."""
    if len(names) > 8:
        names = [*names[:4], "...", *names[-3:]]
    return " -> ".join(_short_key(name) for name in names)


class _Checker:
    """Whole-model checks: references, dependency graphs, recursion, variables in scope.

    Every graph walk is iterative and linear: a DAG of thousands of tasks or a template chain
    thousands deep is checked in milliseconds, without exhausting the stack."""

    def __init__(self, workflow: Workflow, parser: _Parser) -> None:
        self.wf = workflow
        self.parser = parser
        self.tasks: dict[tuple[str, str], DagTask] = {
            (template.name, task.name): task
            for template in workflow.templates.values()
            for task in template.dag or ()
        }

    def check(self) -> None:
        self._entrypoint()
        for template in self.wf.templates.values():
            if template.dag is not None:
                self._dag(template, template.dag)
        self._recursion()
        self._depth()
        for use in self.parser.uses:
            self._variables(use)

    def _entrypoint(self) -> None:
        entry = self.wf.templates.get(self.wf.entrypoint)
        if entry is None:
            _fail("spec.entrypoint", f"unknown template {shown(self.wf.entrypoint)}")
        declared = {p.name for p in self.wf.parameters}
        for param in entry.inputs:
            if param.value is None and param.name not in declared:
                _fail(
                    "spec.entrypoint",
                    f"template {shown(entry.name)} needs input parameter {shown(param.name)}:"
                    " declare it in spec.arguments.parameters or give it a default",
                )

    def _dag(self, template: Template, tasks: tuple[DagTask, ...]) -> None:
        names = {task.name for task in tasks}
        for task in tasks:
            path = self.parser.task_paths[(template.name, task.name)]
            called = self.wf.templates.get(task.template)
            if called is None:
                _fail(f"{path}.template", f"unknown template {shown(task.template)}")
            given = {p.name for p in task.arguments}
            for param in called.inputs:
                if param.value is None and param.name not in given:
                    _fail(
                        f"{path}.arguments",
                        f"template {shown(called.name)} needs parameter {shown(param.name)}",
                    )
            for dep in task.depends:
                if dep.task not in names:
                    field = self.parser.depends_field[(template.name, task.name)]
                    _fail(f"{path}.{field}", f"unknown task {shown(dep.task)}")
        self._cycles(template, tasks)

    def _cycles(self, template: Template, tasks: tuple[DagTask, ...]) -> None:
        """Refuse a dependency cycle (Argo would never start it): one depth-first walk over
        the DAG, tasks in order; the cycle is named from the first of its tasks reached."""
        done: set[str] = set()
        for root in tasks:
            if root.name in done:
                continue
            trail = [root.name]
            on_trail = {root.name}
            stack = [iter(root.depends)]
            while stack:
                dep = next(stack[-1], None)
                if dep is None:
                    stack.pop()
                    finished = trail.pop()
                    on_trail.discard(finished)
                    done.add(finished)
                    continue
                if dep.task in on_trail:
                    cycle = trail[trail.index(dep.task) :]
                    path = self.parser.task_paths[(template.name, dep.task)]
                    _fail(f"{path}.depends", f"dependency cycle {_chain([*cycle, dep.task])}")
                if dep.task not in done:
                    trail.append(dep.task)
                    on_trail.add(dep.task)
                    stack.append(iter(self.tasks[(template.name, dep.task)].depends))

    def _depends_on(self, template: str, task: str, other: str) -> bool:
        """Whether `task` waits for `other`, directly or through others: a walk back along
        the dependencies that stops as soon as it meets `other`."""
        seen = {task}
        pending = [task]
        while pending:
            for dep in self.tasks[(template, pending.pop())].depends:
                if dep.task == other:
                    return True
                if dep.task not in seen:
                    seen.add(dep.task)
                    pending.append(dep.task)
        return False

    def _recursion(self) -> None:
        """Refuse templates that call themselves: without `when`, recursion never ends."""
        done: set[str] = set()
        for root in self.wf.templates:
            if root in done:
                continue
            trail = [root]
            on_trail = {root}
            stack = [iter(self.wf.templates[root].dag or ())]
            while stack:
                task = next(stack[-1], None)
                if task is None:
                    stack.pop()
                    finished = trail.pop()
                    on_trail.discard(finished)
                    done.add(finished)
                    continue
                if task.template in on_trail:
                    path = self.parser.task_paths[(trail[-1], task.name)]
                    loop = _chain([*trail[trail.index(task.template) :], task.template])
                    _fail(f"{path}.template", f"recursive templates are not supported ({loop})")
                if task.template not in done:
                    trail.append(task.template)
                    on_trail.add(task.template)
                    stack.append(iter(self.wf.templates[task.template].dag or ()))

    def _depth(self) -> None:
        """Refuse a call chain of more than `MAX_TEMPLATE_DEPTH` templates from the entrypoint:
        Argo's controller fails the node at stack depth 100 (maxAllowedStackDepth)."""
        depth: dict[str, int] = {}  # the longest chain from a template down, itself included
        stack = [self.wf.entrypoint]
        while stack:
            name = stack[-1]
            callees = [
                t.template for t in self.wf.templates[name].dag or () if t.template not in depth
            ]
            if name in depth or not callees:
                stack.pop()
                if name not in depth:
                    calls = self.wf.templates[name].dag or ()
                    depth[name] = 1 + max((depth[t.template] for t in calls), default=0)
                continue
            stack.extend(dict.fromkeys(callees))
        if depth[self.wf.entrypoint] <= MAX_TEMPLATE_DEPTH:
            return
        name, level = self.wf.entrypoint, 1
        while True:  # follow the deepest chain to the call that goes one template too deep
            task = max(self.wf.templates[name].dag or (), key=lambda t: depth[t.template])
            if level == MAX_TEMPLATE_DEPTH:
                path = self.parser.task_paths[(name, task.name)]
                _fail(
                    f"{path}.template",
                    f"templates nest {depth[self.wf.entrypoint]} deep from the entrypoint,"
                    f" more than the {MAX_TEMPLATE_DEPTH} Argo runs (its controller stops at a"
                    " stack depth of 100)",
                )
            name, level = task.template, level + 1

    def _variables(self, use: _Use) -> None:
        found = _find_variables(use.text)
        starts = [*(m.start() for m in found), len(use.text)]
        gaps = zip([0, *(m.end() for m in found)], starts, strict=True)
        if any("{{" in use.text[start:end] for start, end in gaps):
            _fail(use.path, f"unterminated '{{{{' in {shown(use.text)}")
        for match in found:
            self._variable(match.group(1).strip(), use)

    def _variable(self, name: str, use: _Use) -> None:
        written = "{{" + name + "}}"
        if name.startswith("="):
            _fail(
                use.path,
                f"{shown(written)}: expression templates ({{{{=...}}}}) are not supported by the local executor",
            )
        form = _FORMS.match(name)
        if form is None:
            _fail(
                use.path,
                f"{shown(written)} is not supported by the local executor (supported: {_SUPPORTED_FORMS})",
            )
        if form["wp"] is not None:
            if use.scope == "arguments":
                _fail(
                    use.path,
                    f"{shown(written)}: only {{{{workflow.name}}}} is available in workflow parameters",
                )
            if form["wp"] not in {p.name for p in self.wf.parameters}:
                _fail(
                    use.path,
                    f"{shown(written)}: no workflow parameter {shown(form['wp'])} in spec.arguments.parameters",
                )
        elif form["ip"] is not None:
            self._input_variable(form["ip"], written, use)
        elif form["item"] is not None:
            self._item_variable(form["ik"], written, use)
        elif form["t"] is not None:
            self._task_variable(form["t"], form["tp"], written, use)

    def _input_variable(self, param: str, written: str, use: _Use) -> None:
        if use.template is None or use.scope in ("global", "arguments"):
            _fail(use.path, f"{shown(written)} is not available here")
        template = self.wf.templates[use.template]
        if param not in {p.name for p in template.inputs}:
            _fail(
                use.path,
                f"{shown(written)}: template {shown(template.name)} has no input parameter {shown(param)}",
            )

    def _item_variable(self, key: str | None, written: str, use: _Use) -> None:
        task = self._task(use)
        if use.scope != "task-arguments" or task is None or not task.looped:
            _fail(
                use.path,
                f"{shown(written)} is only available in the arguments of a task with withItems,"
                " withParam or withSequence",
            )
        if key is None:
            return
        if task.with_sequence is not None:
            _fail(
                use.path,
                f"{shown(written)}: withSequence items are plain numbers, they have no keys",
            )
        for i, item in enumerate(task.with_items or ()):
            if not isinstance(item, dict) or key not in item:
                _fail(use.path, f"{shown(written)}: withItems[{i}] has no key {shown(key)}")

    def _task_variable(self, other: str, param: str, written: str, use: _Use) -> None:
        task = self._task(use)
        if task is None or use.template is None:
            _fail(use.path, f"{shown(written)} is only available in the fields of a DAG task")
        target = self.tasks.get((use.template, other))
        if target is None:
            _fail(use.path, f"{shown(written)}: no task {shown(other)} in this DAG")
        if not self._depends_on(use.template, task.name, other):
            _fail(
                use.path,
                f"{shown(written)}: task {shown(other)} is not a dependency of task {shown(task.name)}"
                " (directly or through others)",
            )
        produced = self.wf.templates[target.template]
        if param not in {o.name for o in produced.outputs}:
            _fail(
                use.path,
                f"{shown(written)}: template {shown(produced.name)} has no output parameter {shown(param)}",
            )

    def _task(self, use: _Use) -> DagTask | None:
        if use.template is None or use.task is None:
            return None
        return self.tasks[(use.template, use.task)]
