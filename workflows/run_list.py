"""The runs a store holds, for `list` and `delete`: each run's state, size and timing.

A store is `<name>/<run_id>/...` (DESIGN.md). One listing of the store finds every run; each
run's `spec.json` says when it started and with which code, `_SUCCESS` that it is complete
(then `summary.json` gives its rows and end), `failed.json` that its last local `run` failed.
Everything read here is untrusted: a record that cannot be read leaves its field empty and
never stops the listing.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal

from steps import layout
from steps.run_record import RunRecordError, read_run_record, timestamp
from steps.shards import check_pages
from steps.spec import SpecError, parse_spec
from steps.stages import total_shards
from steps.store import ObjectNotFoundError, Store, StoreError
from workflows.results import FinishedRun, ResultsError, RunRef, load_run

__all__ = [
    "FAILED_RECORD",
    "RunEntry",
    "clear_failed",
    "finished_run",
    "is_complete",
    "list_runs",
    "mark_failed",
    "run_objects",
]

State = Literal["complete", "incomplete", "failed"]
FAILED_RECORD = "failed.json"  # beside spec.json: the last local `run` of this run failed


@dataclass(frozen=True)
class RunEntry:
    name: str
    run_id: str
    state: State
    rows: int | None  # a complete run's rows, from its summary
    shards: int | None  # how many the spec asks for
    shards_written: int
    started_at: str | None
    seconds: float | None  # start to end of reduce, for a complete run
    code: str | None  # the code fingerprint spec.json records, if any
    objects: int

    def document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "run_id": self.run_id,
            "state": self.state,
            "rows": self.rows,
            "shards": self.shards,
            "shards_written": self.shards_written,
            "started_at": self.started_at,
            "seconds": self.seconds,
            "code_fingerprint": self.code,
            "objects": self.objects,
        }


def run_objects(store: Store, name: str, run_id: str) -> list[str]:
    """Every key of one run, `_SUCCESS` first and `spec.json` last: deleting in this order
    never leaves a run that looks complete, nor shards without the record that claims them."""
    keys = store.list(layout.run_prefix(name, run_id) + "/")
    first, last = layout.success_key(name, run_id), layout.spec_key(name, run_id)
    return sorted(keys, key=lambda key: (key != first, key == last, key))


def list_runs(store: Store) -> list[RunEntry]:
    """Every run in the store, newest first (runs with no start time last)."""
    by_run: dict[tuple[str, str], list[str]] = defaultdict(list)
    for key in store.list(""):
        parts = key.split("/")
        if len(parts) >= 3 and layout.RUN_ID_RE.fullmatch(parts[1]):
            by_run[(parts[0], parts[1])].append(key)
    found = [_entry(store, name, run_id, keys) for (name, run_id), keys in by_run.items()]
    entries = [entry for entry in found if entry is not None]
    return sorted(
        entries, key=lambda e: (e.started_at is not None, e.started_at or ""), reverse=True
    )


def _entry(store: Store, name: str, run_id: str, keys: list[str]) -> RunEntry | None:
    prefix = layout.run_prefix(name, run_id)
    names = {key.removeprefix(prefix + "/") for key in keys}
    if "spec.json" not in names and "_SUCCESS" not in names:
        return None  # not a TTG run folder
    finished = finished_run(RunRef(store, name, run_id)) if "_SUCCESS" in names else None
    rows = seconds = None
    state: State = "failed" if FAILED_RECORD in names else "incomplete"
    if finished is None:
        started, shards, code = _record(store, name, run_id)
    else:  # load_run has read spec.json already: no second read of it
        state, rows, seconds = "complete", finished.rows, finished.seconds
        started, shards = finished.started_at, total_shards(finished.spec)
        # the code of the result, resumed or not; an older TTG's run records none
        code = finished.code.digest[:12] if finished.code is not None else None
    return RunEntry(
        name=name,
        run_id=run_id,
        state=state,
        rows=rows,
        shards=shards,
        shards_written=sum(1 for n in names if n.startswith("shards/") and n.endswith(".parquet")),
        started_at=started,
        seconds=seconds,
        code=code,
        objects=len(keys),
    )


def finished_run(ref: RunRef, pages: bool = False) -> FinishedRun | None:
    """The run, if it is complete: `_SUCCESS`, records that hold up and a result that holds
    the rows its summary keeps (`load_run`); with `pages`, every page of the result also
    matches its checksum (a read of the whole result: for what would destroy the shards, or
    declare a resume needless). Else None: resuming rebuilds the result from the shards."""
    try:
        finished = load_run(ref)
        if pages:
            with ref.store.open_read(finished.result_key) as handle:
                check_pages(handle)
    except (ResultsError, StoreError, OSError, ValueError):
        return None
    return finished


def is_complete(ref: RunRef) -> bool:
    """Complete down to every page's checksum (see `finished_run`)."""
    return finished_run(ref, pages=True) is not None


def _record(store: Store, name: str, run_id: str) -> tuple[str | None, int | None, str | None]:
    """Start time, shard count and code fingerprint from spec.json, as far as it is readable."""
    try:
        record = read_run_record(store, layout.spec_key(name, run_id))
    except (ObjectNotFoundError, RunRecordError, StoreError):
        return None, None, None
    try:  # every stage's shards: a refined run has more than `shards`
        shards: int | None = total_shards(parse_spec(record.spec))
    except SpecError:
        shards = None
    code = record.code_fingerprint
    return record.started_at, shards, code[:12] if code else None


def mark_failed(store: Store, name: str, run_id: str, reason: str) -> str | None:
    """Record that a local run failed, so `list` can tell it from one still running. Best
    effort: the store may be what failed; the problem is returned, never raised."""
    document = {"run_id": run_id, "failed_at": timestamp(), "reason": reason[:500]}
    try:
        store.put_bytes(_failed_key(name, run_id), json.dumps(document).encode())
    except StoreError as exc:
        return str(exc)
    return None


def clear_failed(store: Store, name: str, run_id: str) -> None:
    """A run resumed is running again; its last failure is history."""
    key = _failed_key(name, run_id)
    if store.exists(key):
        store.remove(key)


def _failed_key(name: str, run_id: str) -> str:
    return f"{layout.run_prefix(name, run_id)}/{FAILED_RECORD}"
