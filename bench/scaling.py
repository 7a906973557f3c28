"""The scaling curve: time per row and peak RSS of the same entries at growing row counts.

Flat is the goal: time per row within +-20 % across sizes, and peak RSS not growing with the
rows (memory is bounded by `chunk_rows` and the row-group size, not by the sweep).

For the entries that run steps.reduce (`run`, `reduce`), each point also carries what reduce
recorded in summary.json: `verify_seconds`, `merge_seconds`, `reduce_seconds` and
`summary_seconds`, the time to merge the shards' partial summaries into the summary. That one
must stay flat, not per row but in absolute terms: the summary never rereads rows, so its cost
depends on the shard count (the same at every size), never on the sweep's size.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.report import REDUCE_TIMINGS, Outcome

FLAT_TIME = 0.20  # +-20 % around the median time per row
FLAT_SUMMARY_SECONDS = 0.002
"""How far `summary_seconds` may spread (largest minus smallest) across sizes and be flat.

An absolute spread, not a ratio: the summary takes a fraction of a millisecond, measured once
per process, so a scheduler tick, a GC pause or a cold cache can double or triple it, and a
ratio bound (max/min <= 2, say) would fail on noise alone. An absolute budget on its own
(< 5 ms at every size) would not test growth at all. The spread bound says what the claim is:
the largest sweep adds at most 2 ms over the smallest. Spread over the rows between the
smallest and largest size it bounds any per-row cost (`summary_resolution_ns_per_row`): from
1e6 to 1e8 rows that is 0.02 ns per row, far below what rereading rows costs (reduce's own
merge shows that price, tens of ns per row). At tiny sizes the same bound rules out little;
the resolution is reported so that a flat verdict there is read for what it is.
"""


def point(rows: int, outcomes: dict[str, Outcome]) -> dict[str, Any]:
    entries = {}
    for name, outcome in outcomes.items():
        seconds = outcome.seconds
        entries[name] = {
            "seconds": seconds,
            "ns_per_row": None if seconds is None else seconds / outcome.rows * 1e9,
            "peak_rss_mib": outcome.peak_rss_mib,
            "error": outcome.error,
            # what reduce recorded in summary.json (median over rounds); None if it wrote none
            **{k: outcome.detail().get(k) for k in REDUCE_TIMINGS},
        }
    return {"rows": rows, "entries": entries}


def summary_flatness(rows: list[int], entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The verdict on `summary_seconds` across sizes (see FLAT_SUMMARY_SECONDS); empty when an
    entry did not record it at every size."""
    recorded = [e.get("summary_seconds") for e in entries]
    summary = [s for s in recorded if s is not None]
    if not summary or len(summary) < len(recorded):
        return {}
    spread = max(summary) - min(summary)
    span = max(rows) - min(rows)
    return {
        "summary_seconds": summary,
        "verify_seconds": [e.get("verify_seconds") for e in entries],
        "merge_seconds": [e.get("merge_seconds") for e in entries],
        "summary_spread_seconds": spread,
        "summary_growth": max(summary) / min(summary) if min(summary) > 0 else None,
        "summary_budget_seconds": FLAT_SUMMARY_SECONDS,
        "summary_resolution_ns_per_row": FLAT_SUMMARY_SECONDS / span * 1e9 if span else None,
        "summary_flat": spread <= FLAT_SUMMARY_SECONDS,
    }


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
            **summary_flatness(rows, [p["entries"][name] for p in points if name in p["entries"]]),
        }
    return verdict


def print_table(console: Console, doc: dict[str, Any]) -> None:
    table = Table(title="scaling: time per row and peak RSS by sweep size")
    columns = ("entry", "rows", "seconds", "ns/row", "peak RSS MiB")
    for column in (*columns, "verify s", "merge s", "summary ms"):
        table.add_column(column, justify="left" if column == "entry" else "right")
    for p in doc["points"]:
        for name, e in p["entries"].items():
            table.add_row(
                name,
                f"{p['rows']:,}",
                _num(e["seconds"], ".2f"),
                _num(e["ns_per_row"], ".0f"),
                _num(e["peak_rss_mib"], ".0f"),
                _num(e.get("verify_seconds"), ".3f"),
                _num(e.get("merge_seconds"), ".2f"),
                _num(
                    None if e.get("summary_seconds") is None else e["summary_seconds"] * 1e3, ".3f"
                ),
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
        if "summary_flat" in v:
            rows = [p["rows"] for p in doc["points"] if name in p["entries"]]
            console.print(_summary_line(name, v, rows), highlight=False)


def _summary_line(name: str, v: dict[str, Any], rows: list[int]) -> str:
    ms = [s * 1e3 for s in v["summary_seconds"]]
    verdict = "flat" if v["summary_flat"] else "NOT flat"
    line = (
        f"{name}: summary {min(ms):.3f}-{max(ms):.3f} ms across sizes, spread "
        f"{max(ms) - min(ms):.3f} ms ({verdict} at <= {v['summary_budget_seconds'] * 1e3:g} ms"
    )
    if v["summary_resolution_ns_per_row"] is not None:
        line += f": no per-row cost above {v['summary_resolution_ns_per_row']:.3g} ns"
    line += ")"
    merge = v["merge_seconds"][-1]
    if merge is not None:
        line += (
            f"; merge, which reads the rows: {merge:.3f} s at {rows[-1]:,} rows "
            f"({merge / rows[-1] * 1e9:.1f} ns/row)"
        )
    return line


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def plot(doc: dict[str, Any], path: Path) -> Path | None:
    """A PNG of the curve, when matplotlib is installed; None otherwise."""
    if importlib.util.find_spec("matplotlib") is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phased = {n: v for n, v in doc["flatness"].items() if "summary_flat" in v}
    figure, panels = plt.subplots(1, 3 if phased else 2, figsize=(16.5 if phased else 11, 4))
    times, memory = panels[0], panels[1]
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
        axes.legend(fontsize="small")
    if phased:
        _plot_phases(panels[2], doc, phased)
    for axes in panels:
        axes.grid(True, alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _plot_phases(axes: Any, doc: dict[str, Any], phased: dict[str, Any]) -> None:
    """Reduce's phases, log-log: merge reads every row and climbs with them; the summary
    reads the shards' partial summaries and stays level."""
    keys = ("merge_seconds", "verify_seconds", "summary_seconds")
    colors = [f"C{i}" for i, name in enumerate(doc["flatness"]) if name in phased]
    for color, (name, v) in zip(colors, phased.items(), strict=True):
        rows = [p["rows"] for p in doc["points"] if name in p["entries"]]
        for key, style, marker in zip(keys, ("--", ":", "-"), "s^o", strict=True):
            ms = [None if s is None else s * 1e3 for s in v[key]]
            label = f"{name}: {key.removesuffix('_seconds')}"
            if key == "summary_seconds":
                label += " (flat)" if v["summary_flat"] else " (NOT flat)"
            axes.plot(rows, ms, linestyle=style, marker=marker, color=color, label=label)
    axes.set(
        xscale="log",
        yscale="log",
        xlabel="rows",
        ylabel="ms",
        title=f"reduce's phases (summary flat: spread <= {FLAT_SUMMARY_SECONDS * 1e3:g} ms)",
    )
    highest = max(s for v in phased.values() for k in keys for s in v[k] if s is not None)
    axes.set_ylim(top=highest * 1e3 * 40)  # headroom for the legend above the lines
    axes.legend(fontsize="small", ncol=2, loc="upper left")
