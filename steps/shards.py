"""A shard object's footer metadata: what compute writes and what reduce and resume check.

The footer carries the spec hash, shard index and count, first `param_id`, row count and the
partial summary, so a shard can be validated (and summarised) by reading a few KB of footer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from steps.store import Store, StoreError
from steps.summary import PartialSummary

PREFIX = "ttg."


class ShardFooterError(StoreError):
    """An object that was read, but is not a readable TTG shard (as against a store that
    could not be reached, which is a plain StoreError)."""


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


def read_shard_info(store: Store, key: str) -> ShardInfo:
    """Read and decode a shard's footer; StoreError if it is missing or not a TTG shard."""
    try:
        with store.open_read(key) as handle:
            meta = pq.ParquetFile(handle).metadata
            kv = {k.decode(): v.decode() for k, v in (meta.metadata or {}).items()}
            return ShardInfo(
                spec_hash=kv[PREFIX + "spec_hash"],
                index=int(kv[PREFIX + "shard_index"]),
                count=int(kv[PREFIX + "shard_count"]),
                first_param_id=int(kv[PREFIX + "first_param_id"]),
                rows=int(kv[PREFIX + "rows"]),
                seconds=float(kv.get(PREFIX + "seconds", "0")),
                summary=PartialSummary.from_json(json.loads(kv[PREFIX + "summary"])),
                schema=meta.schema.to_arrow_schema().remove_metadata(),
                param_id_range=_param_id_range(meta, meta.num_rows),
                file_rows=meta.num_rows,
                computed_rows=int(kv.get(PREFIX + "computed_rows", kv[PREFIX + "rows"])),
                writer=kv.get(PREFIX + "writer"),
            )
    except StoreError:
        raise
    except KeyError as exc:
        raise ShardFooterError(
            f"{store.url(key)} is not a TTG shard (footer lacks {exc})"
        ) from None
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise ShardFooterError(f"{store.url(key)} is unreadable: {exc}") from None


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
