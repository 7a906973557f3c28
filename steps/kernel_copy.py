"""Byte ranges copied from file to file by the kernel (`os.copy_file_range`), on a thread of
their own: while reduce checks one row group's pages in Python, the kernel copies the ones
already checked (the copy holds no GIL, so it runs on the other core), and the result is
written to disk as it is copied rather than all at once in the fsync that ends it. The first
copy from each file system is made at once, to learn whether the kernel can copy from it to
the target at all.
Checking the pages on this thread too was tried: it made the thread the slower of the two.
Measured in docs/scaling.md.
"""

from __future__ import annotations

import errno
import os
import queue
import threading
from dataclasses import dataclass

__all__ = ["CopyError", "KernelCopy"]

# What copy_file_range says when these two files cannot be copied between by the kernel.
_NO_KERNEL_COPY = frozenset({errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP})
QUEUED = 64  # copies waiting at most; each holds a descriptor of its source
SYNC_BYTES = 64 << 20  # copied bytes the sync thread is then asked to write to disk


class CopyError(Exception):
    """A copy the thread could not make: `cause` is the error, `source` names what it read."""

    def __init__(self, source: str, cause: Exception) -> None:
        super().__init__(f"{source}: {cause}")
        self.source, self.cause = source, cause


class SourceShortError(ValueError):
    """The source ended before the range to copy did."""


@dataclass(frozen=True)
class _Copy:
    source: int  # a descriptor of the copier's own, closed once copied
    start: int
    stop: int
    at: int  # where the range goes in the target
    name: str


class KernelCopy:
    """Copies into the file open as `target`, at the offsets given: the target's own
    position is not used, so the caller may write elsewhere in it meanwhile."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.works: dict[int, bool] = {}  # by the source's device: whether the kernel copies
        self._queue: queue.Queue[_Copy | None] = queue.Queue(QUEUED)
        self._thread: threading.Thread | None = None
        self._failure: CopyError | None = None
        self._due = threading.Event()  # SYNC_BYTES more copied: write them to disk
        self._syncer: threading.Thread | None = None
        self._stopping = False
        self._abandoned = False

    def copy(self, source: int, start: int, stop: int, at: int, name: str) -> bool:
        """Copy `source`'s bytes [start, stop) to `at`: the first time from its file system,
        before returning (and False, nothing written, if the kernel cannot copy from there
        into the target); after that on the thread. A copy that fails there is raised by
        `finish`; one that fails at once, here (CopyError, or the file system's OSError)."""
        device = os.fstat(source).st_dev
        works = self.works.get(device)
        if works is None:
            try:
                _copy_range(source, self.target, start, stop, at)
            except OSError as exc:
                if exc.errno not in _NO_KERNEL_COPY:
                    raise
                works = False
            except ValueError as exc:
                raise CopyError(name, exc) from None
            else:
                works = True
            self.works[device] = works
            return works
        if not works:
            return False
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="kernel-copy", daemon=True)
            self._syncer = threading.Thread(target=self._sync, name="kernel-sync", daemon=True)
            self._thread.start()
            self._syncer.start()
        self._queue.put(_Copy(os.dup(source), start, stop, at, name))
        return True

    def finish(self) -> None:
        """Wait for every copy; CopyError if one of them failed."""
        self._stop()
        if self._failure is not None:
            raise self._failure

    def abandon(self) -> None:
        """Stop, skipping the copies still queued (the target is to be discarded)."""
        self._abandoned = True
        self._stop()

    def _stop(self) -> None:
        if self._thread is not None and self._syncer is not None:
            self._queue.put(None)
            self._thread.join()
            self._stopping = True
            self._due.set()
            self._syncer.join()
            self._thread = self._syncer = None

    def _run(self) -> None:
        unsynced = 0
        while (job := self._queue.get()) is not None:
            try:
                if self._failure is None and not self._abandoned:
                    _copy_range(job.source, self.target, job.start, job.stop, job.at)
                    unsynced += job.stop - job.start
                    if unsynced >= SYNC_BYTES:
                        self._due.set()
                        unsynced = 0
            except Exception as exc:  # anything, a bug too: recorded, the queue still drained
                self._failure = self._failure or CopyError(job.name, exc)
            finally:
                os.close(job.source)

    def _sync(self) -> None:
        """Write what is copied to disk while the copies go on, on a thread of its own (an
        fdatasync waits for the disk), so that the fsync ending the result finds little
        left to write. Its error is the result's: seen here, the kernel would not report it
        to that fsync."""
        while True:
            self._due.wait()
            self._due.clear()
            if self._stopping:
                return
            try:
                os.fdatasync(self.target)
            except OSError as exc:
                self._failure = self._failure or CopyError("the result", exc)
                return


def _copy_range(source: int, target: int, start: int, stop: int, at: int) -> None:
    while start < stop:
        copied = os.copy_file_range(source, target, stop - start, start, at)
        if copied == 0:
            raise SourceShortError(f"file ends {stop - start} bytes short of a row group")
        start, at = start + copied, at + copied
