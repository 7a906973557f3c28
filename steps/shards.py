"""A shard object: the claims in its footer, their seal, and whether its bytes are intact.

The footer carries the spec hash, shard index and count, first `param_id`, row count and the
partial summary, so a shard can be validated (and summarised) by reading a few KB of footer.
Reduce trusts those claims and copies the footer's row-group entries (offsets, statistics)
into the result, so compute seals the whole footer with a digest (`seal_footer`) and every
reader checks it: a footer altered by one byte is refused, naming the shard. Page data is
covered by the pages' own CRC32s. See docs/integrity.md for what each check covers.

Parquet's footer and its key-value metadata: https://parquet.apache.org/docs/file-format/metadata/
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from steps.concat import MAGIC, movable, read_footer_at, row_groups
from steps.fingerprint import CodeFingerprint
from steps.page_check import read_group
from steps.store import Store, StoreError
from steps.summary import PartialSummary, SummaryFormatError

__all__ = [
    "PREFIX",
    "UNSEALED",
    "ShardFooterError",
    "ShardInfo",
    "check_pages",
    "read_shard_info",
    "schema_difference",
    "seal_footer",
]

PREFIX = "ttg."
DIGEST_KEY = PREFIX + "footer_sha256"


class ShardFooterError(StoreError):
    """An object that was read, but is not a readable TTG shard (as against a store that
    could not be reached, which is a plain StoreError)."""


class ShardError(Exception):
    """A shard (or a stray object) that makes a complete, correct result impossible."""


@dataclass(frozen=True)
class ShardInfo:
    spec_hash: str
    index: int
    count: int
    first_param_id: int
    rows: int
    seconds: float
    summary: PartialSummary
    schema: pa.Schema
    param_id_range: tuple[int, int] | None  # from Parquet statistics, for a cross-check
    file_rows: int | None = None  # rows actually in the file (None while writing it)
    computed_rows: int | None = None  # rows the shard computed; more than `rows` if it keeps fewer
    writer: str | None = None  # steps.parquet.writer_fingerprint of its writer, if recorded
    code: CodeFingerprint | None = None  # the code that computed it (None: an older TTG's)
    version: str | None = None  # of the object it was read from, if its store has them (ETag)
    # A zoomed stage's shard: the best points of the previous stage it zoomed around, as
    # JSON (steps.stages.encode_centres); reduce checks them against that stage's shards.
    centres: str | None = None

    def to_metadata(self) -> dict[str, str]:
        return {
            PREFIX + "spec_hash": self.spec_hash,
            PREFIX + "shard_index": str(self.index),
            PREFIX + "shard_count": str(self.count),
            PREFIX + "first_param_id": str(self.first_param_id),
            PREFIX + "rows": str(self.rows),
            PREFIX + "computed_rows": str(
                self.rows if self.computed_rows is None else self.computed_rows
            ),
            PREFIX + "seconds": repr(self.seconds),
            # allow_nan: Python round-trips NaN/Infinity, and an objective may be -inf.
            PREFIX + "summary": json.dumps(self.summary.to_json(), separators=(",", ":")),
            **({PREFIX + "writer": self.writer} if self.writer is not None else {}),
            **({PREFIX + "code": self.code.to_json()} if self.code is not None else {}),
            **({PREFIX + "centres": self.centres} if self.centres is not None else {}),
            DIGEST_KEY: UNSEALED,  # last: `seal_footer` fills it in once the file is written
        }

    def problem(
        self, spec_hash: str, index: int, count: int, start: int, stop: int, keeps_all: bool = True
    ) -> str | None:
        """Why this shard is not the expected `[start, stop)` of `spec_hash`, or None if it is.

        A shard that keeps only some rows computed all of `[start, stop)` (its summary says
        so) and holds a subset of them."""
        if self.spec_hash != spec_hash:
            return (
                f"belongs to another spec (hash {self.spec_hash[:12]}, expected {spec_hash[:12]})"
            )
        if (self.index, self.count) != (index, count):
            return f"says it is shard {self.index} of {self.count}, expected {index} of {count}"
        if self.first_param_id != start:
            return f"starts at param_id {self.first_param_id}, expected {start}"
        actual = self.rows if self.file_rows is None else self.file_rows
        computed = self.rows if self.computed_rows is None else self.computed_rows
        if keeps_all and actual != stop - start:
            return f"has {actual} rows, expected {stop - start}"
        if computed != stop - start or self.summary.rows != computed:
            return f"computed {computed} rows, expected {stop - start}"
        if self.rows != actual or actual > computed:
            return f"holds {actual} rows but its footer says {self.rows}"
        if self.param_id_range is not None:
            low, high = self.param_id_range
            inside = low >= start and high <= stop - 1
            if (keeps_all and (low, high) != (start, stop - 1)) or not inside:
                return f"holds param_id {low}..{high}, expected {start}..{stop - 1}"
        return None


# --- the seal ---------------------------------------------------------------------------
#
# Compute writes the footer with a placeholder entry `ttg.footer_sha256 = 000...0` (the last
# of its key-value entries), then overwrites the placeholder's 64 bytes, in place, with the
# sha256 of the whole footer as written. A reader finds the entry, puts the zeros back and
# hashes: one pass over the footer's bytes, no decoding (a 10M-row shard's footer has some
# 300 column chunks; decoding and re-encoding it in Python cost 0.13 s a shard).

UNSEALED = "0" * 64
# The entry as Thrift's compact protocol writes a KeyValue: field 1 (binary) the key, field 2
# (binary) the value of 64 bytes. JSON text escapes the control byte 0x18, so no other entry
# TTG writes can hold this pattern; what follows the entries (created_by, column orders) is
# not user data.
_SEAL = b"\x18" + bytes([len(DIGEST_KEY)]) + DIGEST_KEY.encode() + b"\x18\x40"


def _footer_bytes(handle: BinaryIO) -> tuple[int, bytes]:
    """Where the footer begins, and its bytes."""
    size = handle.seek(0, io.SEEK_END)
    if size < 12:
        raise ValueError("not a Parquet file (too short)")
    handle.seek(size - 8)
    tail = handle.read(8)
    if len(tail) != 8 or tail[4:] != MAGIC:
        raise ValueError("not a Parquet file (no PAR1 at its end)")
    (length,) = struct.unpack("<I", tail[:4])
    if length > size - 12:
        raise ValueError(f"footer length {length} does not fit in a file of {size} bytes")
    start = size - 8 - length
    handle.seek(start)
    return start, handle.read(length)


def _seal_at(footer: bytes) -> int:
    """Where the seal's 64 bytes lie in `footer`; ValueError if it has none."""
    at = footer.rfind(_SEAL)
    if at < 0 or at + len(_SEAL) + 64 > len(footer):
        raise ValueError("its footer is not sealed (no digest; not written by this TTG)")
    return at + len(_SEAL)


def _digest(footer: bytes, at: int) -> bytes:
    unsealed = footer[:at] + UNSEALED.encode() + footer[at + 64 :]
    return hashlib.sha256(unsealed).hexdigest().encode()


def seal_footer(path: Path) -> None:
    """Fill in the seal of the Parquet file at `path`, written with `ttg.footer_sha256 =
    UNSEALED` as its last key-value entry: the sha256 of every claim, offset and statistic
    of its footer."""
    with path.open("r+b") as handle:
        start, footer = _footer_bytes(handle)
        at = _seal_at(footer)
        if footer[at : at + 64] != UNSEALED.encode():
            raise ValueError(f"{path} is sealed already")
        handle.seek(start + at)
        handle.write(_digest(footer, at))


def _check_seal(footer: bytes) -> None:
    """The footer is exactly what compute sealed; ValueError says why not."""
    at = _seal_at(footer)
    if footer[at : at + 64] != _digest(footer, at):
        raise ValueError("its footer was altered or damaged (the digest does not match)")


# --- reading ------------------------------------------------------------------------------


def read_shard_info(store: Store, key: str) -> ShardInfo:
    """Read, check the seal of, and decode a shard's footer; StoreError if it is missing,
    ShardFooterError if it is not an intact TTG shard."""
    url = store.url(key)
    try:
        with store.open_read(key) as handle:
            _check_seal(_footer_bytes(handle)[1])
            meta = pq.ParquetFile(handle).metadata
            info = _decode(meta, _key_values(meta))
            return replace(info, version=getattr(handle, "version", None))
    except StoreError:
        raise
    except KeyError as exc:
        raise ShardFooterError(f"{url} is not a TTG shard (footer lacks {exc})") from None
    except (OSError, ValueError, TypeError, SummaryFormatError, pa.ArrowException) as exc:
        raise ShardFooterError(f"{url} is unreadable: {_first_line(exc)}") from None


def _key_values(meta: pq.FileMetaData) -> dict[str, str]:
    kv: dict[str, str] = {}
    for raw_key, raw_value in (meta.metadata or {}).items():
        kv[raw_key.decode("utf-8")] = raw_value.decode("utf-8")
    return kv


def _decode(meta: pq.FileMetaData, kv: dict[str, str]) -> ShardInfo:
    summary = json.loads(kv[PREFIX + "summary"])
    return ShardInfo(
        spec_hash=kv[PREFIX + "spec_hash"],
        index=int(kv[PREFIX + "shard_index"]),
        count=int(kv[PREFIX + "shard_count"]),
        first_param_id=int(kv[PREFIX + "first_param_id"]),
        rows=int(kv[PREFIX + "rows"]),
        seconds=float(kv.get(PREFIX + "seconds", "0")),
        summary=PartialSummary.from_json(summary),
        schema=meta.schema.to_arrow_schema().remove_metadata(),
        param_id_range=_param_id_range(meta, meta.num_rows),
        file_rows=meta.num_rows,
        computed_rows=int(kv.get(PREFIX + "computed_rows", kv[PREFIX + "rows"])),
        writer=kv.get(PREFIX + "writer"),
        code=CodeFingerprint.from_json(kv[PREFIX + "code"]) if PREFIX + "code" in kv else None,
        centres=kv.get(PREFIX + "centres"),
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _param_id_range(meta: pq.FileMetaData, rows: int) -> tuple[int, int] | None:
    if rows != sum(meta.row_group(i).num_rows for i in range(meta.num_row_groups)):
        raise ValueError("row groups do not add up to the file's row count")
    if meta.num_row_groups == 0 or meta.schema.column(0).name != "param_id":
        return None
    lows: list[Any] = []
    highs: list[Any] = []
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(0).statistics
        if stats is None or not stats.has_min_max:
            return None
        lows.append(stats.min)
        highs.append(stats.max)
    return int(min(lows)), int(max(highs))


def schema_difference(schema: pa.Schema, reference: pa.Schema) -> str:
    """One line naming the first column in which `schema` differs from `reference`."""
    for position, field in enumerate(schema):
        if field.name not in reference.names:
            return f"has a column '{field.name}' ({field.type}) that shard 0 lacks"
        other = reference.field(field.name)
        if field.type != other.type:
            return f"has column '{field.name}' of type {field.type}, shard 0 of type {other.type}"
        if field.nullable != other.nullable:
            return f"has column '{field.name}' nullable={field.nullable}, shard 0 {other.nullable}"
        if reference.names.index(field.name) != position:
            return f"has column '{field.name}' at position {position}, unlike shard 0"
    missing = [name for name in reference.names if name not in schema.names]
    if missing:
        return f"lacks column '{missing[0]}' that shard 0 has"
    return "has columns unlike shard 0's (in their metadata)"


def check_pages(handle: BinaryIO) -> None:
    """Every page of the shard in `handle` is intact, by the checks reduce applies: each row
    group reduce may copy is checked page by page (headers, sizes, CRC32s, as
    `steps.page_check.read_group` does), and every row group decodes with its page checksums
    verified. ValueError or OSError (ConcatError, ThriftError, ArrowInvalid) if not."""
    for group in row_groups(read_footer_at(handle)[1]):
        if movable(group):
            read_group(handle, group)
    reader = pq.ParquetFile(handle, page_checksum_verification=True)
    for index in range(reader.metadata.num_row_groups):
        reader.read_row_group(index, use_threads=False)
