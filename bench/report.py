"""Figures from client results and CPU readings; the JSON, the markdown table and the plot."""

from __future__ import annotations

import math
import statistics
from array import array
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.load import ClientResult
from bench.scenarios import CEILING, SCENARIOS

GOAL_SCENARIO = "get_communities"
GOAL_RATIO = 0.60  # of the ceiling's calls per server CPU-second, on SQLite


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass
class Measurement:
    """One scenario, one run."""

    scenario: str
    run: int
    duration_s: float  # the measured window, as the clients counted it
    calls: int  # succeeded within the window
    errors: dict[str, int]
    calls_per_s: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    server_cpu_s: float
    server_cpu_window_s: float  # wall time between the two server CPU readings
    server_cpu_util: float  # server CPU-seconds per wall second (can exceed 1: grpc has threads of its own)
    client_cpu_s: float
    machine_busy: float  # fraction of all cores busy during the window
    calls_per_server_cpu_s: float
    server_rss_mb: float

    @classmethod
    def of(
        cls,
        scenario: str,
        run: int,
        duration_s: float,
        results: list[ClientResult],
        *,
        server_cpu_s: float,
        server_cpu_window_s: float,
        client_cpu_s: float,
        machine_busy: float,
        server_rss_mb: float,
    ) -> Measurement:
        latencies = array("d")
        errors: Counter[str] = Counter()
        for result in results:
            latencies.extend(result.latencies)
            errors.update(result.errors)
        ordered = sorted(latencies)
        calls = len(ordered)
        return cls(
            scenario=scenario,
            run=run,
            duration_s=duration_s,
            calls=calls,
            errors=dict(errors),
            calls_per_s=calls / duration_s,
            p50_ms=percentile(ordered, 0.50) * 1000,
            p99_ms=percentile(ordered, 0.99) * 1000,
            mean_ms=(sum(ordered) / calls * 1000) if calls else math.nan,
            server_cpu_s=server_cpu_s,
            server_cpu_window_s=server_cpu_window_s,
            server_cpu_util=server_cpu_s / server_cpu_window_s,
            client_cpu_s=client_cpu_s,
            machine_busy=machine_busy,
            calls_per_server_cpu_s=calls / server_cpu_s if server_cpu_s > 0 else math.nan,
            server_rss_mb=server_rss_mb,
        )


SUMMARY_FIELDS = (
    "calls_per_s",
    "p50_ms",
    "p99_ms",
    "server_cpu_s",
    "server_cpu_util",
    "client_cpu_s",
    "machine_busy",
    "calls_per_server_cpu_s",
)


def summarize(measurements: list[Measurement]) -> dict[str, dict[str, Any]]:
    """Per scenario: the median of each figure over the runs, and the ratio to the ceiling.

    The ratio is taken within each run (scenario / ceiling of the same run) and then the median over runs: the
    machine's drift hits both sides of a ratio, so this is the stable figure."""
    ceiling_by_run = {m.run: m for m in measurements if m.scenario == CEILING}
    summary: dict[str, dict[str, Any]] = {}
    for name in SCENARIOS:
        mine = [m for m in measurements if m.scenario == name]
        if not mine:
            continue
        row: dict[str, Any] = {"runs": len(mine), "label": SCENARIOS[name].label}
        for key in SUMMARY_FIELDS:
            row[key] = statistics.median(getattr(m, key) for m in mine)
        errors: Counter[str] = Counter()
        for m in mine:
            errors.update(m.errors)
        row["errors"] = dict(errors)
        row["calls"] = sum(m.calls for m in mine)
        ratios = [
            m.calls_per_server_cpu_s / ceiling_by_run[m.run].calls_per_server_cpu_s
            for m in mine
            if m.run in ceiling_by_run
        ]
        throughput = [m.calls_per_s / ceiling_by_run[m.run].calls_per_s for m in mine if m.run in ceiling_by_run]
        row["ratio_per_run"] = ratios
        row["ratio"] = statistics.median(ratios) if ratios else None
        row["throughput_ratio"] = statistics.median(throughput) if throughput else None
        row["calls_per_server_cpu_s_per_run"] = [m.calls_per_server_cpu_s for m in mine]
        summary[name] = row
    return summary


def goal(summary: dict[str, dict[str, Any]], sqlite: bool) -> dict[str, Any]:
    ratio = summary.get(GOAL_SCENARIO, {}).get("ratio")
    return {
        "scenario": GOAL_SCENARIO,
        "target_ratio": GOAL_RATIO,
        "ratio": ratio,
        "met": None if ratio is None else ratio >= GOAL_RATIO,
        "applies": sqlite,  # the goal is stated for SQLite
    }


def document(meta: dict[str, Any], measurements: list[Measurement], server: dict[str, Any]) -> dict[str, Any]:
    summary = summarize(measurements)
    return {
        "meta": meta,
        "summary": summary,
        "goal": goal(summary, meta.get("database_kind") == "sqlite"),
        "server": server,
        "measurements": [asdict(m) for m in measurements],
    }


# -------------------------------------------------------------------------------------------------- markdown


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def markdown(doc: dict[str, Any]) -> str:
    meta, summary = doc["meta"], doc["summary"]
    lines = [
        f"Median of {meta['runs']} run(s); {meta['duration_s']:g} s measured after {meta['warmup_s']:g} s warm-up; "
        f"{meta['in_flight']} calls in flight from {meta['clients']} client processes; "
        f"database {meta['database_kind']}; server log level {meta['server_log_level']}; "
        f"{meta['cpu_count']} cores shared by clients and server.",
        "",
        f"Command: `{meta['command']}`; server from {meta['server_from']} at {meta['revision']}; {meta['started']}.",
        "",
        "| scenario | calls/s | p50 ms | p99 ms | server CPU (cores) | calls per server CPU-s | vs ceiling | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in summary.values():
        errors = ", ".join(f"{code} {count}" for code, count in sorted(row["errors"].items())) or "0"
        lines.append(
            f"| {row['label']} | {_fmt(row['calls_per_s'])} | {_fmt(row['p50_ms'], 2)} | {_fmt(row['p99_ms'], 2)} "
            f"| {_fmt(row['server_cpu_util'], 2)} | {_fmt(row['calls_per_server_cpu_s'])} "
            f"| {_fmt(row['ratio'] * 100 if row['ratio'] is not None else None)}% | {errors} |"
        )
    lines += [
        "",
        "Per run, calls per server CPU-second (ratio to the ceiling of the same run):",
        "",
        "| scenario | " + " | ".join(f"run {n + 1}" for n in range(meta["runs"])) + " |",
        "| --- |" + " ---: |" * meta["runs"],
    ]
    for row in summary.values():
        cells = [
            f"{_fmt(value)} ({ratio * 100:.0f}%)"
            for value, ratio in zip(row["calls_per_server_cpu_s_per_run"], row["ratio_per_run"], strict=False)
        ]
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    target = doc["goal"]
    if target["ratio"] is not None:
        verdict = "met" if target["met"] else "NOT met"
        lines += [
            "",
            f"Goal: {SCENARIOS[target['scenario']].label} at >= {target['target_ratio']:.0%} of the ceiling's calls "
            f"per server CPU-second{' (stated for SQLite)' if not target['applies'] else ''}: "
            f"{target['ratio']:.0%}, {verdict}.",
        ]
    server = doc["server"]
    lines += [
        "",
        f"Server exit code on SIGTERM: {server['exit_code']}; error lines in its log: {server['problem_lines']}.",
    ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------------ plot


def plot(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    meta, summary = doc["meta"], doc["summary"]
    names = list(summary)
    medians = [summary[name]["calls_per_server_cpu_s"] for name in names]
    colors = ["#9e9e9e" if name == CEILING else "#3f7fbf" for name in names]

    figure, axes = plt.subplots(figsize=(8, 4.8), dpi=110)
    positions = range(len(names))
    bars = axes.bar(positions, medians, color=colors, width=0.6, label="median")
    for position, name in zip(positions, names, strict=True):
        runs = summary[name]["calls_per_server_cpu_s_per_run"]
        axes.scatter([position] * len(runs), runs, color="black", s=12, zorder=3, label="_runs")
    for bar, name in zip(bars, names, strict=True):
        ratio = summary[name]["ratio"]
        text = f"{bar.get_height():,.0f}" + ("" if name == CEILING or ratio is None else f"\n{ratio:.0%} of ceiling")
        top = max(bar.get_height(), *summary[name]["calls_per_server_cpu_s_per_run"])
        axes.annotate(text, (bar.get_x() + bar.get_width() / 2, top), ha="center", va="bottom", xytext=(0, 4),
                      textcoords="offset points", fontsize=9)  # fmt: skip
    axes.set_xlim(-0.5, len(names) - 0.5)
    if CEILING in summary:
        goal_line = summary[CEILING]["calls_per_server_cpu_s"] * GOAL_RATIO
        axes.axhline(goal_line, color="#c0392b", linestyle="--", linewidth=1)
        axes.annotate(f"goal: {GOAL_RATIO:.0%} of ceiling", (len(names) - 0.55, goal_line), ha="right", va="bottom",
                      xytext=(0, 2), textcoords="offset points", color="#c0392b", fontsize=9)  # fmt: skip
    axes.set_xticks(list(positions), [summary[name]["label"] for name in names])
    axes.set_ylabel("calls per server CPU-second")
    axes.set_ylim(0, max(max(summary[n]["calls_per_server_cpu_s_per_run"]) for n in names) * 1.15)
    axes.set_title(
        f"communities server on {meta['database_kind']}: median of {meta['runs']} runs (dots: each run)\n"
        f"{meta['in_flight']} calls in flight, {meta['clients']} client processes, {meta['duration_s']:g} s each, "
        f"{meta['cpu_count']} shared cores",
        fontsize=10,
    )
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
