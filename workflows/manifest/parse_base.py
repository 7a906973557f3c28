"""The parser's state, shared by its template and DAG halves and read by the checker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workflows.manifest.limits import MAX_LOOP_ITEMS, PARAM_NAME
from workflows.manifest.model import Parameter
from workflows.manifest.text import shown
from workflows.manifest.values import (
    check_keys,
    fail,
    read_list,
    read_mapping,
    read_scalar,
    read_string,
)

__all__ = ["ParserBase", "StringUse", "too_many_items"]


@dataclass(frozen=True)
class StringUse:
    """A string read from the manifest, to check its variables once the whole model is known."""

    path: str
    text: str
    scope: str  # "arguments" (spec.arguments), "global", "template", "task", "task-arguments"
    template: str | None = None
    task: str | None = None


class ParserBase:
    """What parsing collects for the whole-model checks (workflows/manifest/check.py), and
    the parameter lists both halves of the parser read."""

    def __init__(self) -> None:
        self.uses: list[StringUse] = []
        self.template_paths: dict[str, str] = {}
        self.task_paths: dict[tuple[str, str], str] = {}
        self.depends_field: dict[tuple[str, str], str] = {}
        self.empty_dirs: frozenset[str] = frozenset()  # names of the emptyDir volumes
        self.volumes: frozenset[str] = frozenset()  # names of all volumes

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
        for i, entry in enumerate(read_list(raw or [], path)):
            at = f"{path}[{i}]"
            entry = read_mapping(entry, at)
            check_keys(entry, at, kind)
            name = read_string(entry.get("name"), f"{at}.name")
            if not PARAM_NAME.match(name):
                fail(f"{at}.name", f"{shown(name)} is not a valid parameter name")
            if name in seen:
                fail(f"{at}.name", f"duplicate parameter {shown(name)}")
            seen.add(name)
            value: str | None = None
            for field in ("value", "default"):  # an input's `value` wins over its `default`
                if value is None and entry.get(field) is not None:
                    value = read_scalar(entry[field], f"{at}.{field}")
                    self.uses.append(StringUse(f"{at}.{field}", value, scope, template, task))
            params.append(Parameter(name, value))
        return tuple(params)


def too_many_items(items: int) -> str:
    """Why a loop of `items` items is refused."""
    return f"{items:,} items, more than the {MAX_LOOP_ITEMS:,} one loop may have locally"
