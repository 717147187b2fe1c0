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

# Goals, stated for SQLite: calls per server CPU-second as a share of the ceiling's, in the same run.
GOALS = {
    "get_communities": 0.60,
    "explain_permissions": 0.50,
    "get_channels": 0.50,
    "use_invite_unlimited": 0.35,
}
# Goals of the single-operation measurements (bench/probes.py): (probe, figure, at most, what it is).
PROBE_GOALS = (
    ("target_users", "seconds", 30.0, "seconds until COMPLETED"),
    ("target_users", "rss_growth_mb", 200.0, "server RSS growth, MB"),
)


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
    calls: int  # answered within the window: OK, or a status the scenario expects (see `expected`)
    expected: dict[str, int]  # expected non-OK status -> calls within the window (part of `calls`)
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
    ok_per_server_cpu_s: float  # only the OK calls
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
        expected: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        for result in results:
            latencies.extend(result.latencies)
            expected.update(result.expected)
            errors.update(result.errors)
        ordered = sorted(latencies)
        calls = len(ordered)
        ok = calls - sum(expected.values())
        return cls(
            scenario=scenario,
            run=run,
            duration_s=duration_s,
            calls=calls,
            expected=dict(expected),
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
            ok_per_server_cpu_s=ok / server_cpu_s if server_cpu_s > 0 else math.nan,
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
    "ok_per_server_cpu_s",
    "server_rss_mb",
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
        expected: Counter[str] = Counter()
        for m in mine:
            errors.update(m.errors)
            expected.update(m.expected)
        row["errors"] = dict(errors)
        row["expected"] = dict(expected)
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


def goals(summary: dict[str, dict[str, Any]], sqlite: bool) -> list[dict[str, Any]]:
    rows = []
    for name, target in GOALS.items():
        ratio = summary.get(name, {}).get("ratio")
        if ratio is None:
            continue
        rows.append(
            {
                "scenario": name,
                "target_ratio": target,
                "ratio": ratio,
                "met": ratio >= target,
                "applies": sqlite,  # the goals are stated for SQLite
            }
        )
    return rows


def probe_goals(probes: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for probe, figure, limit, text in PROBE_GOALS:
        value = probes.get(probe, {}).get(figure)
        if value is not None:
            rows.append({"probe": probe, "figure": figure, "text": text, "limit": limit, "value": value,
                         "met": value < limit})  # fmt: skip
    return rows


def document(
    meta: dict[str, Any],
    measurements: list[Measurement],
    server: dict[str, Any],
    *,
    checks: dict[str, dict[str, Any]] | None = None,
    probes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    summary = summarize(measurements)
    probes = probes or {}
    return {
        "meta": meta,
        "summary": summary,
        "goals": goals(summary, meta.get("database_kind") == "sqlite"),
        "checks": checks or {},
        "probes": probes,
        "probe_goals": probe_goals(probes),
        "server": server,
        "measurements": [asdict(m) for m in measurements],
    }


# -------------------------------------------------------------------------------------------------- markdown


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _outcomes(row: dict[str, Any]) -> str:
    """Expected non-OK answers as a share of the calls, e.g. `NOT_FOUND 38%`."""
    calls = row["calls"] or 1
    return ", ".join(f"{code} {count / calls:.0%}" for code, count in sorted(row["expected"].items())) or "-"


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
        "| scenario | calls/s | p50 ms | p99 ms | server CPU (cores) | calls per server CPU-s | vs ceiling "
        "| expected non-OK | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for row in summary.values():
        errors = ", ".join(f"{code} {count}" for code, count in sorted(row["errors"].items())) or "0"
        lines.append(
            f"| {row['label']} | {_fmt(row['calls_per_s'])} | {_fmt(row['p50_ms'], 2)} | {_fmt(row['p99_ms'], 2)} "
            f"| {_fmt(row['server_cpu_util'], 2)} | {_fmt(row['calls_per_server_cpu_s'])} "
            f"| {_fmt(row['ratio'] * 100 if row['ratio'] is not None else None)}% | {_outcomes(row)} | {errors} |"
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
    for row in summary.values():
        if row["expected"]:
            ok = row["calls"] - sum(row["expected"].values())
            split = ", ".join(f"{count:,} {code}" for code, count in sorted(row["expected"].items()))
            lines += [
                "",
                f"{row['label']}: over all runs {ok:,} OK and {split} in the measured windows; "
                f"{_fmt(row['ok_per_server_cpu_s'])} OK calls per server CPU-second (median), "
                f"{_fmt(row['calls_per_server_cpu_s'])} answers of any expected kind.",
            ]
    if doc["goals"]:
        lines += ["", "Goals (calls per server CPU-second as a share of the ceiling's, same run, median of runs):", ""]
        for target in doc["goals"]:
            verdict = "met" if target["met"] else "NOT met"
            lines.append(
                f"- {SCENARIOS[target['scenario']].label} >= {target['target_ratio']:.0%}"
                f"{' (stated for SQLite)' if not target['applies'] else ''}: {target['ratio']:.0%}, {verdict}."
            )
    if doc["checks"]:
        lines += ["", "Checks after the runs:", ""]
        for name, check in doc["checks"].items():
            lines.append(f"- {SCENARIOS[name].label}: {'ok' if check['ok'] else 'FAILED'}: {check['text']}")
    if doc["probes"]:
        lines += ["", *probe_markdown(doc)]
    server = doc["server"]
    lines += [
        "",
        f"Server exit code on SIGTERM: {server['exit_code']}; error lines in its log: {server['problem_lines']}.",
    ]
    return "\n".join(lines) + "\n"


def probe_markdown(doc: dict[str, Any]) -> list[str]:
    probes = doc["probes"]
    lines = [
        "Single operations on the idle server (before the runs; not throughput):",
        "",
        "| measurement | result | goal |",
        "| --- | ---: | --- |",
    ]
    verdicts = {(g["probe"], g["figure"]): g for g in doc["probe_goals"]}

    def goal_cell(probe: str, figure: str) -> str:
        target = verdicts.get((probe, figure))
        if target is None:
            return "-"
        return f"< {target['limit']:g}: {'met' if target['met'] else 'NOT met'}"

    if "target_users" in probes:
        t = probes["target_users"]
        what = f"CreateInvite with a {t['ids']:,}-id target_users_file ({t['file_mb']:.1f} MB)"
        lines += [
            f"| {what}: seconds until {t['status']} | {_fmt(t['seconds'], 1)} "
            f"| {goal_cell('target_users', 'seconds')} |",
            f"| ... of which the CreateInvite call | {_fmt(t['create_invite_s'], 2)} | - |",
            f"| ... server CPU-seconds | {_fmt(t['server_cpu_s'], 1)} | - |",
            f"| ... server RSS: baseline / peak, MB | {_fmt(t['rss_baseline_mb'])} / {_fmt(t['rss_peak_mb'])} | - |",
            f"| ... server RSS growth, MB | {_fmt(t['rss_growth_mb'])} "
            f"| {goal_cell('target_users', 'rss_growth_mb')} |",
        ]
    if "edit_photo" in probes:
        e = probes["edit_photo"]
        what = f"EditPhoto of a {e['jpeg_mb']:.2f} MB {e['image']} JPEG, median of {e['photos']}"
        lines += [
            f"| {what}: seconds per photo (upload + EditPhoto) | {_fmt(e['seconds'], 2)} | - |",
            f"| ... of which {e['parts']} UploadFilePart calls / EditPhoto | {_fmt(e['upload_s'], 2)} / "
            f"{_fmt(e['edit_s'], 2)} | - |",
            f"| ... server CPU-seconds per photo | {_fmt(e['server_cpu_s'], 2)} | - |",
            f"| ... server RSS: baseline / peak, MB | {_fmt(e['rss_baseline_mb'])} / {_fmt(e['rss_peak_mb'])} | - |",
            f"| ... server RSS growth, MB | {_fmt(e['rss_growth_mb'])} | - |",
        ]
    return lines


# ------------------------------------------------------------------------------------------------------ plot


def plot(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    meta, summary = doc["meta"], doc["summary"]
    names = list(summary)
    medians = [summary[name]["calls_per_server_cpu_s"] for name in names]
    colors = ["#9e9e9e" if name == CEILING else "#3f7fbf" for name in names]

    figure, axes = plt.subplots(figsize=(11, 5.2), dpi=110)
    positions = range(len(names))
    bars = axes.bar(positions, medians, color=colors, width=0.6, label="median")
    for position, name in zip(positions, names, strict=True):
        runs = summary[name]["calls_per_server_cpu_s_per_run"]
        axes.scatter([position] * len(runs), runs, color="black", s=12, zorder=3, label="_runs")
        if summary[name]["expected"]:  # the OK calls alone, within the bar of all expected answers
            axes.bar(position, summary[name]["ok_per_server_cpu_s"], color="#1f4e79", width=0.6,
                     label="OK calls only (the rest: expected NOT_FOUND)")  # fmt: skip
    for bar, name in zip(bars, names, strict=True):
        ratio = summary[name]["ratio"]
        text = f"{bar.get_height():,.0f}" + ("" if name == CEILING or ratio is None else f"\n{ratio:.0%} of ceiling")
        top = max(bar.get_height(), *summary[name]["calls_per_server_cpu_s_per_run"])
        axes.annotate(text, (bar.get_x() + bar.get_width() / 2, top), ha="center", va="bottom", xytext=(0, 4),
                      textcoords="offset points", fontsize=9)  # fmt: skip
    axes.set_xlim(-0.5, len(names) - 0.5)
    if CEILING in summary:
        ceiling = summary[CEILING]["calls_per_server_cpu_s"]
        axes.axhline(ceiling, color="#9e9e9e", linestyle=":", linewidth=1)
        for position, name in zip(positions, names, strict=True):
            if name in GOALS:
                level = ceiling * GOALS[name]
                axes.hlines(level, position - 0.42, position + 0.42, color="#c0392b", linestyle="--", linewidth=1.2,
                            label="goal (share of the ceiling)" if name == next(n for n in names if n in GOALS)
                            else "_goal")  # fmt: skip
        axes.legend(loc="upper right", fontsize=8)
    labels = [
        summary[name]["label"].replace(" (", "\n(") + (f"\ngoal >= {GOALS[name]:.0%}" if name in GOALS else "")
        for name in names
    ]
    axes.set_xticks(list(positions), labels, fontsize=8)
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
