"""Values a task resolves at run time: its variables substituted, loop items and sequences
expanded as Argo expands them, its limits and attempts, and its outputs read and aggregated.

Argo's loops and output parameters:
https://argo-workflows.readthedocs.io/en/latest/walk-through/loops/
https://argo-workflows.readthedocs.io/en/latest/walk-through/output-parameters/
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from workflows.local_model import Launch, Limits, LoopItem, TaskError
from workflows.manifest import (
    MAX_LOOP_ITEMS,
    Parameter,
    Sequence,
    Template,
    UnresolvedError,
    parse_duration,
    scalar_text,
    shown,
    substitute,
    too_many_items,
)

__all__ = [
    "MAX_FORMAT_WIDTH",
    "aggregate_outputs",
    "input_value",
    "loop_item",
    "read_outputs",
    "resolve",
    "resolve_json",
    "sequence_format",
    "sequence_items",
    "sequence_numbers",
    "template_limits",
]


def resolve(
    text: str, scope: Mapping[str, str], what: str, paths: Mapping[str, str] | None = None
) -> str:
    """`text` with its variables substituted and, with `paths`, the emptyDir paths it writes
    pointed at the attempt's folders (`workflows.manifest.substitute`)."""
    try:
        return substitute(text, scope, paths)
    except UnresolvedError as exc:
        raise TaskError(f"{what}: cannot resolve {shown('{{' + exc.args[0] + '}}')}") from None


def template_limits(template: Template, scope: Mapping[str, str]) -> Limits:
    """A container node's attempts and time limits, its variables resolved."""
    per_attempt = node = None
    per_attempt_text = node_text = ""
    if template.deadline is not None:
        text = resolve(template.deadline, scope, "activeDeadlineSeconds").strip()
        if not re.fullmatch(r"[-+]?[0-9]{1,12}", text) or int(text) <= 0:
            raise TaskError(
                f"activeDeadlineSeconds: expected a positive number of seconds, got {shown(text)}"
            )
        per_attempt = float(int(text))
        per_attempt_text = f"activeDeadlineSeconds {int(text)} (each attempt)"
    if template.timeout is not None:
        text = resolve(template.timeout, scope, "timeout").strip()
        try:
            node = parse_duration(text)
        except ValueError as exc:
            raise TaskError(f"timeout: {exc}") from None
        node_text = f"timeout {text} (every attempt included)"
    return Limits(_attempts(template, scope), per_attempt, node, per_attempt_text, node_text)


def resolve_json(value: Any, scope: Mapping[str, str]) -> Any:
    """Substitute variables in every string of a withItems item."""
    if isinstance(value, str):
        return resolve(value, scope, "withItems")
    if isinstance(value, dict):
        return {key: resolve_json(inner, scope) for key, inner in value.items()}
    if isinstance(value, list):
        return [resolve_json(inner, scope) for inner in value]
    return value


def input_value(param: Parameter, given: Mapping[str, str], scope: Mapping[str, str]) -> str:
    if param.name in given:
        return given[param.name]
    if param.value is None:
        raise TaskError(f"input parameter {shown(param.name)} was not supplied")
    return resolve(param.value, scope, param.name)


def loop_item(value: Any) -> LoopItem:
    """Argo's loop item: ``{{item}}``, ``{{item.KEY}}``, and its part of the node name."""
    text = scalar_text(value)
    variables = {"item": text}
    label = text
    if isinstance(value, dict):
        variables.update({f"item.{key}": scalar_text(inner) for key, inner in value.items()})
        label = ",".join(sorted(f"{key}:{scalar_text(inner)}" for key, inner in value.items()))
    return LoopItem(text, label, variables)


def sequence_items(seq: Sequence, scope: Mapping[str, str]) -> list[str]:
    """``withSequence`` as Argo expands it: inclusive, counting down when end < start. Its
    size is checked before a single number exists."""
    numbers = sequence_numbers(seq, scope)
    fmt = sequence_format(seq, scope)
    try:
        return [fmt % n for n in numbers]
    except (TypeError, ValueError) as exc:
        raise TaskError(f"withSequence.format: {shown(fmt)}: {exc}") from None


def sequence_numbers(seq: Sequence, scope: Mapping[str, str]) -> range:
    """The numbers of a withSequence, lazily, once their count is known to be in bounds."""
    start = _integer(seq.start or "0", scope, "withSequence.start")
    if seq.count is not None:
        count = _integer(seq.count, scope, "withSequence.count")
        if count < 0:
            raise TaskError(f"withSequence.count: {count} is negative")
        if count > MAX_LOOP_ITEMS:
            raise TaskError(f"withSequence.count: {too_many_items(count)}")
        return range(start, start + count)
    end = _integer(seq.end or "0", scope, "withSequence.end")
    if abs(end - start) + 1 > MAX_LOOP_ITEMS:
        raise TaskError(f"withSequence.end: {too_many_items(abs(end - start) + 1)}")
    step = 1 if end >= start else -1
    return range(start, end + step, step)


_FORMAT_WIDTH = re.compile(r"%[-+ #0]*([0-9]*)(?:\.([0-9]*))?")
MAX_FORMAT_WIDTH = 1000  # of one withSequence number: "%01000000000d" would be a 1 GB item


def sequence_format(seq: Sequence, scope: Mapping[str, str]) -> str:
    fmt = resolve(seq.format, scope, "withSequence.format") if seq.format else "%d"
    for width, precision in _FORMAT_WIDTH.findall(fmt):
        if any(
            len(digits) > 4 or int(digits or 0) > MAX_FORMAT_WIDTH for digits in (width, precision)
        ):
            raise TaskError(
                f"withSequence.format: {shown(fmt)} pads a number to more than"
                f" {MAX_FORMAT_WIDTH} characters"
            )
    return fmt


def _integer(text: str, scope: Mapping[str, str], what: str) -> int:
    value = resolve(text, scope, what).strip()
    if not re.fullmatch(r"[-+]?[0-9]+", value):
        raise TaskError(f"{what}: expected an integer, got {shown(value)}")
    if len(value) > 100:  # no loop is that long; and int() stops at 4,300 digits
        raise TaskError(f"{what}: {shown(value)} is too large")
    return int(value)


def _attempts(template: Template, scope: Mapping[str, str]) -> int:
    """At most: whether each failed attempt is retried is `retry_refusal`'s to say."""
    retry = template.retry
    if retry is None:
        return 1
    limit = resolve(retry.limit, scope, "retryStrategy.limit")
    if not re.fullmatch(r"[0-9]{1,9}", limit):  # Argo's is an int32
        raise TaskError(f"retryStrategy.limit is not a non-negative integer: {shown(limit)}")
    return 1 + int(limit)


def read_outputs(launch: Launch) -> dict[str, str]:
    outputs: dict[str, str] = {}
    for name, path, default in launch.outputs:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            if default is None:
                raise TaskError(
                    f"output parameter {shown(name)}: cannot read {path}: {exc.strerror}"
                ) from None
            text = default
        outputs[name] = text.removesuffix("\n")  # Argo trims exactly one trailing newline
    return outputs


def aggregate_outputs(template: Template, outputs: list[dict[str, str]]) -> dict[str, str]:
    """Argo's aggregated outputs of a loop: one JSON list per output parameter."""
    aggregated: dict[str, str] = {}
    for param in template.outputs:
        values = [out[param.name] for out in outputs if param.name in out]
        parsed: list[Any] = []
        for value in values:
            try:
                decoded = json.loads(value)
            except (ValueError, RecursionError):  # not JSON, or nested past the parser's stack
                break
            if not isinstance(decoded, dict | list):
                break
            parsed.append(decoded)
        as_json = parsed if len(parsed) == len(values) else values
        aggregated[param.name] = json.dumps(as_json, separators=(",", ":"))
    return aggregated
