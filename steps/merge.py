"""The result from the verified shards, streamed through this process: whole row groups
copied as they are (by the kernel, for a folder store on this machine), their page checksums
checked, and only the rows where two shards meet decoded and re-encoded; a kept subset is
re-encoded whole. Memory is bounded by one row group. The merge's other way, composed by an
S3 store from the shards' bytes, is steps/compose.py.
"""

from __future__ import annotations

import mmap
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from steps import layout
from steps.concat import ConcatenatedParquet, group_rows, movable, read_footer, row_groups, span
from steps.keep import RowFilter
from steps.kernel_copy import CopyError, SourceShortError
from steps.page_check import check_group, read_group
from steps.parquet import AlignedRowGroups, open_writer, row_group_rows, writer_fingerprint
from steps.read_ahead import read_ahead
from steps.shards import ShardError, ShardInfo
from steps.spec import Spec
from steps.store import Store
from steps.thrift_compact import Struct

__all__ = [
    "DAMAGE",
    "READ_BYTES",
    "concatenate_shards",
    "merge_shards",
    "reencode_shards",
    "result_metadata",
]

_T = TypeVar("_T")


def merge_shards(store: Store, spec: Spec, run_id: str, infos: list[ShardInfo], path: Path) -> int:
    """All shards, in order, into one Parquet file at `path` with fixed-size row groups."""
    if spec.keep.everything:
        return concatenate_shards(store, spec, run_id, infos, path)
    return reencode_shards(store, spec, run_id, infos, path)


def concatenate_shards(
    store: Store, spec: Spec, run_id: str, infos: list[ShardInfo], path: Path
) -> int:
    """Copy each row group that is already a whole row group of the result; decode and
    re-encode only the pieces where two shards meet (at most one group per shard).

    Compute writes its row groups aligned to the result's, so the copied bytes are the
    bytes re-encoding would have produced: the file is the same either way, only faster.
    A shard written with other writer settings or another pyarrow (a run resumed after an
    upgrade) is decoded instead, so that holds there too. Copied pages are checked against
    their checksums (steps/concat.py): a damaged shard fails the reduce, naming it.
    """
    schema = infos[0].schema.with_metadata(result_metadata(spec, infos))
    total = sum(info.rows for info in infos)
    groups = AlignedRowGroups(row_group_rows(schema), first_row=0)
    writer = writer_fingerprint(spec, infos[0].schema)
    with (
        path.open("wb") as out,
        ConcatenatedParquet(out, lambda sink: open_writer(sink, schema, spec)) as result,
    ):
        for info in infos:
            key = layout.shard_key(spec.name, run_id, info.index, info.count)
            with store.open_read(key, version=info.version) as handle:
                shard = _ShardReader(handle, store.url(key), copyable=info.writer == writer)
                try:
                    _append_shard(result, groups, shard, info.first_param_id, total)
                finally:
                    shard.close()
        last = groups.rest()
        if last is not None:
            result.encode(last)
        try:
            result.finish()
        except CopyError as exc:
            raise _copy_failure(exc) from None
    return result.rows


def _copy_failure(exc: CopyError) -> Exception:
    """What a failed kernel copy is: a shard cut short after its pages were checked is
    damaged, and named; anything else (a file system's error) is raised as it is, for the
    store to report."""
    if isinstance(exc.cause, SourceShortError):
        return _damaged(exc.source, exc.cause)
    return exc.cause


class _ShardReader:
    """Reads one shard for the merge; anything wrong with its bytes is a ShardError
    naming it (one line), never an error blamed on the result being written. A shard in a
    file of this machine is mapped, its pages checked in place and its bytes copied by the
    kernel (`copy_into`)."""

    def __init__(self, handle: BinaryIO, url: str, copyable: bool) -> None:
        self.handle, self.url, self.copyable = handle, url, copyable
        self.groups = self._read(lambda: row_groups(read_footer(handle)))
        self._decoder: pq.ParquetFile | None = None
        self.fd = _local_file(handle)
        self._map: mmap.mmap | None = None

    def bytes_of(self, group: Struct) -> bytes:
        return self._read(lambda: read_group(self.handle, group))

    def copy_into(self, result: ConcatenatedParquet, group: Struct) -> bool:
        """`group` checked where it lies and copied into `result`; False if it cannot be
        (another kind of store, or files the kernel cannot copy between)."""
        if self.fd is None:
            return False
        if self._map is None:
            fd = self.fd
            self._map = self._read(lambda: mmap.mmap(fd, 0, access=mmap.ACCESS_READ))
        start, stop = span(group)
        with memoryview(self._map)[start:stop] as view:
            self._read(lambda: check_group(view, group))
        mapped = self._map
        self._read(lambda: _unmap_pages(mapped, start, stop))
        try:
            if result.append_copy(self.fd, group, self.url):
                return True
        except CopyError as exc:  # the first copy, made at once
            raise _copy_failure(exc) from None
        self.fd = None  # read and written from now on
        return False

    def close(self) -> None:
        if self._map is not None:
            self._map.close()

    def table_of(self, index: int) -> pa.Table:
        if self._decoder is None:
            self._decoder = self._read(lambda: _verified(self.handle))
        decoder = self._decoder
        return self._read(lambda: decoder.read_row_group(index, use_threads=False))

    def _read(self, read: Callable[[], _T]) -> _T:
        try:
            return read()
        except DAMAGE as exc:
            error = _damaged(self.url, exc)
        # Raised here, not in the handler, so it carries nothing of the damage's traceback:
        # its frames hold views of the mapped shard, which the map could not close under.
        raise error


def _unmap_pages(mapped: mmap.mmap, start: int, stop: int) -> None:
    """Drop the checked pages from this process: each one read counts in its RSS until the
    map closes (a 10^8-row shard: 700 MiB). The kernel's copy reads them from the page cache,
    where they stay."""
    first = start - start % mmap.PAGESIZE
    mapped.madvise(mmap.MADV_DONTNEED, first, stop - first)


# What reading a damaged shard raises: our own checks (ConcatError, ThriftError), pyarrow's
# (ArrowInvalid is a ValueError, ArrowIOError an OSError) and the file system's. Not memory
# errors, nor what a bug of ours would raise (KeyError, TypeError): those are not the shard's.
DAMAGE = (ValueError, OSError)


def _local_file(handle: BinaryIO) -> int | None:
    """The descriptor of `handle` if it is a regular file on this machine (a folder store)."""
    try:
        fd = handle.fileno()
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) and os.fstat(fd).st_size else None
    except (OSError, ValueError, AttributeError):  # UnsupportedOperation is both of the first
        return None


def _damaged(url: str, exc: BaseException) -> ShardError:
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return ShardError(f"{url} is damaged: {first_line}")


def _verified(handle: BinaryIO) -> pq.ParquetFile:
    """A shard opened so that decoding checks every page against its checksum."""
    return pq.ParquetFile(handle, page_checksum_verification=True)


def _append_shard(
    result: ConcatenatedParquet,
    groups: AlignedRowGroups,
    shard: _ShardReader,
    first: int,
    total: int,
) -> None:
    """Copy the shard's whole result row groups; pass the rest through `groups`."""
    for index, group in enumerate(shard.groups):
        rows = group_rows(group)
        whole = first % groups.size == 0 and rows == min(groups.size, total - first)
        if shard.copyable and groups.empty and whole and movable(group):
            if not shard.copy_into(result, group):
                result.append(shard.bytes_of(group), group)
            groups.skip(rows)
        else:
            for table in groups.add(shard.table_of(index)):
                result.encode(table)
        first += rows


def result_metadata(spec: Spec, infos: list[ShardInfo]) -> dict[str, str]:
    return {"ttg.spec_hash": spec.hash, "ttg.rows": str(sum(i.rows for i in infos))}


def reencode_shards(
    store: Store, spec: Spec, run_id: str, infos: list[ShardInfo], path: Path
) -> int:
    """Stream every row of every shard through a new writer (for kept subsets, whose rows
    are not the result's row groups), in row groups of the result's size, each one
    contiguous table so its bytes do not depend on how the shards were cut."""
    schema = infos[0].schema
    groups = AlignedRowGroups(row_group_rows(schema), first_row=0)
    written = 0
    with open_writer(path, schema.with_metadata(result_metadata(spec, infos)), spec) as writer:
        batches = _kept(read_ahead(_shard_batches(store, spec, run_id, infos, groups.size)), spec)
        for batch in batches:
            for table in groups.add(pa.Table.from_batches([batch], schema=schema)):
                writer.write_table(table, row_group_size=table.num_rows)
                written += table.num_rows
        last = groups.rest()
        if last is not None:
            writer.write_table(last, row_group_size=last.num_rows)
            written += last.num_rows
    return written


def _shard_batches(
    store: Store, spec: Spec, run_id: str, infos: list[ShardInfo], batch_rows: int
) -> Iterator[pa.RecordBatch]:
    for info in infos:
        key = layout.shard_key(spec.name, run_id, info.index, info.count)
        with store.open_read(key, version=info.version) as handle:
            try:
                reader = _verified(handle)
                for groups in _read_runs(reader.metadata):
                    yield from reader.iter_batches(
                        batch_size=batch_rows, row_groups=groups, use_threads=False
                    )
            except DAMAGE as exc:
                raise _damaged(store.url(key), exc) from None


READ_BYTES = 16 << 20  # compressed bytes pyarrow may pre-buffer per read


def _read_runs(metadata: pq.FileMetaData) -> Iterator[list[int]]:
    """Row groups in runs of about READ_BYTES: asked for all of a shard at once, pyarrow
    pre-buffers the whole shard (a 10M-row shard: +86 MiB peak RSS); one row group per read
    would mean many small requests to S3."""
    run: list[int] = []
    size = 0
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        run.append(index)
        size += sum(group.column(c).total_compressed_size for c in range(group.num_columns))
        if size >= READ_BYTES:
            yield run
            run, size = [], 0
    if run:
        yield run


def _kept(batches: Iterator[pa.RecordBatch], spec: Spec) -> Iterator[pa.RecordBatch]:
    """Shards already hold only kept rows; for top-k the result keeps the best of them all."""
    if spec.keep.top_k is None:
        yield from batches
        return
    rows = RowFilter(spec)
    for batch in batches:
        rows.add(pa.Table.from_batches([batch]))
    best = rows.finish()
    if best is not None:
        yield from best.to_batches()
