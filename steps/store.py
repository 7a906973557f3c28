"""File and S3 stores behind one small interface, with atomic writes.

A store is a URI: a folder (`runs`, `/abs/path`, `file:///abs/path`) or `s3://bucket/prefix`.
Keys are `/`-separated paths below it. Writers never expose half an object: a folder write
goes to a hidden temp file renamed into place; an S3 write is one PUT or one completed
multipart upload, completed only once the local file is finished. S3 settings come from the same environment
variables DuckDB, Polars and pyarrow read (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, ...).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlsplit

from steps.store_base import (
    ByteRange,
    ObjectNotFoundError,
    Store,
    StoreError,
    UnsupportedError,
    hidden_temp_key,
)
from steps.store_file import FileStore

__all__ = [
    "ByteRange",
    "FileStore",
    "ObjectNotFoundError",
    "Store",
    "StoreError",
    "UnsupportedError",
    "file_uri_path",
    "hidden_temp_key",
    "open_store",
]


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
