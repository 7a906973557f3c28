"""The kernel copies the row groups reduce has checked on a thread of its own, into their
places in the result, while the next ones are checked; what goes wrong there is still
reported, once the copies are waited for, and names what was being copied."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from steps import kernel_copy, merge, parquet, reduce
from steps.kernel_copy import CopyError, KernelCopy, SourceShortError
from steps.spec import parse_spec
from steps.store import open_store
from tests.test_concat import GROUP, compute_all
from tests.test_pipeline import mixed


def source_file(tmp_path: Path, size: int) -> tuple[int, bytes]:
    data = os.urandom(size)
    path = tmp_path / "source"
    path.write_bytes(data)
    return os.open(path, os.O_RDONLY), data


def open_fds() -> set[str]:
    return {entry.name for entry in Path("/proc/self/fd").iterdir()}


def test_ranges_land_at_their_offsets_in_any_order_while_the_file_is_written_elsewhere(
    tmp_path: Path,
) -> None:
    source, data = source_file(tmp_path, 1 << 20)
    target_path = tmp_path / "target"
    with target_path.open("wb") as target:
        target.write(b"HEAD")
        copier = KernelCopy(target.fileno())
        # the first copy is made at once; the rest on the thread, the last range first
        assert copier.copy(source, 0, 1000, 4, "source")
        assert copier.works == {os.fstat(source).st_dev: True}
        assert copier.copy(source, 5000, 1 << 20, 4 + 5000, "source")
        assert copier.copy(source, 1000, 5000, 4 + 1000, "source")
        target.seek(4 + (1 << 20))
        target.write(b"TAIL")  # written by this thread meanwhile, beyond the copies
        copier.finish()
    os.close(source)
    assert target_path.read_bytes() == b"HEAD" + data + b"TAIL"


def test_a_source_that_ends_early_on_the_thread_is_a_copy_error_naming_it(
    tmp_path: Path,
) -> None:
    source, _ = source_file(tmp_path, 4096)
    with (tmp_path / "target").open("wb") as target:
        copier = KernelCopy(target.fileno())
        assert copier.copy(source, 0, 4096, 0, "shard-a")
        assert copier.copy(source, 0, 8192, 4096, "shard-b")  # queued: fails on the thread
        with pytest.raises(CopyError) as failed:
            copier.finish()
    os.close(source)
    assert failed.value.source == "shard-b"
    assert isinstance(failed.value.cause, SourceShortError)


def test_the_file_systems_error_on_the_thread_is_raised_as_it_is(tmp_path: Path) -> None:
    source, _ = source_file(tmp_path, 4096)
    folder = os.open(tmp_path, os.O_RDONLY)  # not a file: the kernel will not copy from it
    with (tmp_path / "target").open("wb") as target:
        copier = KernelCopy(target.fileno())
        assert copier.copy(source, 0, 4096, 0, "shard-a")
        assert copier.copy(folder, 0, 4096, 4096, "a folder")
        with pytest.raises(CopyError) as failed:
            copier.finish()
    os.close(source)
    os.close(folder)
    assert failed.value.source == "a folder"
    assert isinstance(failed.value.cause, OSError)


def test_files_the_kernel_cannot_copy_between_are_said_so_at_the_first_copy(
    tmp_path: Path,
) -> None:
    reader, writer = os.pipe()  # a pipe is no file the kernel copies ranges into
    source, _ = source_file(tmp_path, 4096)
    copier = KernelCopy(writer)
    assert copier.copy(source, 0, 4096, 0, "shard-a") is False
    assert copier.copy(source, 0, 4096, 0, "shard-a") is False  # and never tried again
    copier.finish()
    for fd in (reader, writer, source):
        os.close(fd)


def test_an_unexpected_error_on_the_thread_is_raised_not_lost_and_never_hangs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug's error (here an offset no file can have) stops the copies, yet the queue is
    still drained, so the caller never blocks on it; `finish` raises it."""
    monkeypatch.setattr(kernel_copy, "QUEUED", 1)
    source, _ = source_file(tmp_path, 8192)
    with (tmp_path / "target").open("wb") as target:
        copier = KernelCopy(target.fileno())
        assert copier.copy(source, 0, 4096, 0, "a")
        assert copier.copy(source, 0, 4096, 1 << 63, "beyond any file")
        for at in range(4096, 8192, 64):  # more than the queue holds
            assert copier.copy(source, at, at + 64, at, "b")
        with pytest.raises(CopyError) as failed:
            copier.finish()
    os.close(source)
    assert failed.value.source == "beyond any file"
    assert isinstance(failed.value.cause, OverflowError)


def test_a_shard_on_a_file_system_the_kernel_cannot_copy_from_is_read_and_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each file system is asked once: a shard on another one (here tmpfs, linked into the
    store) is merged through this process instead, into the very same file."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on a file system of its own")
    monkeypatch.setattr(parquet, "MIN_ROW_GROUP_ROWS", GROUP)
    monkeypatch.setattr(parquet, "MAX_ROW_GROUP_ROWS", GROUP)
    store = open_store(str(tmp_path / "store"))
    spec = mixed(2, 64)
    infos = compute_all(store, spec, "r")
    last = sorted((tmp_path / "store").glob(f"{spec.name}/r/shards/*.parquet"))[-1]
    moved = shm / f"ttg-test-{os.getpid()}-{last.name}"
    shutil.move(last, moved)
    try:
        last.symlink_to(moved)
        copied, encoded = tmp_path / "copied.parquet", tmp_path / "encoded.parquet"
        reduce.concatenate_shards(store, spec, "r", infos, copied)
        reduce.reencode_shards(store, spec, "r", infos, encoded)
        assert copied.read_bytes() == encoded.read_bytes()
    finally:
        moved.unlink()


def test_abandoned_copies_stop_and_leave_no_descriptor_open(tmp_path: Path) -> None:
    source, _ = source_file(tmp_path, 1 << 16)
    before = open_fds()
    with (tmp_path / "target").open("wb") as target:
        copier = KernelCopy(target.fileno())
        for at in range(0, 1 << 16, 1024):
            copier.copy(source, at, at + 1024, at, "source")
        copier.abandon()
    os.close(source)
    assert open_fds() <= before


def test_a_result_synced_as_it_is_copied_is_the_same_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every copy asks the sync thread to write what is copied to disk: the result is the
    very file the re-encoding merge writes, and its row groups came by the kernel."""
    monkeypatch.setattr(parquet, "MIN_ROW_GROUP_ROWS", GROUP)
    monkeypatch.setattr(parquet, "MAX_ROW_GROUP_ROWS", GROUP)
    monkeypatch.setattr(kernel_copy, "SYNC_BYTES", 1)
    synced: list[int] = []
    fdatasync = os.fdatasync

    def counted(fd: int) -> None:
        synced.append(fd)
        fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", counted)
    store = open_store(str(tmp_path / "store"))
    spec = mixed(2, 64)  # shard 1 starts on a row group: every group but the tail is copied
    infos = compute_all(store, spec, "r")
    copied, encoded = tmp_path / "copied.parquet", tmp_path / "encoded.parquet"
    rows = reduce.concatenate_shards(store, spec, "r", infos, copied)
    assert rows == reduce.reencode_shards(store, spec, "r", infos, encoded)
    assert copied.read_bytes() == encoded.read_bytes()
    assert synced, "no copy was synced while the merge went on"


def mapped_kib(path: Path) -> int:
    """This process's resident KiB of its maps of `path` (/proc/self/smaps)."""
    resident, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if re.match(r"[0-9a-f]+-[0-9a-f]+ ", line):  # a map's first line: its range, ... path
            inside = line.rstrip().endswith(str(path))
        elif inside and line.startswith("Rss:"):
            resident += int(line.split()[1])
    return resident


def test_the_pages_reduce_checks_do_not_stay_in_its_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shard's pages are checked through a map of it, and every page read counts in the
    process's RSS until it is dropped (a 10^8-row shard took reduce to 700 MiB): once a row
    group is checked its pages leave, so the map never holds much more than one group."""
    monkeypatch.setattr(parquet, "MAX_ROW_GROUP_ROWS", 1 << 14)  # ~0.4 MB a group
    spec = parse_spec(
        {
            "name": "noise",
            "function": "steps.kernels:rosenbrock",
            "shards": 1,
            "samples": 600_000,
            "space": {"x": {"uniform": [0.0, 1.0]}, "y": {"normal": [0.0, 1.0]}},
        }
    )
    store = open_store(str(tmp_path / "store"))
    infos = compute_all(store, spec, "r")
    (shard,) = (tmp_path / "store").glob("noise/r/shards/*.parquet")
    assert shard.stat().st_size > 12 << 20  # random floats: incompressible
    resident: list[int] = []
    close = merge._ShardReader.close

    def measured(reader: merge._ShardReader) -> None:
        resident.append(mapped_kib(shard.resolve()))
        close(reader)

    monkeypatch.setattr(merge._ShardReader, "close", measured)
    reduce.concatenate_shards(store, spec, "r", infos, tmp_path / "result.parquet")
    assert resident and resident[0] < 2 << 10, f"{resident[0]} KiB of the shard stayed mapped"
