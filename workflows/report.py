"""What a finished run looks like on the terminal: where the result is, and its best rows.

Rows whose objective is NaN or null are in the result but never among the best rows: how
many there were is said right under the best rows, so a sweep that is partly NaN does not
look like a smaller one."""

from __future__ import annotations

import json
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from steps import layout
from steps.store import Store
from workflows.results import FinishedRun, ResultsError, summary_problem

__all__ = [
    "best_rows_table",
    "column_stats_table",
    "print_results",
    "print_run_report",
    "print_stored_report",
    "provenance_table",
    "unranked_counts",
    "unranked_note",
]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def best_rows_table(summary: dict[str, Any], limit: int = 5) -> Table | None:
    objective = summary.get("objective")
    if not objective or not objective.get("best"):
        return None
    rows = objective["best"][:limit]
    table = Table(title=f"best {len(rows)} by {objective['goal']} {objective['column']}")
    for column in rows[0]:
        table.add_column(
            column, justify="right", style="bold" if column == objective["column"] else None
        )
    for row in rows:
        table.add_row(*(_cell(v) for v in row.values()))
    return table


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def unranked_counts(summary: dict[str, Any]) -> tuple[int, int]:
    """(NaN, null) objective rows: from `objective.nans`/`nulls`, or for a summary written
    before those existed, from the objective column's statistics; (0, 0) without them."""
    objective = summary.get("objective")
    if not isinstance(objective, dict):
        return 0, 0
    columns, column = summary.get("columns"), objective.get("column")
    stats = columns.get(column) if isinstance(columns, dict) and isinstance(column, str) else None
    stats = stats if isinstance(stats, dict) else {}
    counts = []
    for key in ("nans", "nulls"):
        count = _count(objective.get(key))
        counts.append(count if count is not None else _count(stats.get(key)) or 0)
    return counts[0], counts[1]


def unranked_note(summary: dict[str, Any]) -> str | None:
    """One line on the rows whose objective is NaN or null, or None if there were none."""
    nans, nulls = unranked_counts(summary)
    if not nans and not nulls:
        return None
    parts = [f"{n:,} {what}" for n, what in ((nans, "NaN"), (nulls, "null")) if n]
    column = summary["objective"]["column"]
    total = nans + nulls
    return (
        f"{' and '.join(parts)} in objective column '{column}': "
        f"{'that row is' if total == 1 else 'those rows are'} in the result, never ranked"
    )


def stages_table(summary: dict[str, Any]) -> Table | None:
    """A refined run's stages, one row each: where its rows are and the best it found."""
    stages = summary.get("stages")
    objective = summary.get("objective") or {}
    if not isinstance(stages, list) or not all(isinstance(s, dict) for s in stages):
        return None
    column = objective.get("column") if isinstance(objective, dict) else None
    table = Table(title=f"{len(stages)} stages, each zooming around the last one's best")
    for name in ("stage", "param_id from", "rows", "shards", f"best {column}", "zoomed around"):
        table.add_column(name, justify="left" if name == "zoomed around" else "right")
    for stage in stages:
        best = stage.get("best") or [{}]
        centres = stage.get("centres") or []
        around = "; ".join(
            ", ".join(f"{k}={_cell(v)}" for k, v in point.items())
            for point in centres
            if isinstance(point, dict)
        )
        value = best[0].get(column) if isinstance(best[0], dict) else None
        table.add_row(
            *map(_cell, (stage.get("stage"), stage.get("first_param_id"), stage.get("rows"))),
            _cell(stage.get("shards")),
            _cell(value),
            around or "(the spec's space)",
        )
    return table


def _print_best(console: Console, summary: dict[str, Any], limit: int = 5) -> None:
    stages = stages_table(summary)
    if stages is not None:
        console.print(stages)
    table = best_rows_table(summary, limit)
    if table is not None:
        console.print(table)
    elif summary.get("objective"):
        column = summary["objective"].get("column")
        console.print(f"no row has a number in objective column '{column}': no best rows")
    note = unranked_note(summary)
    if note:
        console.print(note, style="yellow", soft_wrap=True, highlight=False)


def print_run_report(
    console: Console, summary: dict[str, Any], result_url: str, seconds: float
) -> None:
    console.print(
        Text.assemble(
            ("done", "green"),
            f": {summary['rows']:,} rows in {seconds:.1f}s ({summary['shards']} shards) -> ",
            (result_url, "bold"),
        ),
        soft_wrap=True,
    )
    _print_best(console, summary)


def print_stored_report(
    console: Console, store: Store, name: str, run_id: str, seconds: float
) -> None:
    """Read a finished run's summary.json from its store and print the report (StoreError if
    unreadable, ResultsError if it is not a summary)."""
    key = layout.summary_key(name, run_id)
    try:
        summary = json.loads(store.get_bytes(key))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ResultsError(f"{store.url(key)} is not valid JSON: {str(exc)[:200]}") from None
    problem = summary_problem(summary) if isinstance(summary, dict) else "not a JSON object"
    if problem:
        raise ResultsError(f"{store.url(key)}: {problem}")
    print_run_report(console, summary, store.url(layout.result_key(name, run_id)), seconds)
    console.print(
        f"run id: {run_id}   summary: {store.url(layout.summary_key(name, run_id))}", soft_wrap=True
    )


# --- `results`: a finished run read back from its store ------------------------------------


def _stat(value: Any) -> str:
    return "-" if value is None else _cell(value)


def column_stats_table(summary: dict[str, Any]) -> Table:
    """Per-column statistics, as reduce merged them from every shard's footer."""
    table = Table(title="columns", box=box.SIMPLE_HEAD)
    table.add_column("column", overflow="fold")
    for heading in ("count", "nulls", "NaNs", "min", "max", "mean"):
        table.add_column(heading, justify="right", overflow="fold")
    for name, stats in summary.get("columns", {}).items():
        table.add_row(
            name,
            *(f"{int(stats.get(k) or 0):,}" for k in ("count", "nulls", "nans")),
            *(_stat(stats.get(k)) for k in ("min", "max", "mean")),
        )
    return table


def provenance_table(run: FinishedRun) -> Table:
    """Where the rows came from: what ran, when, how long, with which versions."""
    summary, spec = run.summary, run.spec
    timings = summary.get("timings", {})
    seconds = run.seconds
    versions = summary.get("versions", {})
    table = Table(title="provenance", show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for label, value in (
        ("sweep", f"{spec.name}  ({spec.function})"),
        ("run id", run.ref.run_id),
        ("result", run.result_url),
        ("spec hash", str(summary.get("spec_hash", "?"))[:12]),
        ("space", " x ".join(f"{a.name} {a.kind}{list(a.args)}" for a in spec.axes)),
        (
            "rows",
            f"{run.rows:,}"
            + (f" ({spec.samples:,} samples per grid point)" if spec.samples > 1 else ""),
        ),
        ("shards", str(summary.get("shards", "?"))),
        (
            "shard seconds",
            f"{_seconds(timings.get('shard_seconds_total'))} total, "
            f"{_seconds(timings.get('shard_seconds_max'))} max",
        ),
        ("reduce seconds", _seconds(timings.get("reduce_seconds"))),
        ("started", run.started_at or "-"),
        ("finished", str(summary.get("finished_at", "-"))),
        ("duration", "-" if seconds is None else f"{seconds:.1f}s (started to finished)"),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items()) or "-"),
        ("code", _code(run)),
    ):
        table.add_row(label, value)
    return table


def _code(run: FinishedRun) -> str:
    """The code fingerprint, and the parts a reader would compare between two runs."""
    code = run.code
    if code is None:
        return "- (not recorded by the TTG that made this run)"
    parts = code.parts
    module = parts.get("module", "?").removeprefix("sha256:")[:12]
    ttg = parts.get("ttg", "?").removeprefix("sha256:")[:12]
    extra = f", code_version {parts['code_version']}" if "code_version" in parts else ""
    return f"{code.digest[:12]} (function module {module}, ttg {ttg}{extra})"


def _seconds(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "-"


def print_results(console: Console, run: FinishedRun, top: int, asked: bool) -> None:
    """What `results` prints: the best rows, the column statistics, and the provenance.
    `asked`: the user gave `--top`, so a shortfall against it is worth a line."""
    objective = run.summary.get("objective")
    if not objective:
        console.print("no objective in the spec, so no best rows were kept (add [objective])")
    else:
        stored = len(run.best_rows)
        top_k = objective.get("top_k")
        short = asked and top > stored and stored
        if short and isinstance(top_k, int) and stored < top_k:
            console.print(
                f"--top {top}: only {stored} rows have a number in objective column "
                f"'{objective.get('column')}'; showing {stored}",
                soft_wrap=True,
            )
        elif short:
            console.print(
                f"--top {top}: only the best {stored} rows are stored "
                f"(objective.top_k = {top_k} in the spec); showing {stored}",
                soft_wrap=True,
            )
        _print_best(console, run.summary, limit=top)
    console.print(column_stats_table(run.summary))
    console.print(provenance_table(run))
