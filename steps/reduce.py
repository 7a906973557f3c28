"""`python -m steps.reduce`: verify every shard, then merge them into one result and summary.

Everything is checked from the shards' footers before a single byte of output is written:
a missing, unreadable, foreign, short or misplaced shard, or an object that should not be
there, fails the reduce with a message naming it, and no result is written. The result has
row groups of a size fixed by its columns, so it does not depend on how the sweep was
sharded or chunked. When every row is kept, whole row groups are copied from the shards byte
for byte (their page checksums checked) and only the rows where two shards meet are decoded
and re-encoded (steps/merge.py); kept subsets are re-encoded. Memory is bounded by one row
group, plus ~0.4 KB of footer per result row group (30 MB at 10^10 rows).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from typing import Any

from steps import compose, exit_codes, layout
from steps.best_rows import check_result
from steps.cli import spec_and_store, step_parser, write_outputs
from steps.merge import (
    DAMAGE,
    READ_BYTES,
    concatenate_shards,
    merge_shards,
    reencode_shards,
    result_metadata,
)
from steps.result_summary import build_summary
from steps.shard_check import verify_shards
from steps.shards import ShardError, ShardInfo
from steps.spec import Spec, SpecError
from steps.stages import (
    StageError,
    next_centres,
    stage_summaries,
    stages_of,
    total_shards,
)
from steps.store import Store, StoreError, UnsupportedError

# DAMAGE, READ_BYTES and the merges: re-exported, as callers import them from here
__all__ = [
    "DAMAGE",
    "READ_BYTES",
    "ReduceOutcome",
    "concatenate_shards",
    "main",
    "merge_shards",
    "output_parameters",
    "reduce_run",
    "reencode_shards",
    "verify_shards",
    "zoom_outputs",
]


@dataclass(frozen=True)
class ReduceOutcome:
    rows: int
    summary: dict[str, Any]


def reduce_run(store: Store, spec: Spec, run_id: str) -> ReduceOutcome:
    """Verify, merge, summarise; `_SUCCESS` is written last and only if all else succeeded."""
    began = time.perf_counter()
    store.remove_stale_temps(layout.run_prefix(spec.name, run_id))  # of writers killed earlier
    infos = verify_shards(store, spec, run_id)
    verified = time.perf_counter()
    rows, merge = _merge(store, spec, run_id, infos)
    merged = time.perf_counter()
    timings = {
        "verify_seconds": verified - began,
        "merge_seconds": merged - verified,
        "reduce_seconds": merged - began,
    }
    summary = build_summary(spec, run_id, infos, rows, timings)
    summary["merge"] = merge
    code = infos[0].code  # every shard's, by verify_shards
    summary["code"] = None if code is None else {"fingerprint": code.digest, "parts": code.parts}
    store.put_bytes(layout.summary_key(spec.name, run_id), json.dumps(summary, indent=2).encode())
    success = {"rows": rows, "spec_hash": spec.hash, "finished_at": summary["finished_at"]}
    store.put_bytes(layout.success_key(spec.name, run_id), json.dumps(success).encode())
    return ReduceOutcome(rows, summary)


def _merge(
    store: Store, spec: Spec, run_id: str, infos: list[ShardInfo]
) -> tuple[int, dict[str, Any]]:
    """The result, composed by the store from the shards' bytes where it can be
    (steps/compose.py), else streamed through this process; and how it was merged."""
    key = layout.result_key(spec.name, run_id)
    schema = infos[0].schema.with_metadata(result_metadata(spec, infos))
    composition = compose.plan(store, spec, run_id, infos, schema)
    if isinstance(composition, compose.ComposePlan):
        try:
            compose.compose_result(store, key, composition, spec, run_id, infos)
        except UnsupportedError as exc:
            composition = f"the store cannot compose objects ({exc})"
        else:
            sources = len(composition.ranges) + 1  # copied shard ranges, then the footer
            written = len(composition.footer)
            return composition.rows, {
                "mode": "compose",
                "sources": sources,
                "bytes_written": written,
            }
    with store.atomic_writer(key) as path:
        rows = merge_shards(store, spec, run_id, infos, path)
        check_result(path, store, spec, run_id, infos)
        written = path.stat().st_size
    return rows, {"mode": "stream", "reason": composition, "bytes_written": written}


def output_parameters(outcome: ReduceOutcome) -> dict[str, str]:
    """What the Argo UI shows for the run: rows, and the best value and its row."""
    objective = outcome.summary.get("objective") or {}
    best = (objective.get("best") or [None])[0]
    best_value = "" if best is None else json.dumps(best[objective["column"]])
    return {
        "rows": str(outcome.rows),
        "best_value": best_value,
        "best": json.dumps(best, separators=(",", ":")),
    }


def zoom_outputs(store: Store, spec: Spec, run_id: str, stage: int) -> dict[str, str]:
    """A refined sweep's reduce of a stage before the last: its shards (and every earlier
    stage's) verified, it writes nothing but its outputs, the next stage's centres."""
    assert spec.objective is not None
    infos = verify_shards(store, spec, run_id, through=stage)
    summaries = stage_summaries(spec, infos)
    centres = next_centres(spec, summaries, stage)
    top = summaries[stage].top  # not empty: next_centres found top_k rows in it
    return {
        "centres": centres,
        "best_value": json.dumps(top[0][spec.objective.column]),
        "best": json.dumps(top[0], separators=(",", ":")),
    }


def _parser() -> argparse.ArgumentParser:
    parser = step_parser("python -m steps.reduce", __doc__)
    parser.add_argument(
        "--stage",
        type=int,
        default=None,
        help="a refined sweep's stage: before the last, only pick the next stage's centres",
    )
    return parser


def _zoom_stage(spec: Spec, stage: int | None) -> int | None:
    """The stage to zoom from, or None for the whole reduce (the last stage's, or a flat run's)."""
    if stage is None:
        return None
    last = len(stages_of(spec)) - 1
    if not 0 <= stage <= last:
        raise SpecError("--stage", f"must be in 0..{last}, got {stage}")
    return stage if stage < last else None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        spec, store = spec_and_store(args)
        zoom = _zoom_stage(spec, args.stage)
    except (SpecError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_codes.BAD_INPUT
    try:
        if zoom is not None:
            outputs = zoom_outputs(store, spec, args.run_id, zoom)
            write_outputs(args.outputs, outputs)
            print(
                f"stage {zoom}: best {outputs['best_value']}; next stage zooms around {outputs['centres']}"
            )
            return exit_codes.OK
        outcome = reduce_run(store, spec, args.run_id)
    except (ShardError, StageError) as exc:
        what = "reduce refused" if zoom is None else f"stage {zoom} cannot be zoomed"
        print(f"error: {what}, no result written: {exc}", file=sys.stderr)
        return exit_codes.FAILED
    except StoreError as exc:
        print(f"error: reduce failed: {exc}", file=sys.stderr)
        return exit_codes.STORE
    write_outputs(args.outputs, output_parameters(outcome))
    print(
        f"reduce: {outcome.rows} rows from {total_shards(spec)} shards -> {store.url(layout.result_key(spec.name, args.run_id))}"
    )
    return exit_codes.OK


if __name__ == "__main__":
    exit_codes.exit_now(main())
