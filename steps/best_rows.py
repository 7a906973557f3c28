"""The summary's best rows, held against the result's rows before either is published.

A shard's partial summary (its best rows among them) comes from its footer, which is sealed
(steps/shards.py); a forger who reseals it could still name a "best" row that exists in no
row. The best rows are what `summary.json`, `results` and the Argo outputs show first, so
reduce looks each of them up in the result it just wrote and compares every column, bit for
bit. It reads only the row groups that hold them (Parquet statistics of `param_id`).
"""

from __future__ import annotations

import bisect
import math
import operator
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from steps import layout
from steps.shards import ShardError, ShardInfo
from steps.spec import Keep, Spec
from steps.store import Store
from steps.summary import PartialSummary

__all__ = ["BestRowError", "check_best_rows", "check_result"]

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


class BestRowError(ValueError):
    """A best row that is not a row of the result; `shard` is the index of the shard whose
    partial summary named it."""

    def __init__(self, shard: int, message: str) -> None:
        super().__init__(message)
        self.shard = shard


def check_best_rows(
    source: Path | BinaryIO, best: list[dict[str, Any]], keep: Keep, starts: list[int]
) -> None:
    """Every row of `best` that `keep` keeps is in the Parquet file `source`, value for value.

    `starts` are the shards' first `param_id`s, ascending: they name the shard at fault."""
    if not best:
        return
    for row in best:
        if not _is_id(row.get("param_id")):
            raise BestRowError(
                _shard(starts, 0), f"a best row has no integer param_id: {row!r:.200}"
            )
    ids = sorted({int(row["param_id"]) for row in best})
    stored = {row["param_id"]: row for row in _rows_with_ids(source, ids)}
    for rank, row in enumerate(best):
        param_id = int(row["param_id"])
        found = stored.get(param_id)
        shard = _shard(starts, param_id)
        if found is None:
            if _kept(keep, rank, row):
                raise BestRowError(shard, f"names best row param_id {param_id}, not in the result")
            continue
        difference = _difference(row, found)
        if difference:
            raise BestRowError(shard, f"names best row param_id {param_id} with {difference}")


def _rows_with_ids(source: Path | BinaryIO, ids: list[int]) -> list[dict[str, Any]]:
    """The rows whose `param_id` is in `ids` (sorted), read from only the row groups whose
    statistics say they may hold one (on S3: a few ranged reads, not the whole result),
    their pages checked against their checksums."""
    result = pq.ParquetFile(source, page_checksum_verification=True)
    column = result.schema_arrow.get_field_index("param_id")
    if column < 0:
        raise ValueError("the result has no param_id column")
    groups = []
    for index in range(result.metadata.num_row_groups):
        stats = result.metadata.row_group(index).column(column).statistics
        if stats is None or not stats.has_min_max:
            groups.append(index)
            continue
        first = bisect.bisect_left(ids, stats.min)
        if first < len(ids) and ids[first] <= stats.max:
            groups.append(index)
    if not groups:
        return []
    table = result.read_row_groups(groups, use_threads=False)
    wanted = pa.array(ids, type=table.schema.field("param_id").type)
    return table.filter(pc.is_in(table["param_id"], value_set=wanted)).to_pylist()


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shard(starts: list[int], param_id: int) -> int:
    return max(0, bisect.bisect_right(starts, param_id) - 1)


def _kept(keep: Keep, rank: int, row: dict[str, Any]) -> bool:
    """Whether the result must hold this best row (the rank-th best of the whole sweep)."""
    if keep.top_k is not None:
        return rank < keep.top_k
    if keep.where is not None:
        column, op, number = keep.where
        value = row.get(column)
        if not isinstance(value, int | float) or (isinstance(value, float) and math.isnan(value)):
            return False  # NaN and null match no condition, as steps/keep.py filters them
        return _COMPARE[op](value, number)
    return True


def _difference(claimed: dict[str, Any], stored: dict[str, Any]) -> str | None:
    if list(claimed) != list(stored):
        return f"columns {list(claimed)} where the result has {list(stored)}"
    for column, value in claimed.items():
        if not _same(value, stored[column]):
            return f"{column}={value!r:.60} where the result holds {stored[column]!r:.60}"
    return None


def _same(a: Any, b: Any) -> bool:
    """Equal and of one type; floats bit for bit (-0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
        )
    return bool(a == b)


def check_result(
    source: Path | BinaryIO, store: Store, spec: Spec, run_id: str, infos: list[ShardInfo]
) -> None:
    """The best rows the summary is about to show exist in the result `source`, value for
    value; ShardError names the shard whose partial summary claims otherwise."""
    if spec.objective is None:
        return
    best = PartialSummary()
    for info in infos:
        best = best.merge(info.summary, spec.objective)
    try:
        check_best_rows(source, best.top, spec.keep, [info.first_param_id for info in infos])
    except BestRowError as exc:
        key = layout.shard_key(spec.name, run_id, exc.shard, infos[0].count)
        raise ShardError(f"shard {exc.shard} ({store.url(key)}) {exc}") from None
    except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid / ArrowIOError
        # Damage the page checks missed: it is the shards', not the store's ("cannot write").
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ShardError(f"the result merged from the shards does not read back: {first}") from None
