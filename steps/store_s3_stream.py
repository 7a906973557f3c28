"""The local file of an S3 write, uploaded while its writer fills it (steps/store_s3.py).

minio-py's `put_object` with an unknown length reads parts of STREAM_PART bytes from a
stream; this one waits for bytes not yet written and ends only once the writer is done
and what it handed out is what the file holds, so the upload overlaps the work that
writes the file and still never completes with other bytes than the file's.

S3 multipart uploads: https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

from isal.isal_zlib import crc32
from minio.helpers import MAX_MULTIPART_COUNT, MIN_PART_SIZE

__all__ = ["HOLD_BACK", "STREAM_LIMIT", "STREAM_PART", "AbandonedError", "GrowingFile"]


# Parts of an upload streamed while its file is written; beyond STREAM_LIMIT bytes the part
# count would pass S3's limit, and the finished file is uploaded with parts of its own size.
STREAM_PART = MIN_PART_SIZE
STREAM_LIMIT = STREAM_PART * (MAX_MULTIPART_COUNT - 1)
# Bytes at the end of a file that are uploaded only once its writer is done: a Parquet
# writer finishes with its footer, and compute seals the footer in place (steps/shards.py).
HOLD_BACK = 1 << 20


class AbandonedError(Exception):
    """The streamed upload is given up: it never completes."""


class GrowingFile(io.RawIOBase):
    """A file as a writer fills it: `read` waits for bytes not yet written, and ends once
    `finish` says the writer is done and what was read is what the file holds (CRC-32)."""

    def __init__(self, path: Path) -> None:
        self.path, self.file = path, path.open("rb")
        self.done, self.failed = threading.Event(), threading.Event()
        self.crc = self.sent = 0

    def readable(self) -> bool:
        return True

    def finish(self) -> None:
        self.done.set()

    def abandon(self) -> None:
        self.failed.set()

    def read(self, size: int = -1) -> bytes:
        want = size if size >= 0 else STREAM_PART
        while True:
            if self.failed.is_set() or self.sent > STREAM_LIMIT:
                raise AbandonedError()
            finished = self.done.is_set()  # before reading: bytes written by then are there
            if not finished:  # the last HOLD_BACK bytes may yet be rewritten (a footer seal)
                want = min(want, os.fstat(self.file.fileno()).st_size - HOLD_BACK - self.sent)
            data = self.file.read(want) if want > 0 else b""
            if data:
                self.crc, self.sent = crc32(data, self.crc), self.sent + len(data)
                return data
            if finished:
                if self._file_crc() != self.crc:
                    raise AbandonedError()
                return b""
            self.done.wait(0.005)
            want = size if size >= 0 else STREAM_PART

    def _file_crc(self) -> int:
        crc = 0
        with self.path.open("rb") as handle:
            while block := handle.read(1 << 20):
                crc = crc32(block, crc)
        return crc

    def close(self) -> None:
        self.file.close()
        super().close()
