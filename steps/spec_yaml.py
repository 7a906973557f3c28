"""Read a YAML spec by walking its node graph ourselves (PyYAML composes, we build the values),
so that aliases cannot expand without bound and every plain scalar means the same in YAML 1.1
(PyYAML) and YAML 1.2 (and so TOML and JSON).

PyYAML is imported only when a YAML spec is read: the worker image has none (it receives
canonical JSON).
"""

from __future__ import annotations

import math
import re
from typing import Any

from steps.spec_error import SpecError, field_path, shown
from steps.spec_tree import Budget, check_key, reading

__all__ = ["yaml_document"]


_YAML = "tag:yaml.org,2002:"
# The YAML 1.2 core schema, restricted to what JSON can also write.
_YAML12 = (
    (re.compile(r"null|Null|NULL|~|"), lambda text: None),
    (re.compile(r"true|True|TRUE|false|False|FALSE"), lambda text: text[0] in "tT"),
    (re.compile(r"[-+]?[0-9]+"), int),
    (re.compile(r"0o[0-7]+"), lambda text: int(text[2:], 8)),
    (re.compile(r"0x[0-9a-fA-F]+"), lambda text: int(text[2:], 16)),
    (re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?"), float),
    (re.compile(r"[-+]?\.(inf|Inf|INF)"), lambda text: float(text.replace(".", ""))),
    (re.compile(r"\.(nan|NaN|NAN)"), lambda text: math.nan),
)


def _yaml12(text: str) -> Any:
    for pattern, convert in _YAML12:
        if pattern.fullmatch(text):
            return convert(text)
    return text


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    return repr(a) == repr(b) if isinstance(a, float) else bool(a == b)


def yaml_document(text: str) -> Any:
    import yaml  # authoring side only: the worker image receives JSON

    class Loader(yaml.SafeLoader):
        """Composes only (no construction), noting which scalars were written plain."""

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.plain: set[yaml.Node] = set()

        def compose_scalar_node(self, anchor: Any) -> yaml.ScalarNode:
            event = self.peek_event()
            node = super().compose_scalar_node(anchor)
            if event.tag is None and getattr(event, "style", None) is None:
                self.plain.add(node)
            return node

    loader = Loader(text)
    try:
        root = loader.get_single_node()
        return None if root is None else _yaml_tree(root, loader)
    finally:
        loader.dispose()


# YAML 1.1's boolean type also lists y/Y/n/N; PyYAML leaves them out, Go's yaml.v2 (the
# library of kubectl and Argo) reads them as booleans: as values they are as ambiguous as
# yes/no. As keys they are what they look like: axis names (x, y), text in every format.
_YAML11_SHORT_BOOLS = frozenset({"y", "Y", "n", "N"})


def _yaml_scalar(node: Any, loader: Any, path: str, key: bool = False) -> Any:
    if node.tag == _YAML + "merge":
        raise SpecError(
            path or "(top level)",
            "YAML merge keys (<<) are not supported: YAML 1.2 dropped them and TOML and JSON "
            "have none; write the keys out",
        )
    if node in loader.plain:
        try:
            yaml11 = loader.construct_object(node)  # what PyYAML (YAML 1.1) reads
        except Exception as exc:
            yaml11 = exc
        if node.value in _YAML11_SHORT_BOOLS and not key:  # axes are named x, y, ...
            yaml11 = node.value in "yY"
        yaml12 = _yaml12(node.value)
        if not _same(yaml11, yaml12):
            raise SpecError(
                path or "(top level)",
                f"YAML 1.1 reads {shown(node.value)} as {reading(yaml11)}, YAML 1.2 as "
                f"{reading(yaml12)}: quote it for text, or write it so both agree "
                "(true/false, 8, 1.0e+3)",
            )
        return yaml12
    if node.tag == _YAML + "str":  # quoted, block, or tagged !!str or !
        return node.value
    return _yaml_tag(node, path)


def _yaml_tag(node: Any, path: str) -> Any:
    tag = str(node.tag).replace(_YAML, "!!")
    raise SpecError(
        path or "(top level)",
        f"the YAML tag {shown(tag)} is not supported: a spec holds only tables, lists, "
        "strings, numbers and booleans (what TOML and JSON can write too)",
    )


def _yaml_tree(root: Any, loader: Any) -> Any:
    """Python values of a composed YAML document, built iteratively (no recursion) within a
    `Budget`: an alias counts each time it is used, so a few hundred bytes of nested aliases
    ("billion laughs") are refused after MAX_NODES values, not expanded."""
    import yaml

    budget = Budget()
    top: list[Any] = [None]
    stack: list[tuple[Any, str, tuple[Any, ...], Any, Any]] = [(root, "", (), top, 0)]
    while stack:
        node, path, parents, container, slot = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            budget.spend(path, node.value)
            container[slot] = _yaml_scalar(node, loader, path)
            continue
        recursive = any(node is parent for parent in parents)
        budget.enter(path, recursive, len(parents), len(node.value))
        inner = (*parents, node)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _YAML + "seq":
                _yaml_tag(node, path)
            items: list[Any] = [None] * len(node.value)
            container[slot] = items
            stack.extend(
                (child, f"{path}[{i}]", inner, items, i)
                for i, child in reversed(list(enumerate(node.value)))
            )
            continue
        if node.tag != _YAML + "map":
            _yaml_tag(node, path)
        mapping: dict[str, Any] = {}
        container[slot] = mapping
        children = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise SpecError(path or "(top level)", "has a key that is a list or a table")
            budget.spend(path, key_node.value, values=0)
            key = _yaml_scalar(key_node, loader, field_path(path, key_node.value), key=True)
            check_key(key, path)
            if key in mapping:
                raise SpecError(
                    field_path(path, key), "is defined twice (each key may appear once)"
                )
            mapping[key] = None  # keeps the order of the keys as written
            children.append((value_node, field_path(path, key), inner, mapping, key))
        stack.extend(reversed(children))
    return top[0]
