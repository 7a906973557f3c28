"""Naming runs and finding them again in a store.

A run id is the Workflow's name: `<name>-` plus five random characters, as Argo's
`generateName` makes it. Resuming needs the id of an unfinished run; reusing a finished or
running run's id without `--resume` is refused, so nothing already written is mixed up.
"""

from __future__ import annotations

from dataclasses import dataclass

from steps import layout
from steps.fingerprint import CodeFingerprint, describe_difference
from steps.run_record import RunRecordError, read_run_record
from steps.shards import ShardInfo, read_shard_info
from steps.spec import Spec
from steps.stages import (
    Stage,
    StageError,
    next_centres,
    stage_summaries,
    stages_of,
    total_shards,
)
from steps.store import ObjectNotFoundError, Store, StoreError

__all__ = [
    "ResumePlan",
    "RunChoiceError",
    "choose_run_id",
    "latest_run",
    "resume_plan",
    "run_exists",
    "started_hash",
]


class RunChoiceError(ValueError):
    """The requested run id cannot be used as asked (one line, exit 2)."""


def run_exists(store: Store, spec: Spec, run_id: str) -> bool:
    """A run's first object is its spec.json (compute claims the run before any shard)."""
    return store.exists(layout.spec_key(spec.name, run_id))


def started_hash(store: Store, spec: Spec, run_id: str) -> str | None:
    """The spec hash a run was started with (its spec.json), if it has started."""
    try:
        return read_run_record(store, layout.spec_key(spec.name, run_id)).spec_hash
    except ObjectNotFoundError:
        return None
    except RunRecordError as exc:
        raise RunChoiceError(f"{exc}: start a new run instead") from None


def latest_run(store: Store, spec: Spec, finished: bool) -> str | None:
    """The most recently started run of this spec that has (`finished`) or has not yet a
    `_SUCCESS`; runs whose spec.json cannot be read are not candidates."""
    candidates: list[tuple[str, str]] = []
    keys = store.list(spec.name)
    complete = {k.split("/")[1] for k in keys if k.endswith("/_SUCCESS")}
    for key in keys:
        parts = key.split("/")
        if len(parts) == 3 and parts[2] == "spec.json" and (parts[1] in complete) == finished:
            try:
                record = read_run_record(store, key)
            except (ObjectNotFoundError, RunRecordError):
                continue
            if record.spec_hash == spec.hash:
                candidates.append((record.started_at or "", parts[1]))
    return max(candidates)[1] if candidates else None


def choose_run_id(store: Store, spec: Spec, run_id: str | None, resume: bool) -> str | None:
    """The run id `run` should use; None means: let the executor generate one."""
    if run_id is not None and not layout.RUN_ID_RE.fullmatch(run_id):
        raise RunChoiceError(
            f"--run-id '{run_id}' must be a DNS-1123 label (lowercase, digits, '-')"
        )
    if resume:
        # With no unfinished run, the latest finished one: `run` then says it is complete.
        chosen = run_id or latest_run(store, spec, False) or latest_run(store, spec, True)
        if chosen is None:
            raise RunChoiceError(f"--resume: no run of '{spec.name}' with this spec in {store.uri}")
        started = started_hash(store, spec, chosen)
        if started is not None and started != spec.hash:
            raise RunChoiceError(
                f"--resume: run '{chosen}' was started with spec hash {started[:12]}, this spec "
                f"hashes to {spec.hash[:12]}; resuming would mix two specs' shards"
            )
        return chosen
    if run_id is not None and run_exists(store, spec, run_id):
        raise RunChoiceError(
            f"run '{run_id}' already exists in {store.uri}; pass --resume to continue it, or pick a new --run-id"
        )
    return run_id


@dataclass(frozen=True)
class ResumePlan:
    """What resuming a run will do with each shard, as far as its footer tells: keep it, or
    compute it and why. (Compute also recomputes a shard whose pages turn out damaged.)"""

    shards: int
    kept: int
    kept_rows: int
    reasons: dict[str, int]  # why shards are computed -> how many

    def describe(self, run_id: str) -> str:
        computing = self.shards - self.kept
        why = ", ".join(f"{count} {reason}" for reason, count in sorted(self.reasons.items()))
        return (
            f"resuming {run_id}: keeping {self.kept} of {self.shards} shards, computing "
            f"{computing}" + (f" ({why})" if why else "")
        )


def resume_plan(store: Store, spec: Spec, run_id: str, code: CodeFingerprint) -> ResumePlan:
    """Read each shard's footer (a few KB each) and say what resuming will keep. A zoomed
    stage's shards are held to the centres their kept previous stages give, when every
    earlier shard is kept (else compute decides, once the stages before have run)."""
    reasons: dict[str, int] = {}
    count = total_shards(spec)
    kept: list[ShardInfo] = []
    kept_rows = 0
    for stage in stages_of(spec):
        expected = _expected_centres(spec, stage, kept)
        for index in range(stage.first_shard, stage.first_shard + stage.shards):
            key = layout.shard_key(spec.name, run_id, index, count)
            start, stop = stage.shard_range(index)
            try:
                info = read_shard_info(store, key)
                problem = info.problem(spec.hash, index, count, start, stop, spec.keep.everything)
                reason = "damaged" if problem else _code_reason(info, code)
                if reason is None and expected is not False and info.centres != expected:
                    reason = "zoomed around other points"
            except ObjectNotFoundError:
                reason = "missing"
            except StoreError:
                reason = "unreadable"
            if reason is None:
                kept.append(info)
                kept_rows += stop - start
            else:
                reasons[reason] = reasons.get(reason, 0) + 1
    return ResumePlan(count, len(kept), kept_rows, reasons)


def _expected_centres(spec: Spec, stage: Stage, kept: list[ShardInfo]) -> str | bool | None:
    """The centres stage's shards must record (None for stage 0), or False if that cannot be
    known yet: some earlier shard is to be computed again, or its stage ranks too few."""
    if stage.number == 0:
        return None
    if len(kept) != stage.first_shard:
        return False
    try:
        return next_centres(spec, stage_summaries(spec, kept), stage.number - 1)
    except StageError:
        return False


def _code_reason(info: ShardInfo, code: CodeFingerprint) -> str | None:
    if info.code is None:
        return "computed by an older TTG"
    if info.code.digest != code.digest:
        return f"computed by other code: {describe_difference(info.code, code)}"
    return None
