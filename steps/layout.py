"""Where each object of a run lives in a store: `<name>/<run_id>/...` (DESIGN.md)."""

from __future__ import annotations

import re

__all__ = [
    "RUN_ID_RE",
    "result_key",
    "run_prefix",
    "shard_key",
    "shards_prefix",
    "spec_key",
    "success_key",
    "summary_key",
]

# \A...\Z, not ^...$: `$` also matches before a trailing newline, and callers use `.match`.
RUN_ID_RE = re.compile(r"\A[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")


def run_prefix(name: str, run_id: str) -> str:
    return f"{name}/{run_id}"


def spec_key(name: str, run_id: str) -> str:
    return f"{run_prefix(name, run_id)}/spec.json"


def shards_prefix(name: str, run_id: str) -> str:
    return f"{run_prefix(name, run_id)}/shards"


def shard_key(name: str, run_id: str, index: int, count: int) -> str:
    return f"{shards_prefix(name, run_id)}/shard-{index:05d}-of-{count:05d}.parquet"


def result_key(name: str, run_id: str) -> str:
    return f"{run_prefix(name, run_id)}/result.parquet"


def summary_key(name: str, run_id: str) -> str:
    return f"{run_prefix(name, run_id)}/summary.json"


def success_key(name: str, run_id: str) -> str:
    return f"{run_prefix(name, run_id)}/_SUCCESS"
