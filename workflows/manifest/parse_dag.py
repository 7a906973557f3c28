"""The DAG half of the parser: tasks, their dependencies and their loops."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from workflows.manifest.limits import DEPENDS_TERM, FIELD_NAME, MAX_LOOP_ITEMS, TASK_OUTPUT
from workflows.manifest.model import DagTask, Dependency, Parameter, Sequence
from workflows.manifest.parse_base import ParserBase, StringUse, too_many_items
from workflows.manifest.text import shown
from workflows.manifest.values import (
    check_keys,
    fail,
    read_list,
    read_mapping,
    read_scalar,
    read_string,
    strings_in,
)

__all__ = ["DagParser"]


class DagParser(ParserBase):
    """Tasks of a `dag` template, each string of them recorded for the checker."""

    def _dag(self, raw: Any, path: str, template: str) -> tuple[DagTask, ...]:
        raw = read_mapping(raw, path)
        check_keys(raw, path, "dag")
        tasks: list[DagTask] = []
        names: set[str] = set()
        for i, entry in enumerate(read_list(raw.get("tasks") or [], f"{path}.tasks")):
            at = f"{path}.tasks[{i}]"
            task = self._task(read_mapping(entry, at), at, template)
            if task.name in names:
                fail(f"{at}.name", f"duplicate task name {shown(task.name)}")
            names.add(task.name)
            tasks.append(task)
            self.task_paths[(template, task.name)] = at
            self.depends_field[(template, task.name)] = (
                "depends" if "depends" in entry else "dependencies"
            )
        entries = [entry for entry in raw.get("tasks") or [] if isinstance(entry, dict)]
        if any("depends" in e for e in entries) and any("dependencies" in e for e in entries):
            fail(f"{path}.tasks", "cannot mix 'depends' and 'dependencies' in one DAG (as Argo)")
        return tuple(tasks)

    def _task(self, raw: dict[str, Any], path: str, template: str) -> DagTask:
        check_keys(raw, path, "task")
        first_use = len(self.uses)
        name = read_string(raw.get("name"), f"{path}.name")
        if not FIELD_NAME.match(name):
            fail(f"{path}.name", f"{shown(name)} is not a valid task name")
        loops = [
            key for key in ("withItems", "withParam", "withSequence") if raw.get(key) is not None
        ]
        if len(loops) > 1:
            fail(f"{path}.{loops[1]}", f"cannot be combined with {loops[0]}")
        arguments: tuple[Parameter, ...] = ()
        if raw.get("arguments") is not None:
            args = read_mapping(raw["arguments"], f"{path}.arguments")
            check_keys(args, f"{path}.arguments", "arguments")
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
            with_param = read_string(raw["withParam"], f"{path}.withParam")
            self.uses.append(StringUse(f"{path}.withParam", with_param, "task", template, name))
        task = DagTask(
            name=name,
            template=read_string(raw.get("template"), f"{path}.template"),
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
            for match in TASK_OUTPUT.finditer(use.text)
        }
        return replace(task, reads=frozenset(reads))

    def _depends(self, raw: dict[str, Any], path: str) -> tuple[Dependency, ...]:
        if raw.get("depends") is not None and raw.get("dependencies") is not None:
            fail(f"{path}.depends", "cannot be combined with 'dependencies'")
        if raw.get("dependencies") is not None:
            names = read_list(raw["dependencies"], f"{path}.dependencies")
            return tuple(
                Dependency(read_string(n, f"{path}.dependencies[{i}]"), False)
                for i, n in enumerate(names)
            )
        if raw.get("depends") is None:
            return ()
        expression = read_string(raw["depends"], f"{path}.depends")
        terms = [DEPENDS_TERM.match(term) for term in expression.split("&&")]
        if not all(terms):
            fail(
                f"{path}.depends",
                f"only task names joined by '&&' are supported, got {shown(expression)}",
            )
        return tuple(Dependency(m.group(1), m.group(2) is not None) for m in terms if m)

    def _with_items(self, raw: Any, path: str, template: str, task: str) -> tuple[Any, ...] | None:
        if raw is None:
            return None
        items = read_list(raw, path)
        if len(items) > MAX_LOOP_ITEMS:
            fail(path, too_many_items(len(items)))
        for i, item in enumerate(items):
            if item is None:
                fail(f"{path}[{i}]", "null items are not supported")
            for at, text in strings_in(item, f"{path}[{i}]"):
                self.uses.append(StringUse(at, text, "task", template, task))
        return tuple(items)

    def _sequence(self, raw: Any, path: str, template: str, task: str) -> Sequence | None:
        if raw is None:
            return None
        raw = read_mapping(raw, path)
        check_keys(raw, path, "withSequence")
        fields: dict[str, str | None] = {}
        for key in ("count", "start", "end", "format"):
            value = raw.get(key)
            fields[key] = None if value is None else read_scalar(value, f"{path}.{key}")
            if fields[key] is None:
                continue
            text = fields[key] or ""
            self.uses.append(StringUse(f"{path}.{key}", text, "task", template, task))
            if key != "format" and "{{" not in text and not re.fullmatch(r"-?\d+", text.strip()):
                fail(f"{path}.{key}", f"expected an integer, got {shown(text)}")
        if (fields["count"] is None) == (fields["end"] is None):
            fail(path, "needs exactly one of 'count' and 'end' (as Argo)")
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
            fail(f"{path}.{key}", f"{shown(fields[key])} is too large")
        start, count, end = (int(text) for text in texts)
        size = count if fields["count"] is not None else abs(end - start) + 1
        if size > MAX_LOOP_ITEMS:
            fail(f"{path}.{key}", too_many_items(size))
