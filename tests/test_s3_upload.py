"""An S3 write is uploaded while its file is written, and still appears whole or not at all.

Against the real MinIO server of tests/conftest.py: the object is what the file holds when
the writer is done, whatever the writer did on the way, and a writer that fails leaves
no object and no unfinished multipart upload behind.
"""

from __future__ import annotations

import os
import time

import pytest

from steps.compute import compute_shard
from steps.layout import shard_key
from steps.spec import parse_spec
from steps.store import StoreError, open_store
from steps.store_s3 import S3Store
from steps.store_s3_stream import STREAM_PART
from tests.conftest import S3Server
from tests.test_compose import BIG


@pytest.fixture
def store(s3_env: S3Server) -> S3Store:
    opened = open_store(f"s3://{s3_env.new_bucket()}/runs")
    assert isinstance(opened, S3Store)
    return opened


def unfinished_uploads(store: S3Store) -> list[str]:
    found = store.client._list_multipart_uploads(store.bucket)  # no public call lists them
    return [upload.object_name for upload in found.uploads]


def test_a_file_written_over_several_parts_is_the_object(store: S3Store) -> None:
    blocks = [os.urandom(STREAM_PART // 2) for _ in range(5)]  # 2.5 parts, written slowly
    with store.atomic_writer("a/file") as path, path.open("wb") as out:
        for block in blocks:
            out.write(block)
            out.flush()
            time.sleep(0.02)
    assert store.get_bytes("a/file") == b"".join(blocks)


def test_a_writer_that_goes_back_and_rewrites_still_gives_the_file(store: S3Store) -> None:
    first = os.urandom(STREAM_PART + 1000)
    with store.atomic_writer("a/file") as path, path.open("wb") as out:
        out.write(first)
        out.flush()
        time.sleep(0.2)  # the first part is on its way
        out.seek(10)
        out.write(b"REWRITTEN")
    assert store.get_bytes("a/file") == first[:10] + b"REWRITTEN" + first[19:]


def test_a_writer_that_fails_leaves_no_object_and_no_upload(store: S3Store) -> None:
    with pytest.raises(RuntimeError), store.atomic_writer("a/file") as path:
        with path.open("wb") as out:
            out.write(os.urandom(3 * STREAM_PART))
            out.flush()
            time.sleep(0.3)  # parts are uploaded
        raise RuntimeError("the writer failed")
    assert not store.exists("a/file")
    assert unfinished_uploads(store) == []


def test_a_file_replaced_by_its_writer_is_uploaded_as_it_ends(store: S3Store) -> None:
    with store.atomic_writer("a/file") as path:
        path.write_bytes(b"old")
        time.sleep(0.05)
        replacement = path.with_name(path.name + ".new")
        replacement.write_bytes(b"new contents")
        replacement.replace(path)  # another inode: what was streamed is not the file
    assert store.get_bytes("a/file") == b"new contents"


def test_a_stream_and_its_fallback_that_both_fail_say_so_in_one_line(
    s3_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    bad = open_store(f"s3://{s3_env.new_bucket()}/runs")
    with (
        pytest.raises(StoreError, match="SignatureDoesNotMatch"),
        bad.atomic_writer("a/file") as path,
    ):
        path.write_bytes(b"data")


def test_a_computed_shard_crosses_the_wire_once(s3_env: S3Server, store: S3Store) -> None:
    """Its footer, sealed in place after the writer closed it, is held back until then: the
    stream is never thrown away for a whole-file upload."""
    spec = parse_spec(BIG)
    received, _ = s3_env.traffic()
    compute_shard(spec, store, "r", 0)
    sent = s3_env.traffic()[0] - received
    size = store.size(shard_key(spec.name, "r", 0, spec.shards))
    assert size < sent < 1.05 * size
