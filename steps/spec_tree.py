"""The shape every decoded spec document must have before any validator looks at it.

`check_tree` refuses what no spec can be: a document too large (counted expanded, so a shared
part counts each time it is used), nested too deep or containing itself, keys that are not
strings or that repeat, text that is not Unicode, values that TOML, YAML and JSON cannot all
write. Its `Budget` and `check_key` also bound the YAML reader (steps.spec_yaml) while it
builds a document, so that an alias bomb is refused before it is expanded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from steps.spec_error import SpecError, field_path, shown
from steps.spec_limits import MAX_DEPTH, MAX_NODES, MAX_SPEC_BYTES, MAX_SPEC_FILE_BYTES

__all__ = ["Budget", "RepeatedKey", "check_key", "check_tree", "reading"]


def reading(value: Any) -> str:
    if isinstance(value, Exception):
        return "an error"
    if isinstance(value, str):
        return "text"
    return "null" if value is None else f"{type(value).__name__} {shown(value)}"


class RepeatedKey(dict[str, Any]):
    """A JSON object in which `key` appears more than once (json.loads keeps only the last):
    refused by `check_tree`, which knows where it is."""

    def __init__(self, pairs: list[tuple[str, Any]], key: str) -> None:
        super().__init__(pairs)
        self.key = key


class Budget:
    """What walking a document has cost so far, counted as expanded (a shared part counts
    each time it is used): at most MAX_NODES values and MAX_SPEC_FILE_BYTES characters of
    text (keys included), as much as one spec file can hold without aliases. Far more than
    any spec within MAX_SPEC_BYTES has, so only documents that cannot be specs hit it."""

    def __init__(self) -> None:
        self.values = 0
        self.chars = 0

    def spend(self, path: str, text: str = "", values: int = 1) -> None:
        self.values += values
        self.chars += len(text)
        self.ahead(path, 0)
        if self.chars > MAX_SPEC_FILE_BYTES:
            raise SpecError(
                path or "(top level)",
                f"makes the document more than {MAX_SPEC_FILE_BYTES:,} characters of text "
                "(aliases count each time they are used)",
            )

    def ahead(self, path: str, children: int) -> None:
        if self.values + children > MAX_NODES:
            raise SpecError(
                path or "(top level)",
                f"makes the document more than {MAX_NODES:,} values (aliases count each time "
                f"they are used); no spec within the {MAX_SPEC_BYTES:,}-byte limit has that many",
            )

    def enter(self, path: str, recursive: bool, depth: int, children: int) -> None:
        """A list or table at `path`, `depth` containers deep, of `children` values."""
        if recursive:
            raise SpecError(
                path or "(top level)", "contains itself (a recursive alias such as &a [*a])"
            )
        if depth >= MAX_DEPTH:
            raise SpecError(path or "(top level)", f"nests deeper than {MAX_DEPTH} levels")
        self.spend(path)
        self.ahead(path, children)  # refused before its children are even listed


def check_key(key: Any, path: str) -> None:
    if not isinstance(key, str):
        raise SpecError(
            field_path(path, key), f"keys must be strings, as in TOML and JSON; got {reading(key)}"
        )
    _check_text(key, field_path(path, key))


def _check_text(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SpecError(
            path or "(top level)",
            f"{shown(text)} is not Unicode text: U+{ord(text[exc.start]):04X} at index "
            f"{exc.start} is a lone surrogate, which UTF-8 cannot encode",
        ) from None


def check_tree(data: Any) -> None:
    """Refuse what no spec can be before any validator formats or walks it: a document over
    the `Budget` (counted expanded, so shared parts count each time), nesting deeper than
    MAX_DEPTH, a document that contains itself, keys that are not strings or that repeat, text
    that is not Unicode, and values that TOML, YAML and JSON cannot all write. Iterative."""
    budget = Budget()
    stack: list[tuple[Any, str, tuple[int, ...]]] = [(data, "", ())]
    while stack:
        value, path, parents = stack.pop()
        if isinstance(value, str):
            budget.spend(path, value)
            _check_text(value, path)
        elif isinstance(value, Mapping):
            budget.enter(path, id(value) in parents, len(parents), len(value))
            if isinstance(value, RepeatedKey):
                raise SpecError(
                    field_path(path, value.key), "is defined twice (each key may appear once)"
                )
            for key in value:
                budget.spend(path, key if isinstance(key, str) else "", values=0)
                check_key(key, path)
            inner = (*parents, id(value))
            stack.extend((v, field_path(path, k), inner) for k, v in reversed(list(value.items())))
        elif isinstance(value, list | tuple):
            budget.enter(path, id(value) in parents, len(parents), len(value))
            inner = (*parents, id(value))
            stack.extend((v, f"{path}[{i}]", inner) for i, v in reversed(list(enumerate(value))))
        elif value is None or isinstance(value, bool | int | float):
            budget.spend(path)
        else:
            raise SpecError(
                path or "(top level)",
                f"{type(value).__name__} {shown(value)} is not a spec value: a spec holds only "
                "tables, lists, strings, numbers and booleans (what TOML, YAML and JSON all write)",
            )
