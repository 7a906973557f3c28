"""The keys each table of a spec may hold, and the one check of unknown keys every table uses.

Knowing every table's keys in one place lets an unknown key say where it belongs: `keep`
written under `[objective]`, or `gpu` under `[scheduling]`, is a key in the wrong table, not
a typo, and the message says which table takes it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from steps.spec_error import SpecError, field_path
from steps.spec_parts import Resources

__all__ = [
    "OBJECTIVE_KEYS",
    "REFINE_KEYS",
    "RESOURCE_KEYS",
    "SCHEDULING_KEYS",
    "TOLERATION_KEYS",
    "TOP_LEVEL_KEYS",
    "closest",
    "reject_unknown",
]

TOP_LEVEL_KEYS = frozenset(
    {
        "name",
        "function",
        "shards",
        "chunk_rows",
        "seed",
        "samples",
        "vectorized",
        "space",
        "objective",
        "keep",
        "code_version",
        "resources",
        "scheduling",
        "retry_user_errors",
        "refine",
    }
)
OBJECTIVE_KEYS = frozenset({"column", "goal", "top_k", "on_nan"})
RESOURCE_KEYS = frozenset(Resources.__dataclass_fields__)
SCHEDULING_KEYS = frozenset({"node_selector", "tolerations", "priority_class"})
TOLERATION_KEYS = frozenset({"key", "operator", "value", "effect", "toleration_seconds"})
REFINE_KEYS = frozenset({"stages", "top_k", "points"})

# Where each key belongs, as a user would write the place (first table that takes it wins).
_HOMES = {
    "the top level of the spec": TOP_LEVEL_KEYS,
    "[objective]": OBJECTIVE_KEYS,
    "[refine]": REFINE_KEYS,
    "[resources]": RESOURCE_KEYS,
    "[scheduling]": SCHEDULING_KEYS,
    "a [[scheduling.tolerations]] entry": TOLERATION_KEYS,
}


def closest(key: str, known: frozenset[str]) -> str | None:
    match = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return match[0] if match else None


def reject_unknown(data: Mapping[str, Any], known: frozenset[str], prefix: str) -> None:
    """Refuse the first key of `data` that is not `known`, saying where it belongs if another
    table takes it, else the closest known key."""
    for key in data:
        if key in known:
            continue
        home = next((place for place, keys in _HOMES.items() if key in keys), None)
        if home is not None:
            raise SpecError(
                field_path(prefix, key), f"is not a key of this table: it belongs in {home}"
            )
        hint = closest(str(key), known)
        raise SpecError(
            field_path(prefix, key),
            "unknown key"
            + (f" (did you mean '{hint}'?)" if hint else "")
            + f"; known keys: {', '.join(sorted(known))}",
        )
