"""The points each stage of a refined run zoomed around, derived again for `verify`.

With every row kept, the result holds each stage's rows, so the best points of stage s are
ranked again from them (the same rule as reduce: steps.stages.centres_of) and stage s + 1's
rows are recomputed around those: a stage zoomed around anything else shows as rows that
differ. A kept subset lacks the rows to rank, so the centres come from the summary, and the
recomputed sample then checks the rows against what the summary says.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from steps.refine import STAGE_COLUMN
from steps.spec import Spec, SpecError
from steps.stages import Centres, StageError, centres_of, decode_centres, stages_of
from steps.summary import PartialSummary, top_rows

__all__ = ["StageCentresError", "run_centres"]


class StageCentresError(ValueError):
    """The stages' centres cannot be known, so no zoomed row can be recomputed."""


def run_centres(
    spec: Spec, result: pq.ParquetFile, summary: dict[str, Any]
) -> tuple[list[Centres], list[str]]:
    """Each stage's centres (none for stage 0) and the summary's claims about them that the
    result contradicts."""
    stages = stages_of(spec)
    if spec.refine is None:
        return [()], []
    claimed = _claimed(spec, summary, len(stages))
    if not spec.keep.everything:
        return claimed, []
    derived = _derived(spec, result, len(stages))
    problems = [
        f"summary: stage {n} zoomed around {list(c)}, the result's stage {n - 1} ranks {list(d)}"
        for n, (c, d) in enumerate(zip(claimed, derived, strict=True))
        if c != d
    ]
    return derived, problems[:1]


def _claimed(spec: Spec, summary: dict[str, Any], count: int) -> list[Centres]:
    entries = summary.get("stages")
    if not isinstance(entries, list) or len(entries) != count:
        raise StageCentresError(f"the summary does not list the run's {count} stages")
    centres: list[Centres] = [()]
    for n, entry in enumerate(entries[1:], start=1):
        points = entry.get("centres") if isinstance(entry, dict) else None
        try:
            text = json.dumps([[point[a.name] for a in spec.axes] for point in points or []])
            centres.append(decode_centres(spec, text))
        except (SpecError, KeyError, TypeError) as exc:
            raise StageCentresError(
                f"the summary's stage {n} centres are unusable: {exc}"
            ) from None
    return centres


def _derived(spec: Spec, result: pq.ParquetFile, count: int) -> list[Centres]:
    """Every stage's best rows, one row group at a time (memory: one group's columns)."""
    objective = spec.objective
    assert objective is not None
    columns = ["param_id", STAGE_COLUMN, objective.column, *(a.name for a in spec.axes)]
    best = [PartialSummary() for _ in range(count)]
    for group in range(result.metadata.num_row_groups):
        table = result.read_row_group(group, columns=columns)
        stage = table[STAGE_COLUMN].to_numpy()
        for number in np.unique(stage):
            if not 0 <= number < count:
                raise StageCentresError(f"the result holds rows of a stage {int(number)}")
            rows = table.filter(pc.equal(table[STAGE_COLUMN], int(number)))
            found = PartialSummary(top=top_rows(rows, objective))
            best[number] = best[number].merge(found, objective)
    try:
        return [()] + [centres_of(spec, best[n - 1].top, n - 1) for n in range(1, count)]
    except StageError as exc:
        raise StageCentresError(str(exc)) from None
