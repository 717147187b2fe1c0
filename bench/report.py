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

# Goals (issue 10) per database: calls per server CPU-second as a share of the ceiling's, in the same run.
GOALS = {
    "sqlite": {
        "get_communities": 0.85,
        "create_community": 0.40,
        "explain_permissions": 0.75,
        "get_channels": 0.75,
        "use_invite_unlimited": 0.60,
    },
    "postgresql": {  # reads >= 0.6, writes >= 0.35
        "get_communities": 0.60,
        "create_community": 0.35,
        "explain_permissions": 0.60,
        "get_channels": 0.60,
        "use_invite_unlimited": 0.35,
    },
}
DATABASE_LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
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


def goals(summary: dict[str, dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    rows = []
    for name, target in GOALS[kind].items():
        ratio = summary.get(name, {}).get("ratio")
        if ratio is None:
            continue
        rows.append(
            {
                "scenario": name,
                "target_ratio": target,
                "ratio": ratio,
                "met": ratio >= target,
                "ratio_per_run": summary[name]["ratio_per_run"],
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
    latency: dict[str, Any] | None = None,
    scale: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One database's figures."""
    summary = summarize(measurements)
    probes = probes or {}
    return {
        "meta": meta,
        "summary": summary,
        "goals": goals(summary, meta["database_kind"]),
        "latency": latency,
        "scale": scale,
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
                f"- {SCENARIOS[target['scenario']].label} >= {target['target_ratio']:.2f}: {target['ratio']:.2f}, "
                f"{verdict}."
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


# ------------------------------------------------------------------------------- all databases of one bench


def combined(docs: dict[str, dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """The whole bench: every database's document under `databases`."""
    return {"meta": meta, "databases": docs}


def _ratio_cell(target: dict[str, Any] | None) -> str:
    if target is None:
        return "- | - | -"
    runs = "/".join(f"{ratio:.2f}" for ratio in target["ratio_per_run"])
    return f"{target['ratio']:.2f} ({runs}) | >= {target['target_ratio']:.2f} | {'met' if target['met'] else 'NOT met'}"


def goals_markdown(doc: dict[str, Any]) -> list[str]:
    """Issue 10's goals: the throughput ratios per database, the unloaded latency, the scale."""
    databases = doc["databases"]
    kinds = list(databases)
    names = [n for n in SCENARIOS if n != CEILING and any(n in d["summary"] for d in databases.values())]
    lines = [
        "Calls per server CPU-second as a share of the health check's in the same run: median of runs (each run).",
        "",
        "| scenario | " + " | ".join(f"{DATABASE_LABELS[k]} | goal | verdict" for k in kinds) + " |",
        "| --- |" + " ---: | --- | --- |" * len(kinds),
    ]
    lines.append(
        "| Health/Check (ceiling), calls per server CPU-s | "
        + " | ".join(
            f"{_fmt(databases[k]['summary'][CEILING]['calls_per_server_cpu_s'])} | - | -"
            if CEILING in databases[k]["summary"]
            else "- | - | -"
            for k in kinds
        )
        + " |"
    )
    for name in names:
        cells = []
        for kind in kinds:
            target = next((g for g in databases[kind]["goals"] if g["scenario"] == name), None)
            row = databases[kind]["summary"].get(name)
            if target is None and row is not None and row["ratio"] is not None:
                runs = "/".join(f"{ratio:.2f}" for ratio in row["ratio_per_run"])
                cells.append(f"{row['ratio']:.2f} ({runs}) | - | -")
            else:
                cells.append(_ratio_cell(target))
        lines.append(f"| {SCENARIOS[name].label} | " + " | ".join(cells) + " |")
    latencies = {k: d["latency"] for k, d in databases.items() if d.get("latency")}
    if latencies:
        some = next(iter(latencies.values()))
        lines += [
            "",
            f"Unloaded latency: one call in flight, {some['calls']:,} calls of each after {some['warmup']:,} "
            f"warm-up calls, in alternating blocks; ms (goal: GetCommunities at most {some['gap_goal_ms']:g} ms "
            "above the health check, at p50 and at p99).",
            "",
            "| database | Health/Check p50 / p99 | GetCommunities p50 / p99 | difference p50 / p99 | verdict |",
            "| --- | ---: | ---: | ---: | --- |",
        ]
        for kind, lat in latencies.items():
            h, g = lat[CEILING], lat["get_communities"]
            p50, p99 = ("met" if lat[f"{q}_ms_met"] else "NOT met" for q in ("p50", "p99"))
            verdict = p50 if p50 == p99 else f"p50 {p50}, p99 {p99}"
            lines.append(
                f"| {DATABASE_LABELS[kind]} | {h['p50_ms']:.3f} / {h['p99_ms']:.3f} | {g['p50_ms']:.3f} / "
                f"{g['p99_ms']:.3f} | {lat['p50_ms_gap']:+.3f} / {lat['p99_ms_gap']:+.3f} | {verdict} |"
            )
    scales = {k: d["scale"] for k, d in databases.items() if d.get("scale")}
    if scales:
        some = next(iter(scales.values()))
        sizes = some["sizes"]
        lines += [
            "",
            "Scale: calls per server CPU-second with communities of N members (in brackets: the ratio to the same "
            f"run's health check), median of {doc['meta']['scale_runs']} runs of "
            f"{doc['meta']['scale_duration_s']:g} s; "
            f"goal: flat, read here as the largest size's ratio at least {some['flat_goal']:.0%} of the smallest's.",
            "",
            "| database | scenario | "
            + " | ".join(f"{size:,} members" for size in sizes)
            + " | largest / smallest | verdict |",
            "| --- | --- |" + " ---: |" * len(sizes) + " ---: | --- |",
        ]
        for kind, result in scales.items():
            for scenario, row in result["scenarios"].items():
                cells = [
                    f"{_fmt(row['sizes'][size]['calls_per_server_cpu_s'])} ({row['sizes'][size]['ratio']:.2f})"
                    if size in row["sizes"] or str(size) in row["sizes"]
                    else "-"
                    for size in sizes
                ]
                lines.append(
                    f"| {DATABASE_LABELS[kind]} | {SCENARIOS[scenario].label} | "
                    + " | ".join(cells)
                    + f" | {_fmt(row['flatness'], 2)} | {'met' if row['met'] else 'NOT met'} |"
                )
        for kind, result in scales.items():
            grown = []
            for name, check in result["checks"].items():
                size = int(name.split("@")[1])
                grown.append(f"{size:,} -> ~{size + check['answered'].get('OK', 0) // 10:,}")
            lines.append("")
            lines.append(
                f"- {DATABASE_LABELS[kind]}: {result['member_rows']:,} memberships inserted in bulk in "
                f"{result['fill_s']:.1f} s; UseInvite's communities grew during the runs ({', '.join(grown)} members "
                "each); checks: "
                + "; ".join(
                    f"{name.split('@')[1]} members {'ok' if c['ok'] else 'FAILED'}: {c['text']}"
                    for name, c in result["checks"].items()
                )
            )
    return lines


def latency_line(lat: dict[str, Any]) -> str:
    h, g = lat[CEILING], lat["get_communities"]
    return (
        f"latency, one in flight: health p50 {h['p50_ms']:.3f} p99 {h['p99_ms']:.3f} ms, GetCommunities p50 "
        f"{g['p50_ms']:.3f} p99 {g['p99_ms']:.3f} ms (difference {lat['p50_ms_gap']:+.3f} / {lat['p99_ms_gap']:+.3f})"
    )


def combined_markdown(doc: dict[str, Any]) -> str:
    meta = doc["meta"]
    load = meta["load_average"]
    lines = [
        f"Command: `{meta['command']}`; server from {meta['server_from']} at {meta['revision']}; {meta['started']}; "
        f"{meta['seconds'] / 60:.1f} minutes in all ("
        + ", ".join(f"{DATABASE_LABELS[k]} {d['meta']['seconds'] / 60:.1f}" for k, d in doc["databases"].items())
        + f"); load average {load['before'][0]:.1f} before, {load['after'][0]:.1f} after; "
        f"{meta['cpu_count']} cores shared by clients and server.",
        "",
        *goals_markdown(doc),
    ]
    for kind, one in doc["databases"].items():
        lines += ["", f"### {DATABASE_LABELS[kind]}", "", markdown(one).rstrip("\n")]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------------ plot


def plot(doc: dict[str, Any], path: Path) -> None:
    """Calls per server CPU-second per scenario, the databases side by side; each database's ceiling a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    meta, databases = doc["meta"], doc["databases"]
    kinds = list(databases)
    names = [n for n in SCENARIOS if any(n in d["summary"] for d in databases.values())]
    palette = {"sqlite": ("#3f7fbf", "#1f4e79"), "postgresql": ("#e08a3c", "#8a4a10")}
    width = 0.8 / len(kinds)
    figure, axes = plt.subplots(figsize=(12, 5.6), dpi=110)
    top = 0.0
    for k, kind in enumerate(kinds):
        summary = databases[kind]["summary"]
        color, dark = palette.get(kind, ("#777777", "#333333"))
        ceiling = summary.get(CEILING, {}).get("calls_per_server_cpu_s")
        if ceiling:
            axes.axhline(ceiling, color=color, linestyle=":", linewidth=1.2,
                         label=f"{DATABASE_LABELS[kind]} ceiling (health check)")  # fmt: skip
        for position, name in enumerate(names):
            row = summary.get(name)
            if row is None:
                continue
            x = position - 0.4 + width * (k + 0.5)
            runs = row["calls_per_server_cpu_s_per_run"]
            axes.bar(x, row["calls_per_server_cpu_s"], width=width * 0.92, color=color,
                     label=DATABASE_LABELS[kind] if position == 0 else "_")  # fmt: skip
            axes.scatter([x] * len(runs), runs, color="black", s=8, zorder=3)
            top = max(top, row["calls_per_server_cpu_s"], *runs)
            goal = GOALS[kind].get(name)
            if goal and ceiling:
                axes.hlines(ceiling * goal, x - width / 2, x + width / 2, color=dark, linestyle="--", linewidth=1.4,
                            label="goal (share of that ceiling)" if (k, name) == (0, "get_communities")
                            else "_")  # fmt: skip
            text = f"{row['calls_per_server_cpu_s']:,.0f}"
            if name != CEILING and row["ratio"] is not None:
                text += f"\n{row['ratio']:.2f}"
            axes.annotate(text, (x, max(row["calls_per_server_cpu_s"], *runs)), ha="center", va="bottom",
                          xytext=(0, 3), textcoords="offset points", fontsize=7)  # fmt: skip
    labels = [SCENARIOS[name].label.replace(" (", "\n(") for name in names]
    axes.set_xticks(list(range(len(names))), labels, fontsize=8)
    axes.set_xlim(-0.5, len(names) - 0.5)
    axes.set_ylim(0, top * 1.2)
    axes.set_ylabel("calls per server CPU-second")
    axes.set_title(
        f"communities server: median of {meta['runs']} runs (dots: each run; numbers: median, ratio to its ceiling)\n"
        f"{meta['in_flight']} calls in flight, {meta['clients']} client processes, {meta['duration_s']:g} s each, "
        f"{meta['cpu_count']} shared cores",
        fontsize=10,
    )
    axes.legend(loc="upper right", fontsize=8)
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
