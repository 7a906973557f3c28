"""File and S3 stores behind one small interface, with atomic writes.

A store is a URI: a folder (`runs`, `/abs/path`, `file:///abs/path`) or `s3://bucket/prefix`.
Keys are `/`-separated paths below it. Writers never expose half an object: a folder write
goes to a hidden temp file renamed into place; an S3 write is one PUT or one completed
multipart upload of a finished local file. S3 settings come from the same environment
variables DuckDB, Polars and pyarrow read (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, ...).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote_to_bytes, urlsplit


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
    def atomic_writer(self, key: str) -> contextlib.AbstractContextManager[Path]:
        """Yield a local path to write; on clean exit the file becomes `key` atomically."""

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


def open_store(uri: str) -> Store:
    """The store a URI names; unsupported schemes are refused here, before any work."""
    if uri.startswith("s3://"):
        from steps.store_s3 import S3Store  # minio and urllib3 load only for S3 stores

        return S3Store(uri)
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return FileStore(file_uri_path(uri))
    if parts.scheme and len(parts.scheme) > 1:  # "C:" style drive letters are paths
        raise StoreError(
            f"unsupported store scheme '{parts.scheme}://' in {uri} (use a folder, file:// or s3://)"
        )
    if not uri:
        raise StoreError("store URI is empty")
    return FileStore(Path(uri))


def file_uri_path(uri: str) -> Path:
    """The folder a `file://` URI names. Its path is percent-encoded (RFC 8089), as
    `Path.as_uri` writes it: `/tmp/my runs` travels as `file:///tmp/my%20runs`, and a pod
    taking that literally would write to a folder named `my%20runs`."""
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
        raise StoreError(f"file URI must be file:///absolute/path, got {uri}")
    if parts.query or parts.fragment or uri.endswith(("?", "#")):
        raise StoreError(
            f"file URI {uri} has a query or a fragment: write '?' as %3F and '#' as %23"
        )
    return Path(os.fsdecode(unquote_to_bytes(parts.path)))


class FileStore(Store):
    def __init__(self, root: Path) -> None:
        text = str(root)
        if "\0" in text:
            raise StoreError(f"store path {text!r} holds a NUL character")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # bytes that are not UTF-8, from argv or a %-escape
            raise StoreError(
                f"store path {text!r} is not UTF-8 text (Parquet writers and manifests need it)"
            ) from None
        self.root = root.absolute()
        self.uri = self.root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    @contextlib.contextmanager
    def atomic_writer(self, key: str) -> Iterator[Path]:
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {target.parent}: {exc.strerror}") from None
        temp = target.with_name(f".{target.name}.{temp_tag()}.tmp")
        try:
            yield temp
            with temp.open("rb+") as handle:
                os.fsync(handle.fileno())
            temp.replace(target)
        except OSError as exc:
            raise StoreError(f"cannot write {target}: {exc.strerror or exc}") from None
        finally:
            discard(temp)

    def put_bytes(self, key: str, data: bytes) -> None:
        with self.atomic_writer(key) as path:
            path.write_bytes(data)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFoundError(f"{self.url(key)} does not exist") from None
        except OSError as exc:
            raise StoreError(f"cannot read {self.url(key)}: {exc.strerror}") from None

    def open_read(self, key: str, version: str | None = None) -> BinaryIO:
        try:
            return self._path(key).open("rb")  # files have no versions: `version` is None
        except FileNotFoundError:
            raise ObjectNotFoundError(f"{self.url(key)} does not exist") from None
        except OSError as exc:
            raise StoreError(f"cannot read {self.url(key)}: {exc.strerror}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def remove(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot remove {self.url(key)}: {exc.strerror}") from None

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        keys = []
        for path in base.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                keys.append(path.relative_to(self.root).as_posix())
        return sorted(keys)

    def probe(self) -> None:
        """The root is a folder that can be written, or can be created as one."""
        existing = self.root
        while not existing.exists() and existing.parent != existing:
            existing = existing.parent
        if not existing.is_dir():
            what = "is a file" if existing == self.root else f"is below a file ({existing})"
            raise StoreError(f"store {self.root} {what}, not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise StoreError(f"store {self.root} cannot be written ({existing} is read-only)")

    def remove_stale_temps(self, prefix: str) -> int:
        base = self._path(prefix)
        removed = 0
        for path in base.rglob(".*.tmp") if base.is_dir() else ():
            match = TEMP_RE.match(path.name)
            if match and writer_died(match["host"], int(match["pid"])):
                discard(path)
                removed += 1
        return removed + remove_stale_staging()


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
