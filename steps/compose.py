"""Reduce on S3 without moving rows through the pod: the result composed server-side.

Shards start on row-group boundaries of the result (steps/space.py), so once each shard is
whole row groups, the result is: shard 0 from its first byte (the `PAR1` magic) to the end
of its last row group, each later shard's row groups, and a footer built here from the
shards' footers (steps/concat.py). S3 makes such an object from byte ranges of others with
a multipart upload of UploadPartCopy parts; only the footer is uploaded by the pod. The
bytes are the ones a streamed merge writes (tests/test_compose.py compares them).

Where that cannot be (S3's part rules, kept subsets, shards cut inside a row group, other
writer settings), `plan` says why and reduce streams. What is checked in each mode:
docs/integrity.md. S3's limits: https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import pyarrow as pa

from steps import layout
from steps.best_rows import check_result
from steps.concat import (
    MAGIC,
    ConcatenatedParquet,
    group_rows,
    movable,
    read_footer_at,
    row_groups,
    span,
)
from steps.parquet import open_writer, row_group_rows, writer_fingerprint
from steps.shards import ShardInfo
from steps.spec import Spec
from steps.store import ByteRange, Store, StoreError, hidden_temp_key

__all__ = ["ComposePlan", "compose_result", "plan"]


@dataclass(frozen=True)
class ComposePlan:
    """The result as byte ranges of the shards (each pinned to the version whose footer was
    verified) and the footer that follows them."""

    ranges: list[ByteRange]
    footer: bytes
    rows: int

    @property
    def size(self) -> int:
        return sum(r.length for r in self.ranges) + len(self.footer)


def plan(
    store: Store, spec: Spec, run_id: str, infos: list[ShardInfo], schema: pa.Schema
) -> ComposePlan | str:
    """The server-side merge of the verified shards `infos` into a result of `schema`, or
    the reason the merge has to stream through the pod. Reads only the shards' footers."""
    problem = store.compose_problem([])
    if problem:
        return problem
    if not spec.keep.everything:
        return "a kept subset is re-encoded"
    writer = writer_fingerprint(spec, infos[0].schema)
    for info in infos:
        if info.writer != writer:
            return f"shard {info.index} was written with other writer settings"
    result = ConcatenatedParquet(io.BytesIO(), lambda sink: open_writer(sink, schema, spec))
    size, total = row_group_rows(schema), sum(info.rows for info in infos)
    ranges: list[ByteRange] = []
    for info in infos:
        shard = _shard_range(store, spec, run_id, info, result, size, total)
        if isinstance(shard, str):
            return f"shard {info.index} {shard}"
        ranges.append(shard)
    footer = result.footer()
    problem = store.compose_problem([r.length for r in ranges] + [len(footer)])
    return problem or ComposePlan(ranges, footer, result.rows)


def _shard_range(
    store: Store,
    spec: Spec,
    run_id: str,
    info: ShardInfo,
    result: ConcatenatedParquet,
    size: int,
    total: int,
) -> ByteRange | str:
    """The bytes of one shard that the result holds as they are, its row groups entered in
    `result`'s footer; or why it has none such."""
    key = layout.shard_key(spec.name, run_id, info.index, info.count)
    with store.open_read(key, version=info.version) as handle:
        footer_start, footer = read_footer_at(handle)
        groups = row_groups(footer)
        handle.seek(0)
        magic = handle.read(len(MAGIC))
    first, spans = info.first_param_id, []
    for group in groups:
        rows = group_rows(group)
        if first % size or rows != min(size, total - first) or not movable(group):
            return "is not whole row groups of the result"
        spans.append(span(group))
        first += rows
    # magic, group, group, ..., footer: each span begins where the one before it ends
    bounds = [len(MAGIC)] + [b for s in spans for b in s] + [footer_start]
    if magic != MAGIC or not spans or bounds[1::2] != bounds[:-1:2]:
        return "does not hold its row groups back to back"
    for group in groups:
        result.place(group)
    offset = 0 if info.index == 0 else len(MAGIC)  # the result's magic is shard 0's
    return ByteRange(key, offset, spans[-1][1] - offset, info.version)


def compose_result(
    store: Store,
    key: str,
    composition: ComposePlan,
    spec: Spec,
    run_id: str,
    infos: list[ShardInfo],
) -> None:
    """Compose the result and check it; a result that fails its checks is removed. Over
    a result already there (a re-reduce) it is composed beside it and checked first, then
    copied into place by the store, so a failure never loses the published one."""
    target = hidden_temp_key(key) if store.exists(key) else key
    store.compose(target, composition.ranges, composition.footer)
    try:
        _check_composed(store, target, composition, spec, run_id, infos)
        if target != key:
            store.compose(key, [ByteRange(target, 0, composition.size)], b"")
    except BaseException:
        if target == key:  # nothing was there before it
            with contextlib.suppress(StoreError):
                store.remove(key)
        raise
    finally:
        if target != key:
            with contextlib.suppress(StoreError):
                store.remove(target)


def _check_composed(
    store: Store,
    key: str,
    composition: ComposePlan,
    spec: Spec,
    run_id: str,
    infos: list[ShardInfo],
) -> None:
    """The composed object is as long as planned and ends in the planned footer, and its
    best rows are the summary's (decoded, their pages checked): a few ranged reads."""
    with store.open_read(key) as handle:
        size = handle.seek(0, io.SEEK_END)
        handle.seek(max(0, size - len(composition.footer)))
        if size != composition.size or handle.read() != composition.footer:
            raise StoreError(
                f"the store composed {store.url(key)} as {size:,} bytes, not the"
                f" {composition.size:,} planned, or with another footer"
            )
        check_result(handle, store, spec, run_id, infos)
