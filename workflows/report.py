"""What a finished run looks like on the terminal: where the result is, and its best rows."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from steps import layout
from steps.store import Store


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


def print_run_report(
    console: Console, summary: dict[str, Any], result_url: str, seconds: float
) -> None:
    console.print(
        f"[green]done[/green]: {summary['rows']:,} rows in {seconds:.1f}s "
        f"({summary['shards']} shards) -> [bold]{result_url}[/bold]",
        soft_wrap=True,
    )
    table = best_rows_table(summary)
    if table is not None:
        console.print(table)


def print_stored_report(
    console: Console, store: Store, name: str, run_id: str, seconds: float
) -> None:
    """Read a finished run's summary.json from its store and print the report (StoreError if unreadable)."""
    summary = json.loads(store.get_bytes(layout.summary_key(name, run_id)))
    print_run_report(console, summary, store.url(layout.result_key(name, run_id)), seconds)
    console.print(
        f"run id: {run_id}   summary: {store.url(layout.summary_key(name, run_id))}", soft_wrap=True
    )
