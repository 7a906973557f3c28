"""Reduce on S3 composes the result server-side, and it is the streamed result byte for byte.

Every test talks HTTP to the real MinIO server of tests/conftest.py. Shards of at least
S3's 5 MiB part minimum are composed (UploadPartCopy); smaller ones stream, and
`summary.json` says which way each run merged and why.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import steps.reduce as reduce_module
from steps.compose import ComposePlan, plan
from steps.compute import compute_shard
from steps.layout import result_key, shard_key, success_key, summary_key
from steps.merge import result_metadata
from steps.reduce import ShardError, reduce_run, verify_shards
from steps.shards import UNSEALED, seal_footer
from steps.spec import Spec, parse_spec
from steps.store import Store, StoreError, open_store
from steps.store_s3 import S3Store
from tests.conftest import S3Server

# 3 shards of 1,050,000 rows, ~9.8 MB each: over S3's 5 MiB part minimum, and four row
# groups of 2^18 rows or more each, so cut on row-group boundaries (steps/space.py)
BIG = {
    "name": "big",
    "function": "steps.kernels:rosenbrock",
    "shards": 3,
    "chunk_rows": 262144,
    "space": {"x": {"linspace": [-2.0, 2.0, 2000]}, "y": {"linspace": [-1.0, 3.0, 1575]}},
    "objective": {"column": "f", "goal": "min", "top_k": 5},
}


def computed(store: Store, spec: Spec, run_id: str) -> None:
    for index in range(spec.shards):
        compute_shard(spec, store, run_id, index)


def result_bytes(store: Store, spec: Spec, run_id: str) -> bytes:
    return store.get_bytes(result_key(spec.name, run_id))


def merge_of(store: Store, spec: Spec, run_id: str) -> dict:
    return dict(json.loads(store.get_bytes(summary_key(spec.name, run_id)))["merge"])


@pytest.fixture
def s3_store(s3_env: S3Server) -> S3Store:
    store = open_store(f"s3://{s3_env.new_bucket()}/runs")
    assert isinstance(store, S3Store)
    return store


def test_big_shards_are_composed_server_side_into_the_streamed_bytes(
    s3_store: Store, tmp_path: Path
) -> None:
    spec = parse_spec(BIG)
    computed(s3_store, spec, "r")
    outcome = reduce_run(s3_store, spec, "r")
    merge = merge_of(s3_store, spec, "r")
    assert merge["mode"] == "compose" and merge["sources"] == spec.shards + 1
    assert merge["bytes_written"] < 64 * 1024  # the footer only: the store copied the rest

    folder = open_store(str(tmp_path / "runs"))
    computed(folder, spec, "r")
    assert reduce_run(folder, spec, "r").rows == outcome.rows == 2000 * 1575
    assert merge_of(folder, spec, "r") == {
        "mode": "stream",
        "reason": "a folder store has no server-side copy",
        "bytes_written": len(result_bytes(folder, spec, "r")),
    }
    assert result_bytes(s3_store, spec, "r") == result_bytes(folder, spec, "r")


def test_small_shards_stream_and_say_why(s3_store: Store) -> None:
    small = {"x": {"linspace": [-2.0, 2.0, 300]}, "y": {"linspace": [-1.0, 3.0, 300]}}
    spec = parse_spec(BIG | {"space": small, "shards": 1})  # one whole row group, 0.8 MB
    computed(s3_store, spec, "r")
    reduce_run(s3_store, spec, "r")
    merge = merge_of(s3_store, spec, "r")
    assert merge["mode"] == "stream"
    assert "under S3's 5 MiB minimum part size" in merge["reason"]


@pytest.mark.parametrize(
    "change,reason",
    [
        ({"keep": {"top_k": 10}}, "a kept subset is re-encoded"),
        ({"shards": 50}, "is not whole row groups of the result"),  # shards cut inside groups
    ],
)
def test_what_cannot_be_composed_streams(s3_store: Store, change: dict, reason: str) -> None:
    spec = parse_spec(BIG | change)
    computed(s3_store, spec, "r")
    infos = verify_shards(s3_store, spec, "r")
    composition = plan(s3_store, spec, "r", infos, infos[0].schema)
    assert isinstance(composition, str) and reason in composition


def test_a_shard_replaced_after_its_footer_was_verified_is_never_composed(
    s3_store: S3Store,
) -> None:
    spec = parse_spec(BIG)
    computed(s3_store, spec, "r")
    infos = verify_shards(s3_store, spec, "r")
    schema = infos[0].schema.with_metadata(result_metadata(spec, infos))
    composition = plan(s3_store, spec, "r", infos, schema)
    assert isinstance(composition, ComposePlan)
    # a late writer (a zombie attempt, a hand edit) replaces shard 1 with other bytes
    key = shard_key(spec.name, "r", 1, spec.shards)
    s3_store.put_bytes(key, s3_store.get_bytes(key) + b"\0")
    with pytest.raises(StoreError, match="PreconditionFailed"):
        s3_store.compose(result_key(spec.name, "r"), composition.ranges, composition.footer)
    assert not s3_store.exists(result_key(spec.name, "r"))
    assert hidden_objects(s3_store) == [], "the uploaded footer is removed too"


@pytest.mark.parametrize("where", ["this host", "another pod"])
def test_a_footer_left_by_a_reduce_that_died_is_removed_by_the_next(
    s3_store: S3Store, where: str
) -> None:
    spec = parse_spec(BIG)
    computed(s3_store, spec, "r")
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:64]
    host = host if where == "this host" else "rosenbrock_x7k2p_reduce"  # a retry's new pod
    left = f"big/r/.result.parquet.ttg-{host}-{dead.pid}-{'0' * 12}.tmp"
    s3_store.put_bytes(left, b"a footer")
    reduce_run(s3_store, spec, "r")
    assert not s3_store.exists(left)


GIB, MIB = 1 << 30, 1 << 20


@pytest.mark.parametrize(
    "sizes,problem",
    [
        ([6 * MIB, 6 * MIB, 100], None),
        ([4 * MIB, 6 * MIB, 100], "under S3's 5 MiB minimum part size"),
        ([6 * MIB, 100], None),  # only the last part may be small
        ([5 * GIB, 100], None),  # one part of the largest size
        ([5 * GIB + MIB, 100], "would make a part of 1,048,576 bytes"),  # split: 5 GiB + 1 MiB
        ([5 * GIB + 6 * MIB, 100], None),
        ([6 * MIB] * 10_000 + [100], "10,001 parts, over S3's 10,000"),
    ],
)
def test_s3s_part_rules_decide_between_compose_and_stream(
    s3_store: S3Store, sizes: list[int], problem: str | None
) -> None:
    found = s3_store.compose_problem(sizes)
    assert found is None if problem is None else (found is not None and problem in found)


def forge_best_value(path: Path) -> None:
    """Change one digit of the shard's best objective value in its sealed footer, same
    length, and seal it again as compute would: a forger who knows the seal."""
    blob = bytearray(path.read_bytes())
    seal = pq.read_metadata(path).metadata[b"ttg.footer_sha256"]
    at = blob.index(b'"f":', blob.index(b'"top"')) + len(b'"f":')
    while not chr(blob[at]).isdigit():
        at += 1
    blob[at] = ord("7") if blob[at] != ord("7") else ord("8")
    seal_at = blob.rindex(seal)
    blob[seal_at : seal_at + len(seal)] = UNSEALED.encode()
    path.write_bytes(bytes(blob))
    seal_footer(path)


def test_a_re_reduce_that_fails_its_checks_keeps_the_published_result(
    s3_store: S3Store, tmp_path: Path
) -> None:
    spec = parse_spec(BIG)
    computed(s3_store, spec, "r")
    reduce_run(s3_store, spec, "r")
    published = result_bytes(s3_store, spec, "r")
    best = shard_key(spec.name, "r", 2, spec.shards)  # the shard holding the minimum
    local = tmp_path / "shard.parquet"
    local.write_bytes(s3_store.get_bytes(best))
    forge_best_value(local)
    s3_store.put_bytes(best, local.read_bytes())
    with pytest.raises(ShardError, match="names best row"):
        reduce_run(s3_store, spec, "r")
    assert result_bytes(s3_store, spec, "r") == published
    assert s3_store.exists(success_key(spec.name, "r"))
    assert hidden_objects(s3_store) == [], "the checked copy is removed"


def test_a_re_reduce_that_succeeds_replaces_the_result_in_place(s3_store: S3Store) -> None:
    spec = parse_spec(BIG)
    computed(s3_store, spec, "r")
    reduce_run(s3_store, spec, "r")
    first = result_bytes(s3_store, spec, "r")
    reduce_run(s3_store, spec, "r")
    assert merge_of(s3_store, spec, "r")["mode"] == "compose"
    assert result_bytes(s3_store, spec, "r") == first and hidden_objects(s3_store) == []


def test_a_shard_replaced_during_a_streamed_merge_fails_the_reduce(
    s3_store: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stream mode reads every shard at the version whose footer was verified, too."""
    spec = parse_spec(BIG | {"shards": 50})  # cut inside row groups: streamed
    computed(s3_store, spec, "r")
    wider = {"x": {"linspace": [-3.0, 3.0, 2000]}, "y": {"linspace": [-1.0, 3.0, 1575]}}
    other = parse_spec(BIG | {"shards": 50, "space": wider})
    verify = reduce_module.verify_shards

    def verify_then_replace(store: Store, spec: Spec, run_id: str) -> list:
        infos = verify(store, spec, run_id)
        compute_shard(other, store, "x", 1)  # rows of another function, same shape
        key = shard_key(spec.name, run_id, 1, spec.shards)
        store.put_bytes(key, store.get_bytes(shard_key(other.name, "x", 1, spec.shards)))
        return infos

    monkeypatch.setattr(reduce_module, "verify_shards", verify_then_replace)
    with pytest.raises(StoreError, match="changed since it was read"):
        reduce_run(s3_store, spec, "r")
    assert not s3_store.exists(result_key(spec.name, "r"))


def hidden_objects(store: S3Store) -> list[str]:
    objects = store.client.list_objects(store.bucket, prefix="runs/", recursive=True)
    return [str(o.object_name) for o in objects if "/." in str(o.object_name)]
