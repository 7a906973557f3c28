"""`summary.json`: what a run computed, from the shards' partial summaries alone.

Built in O(shards), never from rows (DESIGN.md, store layout): the statistics and best rows
each shard sealed in its footer (steps/shards.py), merged (steps/summary.py), with the run's
timings and the library versions that made it.
"""

from __future__ import annotations

import json
import platform
import time
from importlib import metadata as importlib_metadata
from typing import Any

import numpy as np
import pyarrow as pa

from steps.run_record import timestamp
from steps.shards import ShardInfo
from steps.spec import Spec
from steps.stages import stage_summaries, stages_of
from steps.summary import PartialSummary, json_safe

__all__ = ["build_summary"]


def build_summary(
    spec: Spec, run_id: str, infos: list[ShardInfo], kept_rows: int, timings: dict[str, float]
) -> dict[str, Any]:
    """`rows` and the column statistics cover every computed row; `kept_rows` the result.

    Built from the shards' partial summaries alone, never from rows: `summary_seconds`
    records that it costs O(shards), whatever the sweep's size."""
    began = time.perf_counter()
    merged = PartialSummary()
    for info in infos:
        merged = merged.merge(info.summary, spec.objective)
    seconds = [info.seconds for info in infos]
    columns = {
        name: {
            "type": stats.type,
            "count": stats.count,
            "nulls": stats.nulls,
            "nans": stats.nans,
            "min": stats.min,
            "max": stats.max,
            "mean": stats.mean,
        }
        for name, stats in merged.columns.items()
    }
    objective = None
    if spec.objective:
        ranked = merged.columns.get(spec.objective.column)
        objective = {
            "column": spec.objective.column,
            "goal": spec.objective.goal,
            "top_k": spec.objective.top_k,
            # Rows whose objective is NaN or null: kept and counted, never ranked in `best`.
            "nans": ranked.nans if ranked else 0,
            "nulls": ranked.nulls if ranked else 0,
            "best": merged.top,
        }
    return json_safe(
        {
            "name": spec.name,
            "run_id": run_id,
            "spec_hash": spec.hash,
            "rows": merged.rows,
            "kept_rows": kept_rows,
            "keep": spec.keep.canonical(),
            "shards": len(infos),
            "columns": columns,
            "objective": objective,
            **({"stages": stage_entries(spec, infos)} if spec.refine is not None else {}),
            "timings": {
                "shard_seconds_total": sum(seconds),
                "shard_seconds_max": max(seconds),
                "shard_seconds_min": min(seconds),
                **timings,
                "summary_seconds": time.perf_counter() - began,
            },
            "versions": _versions(),
            "finished_at": timestamp(),
        }
    )


def stage_entries(spec: Spec, infos: list[ShardInfo]) -> list[dict[str, Any]]:
    """A refined run's stages: where each one's rows are, its best rows, and the points it
    zoomed around (steps/stages.py re-derived and checked them from the stage before)."""
    names = [a.name for a in spec.axes]
    summaries = stage_summaries(spec, infos)
    entries = []
    for stage, summary in zip(stages_of(spec), summaries, strict=True):
        centres = next((info.centres for info in infos if info.index == stage.first_shard), None)
        entries.append(
            {
                "stage": stage.number,
                "first_param_id": stage.offset,
                "rows": summary.rows,
                "shards": stage.shards,
                "centres": None
                if centres is None
                else [dict(zip(names, point, strict=True)) for point in json.loads(centres)],
                "best": summary.top,
            }
        )
    return entries


def _versions() -> dict[str, str]:
    try:
        ttg = importlib_metadata.version("ttg")
    except importlib_metadata.PackageNotFoundError:
        ttg = "unknown"
    return {
        "ttg": ttg,
        "numpy": np.__version__,
        "pyarrow": pa.__version__,
        "python": platform.python_version(),
    }
