"""Thrift's compact protocol, the encoding of a Parquet footer: a lossless decode and encode.

Reduce copies row groups from the shards into the result byte for byte, which means writing
a footer whose offsets point at their new places. pyarrow reads and writes footers but cannot
move a row group, and the worker image carries numpy, pyarrow, minio and isal only, so this small
codec does it. The protocol describes itself (every field says its id and type), so no Parquet
IDL is needed: a struct decodes to `{field id: (type, value)}` in wire order, and encoding that
gives back the same bytes (for what Thrift writers emit: ascending field ids, short headers
where they fit). The spec:
https://github.com/apache/thrift/blob/master/doc/specs/thrift-compact-protocol.md
"""

from __future__ import annotations

import struct
from typing import Any

__all__ = ["Encoded", "Struct", "ThriftError", "decode_struct", "decode_struct_at", "encode_struct"]

STOP, TRUE, FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(13)

Struct = dict[int, tuple[int, Any]]  # field id -> (type, value); a bool field's type is TRUE


class ThriftError(ValueError):
    """Bytes that are not a well-formed compact-protocol struct."""


def decode_struct(data: bytes) -> Struct:
    """The struct at the start of `data`; trailing bytes are an error."""
    value, end = decode_struct_at(data, 0)
    if end != len(data):
        raise ThriftError(f"{len(data) - end} bytes after the struct")
    return value


def decode_struct_at(data: bytes | memoryview, offset: int) -> tuple[Struct, int]:
    """The struct starting at `offset` of `data`, and the offset just past it."""
    return _struct(data, offset, len(data), 0)


class Encoded(bytes):
    """A struct already encoded: written as it is wherever a struct value goes (so a long
    list of structs can be kept as bytes rather than as dictionaries)."""


def encode_struct(value: Struct) -> bytes:
    out = bytearray()
    _write_struct(out, value)
    return bytes(out)


# The decoder is plain functions over (data, position), its common cases inlined: reduce
# decodes every shard footer and every page header it copies (~10^4 structs per 10^8 rows),
# and a method call per byte made this 2x slower (bench: docs/scaling.md).
_INT_LIMITS = {I16: 1 << 15, I32: 1 << 31, I64: 1 << 63}
MAX_DEPTH = 64  # structs and containers inside each other: Thrift's own default limit
MAX_FIELD_ID = (1 << 15) - 1  # a field id is an i16


def _varint(data: bytes | memoryview, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while pos < end:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            if not b and shift:  # a zero byte that ends a longer varint: not minimal
                raise ThriftError("varint not in its shortest form")
            return result, pos
        shift += 7
        if shift > 63:
            raise ThriftError("varint longer than 64 bits")
    raise ThriftError("truncated")


def _integer(data: bytes | memoryview, pos: int, end: int, kind: int) -> tuple[int, int]:
    """A zigzag i16/i32/i64, held to its width."""
    if pos < end and data[pos] < 0x80:
        n, pos = data[pos], pos + 1
    else:
        n, pos = _varint(data, pos, end)
    value = (n >> 1) ^ -(n & 1)
    limit = _INT_LIMITS[kind]
    if not -limit <= value < limit:
        raise ThriftError(f"{value} does not fit an i{limit.bit_length()}")
    return value, pos


def _struct(data: bytes | memoryview, pos: int, end: int, depth: int) -> tuple[Struct, int]:
    """Field ids must ascend (as every Thrift writer emits them), so none repeats: a reader
    that kept the first of two and one that kept the last would read two footers."""
    if depth > MAX_DEPTH:
        raise ThriftError("nested too deeply")
    fields: Struct = {}
    last = 0
    while True:
        if pos >= end:
            raise ThriftError("truncated")
        header = data[pos]
        pos += 1
        kind = header & 0x0F
        if kind == STOP:
            return fields, pos
        if header >> 4:
            last += header >> 4
        else:
            n, pos = _varint(data, pos, end)
            following, last = last, (n >> 1) ^ -(n & 1)
            if last <= following:
                raise ThriftError(f"field {last} after field {following}: ids must ascend")
        if last > MAX_FIELD_ID:
            raise ThriftError(f"field id {last} does not fit an i16")
        if kind in (TRUE, FALSE):
            fields[last] = (TRUE, kind == TRUE)
        elif I16 <= kind <= I64:
            value, pos = _integer(data, pos, end, kind)
            fields[last] = (kind, value)
        else:
            item, pos = _value(data, pos, end, kind, depth + 1)
            fields[last] = (kind, item)


def _value(data: bytes | memoryview, pos: int, end: int, kind: int, depth: int) -> tuple[Any, int]:
    if kind in (TRUE, FALSE, BYTE):  # a bool inside a list, set or map: one byte
        if pos >= end:
            raise ThriftError("truncated")
        return data[pos], pos + 1
    if I16 <= kind <= I64:
        return _integer(data, pos, end, kind)
    if kind == DOUBLE:
        if pos + 8 > end:
            raise ThriftError("truncated")
        return struct.unpack_from("<d", data, pos)[0], pos + 8
    if kind == BINARY:
        length, pos = _varint(data, pos, end)
        if pos + length > end:
            raise ThriftError("truncated")
        return bytes(data[pos : pos + length]), pos + length
    if kind in (LIST, SET):
        if pos >= end:
            raise ThriftError("truncated")
        header = data[pos]
        size, element, pos = header >> 4, header & 0x0F, pos + 1
        if size == 15:
            size, pos = _varint(data, pos, end)
        items = []
        for _ in range(size):
            item, pos = (
                _struct(data, pos, end, depth + 1)
                if element == STRUCT
                else _value(data, pos, end, element, depth + 1)
            )
            items.append(item)
        return (element, items), pos
    if kind == MAP:
        size, pos = _varint(data, pos, end)
        if not size:
            return (0, 0, []), pos
        if pos >= end:
            raise ThriftError("truncated")
        key, item, pos = data[pos] >> 4, data[pos] & 0x0F, pos + 1
        pairs = []
        for _ in range(size):
            k, pos = _value(data, pos, end, key, depth + 1)
            v, pos = _value(data, pos, end, item, depth + 1)
            pairs.append((k, v))
        return (key, item, pairs), pos
    if kind == STRUCT:
        return _struct(data, pos, end, depth + 1)
    raise ThriftError(f"unknown type {kind}")


def _write_varint(out: bytearray, n: int) -> None:
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _write_struct(out: bytearray, fields: Struct) -> None:
    last = 0
    for field_id, (kind, value) in fields.items():
        wire = (TRUE if value else FALSE) if kind == TRUE else kind
        if 0 < field_id - last <= 15:
            out.append((field_id - last) << 4 | wire)
        else:
            out.append(wire)
            _write_varint(out, (field_id << 1) ^ (field_id >> 63))
        last = field_id
        if kind == TRUE:
            continue
        if I16 <= kind <= I64:
            n = (value << 1) ^ (value >> 63)
            if n < 0x80:
                out.append(n)
            else:
                _write_varint(out, n)
        elif kind == STRUCT and isinstance(value, Encoded):
            out += value
        elif kind == STRUCT:
            _write_struct(out, value)
        else:
            _write_value(out, kind, value)
    out.append(STOP)


def _write_value(out: bytearray, kind: int, value: Any) -> None:
    if kind in (TRUE, FALSE, BYTE):
        out.append(value & 0xFF)
    elif kind in (I16, I32, I64):
        _write_varint(out, (value << 1) ^ (value >> 63))
    elif kind == DOUBLE:
        out += struct.pack("<d", value)
    elif kind == BINARY:
        _write_varint(out, len(value))
        out += value
    elif kind in (LIST, SET):
        element, items = value
        if len(items) < 15:
            out.append(len(items) << 4 | element)
        else:
            out.append(0xF0 | element)
            _write_varint(out, len(items))
        for item in items:
            _write_value(out, element, item)
    elif kind == MAP:
        key, item, pairs = value
        _write_varint(out, len(pairs))
        if pairs:
            out.append(key << 4 | item)
            for k, v in pairs:
                _write_value(out, key, k)
                _write_value(out, item, v)
    elif kind == STRUCT and isinstance(value, Encoded):
        out += value
    elif kind == STRUCT:
        _write_struct(out, value)
    else:
        raise ThriftError(f"unknown type {kind}")
