"""Read a spec file, or decode spec text, into a plain Python document, within bounds.

The format comes from the file's extension (TOML, YAML, JSON) and is known before the file
is opened; at most MAX_SPEC_FILE_BYTES are read; the bytes must be UTF-8 text (one leading
byte-order mark allowed); any malformed document is a SpecError of one line. What the
document says is not checked here: `steps.spec.parse_spec` validates it.
"""

from __future__ import annotations

import codecs
import json
import tomllib
from pathlib import Path
from typing import Any

from steps.spec_error import SpecError, shown
from steps.spec_limits import MAX_SPEC_BYTES, MAX_SPEC_FILE_BYTES
from steps.spec_tree import RepeatedKey
from steps.spec_yaml import yaml_document

__all__ = ["decode_document", "read_document"]


def read_document(path: str | Path) -> Any:
    """Read a spec file (by extension: .toml, .yaml/.yml, .json) into a plain document.

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
    return decode_document(_text(data, str(path)), suffix, str(path))


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


_FORMATS = {".toml": "TOML", ".yaml": "YAML", ".yml": "YAML", ".json": "JSON"}


def _format(suffix: str) -> str:
    if suffix not in _FORMATS:
        raise SpecError(
            "file", f"unknown spec format {shown(suffix)} (use .toml, .yaml, .yml or .json)"
        )
    return _FORMATS[suffix]


def decode_document(text: str, suffix: str, where: str) -> Any:
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
            return yaml_document(text)
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


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) == len(pairs):
        return document
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return RepeatedKey(pairs, key)
        seen.add(key)
    raise AssertionError("unreachable")
