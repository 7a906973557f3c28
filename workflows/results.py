"""Reading a finished run: find it from what a user types, then load its summary and spec.

A user names a run the way they last saw it: the folder `run` printed, a `file://` or
`s3://` URI `<store>/<name>/<run_id>`, or just the run id, looked up in the default local
store. Whatever the form, it resolves to a store plus `(name, run_id)`, so everything below
reads through the same `Store` interface as compute and reduce, locally or on S3. Only a
run with `_SUCCESS` counts: anything else may be half written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from steps import layout
from steps.fingerprint import CodeFingerprint
from steps.run_record import RunRecordError, read_run_record
from steps.spec import NAME_RE, Spec, SpecError, parse_spec
from steps.store import FileStore, ObjectNotFoundError, Store, file_uri_path, open_store

__all__ = [
    "FinishedRun",
    "ResultsError",
    "RunRef",
    "find_run",
    "find_run_in",
    "load_run",
    "open_run",
    "summary_problem",
    "top_rows",
]

# Objects a user may point at instead of their run folder.
_RUN_FILES = frozenset({"spec.json", "summary.json", "result.parquet", "_SUCCESS"})


class ResultsError(Exception):
    """A run that cannot be found or read as asked (one line, exit 2)."""


@dataclass(frozen=True)
class RunRef:
    """Where a run lives: a store and the `<name>/<run_id>` below it."""

    store: Store
    name: str
    run_id: str

    def key(self, of: Callable[[str, str], str]) -> str:
        """A key of this run, from one of `steps.layout`'s functions."""
        return of(self.name, self.run_id)

    @property
    def url(self) -> str:
        return self.store.url(layout.run_prefix(self.name, self.run_id))


@dataclass(frozen=True)
class FinishedRun:
    """A complete run: its summary.json and the spec it ran with."""

    ref: RunRef
    summary: dict[str, Any]
    spec: Spec
    started_at: str | None

    @property
    def result_key(self) -> str:
        return self.ref.key(layout.result_key)

    @property
    def result_url(self) -> str:
        return self.ref.store.url(self.result_key)

    @property
    def rows(self) -> int:
        return int(self.summary.get("rows", 0))

    @property
    def best_rows(self) -> list[dict[str, Any]]:
        """The stored top-k rows by the objective, best first (empty without an objective)."""
        objective = self.summary.get("objective") or {}
        return list(objective.get("best") or [])

    @property
    def code(self) -> CodeFingerprint | None:
        """The code fingerprint the run's shards share; None for a run of an older TTG."""
        recorded = self.summary.get("code")
        return None if recorded is None else CodeFingerprint(dict(recorded["parts"]))

    @property
    def seconds(self) -> float | None:
        """Wall time from the run's start (spec.json) to the end of its reduce (summary.json)."""
        try:
            start = datetime.fromisoformat(str(self.started_at))
            end = datetime.fromisoformat(str(self.summary["finished_at"]))
        except (KeyError, TypeError, ValueError):
            return None
        if (start.tzinfo is None) != (end.tzinfo is None):
            return None
        seconds = (end - start).total_seconds()
        # Start and end are stamped by different pods: clocks that disagree are no duration.
        return seconds if seconds >= 0 else None


def find_run_in(reference: str, store_uri: str) -> RunRef:
    """Like `find_run`, but a bare run id is looked up in `store_uri` only, never taken for a
    folder of the current directory, nor followed through a symlink out of the store; and
    whatever it resolves to must be a TTG run folder (a valid name and run id, and a run
    record of TTG's for that sweep). What `delete` acts on."""
    text = reference.strip()
    if "/" not in text and layout.RUN_ID_RE.fullmatch(text):
        store = open_store(store_uri)
        if isinstance(store, FileStore):
            if any(p.is_symlink() for p in store.root.glob(f"*/{text}")):
                raise ResultsError(f"run {text} in {store_uri} is a symlink: give its own folder")
            ref = _from_run_id(text, store.root)
        else:
            ref = _from_run_id_in(store, text)
    else:
        ref = find_run(text, store_uri)
    if not (NAME_RE.fullmatch(ref.name) and layout.RUN_ID_RE.fullmatch(ref.run_id)):
        raise ResultsError(f"{reference} is not a run folder (<store>/<name>/<run_id>/)")
    if not _is_ttg_run(ref):
        raise ResultsError(
            f"{ref.url} is not a TTG run: no spec.json of TTG's for sweep '{ref.name}' in it"
        )
    return ref


def _is_ttg_run(ref: RunRef) -> bool:
    """A run record TTG wrote for this very folder (a `_SUCCESS` alone is what Spark and
    Hadoop leave in every output folder too)."""
    try:
        record = read_run_record(ref.store, ref.key(layout.spec_key))
    except (ObjectNotFoundError, RunRecordError):
        return False
    return isinstance(record.spec, dict) and record.spec.get("name") == ref.name


def find_run(reference: str, default_store: str = "runs") -> RunRef:
    """Resolve a run folder, a `file://` / `s3://` run URI or a bare run id to a RunRef."""
    text = reference.strip()
    if not text:
        raise ResultsError("no run given: pass a run folder, a file:// or s3:// URI, or a run id")
    if text.startswith("s3://"):
        return _from_s3_uri(text)
    if urlsplit(text).scheme == "file":
        return _from_folder(file_uri_path(text), text)
    path = Path(text)
    if path.exists():
        return _from_folder(path, text)
    if "/" not in text and layout.RUN_ID_RE.fullmatch(text):
        if default_store.startswith("s3://"):
            return _from_run_id_in(open_store(default_store), text)
        return _from_run_id(text, Path(default_store))
    raise ResultsError(
        f"no run folder {text} (give a run folder, a file:// or s3:// URI, or a run id)"
    )


def _from_s3_uri(uri: str) -> RunRef:
    parts = urlsplit(uri)
    names = [p for p in parts.path.split("/") if p]
    if not parts.netloc or len(names) < 2:
        raise ResultsError(f"an S3 run URI is s3://bucket[/prefix]/<name>/<run_id>, got {uri}")
    prefix = "/".join(names[:-2])
    store = open_store(f"s3://{parts.netloc}/{prefix}".rstrip("/"))
    return RunRef(store, names[-2], names[-1])


def _from_folder(path: Path, given: str) -> RunRef:
    folder = path.resolve()  # `run/..` is the folder it names, not a run called ".."
    if folder.is_file() and folder.name in _RUN_FILES:
        folder = folder.parent
    if not folder.is_dir():
        raise ResultsError(f"{given} is not a run folder (expected <store>/<name>/<run_id>/)")
    if folder.parent == folder or folder.parent.parent == folder.parent:
        raise ResultsError(f"{given} is not a run folder (expected <store>/<name>/<run_id>/)")
    return RunRef(open_store(str(folder.parent.parent)), folder.parent.name, folder.name)


def _from_run_id(run_id: str, store_root: Path) -> RunRef:
    """The one `<store>/*/<run_id>` folder; none or several is an error naming where we looked."""
    matches = sorted(p for p in store_root.glob(f"*/{run_id}") if p.is_dir())
    if not matches:
        raise ResultsError(
            f"no run '{run_id}' in {store_root}/ (looked for {store_root}/*/{run_id}); "
            "give its folder or its file:// or s3:// URI"
        )
    if len(matches) > 1:
        names = ", ".join(str(m) for m in matches)
        raise ResultsError(f"run id '{run_id}' is ambiguous: {names}; give the folder")
    return _from_folder(matches[0], run_id)


def _from_run_id_in(store: Store, run_id: str) -> RunRef:
    """The one `<name>/<run_id>/` of an S3 store, found by listing it."""
    names = sorted({k.split("/")[0] for k in store.list("") if k.split("/")[1:2] == [run_id]})
    if not names:
        raise ResultsError(f"no run '{run_id}' in {store.uri}; give its s3:// run URI")
    if len(names) > 1:
        raise ResultsError(
            f"run id '{run_id}' is ambiguous in {store.uri} ({', '.join(names)}); give its URI"
        )
    return RunRef(store, names[0], run_id)


def load_run(ref: RunRef) -> FinishedRun:
    """Read a complete run's summary and spec; a run without `_SUCCESS` is refused."""
    store = ref.store
    if not store.exists(ref.key(layout.success_key)):
        if store.exists(ref.key(layout.spec_key)):
            raise ResultsError(
                f"run {ref.run_id} is not complete (no _SUCCESS in {ref.url}): still running, "
                f"failed or interrupted; `run SPEC --store {store.uri} --resume --run-id "
                f"{ref.run_id}` finishes it"
            )
        raise ResultsError(
            f"no TTG run at {ref.url} (a run folder is <store>/<name>/<run_id>/ "
            "with spec.json, result.parquet, summary.json and _SUCCESS)"
        )
    summary = _json_object(store, ref.key(layout.summary_key))
    problem = summary_problem(summary)
    if problem:
        raise ResultsError(f"{store.url(ref.key(layout.summary_key))}: {problem}")
    try:
        record = read_run_record(store, ref.key(layout.spec_key))
        spec = parse_spec(record.spec)
    except ObjectNotFoundError:
        raise ResultsError(f"{store.url(ref.key(layout.spec_key))} is missing") from None
    except RunRecordError as exc:
        raise ResultsError(str(exc)) from None
    except SpecError as exc:
        raise ResultsError(f"{store.url(ref.key(layout.spec_key))}: {exc}") from None
    if spec.hash != summary.get("spec_hash"):
        raise ResultsError(
            f"{ref.url}: spec.json and summary.json are of different specs (hashes "
            f"{spec.hash[:12]} and {str(summary.get('spec_hash'))[:12]})"
        )
    _check_result(ref, summary)
    return FinishedRun(ref, summary, spec, record.started_at)


def _check_result(ref: RunRef, summary: dict[str, Any]) -> None:
    """The result is there, its footer reads, and it holds the rows the summary says it
    keeps: a result lost or cut short is no finished run, whatever `_SUCCESS` says (and
    `run --resume` rebuilds it from the shards)."""
    import pyarrow.parquet as pq

    key = ref.key(layout.result_key)
    kept = summary.get("kept_rows", summary.get("rows"))
    try:
        with ref.store.open_read(key) as handle:
            rows = pq.read_metadata(handle).num_rows
    except ObjectNotFoundError:
        raise ResultsError(f"{ref.store.url(key)} is missing: `run --resume` rebuilds it") from None
    except (OSError, ValueError) as exc:
        raise ResultsError(
            f"{ref.store.url(key)} is not a readable Parquet file ({str(exc)[:120]}): "
            "`run --resume` rebuilds it"
        ) from None
    if rows != kept:
        raise ResultsError(
            f"{ref.store.url(key)} holds {rows:,} rows, the summary says {kept:,}: "
            "`run --resume` rebuilds it"
        )


def _json_object(store: Store, key: str) -> dict[str, Any]:
    try:
        document = json.loads(store.get_bytes(key))
    except ObjectNotFoundError:
        raise ResultsError(f"{store.url(key)} is missing from a run marked complete") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, and an
        # integer of over 4,300 digits (a plain ValueError from the int parser)
        raise ResultsError(f"{store.url(key)} is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(document, dict):
        raise ResultsError(f"{store.url(key)} is not a JSON object")
    return document


_SCALAR = (type(None), bool, int, float, str)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def summary_problem(summary: dict[str, Any]) -> str | None:
    """What is wrong with a summary.json, as far as anything that shows it relies on; None if
    nothing. It is read from a store, so it is untrusted input like any other file."""
    for field in ("rows", "shards"):
        if not _is_count(summary.get(field)):
            return f"field '{field}' is not a count"
    for field in ("columns", "timings", "versions"):
        if not isinstance(summary.get(field, {}), dict):
            return f"field '{field}' is not an object"
    for name, stats in summary.get("columns", {}).items():
        if not isinstance(stats, dict):
            return f"field 'columns.{name}' is not an object"
        for key in ("count", "nulls", "nans"):
            if not _is_count(stats.get(key, 0)):
                return f"field 'columns.{name}.{key}' is not a count"
        for key in ("min", "max", "mean"):
            if not isinstance(stats.get(key), _SCALAR):
                return f"field 'columns.{name}.{key}' is not a number, string or null"
    code = summary.get("code")
    if code is not None and not (
        isinstance(code, dict)
        and isinstance(code.get("parts"), dict)
        and all(isinstance(v, str) for v in code["parts"].values())
        and code.get("fingerprint") == CodeFingerprint(dict(code["parts"])).digest
    ):
        return "field 'code' is not a code fingerprint whose digest matches its parts"
    objective = summary.get("objective")
    if objective is None:
        return None
    if not isinstance(objective, dict) or not isinstance(objective.get("column"), str):
        return "field 'objective' is not an object naming a column"
    if objective.get("goal") not in ("min", "max"):
        return "field 'objective.goal' is not min or max"
    for key in ("nans", "nulls"):
        if not _is_count(objective.get(key, 0)):
            return f"field 'objective.{key}' is not a count"
    best = objective.get("best", [])
    rows_ok = isinstance(best, list) and all(
        isinstance(row, dict) and all(isinstance(v, _SCALAR) for v in row.values()) for row in best
    )
    return None if rows_ok else "field 'objective.best' is not a list of rows"


def open_run(reference: str, default_store: str = "runs") -> FinishedRun:
    """`find_run` then `load_run`: what `results` starts with."""
    return load_run(find_run(reference, default_store))


def top_rows(run: FinishedRun, limit: int) -> list[dict[str, Any]]:
    """At most `limit` best rows; fewer when the spec's top_k kept fewer."""
    return run.best_rows[:limit]
