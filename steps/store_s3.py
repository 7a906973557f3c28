"""The S3 store (MinIO, AWS, ...) through the minio client: retried calls, ranged reads
pinned to one version of an object, uploads staged in a local file, and server-side
composition of objects from byte ranges of others (S3's UploadPartCopy).

S3's rules for the parts of a multipart upload:
https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, TypeVar, cast
from urllib.parse import urlsplit

import minio
import urllib3
from minio.commonconfig import ComposeSource
from minio.error import S3Error, ServerError
from minio.helpers import (
    MAX_MULTIPART_COUNT,
    MAX_MULTIPART_OBJECT_SIZE,
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    check_bucket_name,
)
from urllib3.exceptions import HTTPError

from steps.store_base import (
    STAGING_PREFIX,
    TEMP_RE,
    ByteRange,
    ObjectNotFoundError,
    Store,
    StoreError,
    UnsupportedError,
    discard,
    hidden_temp_key,
    remove_stale_staging,
    temp_tag,
    writer_alive_here,
)
from steps.store_s3_stream import STREAM_PART, GrowingFile

__all__ = ["S3Store"]

T = TypeVar("T")


# Bytes one small read fetches: enough for a footer, little past what is asked for (pyarrow
# reads column chunks whole, past the buffer)
READ_BUFFER = 64 << 10


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

        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except S3Error as exc:
                if exc.code in ("NoSuchKey", "NotFound", "ResourceNotFound"):
                    raise ObjectNotFoundError(f"{self.url(key)} does not exist") from None
                if exc.code == "NotImplemented":
                    raise UnsupportedError(
                        self._explain(what, key, exc.code, exc.message)
                    ) from None
                if exc.code not in RETRYABLE_S3_CODES:
                    raise StoreError(self._explain(what, key, exc.code, exc.message)) from None
                reason = f"{exc.code}: {exc.message}"
            except ServerError as exc:
                reason = f"HTTP {exc.status_code}"
            except (HTTPError, OSError) as exc:
                reason = type(exc).__name__
            except ValueError as exc:  # the client's own checks (sizes, ranges): not transient
                raise StoreError(f"cannot {what} {self.url(key)}: {exc}") from None
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
    def atomic_writer(self, key: str, durable: bool = True) -> Iterator[Path]:
        """The local file is uploaded while it is written, in parts of STREAM_PART bytes,
        so a pod's upload overlaps its compute; the object appears only once the writer is
        done. Should that stream fail, or not be what the file holds (a writer that went
        back), the finished file is uploaded again, retried like any other call."""
        handle, name = tempfile.mkstemp(prefix=f"{STAGING_PREFIX}{temp_tag()}-", suffix=".part")
        os.close(handle)
        temp = Path(name)
        tail = GrowingFile(temp)
        streamed: list[BaseException | None] = []
        uploader = threading.Thread(
            target=lambda: streamed.append(self._stream(key, tail)), name="s3-upload", daemon=True
        )
        uploader.start()
        try:
            try:
                yield temp
            except OSError as exc:  # staging on the local disk (the pod's /tmp) failed
                raise StoreError(
                    f"cannot stage {self.url(key)} in {temp.parent}: {exc.strerror or exc}"
                ) from None
            tail.finish()
            uploader.join()
            if streamed != [None]:
                self._call(
                    "write",
                    key,
                    lambda: self.client.fput_object(self.bucket, self._name(key), str(temp)),
                )
        finally:
            tail.abandon()  # a writer that failed: the stream's upload is aborted, not completed
            uploader.join()
            tail.close()
            discard(temp)

    def _stream(self, key: str, tail: GrowingFile) -> BaseException | None:
        try:
            self.client.put_object(
                self.bucket,
                self._name(key),
                cast(BinaryIO, tail),
                length=-1,
                part_size=STREAM_PART,
                num_parallel_uploads=1,  # no worker pool: an abandoned stream leaves no thread
            )
        except BaseException as exc:  # any failure: the finished file is uploaded instead
            return exc
        return None

    def put_bytes(self, key: str, data: bytes) -> None:
        self._call(
            "write",
            key,
            lambda: self.client.put_object(
                self.bucket, self._name(key), io.BytesIO(data), len(data)
            ),
        )

    def get_bytes(self, key: str) -> bytes:
        return self._call("read", key, lambda: self._read_range(key, 0, 0, None))

    def _read_range(self, key: str, offset: int, length: int, version: str | None) -> bytes:
        response = self.client.get_object(
            self.bucket,
            self._name(key),
            offset=offset,
            length=length,
            request_headers=None if version is None else {"If-Match": version},
        )
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def _stat(self, key: str) -> tuple[int, str]:
        stat = self._call(
            "stat", key, lambda: self.client.stat_object(self.bucket, self._name(key))
        )
        return int(stat.size or 0), str(stat.etag)

    def size(self, key: str) -> int:
        return self._stat(key)[0]

    def open_read(self, key: str, version: str | None = None) -> BinaryIO:
        """Every read of the handle is of the version it was opened at (If-Match its
        ETag): an object replaced meanwhile fails the read rather than mix two versions."""
        size, etag = self._stat(key)
        if version is not None and etag != version:
            raise StoreError(
                f"{self.url(key)} changed since it was read (ETag {etag}, was {version})"
            )
        return _PinnedReader(_RangeReader(self, key, size, etag), buffer_size=READ_BUFFER)

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except ObjectNotFoundError:
            return False
        return True

    def remove(self, key: str) -> None:
        self._call("remove", key, lambda: self.client.remove_object(self.bucket, self._name(key)))

    def probe(self) -> None:
        """A listing: HEAD responses carry no error code, so a missing bucket or bad keys
        would read as "no such object"."""
        self.list(".ttg-probe")

    def remove_stale_temps(self, prefix: str) -> int:
        """Staging files of dead local writers, and compose tails (hidden objects named
        like a folder store's temp files) of any writer not alive on this host. Only
        reduce writes tails, one reduce per run at a time (on a cluster, a retry runs on
        another pod): a tail removed from under a live reduce fails its compose, whole."""
        removed = 0
        for key in self._keys(prefix):
            match = TEMP_RE.match(key.rsplit("/", 1)[-1])
            if match and not writer_alive_here(match["host"], int(match["pid"])):
                self.remove(key)
                removed += 1
        return removed + remove_stale_staging()

    def _keys(self, prefix: str) -> list[str]:
        full = f"{self._name(prefix).rstrip('/')}/".lstrip("/")  # "": all of a root store
        strip = len(self.prefix) + 1 if self.prefix else 0
        objects = self._call(
            "list",
            prefix,
            lambda: list(self.client.list_objects(self.bucket, prefix=full, recursive=True)),
        )
        return sorted(str(o.object_name)[strip:] for o in objects)

    def list(self, prefix: str) -> list[str]:
        return [k for k in self._keys(prefix) if not k.rsplit("/", 1)[-1].startswith(".")]

    def compose_problem(self, sizes: Sequence[int]) -> str | None:
        """S3's part rules, as minio-py's compose_object applies them: a source over
        MAX_PART_SIZE becomes parts of that size and its remainder, and every part but
        the very last is at least MIN_PART_SIZE."""
        parts = 0
        for index, size in enumerate(sizes):
            pieces = [MAX_PART_SIZE] * (size // MAX_PART_SIZE) + [size % MAX_PART_SIZE]
            pieces = [p for p in pieces if p] or [0]
            last = index == len(sizes) - 1
            small = [p for p in (pieces if not last else pieces[:-1]) if p < MIN_PART_SIZE]
            if small:
                return (
                    f"source {index} ({size:,} bytes) would make a part of {small[0]:,} bytes,"
                    f" under S3's {MIN_PART_SIZE >> 20} MiB minimum part size"
                )
            parts += len(pieces)
        if parts > MAX_MULTIPART_COUNT:
            return f"{parts:,} parts, over S3's {MAX_MULTIPART_COUNT:,}"
        if sum(sizes) > MAX_MULTIPART_OBJECT_SIZE:
            return f"{sum(sizes):,} bytes, over S3's largest object"
        return None

    def compose(self, key: str, ranges: Sequence[ByteRange], tail: bytes) -> None:
        """One multipart upload whose parts are copies of `ranges` (UploadPartCopy, each
        pinned to its version) and, last, of `tail` (if any), uploaded first as a hidden
        object. The object appears whole when the upload completes, or not at all."""
        problem = self.compose_problem([r.length for r in ranges] + ([len(tail)] if tail else []))
        if problem:
            raise StoreError(f"cannot compose {self.url(key)}: {problem}")
        sources = [
            ComposeSource(
                self.bucket,
                self._name(r.key),
                offset=r.offset,
                length=r.length,
                match_etag=r.version,
            )
            for r in ranges
        ]
        tail_key = hidden_temp_key(key)
        if tail:
            self.put_bytes(tail_key, tail)
            sources.append(ComposeSource(self.bucket, self._name(tail_key)))
        try:
            self._call(
                "compose",
                key,
                lambda: self.client.compose_object(self.bucket, self._name(key), sources),
            )
        except ObjectNotFoundError:  # NoSuchKey names a source, not the object composed
            raise StoreError(
                f"cannot compose {self.url(key)}: one of the objects it copies from"
                " no longer exists"
            ) from None
        finally:
            if tail:
                with contextlib.suppress(StoreError):
                    self.remove(tail_key)


class _PinnedReader(io.BufferedReader):
    """A buffered reader that says which version of the object it reads."""

    @property
    def version(self) -> str:
        return str(self.raw.etag)  # type: ignore[attr-defined]


class _RangeReader(io.RawIOBase):
    """Random access to one S3 object by ranged GETs, each retried like any other call."""

    def __init__(self, store: S3Store, key: str, size: int, etag: str) -> None:
        self.store, self.key, self.size, self.pos, self.etag = store, key, size, 0, etag

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
            "read", self.key, lambda: self.store._read_range(self.key, start, length, self.etag)
        )
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)
