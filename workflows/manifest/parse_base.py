"""The parser's state, shared by its template and DAG halves and read by the checker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workflows.manifest.limits import _PARAM_NAME, MAX_LOOP_ITEMS
from workflows.manifest.model import Parameter
from workflows.manifest.text import shown
from workflows.manifest.values import _check_keys, _fail, _list, _mapping, _scalar, _string

__all__ = ["ParserBase", "too_many_items"]


@dataclass(frozen=True)
class _Use:
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
        self.uses: list[_Use] = []
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


def too_many_items(items: int) -> str:
    """Why a loop of `items` items is refused."""
    return f"{items:,} items, more than the {MAX_LOOP_ITEMS:,} one loop may have locally"
