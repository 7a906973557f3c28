"""What every store is: the interface, its errors, and the temp-file naming that lets a
later run tell a dead writer's leftovers from a live writer's work (steps/store.py opens one).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "STAGING_PREFIX",
    "TEMP_RE",
    "ByteRange",
    "ObjectNotFoundError",
    "Store",
    "StoreError",
    "UnsupportedError",
    "discard",
    "hidden_temp_key",
    "remove_stale_staging",
    "temp_tag",
    "writer_alive_here",
    "writer_died",
]


class StoreError(Exception):
    """A store could not do what was asked; the message names the object and where it lives."""


class ObjectNotFoundError(StoreError):
    """The object does not exist (as opposed to: could not be reached)."""


class UnsupportedError(StoreError):
    """The store does not implement the call (an S3-compatible server without
    UploadPartCopy, say): the caller may do without it."""


@dataclass(frozen=True)
class ByteRange:
    """`length` bytes of object `key` from `offset`; `version` pins the object (an S3 ETag)."""

    key: str
    offset: int
    length: int
    version: str | None = None


class Store(ABC):
    uri: str

    def url(self, key: str) -> str:
        """The full URI of `key`, for messages and for other tools."""
        return f"{self.uri.rstrip('/')}/{key}"

    @abstractmethod
    def atomic_writer(
        self, key: str, durable: bool = True
    ) -> contextlib.AbstractContextManager[Path]:
        """Yield a local path to write; on clean exit the file becomes `key` atomically.
        `durable`: on the store's disk before it appears, where that is a choice (a folder:
        fsync). A shard is not: every reader checks its seal and page checksums, and a shard
        a crash left torn is computed again (docs/integrity.md)."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def get_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def open_read(self, key: str, version: str | None = None) -> BinaryIO:
        """A seekable binary reader (what pyarrow needs to read Parquet footers and row groups);
        with `version`, of that version only, where the store keeps versions (S3 ETags)."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Keys below `prefix`, sorted; temp files of unfinished writes are not listed."""

    @abstractmethod
    def probe(self) -> None:
        """StoreError now if the store cannot take a run, rather than once per task later."""

    @abstractmethod
    def remove(self, key: str) -> None:
        """Delete `key` if it exists."""

    def remove_stale_temps(self, prefix: str) -> int:
        """Remove temp files below `prefix` left by writers that died (a kill -9); the count."""
        return 0

    def compose_problem(self, sizes: Sequence[int]) -> str | None:
        """Why objects of these `sizes` (the last one's bytes uploaded) cannot be composed
        server-side, or None if they can."""
        return "a folder store has no server-side copy"

    def compose(self, key: str, ranges: Sequence[ByteRange], tail: bytes) -> None:
        """Make `key`, atomically, the bytes of `ranges` followed by `tail`, the ranges
        copied by the store itself (only `tail` is sent)."""
        raise StoreError(f"cannot compose {self.url(key)}: {self.compose_problem([])}")


# A temp file names the host and process that write it, so that a later run can tell the
# temp of a writer that died (removable) from one still being written (left alone).
TEMP_RE = re.compile(r"^\.(?P<target>.+)\.ttg-(?P<host>[^.]*)-(?P<pid>\d+)-[0-9a-f]{12}\.tmp$")
STAGING_PREFIX = "ttg-staging-"


def temp_tag() -> str:
    host = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:64]
    return f"ttg-{host}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def hidden_temp_key(key: str) -> str:
    """A key beside `key` for an object on its way to becoming it: hidden from `list`,
    named for its writer, so that `remove_stale_temps` knows a dead writer's."""
    folder, _, name = key.rpartition("/")
    return f"{folder}/.{name}.{temp_tag()}.tmp" if folder else f".{name}.{temp_tag()}.tmp"


def writer_alive_here(host: str, pid: int) -> bool:
    """Whether the writer is a live process of this host (pid reuse errs on alive)."""
    return host == re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:64] and not writer_died(
        host, pid
    )


def writer_died(host: str, pid: int) -> bool:
    """Only a writer on this host can be known dead; pid reuse errs on the side of keeping."""
    if host != re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:64]:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    try:  # a killed writer whose parent died too stays a zombie until init reaps it
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")


def discard(path: Path) -> None:
    """Remove a temp file if it is there. A cleanup never raises: on a read-only or full disk
    its error would replace the one that explains what went wrong."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


_STAGING_RE = re.compile(
    rf"^{STAGING_PREFIX}ttg-(?P<host>[^.]*)-(?P<pid>\d+)-[0-9a-f]{{12}}-.*\.part$"
)


def remove_stale_staging() -> int:
    """S3 uploads are staged in the local temp folder: remove those of writers that died."""
    removed = 0
    with contextlib.suppress(OSError):
        for path in Path(tempfile.gettempdir()).glob(f"{STAGING_PREFIX}*.part"):
            match = _STAGING_RE.match(path.name)
            if match and writer_died(match["host"], int(match["pid"])):
                discard(path)
                removed += 1
    return removed
