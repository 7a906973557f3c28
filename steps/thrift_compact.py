"""Thrift's compact protocol, the encoding of a Parquet footer: a lossless decode and encode.

Reduce copies row groups from the shards into the result byte for byte, which means writing
a footer whose offsets point at their new places. pyarrow reads and writes footers but cannot
move a row group, and the worker image carries numpy, pyarrow and minio only, so this small
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
    reader = _Reader(data)
    try:
        value = reader.struct()
    except RecursionError:
        raise ThriftError("nested too deeply") from None
    if reader.pos != len(data):
        raise ThriftError(f"{len(data) - reader.pos} bytes after the struct")
    return value


def decode_struct_at(data: bytes | memoryview, offset: int) -> tuple[Struct, int]:
    """The struct starting at `offset` of `data`, and the offset just past it."""
    reader = _Reader(data)
    reader.pos = offset
    try:
        return reader.struct(), reader.pos
    except RecursionError:
        raise ThriftError("nested too deeply") from None


class Encoded(bytes):
    """A struct already encoded: written as it is wherever a struct value goes (so a long
    list of structs can be kept as bytes rather than as dictionaries)."""


def encode_struct(value: Struct) -> bytes:
    writer = _Writer()
    writer.struct(value)
    return bytes(writer.out)


_INT_BITS = {I16: 16, I32: 32, I64: 64}


class _Reader:
    def __init__(self, data: bytes | memoryview) -> None:
        self.data, self.pos = memoryview(data), 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise ThriftError("truncated")
        self.pos += 1
        return self.data[self.pos - 1]

    def varint(self) -> int:
        data, pos, end = self.data, self.pos, len(self.data)  # locals: reduce walks ~30
        result = shift = 0  # page headers per row group, so this loop is its hot spot
        while pos < end:
            b = data[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                if not b and shift:  # a zero byte that ends a longer varint: not minimal
                    raise ThriftError("varint not in its shortest form")
                self.pos = pos
                return result
            shift += 7
            if shift > 63:
                raise ThriftError("varint longer than 64 bits")
        raise ThriftError("truncated")

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def take(self, length: int) -> bytes:
        if length < 0 or self.pos + length > len(self.data):
            raise ThriftError("truncated")
        self.pos += length
        return bytes(self.data[self.pos - length : self.pos])

    def struct(self) -> Struct:
        fields: Struct = {}
        last = 0
        while True:
            header = self.byte()
            kind = header & 0x0F
            if kind == STOP:
                return fields
            delta = header >> 4
            last = last + delta if delta else self.zigzag()
            if kind in (TRUE, FALSE):
                fields[last] = (TRUE, kind == TRUE)
            else:
                fields[last] = (kind, self.value(kind))

    def value(self, kind: int) -> Any:
        if kind in (TRUE, FALSE):  # a bool inside a list, set or map: one byte
            return self.byte()
        if kind == BYTE:
            return self.byte()
        if kind in (I16, I32, I64):
            value = self.zigzag()
            bits = _INT_BITS[kind]
            if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
                raise ThriftError(f"{value} does not fit an i{bits}")
            return value
        if kind == DOUBLE:
            return struct.unpack("<d", self.take(8))[0]
        if kind == BINARY:
            return self.take(self.varint())
        if kind in (LIST, SET):
            header = self.byte()
            size = header >> 4
            if size == 15:
                size = self.varint()
            element = header & 0x0F
            return element, [self.value(element) for _ in range(size)]
        if kind == MAP:
            size = self.varint()
            if not size:
                return 0, 0, []
            types = self.byte()
            key, item = types >> 4, types & 0x0F
            return key, item, [(self.value(key), self.value(item)) for _ in range(size)]
        if kind == STRUCT:
            return self.struct()
        raise ThriftError(f"unknown type {kind}")


class _Writer:
    def __init__(self) -> None:
        self.out = bytearray()

    def varint(self, n: int) -> None:
        while n > 0x7F:
            self.out.append((n & 0x7F) | 0x80)
            n >>= 7
        self.out.append(n)

    def zigzag(self, n: int) -> None:
        self.varint((n << 1) ^ (n >> 63))

    def struct(self, fields: Struct) -> None:
        last = 0
        for field_id, (kind, value) in fields.items():
            wire = (TRUE if value else FALSE) if kind == TRUE else kind
            if 0 < field_id - last <= 15:
                self.out.append((field_id - last) << 4 | wire)
            else:
                self.out.append(wire)
                self.zigzag(field_id)
            last = field_id
            if kind != TRUE:
                self.value(kind, value)
        self.out.append(STOP)

    def value(self, kind: int, value: Any) -> None:
        if kind in (TRUE, FALSE, BYTE):
            self.out.append(value & 0xFF)
        elif kind in (I16, I32, I64):
            self.zigzag(value)
        elif kind == DOUBLE:
            self.out += struct.pack("<d", value)
        elif kind == BINARY:
            self.varint(len(value))
            self.out += value
        elif kind in (LIST, SET):
            element, items = value
            if len(items) < 15:
                self.out.append(len(items) << 4 | element)
            else:
                self.out.append(0xF0 | element)
                self.varint(len(items))
            for item in items:
                self.value(element, item)
        elif kind == MAP:
            key, item, pairs = value
            self.varint(len(pairs))
            if pairs:
                self.out.append(key << 4 | item)
                for k, v in pairs:
                    self.value(key, k)
                    self.value(item, v)
        elif kind == STRUCT and isinstance(value, Encoded):
            self.out += value
        elif kind == STRUCT:
            self.struct(value)
        else:
            raise ThriftError(f"unknown type {kind}")
