"""Progress of a local execution on the terminal (rich): tasks done of total, rows/s, ETA.

The executor reports task events; this turns them into one progress bar. For a sweep it
also knows how many rows each compute shard holds, so it can show rows and rows/s.
"""

from __future__ import annotations

import threading
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from steps.space import Space
from steps.spec import Spec
from workflows.local import Node


class _RowsColumn(ProgressColumn):
    """Rows finished and rows per second, from the task's `rows` field."""

    def render(self, task: Task) -> Text:
        rows = int(task.fields.get("rows", 0))
        if not task.fields.get("total_rows"):
            return Text("")
        elapsed = task.elapsed or 0.0
        rate = rows / elapsed if elapsed > 0 else 0.0
        return Text(f"{rows:,} rows  {rate:,.0f} rows/s", style="cyan")


class ProgressDisplay:
    """An ExecutionObserver drawing a rich progress bar; use as a context manager."""

    def __init__(self, console: Console, title: str, spec: Spec | None = None) -> None:
        self.console = console
        self.spec = spec
        self.space = Space(spec) if spec else None
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("tasks"),
            _RowsColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task(
            title, total=0, rows=0, total_rows=self.space.rows if self.space else 0
        )
        self.lock = threading.Lock()
        self.rows = 0
        self.started = time.perf_counter()

    def __enter__(self) -> ProgressDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def task_added(self, node: Node) -> None:
        with self.lock:
            total = (self.progress.tasks[0].total or 0) + 1
            self.progress.update(self.task, total=total)

    def task_started(self, node: Node) -> None:
        pass

    def task_finished(self, node: Node, succeeded: bool, outputs: dict[str, str]) -> None:
        with self.lock:
            if succeeded:
                self.rows += self._rows_of(node)
                self.progress.update(self.task, advance=1, rows=self.rows)
            else:
                self.console.print(f"[red]task {node.id} failed[/red]")

    @property
    def tasks_done(self) -> int:
        return int(self.progress.tasks[0].completed)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def _rows_of(self, node: Node) -> int:
        """Rows a finished compute shard contributed (the shard index is the loop item)."""
        if self.space is None or node.template != "compute" or node.item is None:
            return 0
        try:
            start, stop = self.space.shard_range(int(node.item))
        except ValueError:
            return 0
        return stop - start
