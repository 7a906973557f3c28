"""The scaling curve: time per row and peak RSS of the same entries at growing row counts.

Flat is the goal: time per row within +-20 % across sizes, and peak RSS not growing with the
rows (memory is bounded by `chunk_rows` and the row-group size, not by the sweep).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.report import Outcome

FLAT_TIME = 0.20  # +-20 % around the median time per row


def point(rows: int, outcomes: dict[str, Outcome]) -> dict[str, Any]:
    entries = {}
    for name, outcome in outcomes.items():
        seconds = outcome.seconds
        entries[name] = {
            "seconds": seconds,
            "ns_per_row": None if seconds is None else seconds / outcome.rows * 1e9,
            "peak_rss_mib": outcome.peak_rss_mib,
            "error": outcome.error,
        }
    return {"rows": rows, "entries": entries}


def flatness(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Per entry: the spread of time per row around its median, and RSS growth."""
    names = {n for p in points for n in p["entries"]}
    verdict = {}
    for name in sorted(names):
        times = [p["entries"][name]["ns_per_row"] for p in points if name in p["entries"]]
        rss = [p["entries"][name]["peak_rss_mib"] for p in points if name in p["entries"]]
        if any(t is None for t in times) or not times:
            continue
        middle = sorted(times)[len(times) // 2]
        spread = max(abs(t / middle - 1) for t in times)
        rows = [p["rows"] for p in points if name in p["entries"]]
        seconds = [p["entries"][name]["seconds"] for p in points if name in p["entries"]]
        # the slope between sizes: time per extra row, with the fixed costs taken out
        marginal = [
            (seconds[i + 1] - seconds[i]) / (rows[i + 1] - rows[i]) * 1e9
            for i in range(len(rows) - 1)
            if rows[i + 1] > rows[i]
        ]
        verdict[name] = {
            "ns_per_row": times,
            "max_deviation_from_median": spread,
            "time_flat": spread <= FLAT_TIME,
            "marginal_ns_per_row": marginal,
            "peak_rss_mib": rss,
            "rss_growth": max(rss) / min(rss),
        }
    return verdict


def print_table(console: Console, doc: dict[str, Any]) -> None:
    table = Table(title="scaling: time per row and peak RSS by sweep size")
    for column in ("entry", "rows", "seconds", "ns/row", "peak RSS MiB"):
        table.add_column(column, justify="left" if column == "entry" else "right")
    for p in doc["points"]:
        for name, e in p["entries"].items():
            table.add_row(
                name,
                f"{p['rows']:,}",
                "-" if e["seconds"] is None else f"{e['seconds']:.2f}",
                "-" if e["ns_per_row"] is None else f"{e['ns_per_row']:.0f}",
                "-" if e["peak_rss_mib"] is None else f"{e['peak_rss_mib']:.0f}",
            )
    console.print(table)
    for name, v in doc["flatness"].items():
        console.print(
            f"{name}: time per row within {v['max_deviation_from_median']:.0%} of its median "
            f"({'flat' if v['time_flat'] else 'NOT flat'} at +-{FLAT_TIME:.0%}); "
            f"peak RSS x{v['rss_growth']:.2f} from smallest to largest; "
            f"marginal ns/row between sizes: {', '.join(f'{m:.0f}' for m in v['marginal_ns_per_row'])}",
            highlight=False,
        )


def plot(doc: dict[str, Any], path: Path) -> Path | None:
    """A PNG of the curve, when matplotlib is installed; None otherwise."""
    if importlib.util.find_spec("matplotlib") is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (times, memory) = plt.subplots(1, 2, figsize=(11, 4))
    for name, v in doc["flatness"].items():
        rows = [p["rows"] for p in doc["points"] if name in p["entries"]]
        times.plot(rows, v["ns_per_row"], marker="o", label=name)
        memory.plot(rows, v["peak_rss_mib"], marker="o", label=name)
    times.set(xscale="log", xlabel="rows", ylabel="ns per row", title="time per row")
    times.set_ylim(bottom=0)
    memory.set(xscale="log", xlabel="rows", ylabel="MiB", title="peak RSS of the largest process")
    highest = max((r for v in doc["flatness"].values() for r in v["peak_rss_mib"]), default=0)
    memory.set_ylim(0, max(300, highest * 1.1))  # the 256 MiB line always in view
    memory.axhline(256, color="grey", linestyle="--", linewidth=1, label="256 MiB pod limit")
    for axes in (times, memory):
        axes.grid(True, alpha=0.3)
        axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
