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
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import yaml

API_VERSION = "argoproj.io/v1alpha1"

# Keys the local executor reads and honours, per kind of object.
SUPPORTED: dict[str, frozenset[str]] = {
    "workflow": frozenset({"apiVersion", "kind", "metadata", "spec"}),
    "metadata": frozenset({"name", "generateName"}),
    "spec": frozenset({"entrypoint", "arguments", "parallelism", "templates"}),
    "arguments": frozenset({"parameters"}),
    "argument": frozenset({"name", "value"}),
    "template": frozenset(
        {"name", "inputs", "outputs", "dag", "container", "retryStrategy", "parallelism"}
    ),
    "inputs": frozenset({"parameters"}),
    "input": frozenset({"name", "value", "default"}),
    "outputs": frozenset({"parameters"}),
    "output": frozenset({"name", "valueFrom"}),
    "output.valueFrom": frozenset({"path", "default"}),
    "retryStrategy": frozenset({"limit", "retryPolicy"}),
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
    "container": frozenset({"command", "args", "env", "workingDir"}),
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
            "volumes",
            "activeDeadlineSeconds",
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
            "activeDeadlineSeconds",
            "timeout",
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
            "volumeMounts",
            "ports",
            "name",
        }
    ),
    "retryStrategy": frozenset({"backoff"}),
    "argument": frozenset({"description"}),
    "input": frozenset({"description"}),
    "output": frozenset({"description"}),
}

RETRY_POLICIES = frozenset({"Always", "OnFailure", "OnError", "OnTransientError"})

_FIELD_NAME = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")  # Argo's template and task names
_PARAM_NAME = re.compile(r"^[-a-zA-Z0-9_]+$")  # Argo's parameter names
_VARIABLE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
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
class Container:
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: tuple[EnvVar, ...]
    working_dir: str | None


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


@dataclass(frozen=True)
class Workflow:
    name: str | None
    generate_name: str | None
    entrypoint: str
    parameters: tuple[Parameter, ...]
    parallelism: int | None
    templates: Mapping[str, Template]


def secret_variable(key: str) -> str:
    """The environment variable a secret key is read from locally: ``aws-key.id`` → ``AWS_KEY_ID``."""
    return re.sub(r"[^A-Za-z0-9]", "_", key.upper())


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace every ``{{name}}`` in one pass (values are not rescanned), as Argo does."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name not in values:
            raise UnresolvedError(name)
        return values[name]

    return _VARIABLE.sub(replace, text)


def load_manifest(text: str) -> dict[str, Any]:
    """Parse one YAML or JSON document into a mapping; anything else is a `ManifestError`."""
    try:
        documents = [doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]
    except yaml.YAMLError as exc:
        raise ManifestError(f"manifest: not valid YAML or JSON: {_yaml_problem(exc)}") from None
    if len(documents) != 1:
        raise ManifestError(f"manifest: expected one document, found {len(documents)}")
    if not isinstance(documents[0], dict):
        raise ManifestError("manifest: expected a mapping (a Workflow object) at the top level")
    return documents[0]


def parse_workflow(manifest: Mapping[str, Any]) -> Workflow:
    """Check a loaded manifest against the subset; return it typed, or raise `ManifestError`."""
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


class _Loader(yaml.SafeLoader):
    """Safe YAML without timestamp resolution: Argo keeps ``2024-01-01`` a string."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _yaml_problem(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{problem}{where}"


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
        _fail(path, f"expected an integer >= {minimum}, got {value!r}")
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
            _fail(f"{path}.{key}" if path else str(key), "not supported by the local executor")


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

    def parse(self, raw: Mapping[str, Any]) -> Workflow:
        raw = _mapping(raw, "manifest")
        _check_keys(raw, "", "workflow")
        api = raw.get("apiVersion")
        if api != API_VERSION:
            _fail("apiVersion", f"expected {API_VERSION!r}, got {api!r}")
        if raw.get("kind") != "Workflow":
            _fail(
                "kind",
                f"{raw.get('kind')!r} is not supported by the local executor"
                " (Workflow, WorkflowTemplate or CronWorkflow)",
            )
        name, generate_name = self._metadata(_mapping(raw.get("metadata"), "metadata"))
        spec = _mapping(raw.get("spec"), "spec")
        _check_keys(spec, "spec", "spec")
        workflow = Workflow(
            name=name,
            generate_name=generate_name,
            entrypoint=_string(spec.get("entrypoint"), "spec.entrypoint"),
            parameters=self._workflow_parameters(spec.get("arguments")),
            parallelism=None
            if spec.get("parallelism") is None
            else _int(spec["parallelism"], "spec.parallelism", 1),
            templates=self._templates(spec.get("templates")),
        )
        _Checker(workflow, self).check()
        return workflow

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
                _fail(f"{at}.name", f"{name!r} is not a valid parameter name")
            if name in seen:
                _fail(f"{at}.name", f"duplicate parameter {name!r}")
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
                _fail(f"{path}.name", f"duplicate template name {template.name!r}")
            templates[template.name] = template
            self.template_paths[template.name] = path
        return templates

    def _template(self, raw: dict[str, Any], path: str) -> Template:
        _check_keys(raw, path, "template")
        name = _string(raw.get("name"), f"{path}.name")
        if not _FIELD_NAME.match(name):
            _fail(f"{path}.name", f"{name!r} is not a valid template name")
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
        )

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
                _fail(f"{at}.name", f"{name!r} is not a valid, unique parameter name")
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
        if "{{" not in limit and not limit.isdigit():
            _fail(f"{path}.limit", f"expected a non-negative integer, got {limit!r}")
        self.uses.append(_Use(f"{path}.limit", limit, "template", template))
        policy = raw.get("retryPolicy")
        if policy is not None and policy not in RETRY_POLICIES:
            _fail(
                f"{path}.retryPolicy", f"expected one of {sorted(RETRY_POLICIES)}, got {policy!r}"
            )
        return RetryStrategy(limit, policy)

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
        )

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
        for i, entry in enumerate(_list(raw.get("tasks") or [], f"{path}.tasks")):
            at = f"{path}.tasks[{i}]"
            task = self._task(_mapping(entry, at), at, template)
            if any(t.name == task.name for t in tasks):
                _fail(f"{at}.name", f"duplicate task name {task.name!r}")
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
        name = _string(raw.get("name"), f"{path}.name")
        if not _FIELD_NAME.match(name):
            _fail(f"{path}.name", f"{name!r} is not a valid task name")
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
        return DagTask(
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
                f"only task names joined by '&&' are supported, got {expression!r}",
            )
        return tuple(Dependency(m.group(1), m.group(2) is not None) for m in terms if m)

    def _with_items(self, raw: Any, path: str, template: str, task: str) -> tuple[Any, ...] | None:
        if raw is None:
            return None
        items = _list(raw, path)
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
                _fail(f"{path}.{key}", f"expected an integer, got {text!r}")
        if (fields["count"] is None) == (fields["end"] is None):
            _fail(path, "needs exactly one of 'count' and 'end' (as Argo)")
        return Sequence(fields["count"], fields["start"], fields["end"], fields["format"])


def _strings_in(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string inside a JSON-like value, with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from _strings_in(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _strings_in(inner, f"{path}[{i}]")


class _Checker:
    """Whole-model checks: references, dependency graphs, recursion, variables in scope."""

    def __init__(self, workflow: Workflow, parser: _Parser) -> None:
        self.wf = workflow
        self.parser = parser
        self.ancestors: dict[tuple[str, str], set[str]] = {}

    def check(self) -> None:
        self._entrypoint()
        for template in self.wf.templates.values():
            if template.dag is not None:
                self._dag(template, template.dag)
        self._recursion()
        for use in self.parser.uses:
            self._variables(use)

    def _entrypoint(self) -> None:
        entry = self.wf.templates.get(self.wf.entrypoint)
        if entry is None:
            _fail("spec.entrypoint", f"unknown template {self.wf.entrypoint!r}")
        declared = {p.name for p in self.wf.parameters}
        for param in entry.inputs:
            if param.value is None and param.name not in declared:
                _fail(
                    "spec.entrypoint",
                    f"template {entry.name!r} needs input parameter {param.name!r}: declare it in"
                    " spec.arguments.parameters or give it a default",
                )

    def _dag(self, template: Template, tasks: tuple[DagTask, ...]) -> None:
        by_name = {task.name: task for task in tasks}
        for task in tasks:
            path = self.parser.task_paths[(template.name, task.name)]
            called = self.wf.templates.get(task.template)
            if called is None:
                _fail(f"{path}.template", f"unknown template {task.template!r}")
            given = {p.name for p in task.arguments}
            for param in called.inputs:
                if param.value is None and param.name not in given:
                    _fail(
                        f"{path}.arguments",
                        f"template {called.name!r} needs parameter {param.name!r}",
                    )
            for dep in task.depends:
                if dep.task not in by_name:
                    field = self.parser.depends_field[(template.name, task.name)]
                    _fail(f"{path}.{field}", f"unknown task {dep.task!r}")
        for task in tasks:
            self.ancestors[(template.name, task.name)] = self._ancestors(template, task, by_name)

    def _ancestors(
        self, template: Template, task: DagTask, by_name: Mapping[str, DagTask]
    ) -> set[str]:
        """All tasks `task` waits for, refusing cycles (Argo would never start them)."""
        seen: set[str] = set()
        trail: list[str] = [task.name]

        def visit(current: DagTask) -> None:
            for dep in current.depends:
                if dep.task == task.name:
                    cycle = " -> ".join([*trail, task.name])
                    path = self.parser.task_paths[(template.name, task.name)]
                    _fail(f"{path}.depends", f"dependency cycle {cycle}")
                if dep.task not in seen:
                    seen.add(dep.task)
                    trail.append(dep.task)
                    visit(by_name[dep.task])
                    trail.pop()

        visit(task)
        return seen

    def _recursion(self) -> None:
        """Refuse templates that call themselves: without `when`, recursion never ends."""
        done: set[str] = set()

        def visit(name: str, stack: list[str]) -> None:
            template = self.wf.templates[name]
            for task in template.dag or ():
                if task.template in stack:
                    path = self.parser.task_paths[(name, task.name)]
                    loop = " -> ".join([*stack, task.template])
                    _fail(f"{path}.template", f"recursive templates are not supported ({loop})")
                if task.template not in done:
                    visit(task.template, [*stack, task.template])
            done.add(name)

        for name in self.wf.templates:
            if name not in done:
                visit(name, [name])

    def _variables(self, use: _Use) -> None:
        remainder = _VARIABLE.sub("", use.text)
        if "{{" in remainder:
            _fail(use.path, f"unterminated '{{{{' in {use.text!r}")
        for match in _VARIABLE.finditer(use.text):
            self._variable(match.group(1).strip(), use)

    def _variable(self, name: str, use: _Use) -> None:
        shown = "{{" + name + "}}"
        if name.startswith("="):
            _fail(
                use.path,
                f"{shown!r}: expression templates ({{{{=...}}}}) are not supported by the local executor",
            )
        form = _FORMS.match(name)
        if form is None:
            _fail(
                use.path,
                f"{shown!r} is not supported by the local executor (supported: {_SUPPORTED_FORMS})",
            )
        if form["wp"] is not None:
            if use.scope == "arguments":
                _fail(
                    use.path,
                    f"{shown!r}: only {{{{workflow.name}}}} is available in workflow parameters",
                )
            if form["wp"] not in {p.name for p in self.wf.parameters}:
                _fail(
                    use.path,
                    f"{shown!r}: no workflow parameter {form['wp']!r} in spec.arguments.parameters",
                )
        elif form["ip"] is not None:
            self._input_variable(form["ip"], shown, use)
        elif form["item"] is not None:
            self._item_variable(form["ik"], shown, use)
        elif form["t"] is not None:
            self._task_variable(form["t"], form["tp"], shown, use)

    def _input_variable(self, param: str, shown: str, use: _Use) -> None:
        if use.template is None or use.scope in ("global", "arguments"):
            _fail(use.path, f"{shown!r} is not available here")
        template = self.wf.templates[use.template]
        if param not in {p.name for p in template.inputs}:
            _fail(
                use.path, f"{shown!r}: template {template.name!r} has no input parameter {param!r}"
            )

    def _item_variable(self, key: str | None, shown: str, use: _Use) -> None:
        task = self._task(use)
        if use.scope != "task-arguments" or task is None or not task.looped:
            _fail(
                use.path,
                f"{shown!r} is only available in the arguments of a task with withItems,"
                " withParam or withSequence",
            )
        if key is None:
            return
        if task.with_sequence is not None:
            _fail(use.path, f"{shown!r}: withSequence items are plain numbers, they have no keys")
        for i, item in enumerate(task.with_items or ()):
            if not isinstance(item, dict) or key not in item:
                _fail(use.path, f"{shown!r}: withItems[{i}] has no key {key!r}")

    def _task_variable(self, other: str, param: str, shown: str, use: _Use) -> None:
        task = self._task(use)
        if task is None or use.template is None:
            _fail(use.path, f"{shown!r} is only available in the fields of a DAG task")
        dag = self.wf.templates[use.template].dag or ()
        target = next((t for t in dag if t.name == other), None)
        if target is None:
            _fail(use.path, f"{shown!r}: no task {other!r} in this DAG")
        if other not in self.ancestors[(use.template, task.name)]:
            _fail(
                use.path,
                f"{shown!r}: task {other!r} is not a dependency of task {task.name!r}"
                " (directly or through others)",
            )
        produced = self.wf.templates[target.template]
        if param not in {o.name for o in produced.outputs}:
            _fail(
                use.path, f"{shown!r}: template {produced.name!r} has no output parameter {param!r}"
            )

    def _task(self, use: _Use) -> DagTask | None:
        if use.template is None or use.task is None:
            return None
        return next(t for t in self.wf.templates[use.template].dag or () if t.name == use.task)
