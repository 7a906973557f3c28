"""`spec.json`: the record that claims a run folder for one spec.

The first compute task of a run writes it; every later task, `run --resume` and `results`
read it back to check that they are working on the same spec. It is read from a store, so it
is untrusted input: whatever is there (damaged, truncated, not JSON, not UTF-8, wrongly
typed) is reported as one line naming the file, never followed blindly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from steps import layout
from steps.fingerprint import CodeFingerprint
from steps.spec import Spec
from steps.store import ObjectNotFoundError, Store

__all__ = ["RunMismatchError", "RunRecord", "RunRecordError", "claim_run", "read_run_record"]

_HASH = re.compile(r"[0-9a-f]{64}")


class RunMismatchError(Exception):
    """The run folder already holds another spec's work: never mix two specs' shards."""


class RunRecordError(RunMismatchError):
    """A `spec.json` that is not a run record TTG wrote."""


@dataclass(frozen=True)
class RunRecord:
    spec_hash: str
    started_at: str | None
    spec: Any  # the canonical spec as a document; `steps.spec.parse_spec` validates it
    code_fingerprint: str | None = None  # the claiming task's code digest, if recorded


def timestamp() -> str:
    """Now, as every TTG record spells it: UTC, to the millisecond (the same precision at
    both ends of a run, so a short run never ends before it started)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def read_run_record(store: Store, key: str) -> RunRecord:
    """ObjectNotFoundError if there is none; RunRecordError if it is not a record."""
    data = store.get_bytes(key)
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
        raise RunRecordError(f"{store.url(key)} is not valid JSON ({str(exc)[:120]})") from None
    if not isinstance(document, dict):
        raise RunRecordError(f"{store.url(key)} is not a JSON object")
    spec_hash, started = document.get("spec_hash"), document.get("started_at")
    if not isinstance(spec_hash, str) or not _HASH.fullmatch(spec_hash):
        raise RunRecordError(f"{store.url(key)} has no spec_hash (a sha256 in hex)")
    if started is not None and not isinstance(started, str):
        raise RunRecordError(f"{store.url(key)} has a started_at that is not text")
    code = document.get("code_fingerprint")
    if code is not None and not (isinstance(code, str) and _HASH.fullmatch(code)):
        code = None  # a record of another shape still names its spec; its code is unknown
    return RunRecord(spec_hash, started, document.get("spec"), code)


def claim_run(store: Store, spec: Spec, run_id: str, code: CodeFingerprint) -> None:
    """Write `spec.json` for a new run, or check that an existing run is this spec's.

    It records the code of the task that claimed the run; each shard records its own, and
    reduce requires them all to agree (summary.json then holds that one)."""
    key = layout.spec_key(spec.name, run_id)
    try:
        existing = read_run_record(store, key)
    except ObjectNotFoundError:
        document = {
            "spec_hash": spec.hash,
            "run_id": run_id,
            "started_at": timestamp(),
            "spec": spec.canonical(),
            "code_fingerprint": code.digest,
            "code": code.parts,
        }
        store.put_bytes(key, json.dumps(document, indent=2).encode())
        return
    except RunRecordError as exc:
        raise RunRecordError(f"{exc}; refusing to write into this run") from None
    if existing.spec_hash != spec.hash:
        raise RunMismatchError(
            f"run '{run_id}' in {store.uri} was started with spec hash "
            f"{existing.spec_hash[:12]}, this spec hashes to {spec.hash[:12]}: "
            "use a new run id instead of mixing shards of two specs"
        )
