"""Medians, ratios and targets from the measured samples; the table and the JSON document."""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.entries import Entry
from bench.measure import Sample

MIB_LIMIT_SHARD = 256.0
# what steps.reduce writes under "timings" in summary.json; a sample's detail carries them
REDUCE_TIMINGS = ("verify_seconds", "merge_seconds", "reduce_seconds", "summary_seconds")


@dataclass
class Outcome:
    """Every sample of one entry over the rounds."""

    entry: Entry
    rows: int
    samples: list[Sample] = field(default_factory=list)
    error: str | None = None

    def wall(self, sample: Sample) -> float:
        """The sample's wall time; for an extrapolated entry, its loop scaled to all rows."""
        if not self.entry.extrapolated:
            return sample.seconds
        done, total = sample.detail["rows"], sample.detail["total_rows"]
        return sample.seconds + sample.detail["work_seconds"] * (total / done - 1)

    @property
    def seconds(self) -> float | None:
        return statistics.median(self.wall(s) for s in self.samples) if self.samples else None

    @property
    def peak_rss_mib(self) -> float | None:
        return max(s.peak_rss_mib for s in self.samples) if self.samples else None

    def detail(self) -> dict[str, float]:
        """Median of each number the process reported about itself."""
        keys = {k for s in self.samples for k, v in s.detail.items() if isinstance(v, int | float)}
        return {
            k: statistics.median(s.detail[k] for s in self.samples if k in s.detail)
            for k in sorted(keys)
        }


@dataclass(frozen=True)
class Target:
    name: str
    value: float | None
    op: str  # "<=" or ">="
    threshold: float
    unit: str

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value <= self.threshold if self.op == "<=" else self.value >= self.threshold


def _seconds(outcomes: dict[str, Outcome], name: str) -> float | None:
    outcome = outcomes.get(name)
    return None if outcome is None else outcome.seconds


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


FLOOR_ROWS = 10**8  # from this size on, the tighter floor target


def targets(outcomes: dict[str, Outcome], rows: int) -> list[Target]:
    """The issue's targets, each from the entries it needs (None when one was not run)."""
    run, limit = _seconds(outcomes, "run"), _seconds(outcomes, "limit")
    help_, bare = _seconds(outcomes, "help"), _seconds(outcomes, "bare")
    rss = {n: outcomes[n].peak_rss_mib for n in ("shard-compute", "shard-reduce") if n in outcomes}
    s3 = outcomes["run-s3"].detail() if "run-s3" in outcomes else {}
    result = s3.get("result_bytes")
    floor = _seconds(outcomes, "floor")
    return [
        Target("run / limit", _ratio(run, limit), "<=", 1.3, "x"),
        # issue 17: 2.0x the floor on the default sweep, 1.5x from 10^8 rows
        Target("run / floor", _ratio(run, floor), "<=", 1.5 if rows >= FLOOR_ROWS else 2.0, "x"),
        Target(
            "peak RSS of any process of run",
            outcomes["run"].peak_rss_mib if "run" in outcomes else None,
            "<=",
            MIB_LIMIT_SHARD,
            "MiB",
        ),
        Target("run-s3 / run", _ratio(_seconds(outcomes, "run-s3"), run), "<=", 1.5, "x"),
        Target(
            "run-s3 uploads / result", _ratio(s3.get("s3_upload_bytes"), result), "<=", 1.15, "x"
        ),
        Target(
            "run-s3 downloads / result",
            _ratio(s3.get("s3_download_bytes"), result),
            "<=",
            0.10,
            "x",
        ),
        Target("dask / run", _ratio(_seconds(outcomes, "dask"), run), ">=", 1.2, "x"),
        Target("old worker / run", _ratio(_seconds(outcomes, "old-worker"), run), ">=", 50, "x"),
        Target(
            f"peak RSS, steps.compute of one {rows:,}-row shard",
            rss.get("shard-compute"),
            "<=",
            MIB_LIMIT_SHARD,
            "MiB",
        ),
        Target(
            f"peak RSS, steps.reduce of one {rows:,}-row shard",
            rss.get("shard-reduce"),
            "<=",
            MIB_LIMIT_SHARD,
            "MiB",
        ),
        Target(
            "steps.compute --help minus bare python",
            None if help_ is None or bare is None else help_ - bare,
            "<=",
            0.3,
            "s",
        ),
    ]


def document(
    name: str, spec: dict[str, Any], rows: int, repeat: int, outcomes: dict[str, Outcome]
) -> dict[str, Any]:
    limit = _seconds(outcomes, "limit")
    entries = []
    for outcome in outcomes.values():
        seconds = outcome.seconds
        entries.append(
            {
                "name": outcome.entry.name,
                "kind": outcome.entry.kind,
                "label": outcome.entry.label,
                "rows": outcome.rows,
                "seconds": seconds,
                "samples_seconds": [outcome.wall(s) for s in outcome.samples],
                "rows_per_second": outcome.rows / seconds if seconds and outcome.rows else None,
                "ratio_to_limit": _ratio(seconds, limit)
                if outcome.entry.kind == "contender"
                else None,
                "peak_rss_mib": outcome.peak_rss_mib,
                "extrapolated": outcome.entry.extrapolated,
                "detail": outcome.detail(),
                "error": outcome.error,
            }
        )
    return {
        "name": name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": rows,
        "repeat": repeat,
        "spec": spec,
        "machine": machine(),
        "entries": entries,
        "targets": [
            {
                "name": t.name,
                "value": t.value,
                "op": t.op,
                "threshold": t.threshold,
                "unit": t.unit,
                "met": t.met,
            }
            for t in targets(outcomes, rows)
        ],
    }


def machine() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for package in ("numpy", "pyarrow", "dask", "distributed"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": list(os.getloadavg()),
        **versions,
    }


def write(doc: dict[str, Any], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{doc['name']}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def print_tables(console: Console, doc: dict[str, Any]) -> None:
    table = Table(title=f"{doc['name']}: {doc['rows']:,} rows, median of {doc['repeat']} round(s)")
    for column, justify in (
        ("entry", "left"),
        ("what", "left"),
        ("rows", "right"),
        ("seconds", "right"),
        ("rows/s", "right"),
        ("x limit", "right"),
        ("peak RSS MiB", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for e in doc["entries"]:
        label = e["label"] + (" [extrapolated]" if e["extrapolated"] else "")
        if e["error"]:
            label += f" [red]failed: {e['error'].splitlines()[0]}[/red]"
        table.add_row(
            e["name"],
            label,
            f"{e['rows']:,}" if e["rows"] else "-",
            _num(e["seconds"], ".3f"),
            _num(e["rows_per_second"], ",.0f"),
            _num(e["ratio_to_limit"], ".2f"),
            _num(e["peak_rss_mib"], ".0f"),
        )
    console.print(table)
    checks = Table(title="targets")
    for column in ("target", "measured", "goal", "met"):
        checks.add_column(column)
    for t in doc["targets"]:
        met = {True: "[green]yes[/green]", False: "[red]no[/red]", None: "not run"}[t["met"]]
        value = _num(t["value"], ".3g" if t["unit"] != "MiB" else ".0f")
        checks.add_row(
            t["name"], f"{value} {t['unit']}", f"{t['op']} {t['threshold']:g} {t['unit']}", met
        )
    console.print(checks)
