"""File and S3 stores behind one small interface, with atomic writes.

A store is a URI: a folder (`runs`, `/abs/path`, `file:///abs/path`) or `s3://bucket/prefix`.
Keys are `/`-separated paths below it. Writers never expose half an object: a folder write
goes to a hidden temp file renamed into place; an S3 write is one PUT or one completed
multipart upload of a finished local file. S3 settings come from the same environment
variables DuckDB, Polars and pyarrow read (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, ...).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import socket
import tempfile
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, TypeVar
from urllib.parse import unquote_to_bytes, urlsplit

T = TypeVar("T")


class StoreError(Exception):
    """A store could not do what was asked; the message names the object and where it lives."""


class ObjectNotFoundError(StoreError):
    """The object does not exist (as opposed to: could not be reached)."""


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
    def open_read(self, key: str) -> BinaryIO:
        """A seekable binary reader (what pyarrow needs to read Parquet footers and row groups)."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Keys below `prefix`, sorted; temp files of unfinished writes are not listed."""

    @abstractmethod
    def probe(self) -> None:
        """StoreError now if the store cannot take a run, rather than once per task later."""

    def remove_stale_temps(self, prefix: str) -> int:
        """Remove temp files below `prefix` left by writers that died (a kill -9); the count."""
        return 0


# A temp file names the host and process that write it, so that a later run can tell the
# temp of a writer that died (removable) from one still being written (left alone).
_TEMP_RE = re.compile(r"^\.(?P<target>.+)\.ttg-(?P<host>[^.]*)-(?P<pid>\d+)-[0-9a-f]{12}\.tmp$")
_STAGING_PREFIX = "ttg-staging-"


def _temp_tag() -> str:
    host = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:64]
    return f"ttg-{host}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def _writer_died(host: str, pid: int) -> bool:
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


def _discard(path: Path) -> None:
    """Remove a temp file if it is there. A cleanup never raises: on a read-only or full disk
    its error would replace the one that explains what went wrong."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def open_store(uri: str) -> Store:
    """The store a URI names; unsupported schemes are refused here, before any work."""
    if uri.startswith("s3://"):
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
        temp = target.with_name(f".{target.name}.{_temp_tag()}.tmp")
        try:
            yield temp
            with temp.open("rb+") as handle:
                os.fsync(handle.fileno())
            temp.replace(target)
        except OSError as exc:
            raise StoreError(f"cannot write {target}: {exc.strerror or exc}") from None
        finally:
            _discard(temp)

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

    def open_read(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise ObjectNotFoundError(f"{self.url(key)} does not exist") from None
        except OSError as exc:
            raise StoreError(f"cannot read {self.url(key)}: {exc.strerror}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

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
            match = _TEMP_RE.match(path.name)
            if match and _writer_died(match["host"], int(match["pid"])):
                _discard(path)
                removed += 1
        return removed + _remove_stale_staging()


# --- S3 ---------------------------------------------------------------------------------


def _env_number(name: str, default: float) -> float:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise StoreError(f"{name} must be a number, got '{text}'") from None
    if value <= 0:
        raise StoreError(f"{name} must be positive, got {text}")
    return value


RETRYABLE_S3_CODES = frozenset(
    {"InternalError", "SlowDown", "ServiceUnavailable", "RequestTimeout", "RequestTimeTooSkewed"}
)


class S3Store(Store):
    """An S3 (MinIO, AWS, moto, ...) bucket and prefix through the minio client."""

    def __init__(self, uri: str) -> None:
        import minio
        import urllib3
        from minio.helpers import check_bucket_name

        parts = urlsplit(uri)
        if not parts.netloc:
            raise StoreError(f"S3 URI needs a bucket: s3://bucket/prefix, got {uri}")
        self.bucket = parts.netloc
        try:
            check_bucket_name(self.bucket, strict=True)
        except ValueError:
            raise StoreError(f"'{self.bucket}' is not a valid S3 bucket name (in {uri})") from None
        self.prefix = parts.path.strip("/")
        self.uri = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        endpoint = endpoint or "https://s3.amazonaws.com"
        if "://" not in endpoint:
            endpoint = f"https://{endpoint}"
        end = urlsplit(endpoint)
        self.endpoint = endpoint
        self.attempts = max(1, int(_env_number("TTG_S3_ATTEMPTS", 6)))
        self.backoff = _env_number("TTG_S3_BACKOFF", 0.5)
        # Retries live in one place (`_call`), so the client itself must not retry.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=_env_number("TTG_S3_TIMEOUT", 60)),
            retries=urllib3.Retry(total=0, connect=0, read=0, redirect=2, status=0),
            maxsize=8,
        )
        try:
            self.client = minio.Minio(
                end.netloc,
                access_key=os.environ.get("AWS_ACCESS_KEY_ID"),
                secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
                session_token=os.environ.get("AWS_SESSION_TOKEN"),
                secure=end.scheme == "https",
                region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
                http_client=http,
            )
        except ValueError as exc:
            raise StoreError(f"bad S3 endpoint {endpoint}: {exc}") from None

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, what: str, key: str, fn: Callable[[], T]) -> T:
        """Run one S3 call, retrying transient failures with exponential backoff."""
        from minio.error import S3Error, ServerError
        from urllib3.exceptions import HTTPError

        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except S3Error as exc:
                if exc.code in ("NoSuchKey", "NotFound", "ResourceNotFound"):
                    raise ObjectNotFoundError(f"{self.url(key)} does not exist") from None
                if exc.code not in RETRYABLE_S3_CODES:
                    raise StoreError(self._explain(what, key, exc.code, exc.message)) from None
                reason = f"{exc.code}: {exc.message}"
            except ServerError as exc:
                reason = f"HTTP {exc.status_code}"
            except (HTTPError, OSError) as exc:
                reason = type(exc).__name__
            if attempt == self.attempts:
                raise StoreError(
                    f"cannot {what} {self.url(key)} at {self.endpoint}: {reason} "
                    f"(gave up after {self.attempts} attempts)"
                )
            time.sleep(delay)
            delay = min(delay * 2, 8.0)
        raise AssertionError("unreachable")

    def _explain(self, what: str, key: str, code: str | None, message: str | None) -> str:
        where = f"{self.url(key)} at {self.endpoint}"
        if code == "NoSuchBucket":
            return f"cannot {what} {where}: bucket '{self.bucket}' does not exist"
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"):
            return (
                f"cannot {what} {where}: {code} (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
            )
        return f"cannot {what} {where}: {code}: {message}"

    @contextlib.contextmanager
    def atomic_writer(self, key: str) -> Iterator[Path]:
        handle, name = tempfile.mkstemp(prefix=f"{_STAGING_PREFIX}{_temp_tag()}-", suffix=".part")
        os.close(handle)
        temp = Path(name)
        try:
            try:
                yield temp
            except OSError as exc:  # staging on the local disk (the pod's /tmp) failed
                raise StoreError(
                    f"cannot stage {self.url(key)} in {temp.parent}: {exc.strerror or exc}"
                ) from None
            self._call(
                "write",
                key,
                lambda: self.client.fput_object(self.bucket, self._name(key), str(temp)),
            )
        finally:
            _discard(temp)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._call(
            "write",
            key,
            lambda: self.client.put_object(
                self.bucket, self._name(key), io.BytesIO(data), len(data)
            ),
        )

    def get_bytes(self, key: str) -> bytes:
        return self._call("read", key, lambda: self._read_range(key, 0, 0))

    def _read_range(self, key: str, offset: int, length: int) -> bytes:
        response = self.client.get_object(
            self.bucket, self._name(key), offset=offset, length=length
        )
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def size(self, key: str) -> int:
        stat = self._call(
            "stat", key, lambda: self.client.stat_object(self.bucket, self._name(key))
        )
        return int(stat.size or 0)

    def open_read(self, key: str) -> BinaryIO:
        raw = _RangeReader(self, key, self.size(key))
        return io.BufferedReader(raw, buffer_size=1 << 20)

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except ObjectNotFoundError:
            return False
        return True

    def probe(self) -> None:
        """A listing: HEAD responses carry no error code, so a missing bucket or bad keys
        would read as "no such object"."""
        self.list(".ttg-probe")

    def remove_stale_temps(self, prefix: str) -> int:
        return _remove_stale_staging()  # S3 objects appear whole; only local staging remains

    def list(self, prefix: str) -> list[str]:
        full = self._name(prefix).rstrip("/") + "/"
        strip = len(self.prefix) + 1 if self.prefix else 0
        objects = self._call(
            "list",
            prefix,
            lambda: list(self.client.list_objects(self.bucket, prefix=full, recursive=True)),
        )
        return sorted(str(o.object_name)[strip:] for o in objects)


class _RangeReader(io.RawIOBase):
    """Random access to one S3 object by ranged GETs, each retried like any other call."""

    def __init__(self, store: S3Store, key: str, size: int) -> None:
        self.store, self.key, self.size, self.pos = store, key, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        length = min(len(buffer), self.size - self.pos)
        if length <= 0:
            return 0
        start = self.pos
        data = self.store._call(
            "read", self.key, lambda: self.store._read_range(self.key, start, length)
        )
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


_STAGING_RE = re.compile(
    rf"^{_STAGING_PREFIX}ttg-(?P<host>[^.]*)-(?P<pid>\d+)-[0-9a-f]{{12}}-.*\.part$"
)


def _remove_stale_staging() -> int:
    """S3 uploads are staged in the local temp folder: remove those of writers that died."""
    removed = 0
    with contextlib.suppress(OSError):
        for path in Path(tempfile.gettempdir()).glob(f"{_STAGING_PREFIX}*.part"):
            match = _STAGING_RE.match(path.name)
            if match and _writer_died(match["host"], int(match["pid"])):
                _discard(path)
                removed += 1
    return removed
