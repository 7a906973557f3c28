"""The stages of a refined run held against its result, for `verify`: the points each stage
zoomed around, derived again, and what the summary says of each stage.

With every row kept, the result holds each stage's rows (which stage a row belongs to comes
from its `param_id`, by the spec's arithmetic, never from the stored `stage` column), so the
best rows of stage s are ranked again from them, by the rule reduce applies
(steps.stages.centres_of), and stage s + 1's rows are recomputed around those: a stage zoomed
around anything else shows as rows that differ. A kept subset lacks the rows to rank, so the
centres come from the summary, and the recomputed sample holds the rows to what it says.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from steps.spec import Spec, SpecError
from steps.stages import Centres, StageError, centres_of, decode_centres, stages_of
from steps.summary import PartialSummary, json_safe, top_rows

__all__ = ["StageCentresError", "claimed_centres", "run_centres"]


class StageCentresError(ValueError):
    """The stages' centres cannot be known, so no zoomed row can be recomputed."""


def run_centres(
    spec: Spec, result: pq.ParquetFile, summary: dict[str, Any]
) -> tuple[list[Centres], list[str]]:
    """Each stage's centres (none for stage 0), and the summary's claims about the stages that
    the spec or the result contradicts. StageCentresError if the centres cannot be known."""
    if spec.refine is None:
        return [()], []
    problems = _entry_problems(spec, summary)
    aligned = not problems  # the summary's entries are the stages, in order
    try:
        claimed: list[Centres] | None = claimed_centres(spec, summary)
    except StageCentresError as exc:
        if not spec.keep.everything:
            raise
        claimed, problems = None, [*problems, f"summary: {exc}"]
    if not spec.keep.everything:
        assert claimed is not None
        return claimed, problems
    best = _stage_best(spec, result)
    try:
        derived = [()] + [centres_of(spec, best[n - 1].top, n - 1) for n in range(1, len(best))]
    except StageError as exc:
        raise StageCentresError(f"the result's own rows: {exc}") from None
    for n, stage in enumerate(best if aligned else []):
        if json_safe(stage.top) != summary["stages"][n].get("best"):
            problems.append(f"summary: stage {n}'s best rows are not the result's")
            break
    if claimed is not None:
        problems += [
            f"summary: stage {n} zoomed around {list(c)}, the result's stage {n - 1} ranks "
            f"{list(d)}"
            for n, (c, d) in enumerate(zip(claimed, derived, strict=True))
            if c != d
        ][:1]
    return derived, problems


def _entry_problems(spec: Spec, summary: dict[str, Any]) -> list[str]:
    """Where each stage's rows are and how many shards it had: the spec's arithmetic."""
    entries = summary.get("stages")
    stages = stages_of(spec)
    if not isinstance(entries, list) or len(entries) != len(stages):
        return [f"summary: it does not list the run's {len(stages)} stages"]
    for stage, entry in zip(stages, entries, strict=True):
        expected = {
            "stage": stage.number,
            "first_param_id": stage.offset,
            "rows": stage.rows,
            "shards": stage.shards,
        }
        got = {k: entry.get(k) for k in expected} if isinstance(entry, dict) else None
        if got != expected:
            return [f"summary: stage {stage.number} says {got}, the spec makes it {expected}"]
    return []


def claimed_centres(spec: Spec, summary: dict[str, Any]) -> list[Centres]:
    """The centres summary.json says each stage zoomed around (untrusted: each checked as a
    pod checks `--centres`)."""
    entries = summary.get("stages")
    count = len(stages_of(spec))
    if not isinstance(entries, list) or len(entries) != count:
        raise StageCentresError(f"it does not list the run's {count} stages")
    centres: list[Centres] = [()]
    for n, entry in enumerate(entries[1:], start=1):
        points = entry.get("centres") if isinstance(entry, dict) else None
        try:
            text = json.dumps([[point[a.name] for a in spec.axes] for point in points or ()])
            centres.append(decode_centres(spec, text))
        except (SpecError, KeyError, TypeError, ValueError) as exc:
            raise StageCentresError(f"its stage {n} centres are unusable ({exc})") from None
    return centres


def _stage_best(spec: Spec, result: pq.ParquetFile) -> list[PartialSummary]:
    """Every stage's best rows, one row group at a time (memory: one group's columns)."""
    objective = spec.objective
    assert objective is not None
    stages = stages_of(spec)
    offsets = np.array([s.offset for s in stages], dtype=np.int64)
    best = [PartialSummary() for _ in stages]
    for group in range(result.metadata.num_row_groups):
        table = result.read_row_group(group, use_threads=False)
        param_id = table["param_id"].to_numpy()
        number = np.searchsorted(offsets, param_id, side="right") - 1
        for n in np.unique(number):
            rows = table.filter(pa.array(number == n))
            best[n] = best[n].merge(PartialSummary(top=top_rows(rows, objective)), objective)
    return best
