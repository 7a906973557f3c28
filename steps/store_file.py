"""A folder as a store: a write goes to a hidden temp file, fsynced, renamed into place."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from steps.store_base import (
    TEMP_RE,
    ObjectNotFoundError,
    Store,
    StoreError,
    discard,
    remove_stale_staging,
    temp_tag,
    writer_died,
)

__all__ = ["FileStore"]


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
    def atomic_writer(self, key: str, durable: bool = True) -> Iterator[Path]:
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {target.parent}: {exc.strerror}") from None
        temp = target.with_name(f".{target.name}.{temp_tag()}.tmp")
        try:
            yield temp
            if durable:
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
        """Keys below `prefix`. A folder removed while it is walked (another process deleting
        a run) is skipped, as an S3 listing would no longer show it."""
        base = self._path(prefix)
        if not base.is_dir():
            return []
        keys = []
        for folder, _, files in os.walk(base):  # errors (a vanished folder) are ignored
            for name in files:
                if not name.startswith("."):
                    keys.append((Path(folder) / name).relative_to(self.root).as_posix())
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
