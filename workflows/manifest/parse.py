"""The manifest parser: one pass over the workflow and its templates, every object's keys
checked against the subset (workflows/manifest/limits.py), every string recorded for the
whole-model checks.

Argo's field reference: https://argo-workflows.readthedocs.io/en/latest/fields/
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from workflows.manifest.limits import API_VERSION, FIELD_NAME, PARAM_NAME, RETRY_POLICIES
from workflows.manifest.model import (
    Container,
    EnvVar,
    Mount,
    OutputParameter,
    Parameter,
    RetryStrategy,
    SecretRef,
    Template,
    Workflow,
)
from workflows.manifest.parse_base import StringUse
from workflows.manifest.parse_dag import DagParser
from workflows.manifest.text import parse_duration, shown
from workflows.manifest.values import (
    check_keys,
    fail,
    read_int,
    read_list,
    read_mapping,
    read_scalar,
    read_string,
)
from workflows.retries import ExpressionError, parse_expression

__all__ = ["Parser"]


class Parser(DagParser):
    """Parse in one pass, collecting strings; then check references and variables."""

    def parse(self, raw: Mapping[str, Any]) -> Workflow:
        raw = read_mapping(raw, "manifest")
        check_keys(raw, "", "workflow")
        api = raw.get("apiVersion")
        if api != API_VERSION:
            fail("apiVersion", f"expected {API_VERSION!r}, got {shown(api)}")
        if raw.get("kind") != "Workflow":
            fail(
                "kind",
                f"{shown(raw.get('kind'))} is not supported by the local executor"
                " (Workflow, WorkflowTemplate or CronWorkflow)",
            )
        name, generate_name = self._metadata(read_mapping(raw.get("metadata"), "metadata"))
        spec = read_mapping(raw.get("spec"), "spec")
        check_keys(spec, "spec", "spec")
        self._volumes(spec.get("volumes"))
        deadline = spec.get("activeDeadlineSeconds")
        workflow = Workflow(
            name=name,
            generate_name=generate_name,
            entrypoint=read_string(spec.get("entrypoint"), "spec.entrypoint"),
            parameters=self._workflow_parameters(spec.get("arguments")),
            parallelism=None
            if spec.get("parallelism") is None
            else read_int(spec["parallelism"], "spec.parallelism", 1),
            templates=self._templates(spec.get("templates")),
            deadline=None
            if deadline is None
            else read_int(deadline, "spec.activeDeadlineSeconds", 0),
        )
        return workflow

    def _volumes(self, raw: Any) -> None:
        """Only names and kinds matter locally: emptyDir is emulated, the rest are host paths."""
        names: set[str] = set()
        empty_dirs: set[str] = set()
        for i, entry in enumerate(read_list(raw or [], "spec.volumes")):
            at = f"spec.volumes[{i}]"
            name = read_string(read_mapping(entry, at).get("name"), f"{at}.name")
            if name in names:
                fail(f"{at}.name", f"duplicate volume name {shown(name)}")
            names.add(name)
            if entry.get("emptyDir") is not None:
                read_mapping(entry["emptyDir"], f"{at}.emptyDir")  # medium, sizeLimit: no effect
                empty_dirs.add(name)
        self.volumes, self.empty_dirs = frozenset(names), frozenset(empty_dirs)

    def _metadata(self, metadata: dict[str, Any]) -> tuple[str | None, str | None]:
        check_keys(metadata, "metadata", "metadata")
        name = metadata.get("name")
        generate_name = metadata.get("generateName")
        if name is None and generate_name is None:
            fail("metadata", "needs 'name' or 'generateName'")
        if name is not None:
            self.uses.append(
                StringUse("metadata.name", read_string(name, "metadata.name"), "global")
            )
        if generate_name is not None:
            text = read_string(generate_name, "metadata.generateName")
            self.uses.append(StringUse("metadata.generateName", text, "global"))
        return name, generate_name

    def _workflow_parameters(self, arguments: Any) -> tuple[Parameter, ...]:
        if arguments is None:
            return ()
        arguments = read_mapping(arguments, "spec.arguments")
        check_keys(arguments, "spec.arguments", "arguments")
        return self._parameters(
            arguments.get("parameters"), "spec.arguments.parameters", "argument", "arguments"
        )

    def _templates(self, raw: Any) -> dict[str, Template]:
        templates: dict[str, Template] = {}
        for i, entry in enumerate(read_list(raw, "spec.templates")):
            path = f"spec.templates[{i}]"
            template = self._template(read_mapping(entry, path), path)
            if template.name in templates:
                fail(f"{path}.name", f"duplicate template name {shown(template.name)}")
            templates[template.name] = template
            self.template_paths[template.name] = path
        return templates

    def _template(self, raw: dict[str, Any], path: str) -> Template:
        check_keys(raw, path, "template")
        name = read_string(raw.get("name"), f"{path}.name")
        if not FIELD_NAME.match(name):
            fail(f"{path}.name", f"{shown(name)} is not a valid template name")
        has_dag, has_container = raw.get("dag") is not None, raw.get("container") is not None
        if has_dag == has_container:
            fail(path, "a template needs exactly one of 'dag' and 'container'")
        inputs = self._inputs(raw.get("inputs"), f"{path}.inputs", name)
        outputs = self._outputs(raw.get("outputs"), f"{path}.outputs", name)
        if has_dag and outputs:
            fail(f"{path}.outputs", "only container templates can have outputs locally")
        retry = self._retry(raw.get("retryStrategy"), f"{path}.retryStrategy", name)
        if has_dag and retry is not None:
            fail(f"{path}.retryStrategy", "only container templates can be retried locally")
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
            else read_int(parallelism, f"{path}.parallelism", 1),
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
                fail(f"{path}.{key}", "only container templates have one (as Argo)")
        if deadline is not None:
            at = f"{path}.activeDeadlineSeconds"
            deadline = read_scalar(deadline, at)
            self.uses.append(StringUse(at, deadline, "template", template))
            literal = "{{" not in deadline
            if literal and not (re.fullmatch(r"[-+]?\d+", deadline) and int(deadline) > 0):
                fail(at, f"expected a positive number of seconds, got {shown(deadline)}")
            if not literal and not (deadline.startswith("{{") and deadline.endswith("}}")):
                fail(at, f"expected a number or one variable, got {shown(deadline)}")
        if timeout is not None:
            at = f"{path}.timeout"
            timeout = read_string(timeout, at)
            self.uses.append(StringUse(at, timeout, "template", template))
            if "{{" not in timeout:
                if re.fullmatch(r"\s*[-+]?\d+\s*", timeout):
                    fail(at, f"{shown(timeout)} needs a unit, such as '30s' or '5m' (as Argo)")
                try:
                    parse_duration(timeout)
                except ValueError as exc:
                    fail(at, str(exc))
        return deadline, timeout

    def _inputs(self, raw: Any, path: str, template: str) -> tuple[Parameter, ...]:
        if raw is None:
            return ()
        raw = read_mapping(raw, path)
        check_keys(raw, path, "inputs")
        return self._parameters(
            raw.get("parameters"), f"{path}.parameters", "input", "template", template
        )

    def _outputs(self, raw: Any, path: str, template: str) -> tuple[OutputParameter, ...]:
        if raw is None:
            return ()
        raw = read_mapping(raw, path)
        check_keys(raw, path, "outputs")
        outputs: list[OutputParameter] = []
        for i, entry in enumerate(read_list(raw.get("parameters") or [], f"{path}.parameters")):
            at = f"{path}.parameters[{i}]"
            entry = read_mapping(entry, at)
            check_keys(entry, at, "output")
            name = read_string(entry.get("name"), f"{at}.name")
            if not PARAM_NAME.match(name) or any(o.name == name for o in outputs):
                fail(f"{at}.name", f"{shown(name)} is not a valid, unique parameter name")
            source = read_mapping(entry.get("valueFrom"), f"{at}.valueFrom")
            check_keys(source, f"{at}.valueFrom", "output.valueFrom")
            file = read_string(source.get("path"), f"{at}.valueFrom.path")
            self.uses.append(StringUse(f"{at}.valueFrom.path", file, "template", template))
            default = None
            if source.get("default") is not None:
                default = read_scalar(source["default"], f"{at}.valueFrom.default")
                self.uses.append(
                    StringUse(f"{at}.valueFrom.default", default, "template", template)
                )
            outputs.append(OutputParameter(name, file, default))
        return tuple(outputs)

    def _retry(self, raw: Any, path: str, template: str) -> RetryStrategy | None:
        if raw is None:
            return None
        raw = read_mapping(raw, path)
        check_keys(raw, path, "retryStrategy")
        limit = read_scalar(raw.get("limit", "0"), f"{path}.limit")
        if "{{" not in limit and not re.fullmatch(r"[0-9]{1,9}", limit):
            fail(f"{path}.limit", f"expected a non-negative integer, got {shown(limit)}")
        self.uses.append(StringUse(f"{path}.limit", limit, "template", template))
        policy = raw.get("retryPolicy")
        if policy is not None and policy not in RETRY_POLICIES:
            fail(
                f"{path}.retryPolicy",
                f"expected one of {sorted(RETRY_POLICIES)}, got {shown(policy)}",
            )
        expression = None
        if raw.get("expression") not in (None, ""):  # "" is none, as in Argo's controller
            try:
                expression = parse_expression(read_string(raw["expression"], f"{path}.expression"))
            except ExpressionError as exc:
                fail(f"{path}.expression", str(exc))
        return RetryStrategy(limit, policy, expression)

    def _container(self, raw: Any, path: str, template: str) -> Container:
        raw = read_mapping(raw, path)
        check_keys(raw, path, "container")
        command = self._strings(raw.get("command"), f"{path}.command", template)
        if not command:
            fail(
                f"{path}.command", "required locally (there is no image entrypoint to fall back on)"
            )
        working_dir = raw.get("workingDir")
        if working_dir is not None:
            working_dir = read_string(working_dir, f"{path}.workingDir")
            self.uses.append(StringUse(f"{path}.workingDir", working_dir, "template", template))
        return Container(
            command=command,
            args=self._strings(raw.get("args"), f"{path}.args", template),
            env=tuple(
                self._env(entry, f"{path}.env[{i}]", template)
                for i, entry in enumerate(read_list(raw.get("env") or [], f"{path}.env"))
            ),
            working_dir=working_dir,
            mounts=self._mounts(raw.get("volumeMounts"), f"{path}.volumeMounts"),
        )

    def _mounts(self, raw: Any, path: str) -> tuple[Mount, ...]:
        """The container's emptyDir mounts; mounts of other volumes are not looked into."""
        mounts: list[Mount] = []
        for i, entry in enumerate(read_list(raw or [], path)):
            at = f"{path}[{i}]"
            entry = read_mapping(entry, at)
            name = read_string(entry.get("name"), f"{at}.name")
            if name not in self.volumes:
                fail(f"{at}.name", f"no volume {shown(name)} in spec.volumes")
            if name not in self.empty_dirs:
                continue  # a host path locally, as before: nothing to emulate
            check_keys(entry, at, "volumeMount")
            folder = read_string(entry.get("mountPath"), f"{at}.mountPath").rstrip("/")
            if not folder.startswith("/") or "{{" in folder:
                fail(f"{at}.mountPath", f"expected an absolute path, got {shown(folder or '/')}")
            if any(m.path == folder for m in mounts):
                fail(f"{at}.mountPath", f"{shown(folder)} is mounted twice")
            sub_path = read_string(entry.get("subPath", ""), f"{at}.subPath").strip("/")
            if "{{" in sub_path or ".." in sub_path.split("/"):
                fail(
                    f"{at}.subPath",
                    f"expected a relative path inside the volume, got {shown(sub_path)}",
                )
            mounts.append(Mount(name, folder, sub_path))
        return tuple(mounts)

    def _strings(self, raw: Any, path: str, template: str) -> tuple[str, ...]:
        items = read_list(raw or [], path)
        for i, item in enumerate(items):
            self.uses.append(
                StringUse(f"{path}[{i}]", read_string(item, f"{path}[{i}]"), "template", template)
            )
        return tuple(items)

    def _env(self, raw: Any, path: str, template: str) -> EnvVar:
        raw = read_mapping(raw, path)
        check_keys(raw, path, "env")
        name = read_string(raw.get("name"), f"{path}.name")
        if raw.get("value") is not None and raw.get("valueFrom") is not None:
            fail(path, "has both 'value' and 'valueFrom'")
        if raw.get("valueFrom") is None:
            value = read_string(raw.get("value", ""), f"{path}.value")
            self.uses.append(StringUse(f"{path}.value", value, "template", template))
            return EnvVar(name, value, None)
        source = read_mapping(raw["valueFrom"], f"{path}.valueFrom")
        check_keys(source, f"{path}.valueFrom", "env.valueFrom")
        at = f"{path}.valueFrom.secretKeyRef"
        ref = read_mapping(source.get("secretKeyRef"), at)
        check_keys(ref, at, "secretKeyRef")
        secret = SecretRef(
            name=read_string(ref.get("name"), f"{at}.name"),
            key=read_string(ref.get("key"), f"{at}.key"),
            optional=bool(ref.get("optional", False)),
        )
        # Secrets are resolved before any task starts, so only workflow-level variables apply.
        self.uses.append(StringUse(f"{at}.name", secret.name, "global"))
        self.uses.append(StringUse(f"{at}.key", secret.key, "global"))
        return EnvVar(name, "", secret)
