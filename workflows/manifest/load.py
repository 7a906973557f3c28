"""A manifest from bytes to a checked `Workflow`: decoded, parsed as YAML within bounds,
a WorkflowTemplate or CronWorkflow turned into the Workflow one run of it creates."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from workflows.manifest.check import Checker
from workflows.manifest.limits import (
    CRON_ONLY_KEYS,
    MAX_MANIFEST_BYTES,
    MAX_MANIFEST_VALUES,
    MAX_VALUE_DEPTH,
)
from workflows.manifest.model import ManifestError, Workflow
from workflows.manifest.parse import Parser
from workflows.manifest.values import fail, key_path, read_mapping, read_string

__all__ = ["as_workflow", "check_size", "decode_manifest", "load_manifest", "parse_workflow"]


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
            fail(
                key_path([*keys, key]),
                f"the manifest holds more than {MAX_MANIFEST_VALUES:,} values once YAML aliases"
                " are expanded",
            )
        if not isinstance(value, dict | list | tuple):
            continue
        if id(value) in on_path:
            fail(key_path([*keys, key]), "contains itself (a self-referencing YAML alias)")
        if len(open_ids) >= MAX_VALUE_DEPTH:
            fail(key_path([*keys, key]), f"nested more than {MAX_VALUE_DEPTH} levels deep")
        on_path.add(id(value))
        open_ids.append(id(value))
        keys.append(key)
        stack.append(iter(value.items()) if isinstance(value, dict) else enumerate(value))


def parse_workflow(manifest: Mapping[str, Any]) -> Workflow:
    """Check a loaded manifest against the subset; return it typed, or raise `ManifestError`."""
    check_size(manifest)
    parser = Parser()
    workflow = parser.parse(as_workflow(manifest))
    Checker(workflow, parser).check()
    return workflow


def as_workflow(manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    """The Workflow that one run of a WorkflowTemplate or CronWorkflow creates, as Argo does.

    A WorkflowTemplate's spec is a workflow spec; a CronWorkflow's is its `workflowSpec`. The
    run is named `<name>-` plus five random characters. Anything else passes unchanged.
    """
    kind = manifest.get("kind") if isinstance(manifest, Mapping) else None
    if kind not in ("WorkflowTemplate", "CronWorkflow"):
        return manifest
    metadata = read_mapping(manifest.get("metadata"), "metadata")
    name = read_string(metadata.get("name"), "metadata.name")
    spec = read_mapping(manifest.get("spec"), "spec")
    if kind == "CronWorkflow":
        for key in spec:
            if key not in CRON_ONLY_KEYS:
                fail(f"spec.{key}", "not a CronWorkflow field the local executor knows")
        spec = read_mapping(spec.get("workflowSpec"), "spec.workflowSpec")
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
