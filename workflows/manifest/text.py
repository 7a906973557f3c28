"""Strings of a manifest: `{{...}}` variables found and substituted in one linear pass,
user values echoed short (`shown`), and Go durations.

Argo's variables: https://argo-workflows.readthedocs.io/en/latest/variables/
"""

from __future__ import annotations

import bisect
import functools
import re
import reprlib
from collections.abc import Mapping
from typing import Any

from workflows.manifest.limits import VARIABLE
from workflows.manifest.model import UnresolvedError

__all__ = [
    "clipped",
    "find_variables",
    "parse_duration",
    "secret_variable",
    "shown",
    "substitute",
    "variables",
]


def secret_variable(key: str) -> str:
    """The environment variable a secret key is read from locally: ``aws-key.id`` → ``AWS_KEY_ID``."""
    return re.sub(r"[^A-Za-z0-9]", "_", key.upper())


def substitute(text: str, values: Mapping[str, str], paths: Mapping[str, str] | None = None) -> str:
    """Replace every ``{{name}}`` in one pass (values are not rescanned), as Argo does.

    `paths` maps folders (emptyDir mount paths) to the folders that stand for them locally.
    Only the literal text is rewritten — what the manifest wrote, never a substituted value —
    where a path starts (at the start, or after a space, a quote or one of ``=:,;|&<>([{``)
    with such a folder and goes on at a component boundary (the end, ``/``, a space, a quote
    or one of ``:,;|&<>)]}``): ``/tmp/out`` and ``--out=/tmp`` are rewritten for a mount at
    ``/tmp``, but ``/tmpfile``, ``/var/tmp`` and ``{{inputs.parameters.dir}}/tmp`` are not."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name not in values:
            raise UnresolvedError(name)
        return values[name]

    found = find_variables(text)
    edits = [(m.start(), m.end(), value(m)) for m in found]
    if paths:
        ends = [m.end() for m in found]
        for m in _path_pattern(tuple(sorted(paths, key=len, reverse=True))).finditer(text):
            i = bisect.bisect_right(ends, m.start())  # the first variable ending after it starts
            if i == len(found) or found[i].start() >= m.end():  # not inside a variable
                edits.append((m.start(), m.end(), paths[m.group(1)]))
        edits.sort()
    pieces: list[str] = []
    position = 0
    for start, end, replacement in edits:
        pieces += [text[position:start], replacement]
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


@functools.lru_cache(maxsize=64)
def _path_pattern(folders: tuple[str, ...]) -> re.Pattern[str]:
    """Where a path starting with one of `folders` (longest first) is written in a string."""
    alternatives = "|".join(re.escape(folder) for folder in folders)
    before = r"""(?:^|(?<=[\s'"`=:,;|&<>(\[{]))"""
    after = r"""(?=\Z|[/\s'"`:,;|&<>)\]}])"""
    return re.compile(f"{before}({alternatives}){after}")


def variables(text: str) -> list[str]:
    """The names of the ``{{...}}`` variables in `text`, as written (stripped)."""
    return [match.group(1).strip() for match in find_variables(text)]


def find_variables(text: str) -> list[re.Match[str]]:
    """The ``{{...}}`` in `text`, in linear time. A search for ``}}`` from each of n unclosed
    ``{{`` would cost n^2 steps (minutes for a 200 KB string), so none runs past the last
    ``}}``: before it, every ``{{`` finds its ``}}`` and the match consumes the scan."""
    last = text.rfind("}}")
    return [] if last < 0 else list(VARIABLE.finditer(text, 0, last + 2))


def shown(value: Any) -> str:
    """A user's value as a message echoes it: its repr, cut to a few dozen characters, one
    line. Every refusal formats user values with this, so a huge value cannot flood the
    terminal (or take minutes to format)."""
    try:
        return _SHORT.repr(value)
    except Exception:  # e.g. an int too long to convert to text
        return f"<{type(value).__name__}>"


def clipped(text: str) -> str:
    """A user's text cut as `shown` cuts it, for a message that quotes it no further."""
    return text if len(text) <= _SHORT.maxstring else shown(text)[1:-1]


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80
_SHORT.maxlong = 40
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 6
_SHORT.maxlevel = 3


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1,
    "m": 60,
    "h": 3600,
}


def parse_duration(text: str) -> float:
    """Seconds in a Go duration (``30s``, ``1h30m``, ``1.5m``, ``-5s``, ``0``), the format of
    a template's ``timeout``; ValueError otherwise. A bare number of seconds is accepted too,
    as Argo's controller accepts it at run time (its linter refuses one written literally)."""
    rest = text.strip()
    if re.fullmatch(r"[-+]?\d+", rest):
        return float(int(rest))
    sign = -1.0 if rest.startswith("-") else 1.0
    rest = rest[1:] if rest[:1] in ("-", "+") else rest
    seconds, position = 0.0, 0
    while position < len(rest):
        part = _DURATION_PART.match(rest, position)
        if part is None:
            break
        seconds += float(part.group(1)) * _DURATION_UNITS[part.group(2)]
        position = part.end()
    if not rest or position < len(rest):
        raise ValueError(f"{shown(text)} is not a duration such as '30s', '5m' or '1h30m'")
    return sign * seconds
