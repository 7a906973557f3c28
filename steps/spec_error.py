"""How a spec problem is reported: `SpecError`, one line that names the field, and `shown`,
the bounded form in which every user value appears in it.

Every reader and validator of a spec raises this one error type, so the CLI and a pod print
the same line for the same mistake; this module imports nothing else of TTG.
"""

from __future__ import annotations

import reprlib
from typing import Any

__all__ = ["SpecError", "field_path", "shown"]


class SpecError(ValueError):
    """A spec problem, phrased as one line that names the field."""

    def __init__(self, field: str, problem: str) -> None:
        # A field path is built from user keys (each shown bounded, see `field_path`) and can nest
        # MAX_DEPTH deep: keep its head and tail.
        named = field if len(field) <= 120 else f"{field[:60]}...{field[-50:]}"
        line = f"spec field '{named}': {problem}"
        # User text is echoed back; escaping control characters keeps it one line.
        super().__init__(
            line.encode("unicode_escape").decode("ascii") if not line.isprintable() else line
        )
        self.field = field


class _Shown(reprlib.Repr):
    """reprlib with limits for messages: a value of any size shows as at most ~100 characters."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxstring = self.maxother = 60
        self.maxlong = 40
        self.maxlist = self.maxtuple = self.maxset = self.maxfrozenset = self.maxdeque = 8
        self.maxdict = 6

    def repr_int(self, x: int, level: int) -> str:
        # str() of an int over 4,300 digits raises (and a YAML or TOML hex literal can be one).
        if x.bit_length() > 128:
            return f"{'-' if x < 0 else ''}~2**{abs(x).bit_length() - 1}"
        return super().repr_int(x, level)


_SHOWN = _Shown()


def shown(value: Any) -> str:
    """How every user value appears in a SpecError: its repr, truncated, on one line (repr
    escapes newlines and other unprintable characters). Integers get thousands separators."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() <= 128:
        return f"{value:,}"
    return _SHOWN.repr(value)


def field_path(prefix: str, key: Any) -> str:
    """The field path of `key` inside `prefix` ("" at the top): a user's key, so a long or
    unprintable one is shown like any other user value."""
    plain = isinstance(key, str) and 0 < len(key) <= 64 and key.isprintable()
    text = key if plain else shown(key)
    return f"{prefix}.{text}" if prefix else text
