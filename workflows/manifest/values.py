"""Reading one value of a manifest: its type checked, or one line naming its path."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, NoReturn

from workflows.manifest.limits import IGNORED, SUPPORTED
from workflows.manifest.model import ManifestError
from workflows.manifest.text import shown

__all__ = [
    "check_keys",
    "fail",
    "key_path",
    "read_int",
    "read_list",
    "read_mapping",
    "read_scalar",
    "read_string",
    "scalar_text",
    "short_key",
    "strings_in",
]


def fail(path: str, message: str) -> NoReturn:
    raise ManifestError(f"{path}: {message}".replace("\r", " ").replace("\n", " "))


def read_mapping(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        fail(path, f"expected a mapping, got {_kind(value)}")
    return value


def read_list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        fail(path, f"expected a list, got {_kind(value)}")
    return value


def read_string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        fail(path, f"expected a string, got {_kind(value)}")
    return value


def read_scalar(value: Any, path: str) -> str:
    """A parameter value: strings as they are, numbers and booleans as JSON writes them."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return scalar_text(value)
    fail(path, f"expected a string, got {_kind(value)}")


def read_int(value: Any, path: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        fail(path, f"expected an integer >= {minimum}, got {shown(value)}")
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


def check_keys(obj: Mapping[str, Any], path: str, kind: str) -> None:
    allowed = SUPPORTED[kind] | IGNORED.get(kind, frozenset())
    for key in obj:
        if key not in allowed:
            where = short_key(key)
            fail(f"{path}.{where}" if path else where, "not supported by the local executor")


def key_path(keys: list[Any]) -> str:
    """``spec.templates[0].name``; the middle of a very deep path elided."""
    parts = [f"[{key}]" if isinstance(key, int) else f".{short_key(key)}" for key in keys[1:]]
    if len(parts) > 14:  # keys[0], skipped above, is the root's own (empty) key
        parts = [*parts[:8], "...", *parts[-5:]]
    return "".join(parts).lstrip(".") or "manifest"


def short_key(key: Any) -> str:
    text = str(key) if isinstance(key, str) else shown(key)
    return text if len(text) <= 60 else f"{text[:28]}...{text[-28:]}"


def strings_in(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string inside a JSON-like value, with its path, in document order."""
    stack = [(path, value)]
    while stack:
        at, current = stack.pop()
        if isinstance(current, str):
            yield at, current
        elif isinstance(current, dict):
            stack.extend(reversed([(f"{at}.{short_key(k)}", v) for k, v in current.items()]))
        elif isinstance(current, list):
            stack.extend(reversed([(f"{at}[{i}]", v) for i, v in enumerate(current)]))
