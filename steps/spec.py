"""The sweep spec: load, validate, canonicalise, hash.

A spec arrives as TOML / YAML / JSON from a user, or as canonical JSON from a Workflow
parameter. Both go through `parse_spec`, so a pod validates exactly what the CLI validated.
The canonical form keeps `space` as an ordered list of `[name, axis]` pairs: axis order fixes
the `param_id` order, so it must survive hashing and transport.
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import json
import math
import re
import reprlib
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

MAX_SHARDS = 10_000
MAX_CHUNK_ROWS = 1 << 24
MAX_ROWS = 1 << 62
MAX_TOP_K = 10_000

# The size of a spec. Its compact canonical JSON travels as ONE command-line argument of every
# pod and every fresh local task (`--spec <json>`), and Linux refuses any single argument longer
# than MAX_ARG_STRLEN = 128 KiB ("Argument list too long"). Half of that leaves room for the
# other arguments and for a JSON-escaped copy of the same text (quotes double) wherever the
# template itself is carried, and keeps the rendered Workflow a few KB to tens of KB: O(1).
MAX_SPEC_BYTES = 64 * 1024
# A spec file may be larger than its canonical form (comments, indentation: a YAML block list
# of small numbers is ~4x its JSON), and it is read whole before it is parsed; the slowest
# parser (pure-Python YAML, ~2 us a byte here) takes about half a second on 256 KiB.
MAX_SPEC_FILE_BYTES = 4 * MAX_SPEC_BYTES
# Every value of a valid document adds at least one byte to the canonical JSON, so a document
# of more values (counted expanded: a YAML alias counts each time it is used) cannot be a spec.
MAX_NODES = MAX_SPEC_BYTES
MAX_DEPTH = 32  # a valid spec nests 6 deep; this bounds every walk, repr and parser after it

# \A...\Z, not ^...$: `$` also matches before a trailing newline, so "demo\n" would pass.
NAME_RE = re.compile(r"\A[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?\Z")
FUNCTION_RE = re.compile(r"\A[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*\Z")
AXIS_NAME_RE = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
RESERVED_COLUMNS = frozenset({"param_id"})

GRID_KINDS = ("linspace", "range", "values", "logspace")
RANDOM_KINDS = ("uniform", "loguniform", "normal", "choice")

Scalar = int | float | str | bool


class SpecError(ValueError):
    """A spec problem, phrased as one line that names the field."""

    def __init__(self, field: str, problem: str) -> None:
        # A field path is built from user keys (each shown bounded, see `_at`) and can nest
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


def _at(prefix: str, key: Any) -> str:
    """The field path of `key` inside `prefix` ("" at the top): a user's key, so a long or
    unprintable one is shown like any other user value."""
    plain = isinstance(key, str) and 0 < len(key) <= 64 and key.isprintable()
    text = key if plain else shown(key)
    return f"{prefix}.{text}" if prefix else text


@dataclass(frozen=True)
class Axis:
    """One named axis: `kind` is one of GRID_KINDS or RANDOM_KINDS, `args` its arguments."""

    name: str
    kind: str
    args: tuple[Scalar, ...]

    @property
    def is_random(self) -> bool:
        return self.kind in RANDOM_KINDS


@dataclass(frozen=True)
class Objective:
    column: str
    goal: Literal["min", "max"]
    top_k: int


# ASCII digits only: \d also matches other scripts' digits, which Kubernetes refuses.
QUANTITY_RE = re.compile(r"\A([0-9]+(\.[0-9]+)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?\Z")
MAX_QUANTITY_CHARS = 32


@dataclass(frozen=True)
class Resources:
    """Kubernetes requests and limits for each pod; the old worker's defaults."""

    cpu_request: str = "100m"
    memory_request: str = "128Mi"
    cpu_limit: str = "500m"
    memory_limit: str = "256Mi"


WHERE_RE = re.compile(r"\A\s*([A-Za-z_]\w*)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*\Z")
MAX_KEEP_TOP_K = 1_000_000


@dataclass(frozen=True)
class Keep:
    """Which rows the result keeps: all of them, the best `top_k` by the objective, or those
    `where` a condition holds. The summary always covers every computed row."""

    top_k: int | None = None
    where: tuple[str, str, float] | None = None  # column, operator, number

    @property
    def everything(self) -> bool:
        return self.top_k is None and self.where is None

    def canonical(self) -> str | dict[str, Any]:
        if self.top_k is not None:
            return {"top_k": self.top_k}
        if self.where is not None:
            column, op, number = self.where
            return {"where": f"{column} {op} {number!r}"}
        return "all"


@dataclass(frozen=True)
class Spec:
    name: str
    function: str
    shards: int
    chunk_rows: int
    seed: int
    samples: int
    vectorized: bool
    axes: tuple[Axis, ...]
    objective: Objective | None
    keep: Keep = Keep()
    # Where the sweep runs, not what it computes: outside the canonical form and the hash.
    resources: Resources = Resources()

    def canonical(self) -> dict[str, Any]:
        """Plain-JSON form with every default filled in and axis order kept (no resources)."""
        return {
            "name": self.name,
            "function": self.function,
            "shards": self.shards,
            "chunk_rows": self.chunk_rows,
            "seed": self.seed,
            "samples": self.samples,
            "vectorized": self.vectorized,
            "space": [[a.name, {a.kind: list(a.args)}] for a in self.axes],
            "objective": None
            if self.objective is None
            else {
                "column": self.objective.column,
                "goal": self.objective.goal,
                "top_k": self.objective.top_k,
            },
            "keep": self.keep.canonical(),
        }

    def to_json(self) -> str:
        """Compact canonical JSON: what travels as the Workflow's `spec` parameter."""
        return json.dumps(self.canonical(), separators=(",", ":"), ensure_ascii=False)

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def document(self) -> dict[str, Any]:
        """The canonical form plus `resources`: the document `parse_spec` turns into this spec."""
        return {**self.canonical(), "resources": dataclasses.asdict(self.resources)}

    def with_fields(self, **changes: Any) -> Spec:
        """This spec with some fields replaced (a CLI override such as `--shards`), validated by
        `parse_spec` like the same fields of a spec file: one validator per value."""
        return parse_spec({**self.document(), **changes})

    def with_shards(self, shards: int) -> Spec:
        return self.with_fields(shards=shards)


def load_spec(path: str | Path) -> Spec:
    """Read a spec file (by extension: .toml, .yaml/.yml, .json) and validate it.

    The format is known before the file is opened and at most MAX_SPEC_FILE_BYTES are read,
    so a device or a huge file is refused, not read; the bytes must be UTF-8 text.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    _format(suffix)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_SPEC_FILE_BYTES + 1)
            size = _file_size(file.fileno(), len(data))
    except FileNotFoundError:
        raise SpecError("file", f"no such spec file: {path}") from None
    except OSError as exc:
        raise SpecError("file", f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_SPEC_FILE_BYTES:
        raise SpecError("file", _too_large(str(path), size, MAX_SPEC_FILE_BYTES, "a spec file"))
    return parse_spec(_decode(_text(data, str(path)), suffix, str(path)))


def _file_size(fileno: int, read: int) -> str:
    import os
    import stat

    status = os.fstat(fileno)
    if stat.S_ISREG(status.st_mode) and status.st_size >= read:
        return f"{status.st_size:,} bytes"
    return f"more than {read - 1:,} bytes"


def _too_large(what: str, size: str, limit: int, kind: str) -> str:
    return (
        f"{what} is {size}, over the {limit:,}-byte limit of {kind} (a canonical spec may have "
        f"at most {MAX_SPEC_BYTES:,} bytes: give long axes as a range, linspace or logspace)"
    )


_OTHER_BOMS = {
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}


def _text(data: bytes, where: str) -> str:
    """A spec file's bytes as text: UTF-8 (one leading byte-order mark allowed, as YAML
    allows it: TOML and JSON then read the same file the same way), no NUL bytes."""
    for bom, encoding in _OTHER_BOMS.items():
        if data.startswith(bom):
            raise SpecError("file", f"{where} is {encoding} text: save it as UTF-8")
    if b"\0" in data:
        offset = data.index(b"\0")
        raise SpecError(
            "file", f"{where} has a NUL byte at offset {offset:,}: a spec file is text, not binary"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(
            "file",
            f"{where} is not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start:,} "
            f"({exc.reason})",
        ) from None


def spec_from_json(text: str) -> Spec:
    """Parse the canonical JSON a pod receives (also accepts any JSON spec)."""
    return parse_spec(_decode(text, ".json", "--spec"))


_FORMATS = {".toml": "TOML", ".yaml": "YAML", ".yml": "YAML", ".json": "JSON"}


def _format(suffix: str) -> str:
    if suffix not in _FORMATS:
        raise SpecError(
            "file", f"unknown spec format {shown(suffix)} (use .toml, .yaml, .yml or .json)"
        )
    return _FORMATS[suffix]


def _decode(text: str, suffix: str, where: str) -> Any:
    """Parse a spec document; any malformed one is a SpecError of one line."""
    name = _format(suffix)
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_SPEC_FILE_BYTES:
        raise SpecError("file", _too_large(where, f"{size:,} bytes", MAX_SPEC_FILE_BYTES, "a spec"))
    text = text.removeprefix("\ufeff")
    try:
        if name == "TOML":
            return tomllib.loads(text)
        if name == "YAML":
            return _yaml_document(text)
        return json.loads(text, object_pairs_hook=_json_object)
    except SpecError:
        raise
    except RecursionError:
        raise SpecError(
            "file", f"{where} nests too deeply for the {name} parser (a spec nests 6 levels)"
        ) from None
    except Exception as exc:  # every parser has its own error type; all mean "malformed"
        message = str(exc).strip()
        first_line = message.splitlines()[0][:200] if message else type(exc).__name__
        raise SpecError("file", f"{where} is not valid {name}: {first_line}") from None


class _RepeatedKey(dict[str, Any]):
    """A JSON object in which `key` appears more than once (json.loads keeps only the last):
    refused by `_check_tree`, which knows where it is."""

    def __init__(self, pairs: list[tuple[str, Any]], key: str) -> None:
        super().__init__(pairs)
        self.key = key


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) == len(pairs):
        return document
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return _RepeatedKey(pairs, key)
        seen.add(key)
    raise AssertionError("unreachable")


# --- YAML: read the node graph ourselves, so that aliases cannot expand without bound and
# every plain scalar means the same in YAML 1.1 (PyYAML) and YAML 1.2 (and so TOML and JSON).

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


def _reading(value: Any) -> str:
    if isinstance(value, Exception):
        return "an error"
    if isinstance(value, str):
        return "text"
    return "null" if value is None else f"{type(value).__name__} {shown(value)}"


def _yaml_document(text: str) -> Any:
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


def _yaml_scalar(node: Any, loader: Any, path: str) -> Any:
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
        yaml12 = _yaml12(node.value)
        if not _same(yaml11, yaml12):
            raise SpecError(
                path or "(top level)",
                f"YAML 1.1 reads {shown(node.value)} as {_reading(yaml11)}, YAML 1.2 as "
                f"{_reading(yaml12)}: quote it for text, or write it so both agree "
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
    `_Budget`: an alias counts each time it is used, so a few hundred bytes of nested aliases
    ("billion laughs") are refused after MAX_NODES values, not expanded."""
    import yaml

    budget = _Budget()
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
            key = _yaml_scalar(key_node, loader, _at(path, key_node.value))
            _check_key(key, path)
            if key in mapping:
                raise SpecError(_at(path, key), "is defined twice (each key may appear once)")
            mapping[key] = None  # keeps the order of the keys as written
            children.append((value_node, _at(path, key), inner, mapping, key))
        stack.extend(reversed(children))
    return top[0]


class _Budget:
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


def _check_key(key: Any, path: str) -> None:
    if not isinstance(key, str):
        raise SpecError(
            _at(path, key), f"keys must be strings, as in TOML and JSON; got {_reading(key)}"
        )
    _check_text(key, _at(path, key))


def _check_text(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SpecError(
            path or "(top level)",
            f"{shown(text)} is not Unicode text: U+{ord(text[exc.start]):04X} at index "
            f"{exc.start} is a lone surrogate, which UTF-8 cannot encode",
        ) from None


def _check_tree(data: Any) -> None:
    """Refuse what no spec can be before any validator formats or walks it: a document over
    the `_Budget` (counted expanded, so shared parts count each time), nesting deeper than
    MAX_DEPTH, a document that contains itself, keys that are not strings or that repeat, text
    that is not Unicode, and values that TOML, YAML and JSON cannot all write. Iterative."""
    budget = _Budget()
    stack: list[tuple[Any, str, tuple[int, ...]]] = [(data, "", ())]
    while stack:
        value, path, parents = stack.pop()
        if isinstance(value, str):
            budget.spend(path, value)
            _check_text(value, path)
        elif isinstance(value, Mapping):
            budget.enter(path, id(value) in parents, len(parents), len(value))
            if isinstance(value, _RepeatedKey):
                raise SpecError(_at(path, value.key), "is defined twice (each key may appear once)")
            for key in value:
                budget.spend(path, key if isinstance(key, str) else "", values=0)
                _check_key(key, path)
            inner = (*parents, id(value))
            stack.extend((v, _at(path, k), inner) for k, v in reversed(list(value.items())))
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
        "resources",
    }
)


def parse_spec(data: Any) -> Spec:
    """Validate a decoded spec document; every error names its field."""
    _check_tree(data)
    if not isinstance(data, Mapping):
        raise SpecError("(top level)", "expected a table of settings")
    _reject_unknown(data, TOP_LEVEL_KEYS, "")
    name = _required_str(data, "name")
    if not NAME_RE.fullmatch(name):
        raise SpecError(
            "name",
            f"{shown(name)} must be a DNS-1123 label of at most 40 characters "
            "(lowercase letters, digits and '-', starting and ending with a letter or digit)",
        )
    function = _required_str(data, "function")
    if not FUNCTION_RE.fullmatch(function):
        raise SpecError("function", f"{shown(function)} must look like 'package.module:callable'")
    axes = _parse_space(data.get("space"))
    has_random = any(a.is_random for a in axes)
    samples = _int_in(data.get("samples", 1), "samples", 1, MAX_ROWS)
    if samples > 1 and not has_random:
        raise SpecError("samples", f"is {samples} but the space has no random axis to draw from")
    objective = _parse_objective(data.get("objective"), axes)
    spec = Spec(
        name=name,
        function=function,
        shards=_int_in(data.get("shards", 1), "shards", 1, MAX_SHARDS),
        chunk_rows=_int_in(data.get("chunk_rows", 262_144), "chunk_rows", 1, MAX_CHUNK_ROWS),
        seed=_int_in(data.get("seed", 0), "seed", 0, 2**63 - 1),
        samples=samples,
        vectorized=_bool(data.get("vectorized", True), "vectorized"),
        axes=axes,
        objective=objective,
        keep=_parse_keep(data.get("keep", "all"), objective),
        resources=parse_resources(data.get("resources"), "resources"),
    )
    from steps.space import grid_length  # space imports spec; import here to avoid a cycle

    rows = math.prod(grid_length(a) for a in axes if not a.is_random) * samples
    if rows > MAX_ROWS:
        raise SpecError("space", f"has {shown(rows)} rows, more than the supported {MAX_ROWS:,}")
    if spec.shards > rows:
        raise SpecError("shards", f"is {spec.shards} but the space has only {rows} rows")
    _check_size(spec)
    return spec


def _check_size(spec: Spec) -> None:
    """The canonical spec travels as one command-line argument: see MAX_SPEC_BYTES."""
    size = len(spec.to_json().encode())
    if size <= MAX_SPEC_BYTES:
        return
    canonical = spec.canonical()
    parts = {key: _json_size(value) for key, value in canonical.items()}
    field = max(parts, key=parts.__getitem__)
    if field == "space":
        axis = max(spec.axes, key=lambda a: _json_size(list(a.args)))
        field = f"{_at('space', axis.name)}.{axis.kind}"
    raise SpecError(
        field,
        f"makes the canonical spec {size:,} bytes, over the limit of {MAX_SPEC_BYTES:,} (the "
        "spec travels as one command-line argument of every pod): give a long axis as a "
        "range, linspace or logspace instead of listing its values",
    )


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _reject_unknown(data: Mapping[str, Any], known: frozenset[str], prefix: str) -> None:
    for key in data:
        if key not in known:
            hint = _closest(str(key), known)
            raise SpecError(
                _at(prefix, key),
                "unknown key"
                + (f" (did you mean '{hint}'?)" if hint else "")
                + f"; known keys: {', '.join(sorted(known))}",
            )


def _closest(key: str, known: frozenset[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return match[0] if match else None


def _required_str(data: Mapping[str, Any], field: str) -> str:
    if field not in data:
        raise SpecError(field, "is required")
    value = data[field]
    if not isinstance(value, str) or not value:
        raise SpecError(field, f"must be a non-empty string, got {shown(value)}")
    return value


def _int_in(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(field, f"must be an integer, got {shown(value)}")
    if not low <= value <= high:
        raise SpecError(field, f"must be between {low:,} and {high:,}, got {shown(value)}")
    return value


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError(field, f"must be true or false, got {shown(value)}")
    return value


def _finite(value: Any, field: str) -> float:
    """A finite float64; an integer only if it is exactly one (2**53 + 1 is not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(field, f"must be a number, got {shown(value)}")
    if isinstance(value, int):
        return _exact_float(value, field)
    if not math.isfinite(value):
        raise SpecError(field, f"must be finite, got {shown(value)}")
    return float(value)


def _exact_float(value: int, field: str) -> float:
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if number != value:
        raise SpecError(
            field,
            f"the integer {shown(value)} is not exactly a float64 (the axis is float64): "
            "write the float you mean",
        )
    return number


def _parse_space(space: Any) -> tuple[Axis, ...]:
    """Accept a mapping (from TOML/YAML, order kept) or the canonical list of pairs."""
    if space is None:
        raise SpecError("space", "is required: at least one axis")
    if isinstance(space, Mapping):
        pairs = list(space.items())
    elif isinstance(space, Sequence) and not isinstance(space, str):
        pairs = []
        for i, pair in enumerate(space):
            if not (isinstance(pair, Sequence) and not isinstance(pair, str) and len(pair) == 2):
                raise SpecError(f"space[{i}]", "must be a [name, axis] pair")
            pairs.append((pair[0], pair[1]))
    else:
        raise SpecError("space", "must be a table of axes")
    if not pairs:
        raise SpecError("space", "is empty: at least one axis is required")
    axes = []
    seen: set[str] = set()
    for name, body in pairs:
        if not isinstance(name, str) or not AXIS_NAME_RE.fullmatch(name):
            raise SpecError(
                _at("space", name), "axis names must be Python identifiers (<= 63 chars)"
            )
        if name in RESERVED_COLUMNS:
            raise SpecError(_at("space", name), "is reserved for the row id column")
        if name in seen:
            raise SpecError(_at("space", name), "is defined twice")
        seen.add(name)
        axes.append(_parse_axis(name, body))
    return tuple(axes)


def _parse_axis(name: str, body: Any) -> Axis:
    field = f"space.{name}"
    kinds = GRID_KINDS + RANDOM_KINDS
    if not isinstance(body, Mapping) or len(body) != 1:
        raise SpecError(field, f"must be a table with exactly one of: {', '.join(kinds)}")
    ((kind, args),) = body.items()
    if kind not in kinds:
        hint = _closest(str(kind), frozenset(kinds))
        raise SpecError(
            _at(field, kind),
            "unknown axis kind"
            + (f" (did you mean '{hint}'?)" if hint else "")
            + f"; known: {', '.join(kinds)}",
        )
    field = f"{field}.{kind}"
    if not isinstance(args, Sequence) or isinstance(args, str):
        raise SpecError(field, f"must be a list, got {shown(args)}")
    parser = _AXIS_PARSERS[kind]
    axis = Axis(name, kind, parser(list(args), field))
    _check_arithmetic(axis, field)
    return axis


def _check_arithmetic(axis: Axis, field: str) -> None:
    """A float axis whose arithmetic overflows (a linspace spanning -1.7e308..1.7e308, a
    normal with a huge stddev) would yield inf or NaN from finite arguments: refuse it."""
    from steps.space import extremes  # space imports spec; import here to avoid a cycle

    for value in extremes(axis).tolist():
        if not math.isfinite(value):
            raise SpecError(
                field,
                f"{axis.kind} {shown(list(axis.args))} reaches {value} in float64 arithmetic "
                "(its span overflows): narrow it",
            )


def _arity(args: list[Any], n: int, field: str, shape: str) -> None:
    if len(args) != n:
        raise SpecError(field, f"must be {shape}, got {shown(args)}")


def _parse_spaced(args: list[Any], field: str) -> tuple[Scalar, ...]:
    _arity(args, 3, field, "[start, stop, num]")
    start, stop = _finite(args[0], f"{field}[0]"), _finite(args[1], f"{field}[1]")
    num = _int_in(args[2], f"{field}[2]", 1, MAX_ROWS)
    if num > 1 and start == stop:
        raise SpecError(field, f"start and stop are both {start}: {num} identical points")
    return (start, stop, num)


def _parse_logspace(args: list[Any], field: str) -> tuple[Scalar, ...]:
    start, stop, num = _parse_spaced(args, field)
    for i, exponent in enumerate((start, stop)):
        if abs(float(exponent)) > 308:
            raise SpecError(f"{field}[{i}]", f"exponent {exponent} overflows a float64")
    return (start, stop, num)


def _parse_range(args: list[Any], field: str) -> tuple[Scalar, ...]:
    if len(args) == 2:
        args = [*args, 1]
    _arity(args, 3, field, "[start, stop, step] of integers (stop exclusive)")
    start, stop, step = (_int_in(v, f"{field}[{i}]", -(2**62), 2**62) for i, v in enumerate(args))
    if step == 0:
        raise SpecError(f"{field}[2]", "step must not be 0")
    if len(range(start, stop, step)) == 0:
        raise SpecError(field, f"range({start}, {stop}, {step}) is empty (stop is exclusive)")
    return (start, stop, step)


def _parse_values(args: list[Any], field: str) -> tuple[Scalar, ...]:
    if not args:
        raise SpecError(field, "is empty: give at least one value")
    kinds = {_value_kind(v, f"{field}[{i}]") for i, v in enumerate(args)}
    if kinds == {"int", "float"}:  # a float axis: each integer must be exactly a float64
        return tuple(
            _exact_float(v, f"{field}[{i}]") if isinstance(v, int) else v
            for i, v in enumerate(args)
        )
    if len(kinds) > 1:
        raise SpecError(field, f"mixes {' and '.join(sorted(kinds))}: one type per axis")
    return tuple(args)


def _value_kind(value: Any, field: str) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise SpecError(field, f"{shown(value)} does not fit in int64")
        return "int"
    if isinstance(value, float):
        _finite(value, field)
        return "float"
    if isinstance(value, str):
        return "str"
    raise SpecError(field, f"values must be numbers, strings or booleans, got {shown(value)}")


def _parse_interval(args: list[Any], field: str) -> tuple[Scalar, ...]:
    _arity(args, 2, field, "[low, high]")
    low, high = _finite(args[0], f"{field}[0]"), _finite(args[1], f"{field}[1]")
    if not low < high:
        raise SpecError(field, f"low ({low}) must be below high ({high})")
    return (low, high)


def _parse_loguniform(args: list[Any], field: str) -> tuple[Scalar, ...]:
    low, high = _parse_interval(args, field)
    if float(low) <= 0:
        raise SpecError(f"{field}[0]", f"must be > 0 for a log scale, got {low}")
    return (low, high)


def _parse_normal(args: list[Any], field: str) -> tuple[Scalar, ...]:
    _arity(args, 2, field, "[mean, stddev]")
    mean, std = _finite(args[0], f"{field}[0]"), _finite(args[1], f"{field}[1]")
    if std <= 0:
        raise SpecError(f"{field}[1]", f"stddev must be > 0, got {std}")
    return (mean, std)


_AXIS_PARSERS = {
    "linspace": _parse_spaced,
    "logspace": _parse_logspace,
    "range": _parse_range,
    "values": _parse_values,
    "uniform": _parse_interval,
    "loguniform": _parse_loguniform,
    "normal": _parse_normal,
    "choice": _parse_values,
}

OBJECTIVE_KEYS = frozenset({"column", "goal", "top_k"})


def _parse_objective(data: Any, axes: tuple[Axis, ...]) -> Objective | None:
    import pyarrow as pa

    from steps.space import arrow_type

    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise SpecError("objective", "must be a table with column, goal and top_k")
    _reject_unknown(data, OBJECTIVE_KEYS, "objective")
    column = data.get("column")
    if not isinstance(column, str) or not column:
        raise SpecError("objective.column", f"must name a result column, got {shown(column)}")
    goal = data.get("goal", "min")
    if goal not in ("min", "max"):
        raise SpecError("objective.goal", f"must be 'min' or 'max', got {shown(goal)}")
    if column == "param_id" or any(a.name == column and arrow_type(a) == pa.string() for a in axes):
        raise SpecError("objective.column", f"{shown(column)} is not a numeric column")
    top_k = _int_in(data.get("top_k", 10), "objective.top_k", 1, MAX_TOP_K)
    return Objective(column=column, goal=goal, top_k=top_k)


RESOURCE_KEYS = frozenset(Resources.__dataclass_fields__)


def parse_resources(data: Any, field: str, base: Resources = Resources()) -> Resources:
    """Overrides of `base` from a table such as `[resources]` (or CLI flags)."""
    if data is None:
        return base
    if not isinstance(data, Mapping):
        raise SpecError(field, f"must be a table with keys {', '.join(sorted(RESOURCE_KEYS))}")
    _reject_unknown(data, RESOURCE_KEYS, field)
    values = {}
    for key, value in data.items():
        text = _quantity(value)
        if text is None:
            raise SpecError(
                _at(field, key),
                f"must be a Kubernetes quantity like '500m' or '256Mi', got {shown(value)}",
            )
        values[key] = text
    return replace(base, **values)


def _quantity(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    if isinstance(value, int) and not 0 <= value < 2**63:  # str() of a huge int can raise
        return None
    text = str(value)
    ok = len(text) <= MAX_QUANTITY_CHARS and QUANTITY_RE.fullmatch(text)
    return text if ok else None


def _parse_keep(data: Any, objective: Objective | None) -> Keep:
    """`"all"`, `{ top_k = N }` or `{ where = "<column> <op> <number>" }`."""
    if data == "all":
        return Keep()
    if not isinstance(data, Mapping) or len(data) != 1:
        raise SpecError(
            "keep",
            f'must be "all", {{ top_k = N }} or {{ where = "f < 0.01" }}, got {shown(data)}',
        )
    ((key, value),) = data.items()
    if key == "top_k":
        if objective is None:
            raise SpecError("keep.top_k", "needs an [objective] to rank rows by")
        return Keep(top_k=_int_in(value, "keep.top_k", 1, MAX_KEEP_TOP_K))
    if key == "where":
        match = WHERE_RE.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise SpecError(
                "keep.where",
                f'must look like "<column> <op> <number>" (op: < <= > >= == !=), got {shown(value)}',
            )
        try:
            number = float(match[3])
        except ValueError:
            raise SpecError("keep.where", f"{shown(match[3])} is not a number") from None
        return Keep(where=(match[1], match[2], _finite(number, "keep.where")))
    raise SpecError(_at("keep", key), "unknown key; known keys: top_k, where")
