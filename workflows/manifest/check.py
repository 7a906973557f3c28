"""Whole-model checks of a parsed manifest: references, dependency graphs, recursion,
template depth, and every `{{...}}` variable against the scope it is used in."""

from __future__ import annotations

from workflows.manifest.limits import FORMS, MAX_TEMPLATE_DEPTH, SUPPORTED_FORMS
from workflows.manifest.model import DagTask, Template, Workflow
from workflows.manifest.parse_base import ParserBase, StringUse
from workflows.manifest.text import find_variables, shown
from workflows.manifest.values import fail, short_key

__all__ = ["Checker"]


def _chain(names: list[str]) -> str:
    """``a -> b -> c``, eliding the middle of a long chain."""
    if len(names) > 8:
        names = [*names[:4], "...", *names[-3:]]
    return " -> ".join(short_key(name) for name in names)


class Checker:
    """Whole-model checks: references, dependency graphs, recursion, variables in scope.

    Every graph walk is iterative and linear: a DAG of thousands of tasks or a template chain
    thousands deep is checked in milliseconds, without exhausting the stack."""

    def __init__(self, workflow: Workflow, parser: ParserBase) -> None:
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
            fail("spec.entrypoint", f"unknown template {shown(self.wf.entrypoint)}")
        declared = {p.name for p in self.wf.parameters}
        for param in entry.inputs:
            if param.value is None and param.name not in declared:
                fail(
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
                fail(f"{path}.template", f"unknown template {shown(task.template)}")
            given = {p.name for p in task.arguments}
            for param in called.inputs:
                if param.value is None and param.name not in given:
                    fail(
                        f"{path}.arguments",
                        f"template {shown(called.name)} needs parameter {shown(param.name)}",
                    )
            for dep in task.depends:
                if dep.task not in names:
                    field = self.parser.depends_field[(template.name, task.name)]
                    fail(f"{path}.{field}", f"unknown task {shown(dep.task)}")
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
                    fail(f"{path}.depends", f"dependency cycle {_chain([*cycle, dep.task])}")
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
                    fail(f"{path}.template", f"recursive templates are not supported ({loop})")
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
                fail(
                    f"{path}.template",
                    f"templates nest {depth[self.wf.entrypoint]} deep from the entrypoint,"
                    f" more than the {MAX_TEMPLATE_DEPTH} Argo runs (its controller stops at a"
                    " stack depth of 100)",
                )
            name, level = task.template, level + 1

    def _variables(self, use: StringUse) -> None:
        found = find_variables(use.text)
        starts = [*(m.start() for m in found), len(use.text)]
        gaps = zip([0, *(m.end() for m in found)], starts, strict=True)
        if any("{{" in use.text[start:end] for start, end in gaps):
            fail(use.path, f"unterminated '{{{{' in {shown(use.text)}")
        for match in found:
            self._variable(match.group(1).strip(), use)

    def _variable(self, name: str, use: StringUse) -> None:
        written = "{{" + name + "}}"
        if name.startswith("="):
            fail(
                use.path,
                f"{shown(written)}: expression templates ({{{{=...}}}}) are not supported by the local executor",
            )
        form = FORMS.match(name)
        if form is None:
            fail(
                use.path,
                f"{shown(written)} is not supported by the local executor (supported: {SUPPORTED_FORMS})",
            )
        if form["wp"] is not None:
            if use.scope == "arguments":
                fail(
                    use.path,
                    f"{shown(written)}: only {{{{workflow.name}}}} is available in workflow parameters",
                )
            if form["wp"] not in {p.name for p in self.wf.parameters}:
                fail(
                    use.path,
                    f"{shown(written)}: no workflow parameter {shown(form['wp'])} in spec.arguments.parameters",
                )
        elif form["ip"] is not None:
            self._input_variable(form["ip"], written, use)
        elif form["item"] is not None:
            self._item_variable(form["ik"], written, use)
        elif form["t"] is not None:
            self._task_variable(form["t"], form["tp"], written, use)

    def _input_variable(self, param: str, written: str, use: StringUse) -> None:
        if use.template is None or use.scope in ("global", "arguments"):
            fail(use.path, f"{shown(written)} is not available here")
        template = self.wf.templates[use.template]
        if param not in {p.name for p in template.inputs}:
            fail(
                use.path,
                f"{shown(written)}: template {shown(template.name)} has no input parameter {shown(param)}",
            )

    def _item_variable(self, key: str | None, written: str, use: StringUse) -> None:
        task = self._task(use)
        if use.scope != "task-arguments" or task is None or not task.looped:
            fail(
                use.path,
                f"{shown(written)} is only available in the arguments of a task with withItems,"
                " withParam or withSequence",
            )
        if key is None:
            return
        if task.with_sequence is not None:
            fail(
                use.path,
                f"{shown(written)}: withSequence items are plain numbers, they have no keys",
            )
        for i, item in enumerate(task.with_items or ()):
            if not isinstance(item, dict) or key not in item:
                fail(use.path, f"{shown(written)}: withItems[{i}] has no key {shown(key)}")

    def _task_variable(self, other: str, param: str, written: str, use: StringUse) -> None:
        task = self._task(use)
        if task is None or use.template is None:
            fail(use.path, f"{shown(written)} is only available in the fields of a DAG task")
        target = self.tasks.get((use.template, other))
        if target is None:
            fail(use.path, f"{shown(written)}: no task {shown(other)} in this DAG")
        if not self._depends_on(use.template, task.name, other):
            fail(
                use.path,
                f"{shown(written)}: task {shown(other)} is not a dependency of task {shown(task.name)}"
                " (directly or through others)",
            )
        produced = self.wf.templates[target.template]
        if param not in {o.name for o in produced.outputs}:
            fail(
                use.path,
                f"{shown(written)}: template {shown(produced.name)} has no output parameter {shown(param)}",
            )

    def _task(self, use: StringUse) -> DagTask | None:
        if use.template is None or use.task is None:
            return None
        return self.tasks[(use.template, use.task)]
