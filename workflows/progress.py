"""Progress of a local execution on the terminal (rich): tasks done of total, rows/s, ETA.

The executor reports task events; this turns them into one progress bar. For a sweep it
also knows how many rows each compute shard holds, so it can show rows and rows/s.
"""

from __future__ import annotations

import math
import os
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

from steps.spec import Spec
from steps.stages import total_rows
from workflows.cli_args import UsageError
from workflows.local import Node

__all__ = ["ProgressDisplay", "progress_interval"]


class _RowsColumn(ProgressColumn):
    """Rows finished and rows per second, from the task's `rows` field."""

    def render(self, task: Task) -> Text:
        rows = int(task.fields.get("rows", 0))
        if not task.fields.get("total_rows"):
            return Text("")
        elapsed = task.elapsed or 0.0
        rate = rows / elapsed if elapsed > 0 else 0.0
        return Text(f"{rows:,} rows  {rate:,.0f} rows/s", style="cyan")


def progress_interval() -> float:
    """`TTG_PROGRESS_SECONDS`: seconds between plain progress lines (a number, at least 0)."""
    text = os.environ.get("TTG_PROGRESS_SECONDS", "10")
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds < math.inf:
        raise UsageError(f"TTG_PROGRESS_SECONDS must be a number of seconds, got {text!r}")
    return seconds


class ProgressDisplay:
    """An ExecutionObserver showing progress; use as a context manager.

    On a terminal it draws a rich progress bar. Elsewhere (CI, a pod, a pipe) a bar would be
    noise, so it prints a plain line at most every `interval` seconds, and one at the end.
    """

    def __init__(
        self,
        console: Console,
        title: str,
        spec: Spec | None = None,
        interval: float | None = None,
        kept_rows: int = 0,
    ) -> None:
        self.console = console
        self.title = title
        self.spec = spec
        # A resumed run keeps some shards: rows and rows/s count the rows computed now.
        self.rows_to_compute = total_rows(spec) - kept_rows if spec else 0
        self.interval = interval if interval is not None else progress_interval()
        self.lock = threading.Lock()
        self.total = self.done = self.rows = 0
        self.started = time.perf_counter()
        self.last_line = self.started
        self.printed: tuple[int, int] | None = None
        self.progress: Progress | None = None
        if console.is_terminal:
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
                title, total=0, rows=0, total_rows=self.rows_to_compute
            )

    def __enter__(self) -> ProgressDisplay:
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress:
            self.progress.stop()
        elif self.total and self.printed != (self.done, self.total):
            self._print_line()

    def task_added(self, node: Node) -> None:
        with self.lock:
            self.total += 1
            if self.progress:
                self.progress.update(self.task, total=self.total)

    def task_started(self, node: Node) -> None:
        pass

    def task_finished(self, node: Node, succeeded: bool, outputs: dict[str, str]) -> None:
        with self.lock:
            if not succeeded:
                self.console.print(Text(f"task {node.id} failed", style="red"), soft_wrap=True)
                return
            self.done += 1
            self.rows += self._rows_of(node, outputs)
            if self.progress:
                self.progress.update(self.task, advance=1, rows=self.rows)
            elif time.perf_counter() - self.last_line >= self.interval:
                self._print_line()

    def _print_line(self) -> None:
        now = time.perf_counter()
        self.last_line = now
        self.printed = (self.done, self.total)
        elapsed = now - self.started
        line = f"{self.title}: {self.done}/{self.total} tasks"
        if self.spec is not None:
            rate = self.rows / elapsed if elapsed > 0 else 0.0
            line += f", {self.rows:,}/{self.rows_to_compute:,} rows, {rate:,.0f} rows/s"
            if 0 < self.rows < self.rows_to_compute and rate > 0:
                line += f", eta {(self.rows_to_compute - self.rows) / rate:.0f}s"
        self.console.print(
            f"{line}, {elapsed:.1f}s elapsed", soft_wrap=True, highlight=False, markup=False
        )

    @property
    def tasks_done(self) -> int:
        return self.done

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def _rows_of(self, node: Node, outputs: dict[str, str]) -> int:
        """Rows a finished compute shard computed: its `rows` output, which is 0 for a shard
        that was already complete."""
        if self.spec is None or node.template != "compute":
            return 0
        try:
            return max(int(outputs.get("rows", "0")), 0)
        except ValueError:
            return 0
