"""Benchmark the communities server: `python -m bench.run` from the project root (see bench/README.md).

Starts `communities serve` on 127.0.0.1 with a fresh SQLite database (or --database), sets up every scenario,
then for each run measures each scenario in turn with the same client processes, and writes JSON, a markdown
table and a plot. The figure that matters is calls per server CPU-second, compared with the ceiling (the
server's own health check) measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import psutil

from bench import probes, profile, report
from bench.load import ClientPool, Job
from bench.report import Measurement
from bench.scenarios import CEILING, SCENARIOS, SetupContext, Workload
from bench.server import BenchServer, ServerFailed, is_sqlite

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
START_DELAY_S = 0.25  # from handing out a job to its first call, so every process starts together


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per scenario and run (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each measurement (2)")
    parser.add_argument("--runs", type=int, default=3, help="runs; figures are medians over runs (3)")
    parser.add_argument("--in-flight", type=int, default=64, help="calls in flight over all client processes (64)")
    parser.add_argument("--clients", type=int, default=2, help="client processes (2)")
    parser.add_argument(
        "--scenarios",
        default=",".join(name for name in SCENARIOS if name != CEILING),
        help=f"comma-separated, from: {', '.join(n for n in SCENARIOS if n != CEILING)} (the ceiling always runs)",
    )
    parser.add_argument(
        "--database", help="database URL (default: a fresh sqlite:///TMPDIR/bench.db); postgresql://... works too"
    )
    parser.add_argument(
        "--log-info", action="store_true", help="keep the server's INFO logging (one line per call); default WARNING"
    )
    parser.add_argument(
        "--revision",
        help="benchmark the server of this git revision (exported with git archive) instead of the working tree",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="more environment for the server, repeatable (e.g. COMMUNITIES_DB_POOL_SIZE=16)",
    )
    parser.add_argument("--call-timeout", type=float, default=30.0, help="deadline of each call in seconds (30)")
    parser.add_argument("--pause", type=float, default=0.5, help="idle seconds between measurements (0.5)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out", help="where JSON and markdown go (bench/out)")
    parser.add_argument(
        "--plot", type=Path, help="where the PNG goes (default: next to the JSON); bench/results.png to publish"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the runs, one more (unreported) measurement per scenario with py-spy sampling the server; "
        "collapsed stacks and a summary go next to the JSON",
    )
    parser.add_argument("--native", action="store_true", help="with --profile: sample C/Cython frames too")
    parser.add_argument(
        "--probes",
        default=",".join(probes.PROBES),
        help=f"single-operation measurements before the runs, comma-separated from {', '.join(probes.PROBES)}; "
        "'none' for none (default: all)",
    )
    parser.add_argument(
        "--target-users", type=int, default=1_000_000, help="ids in the target_users probe's file (1000000)"
    )
    parser.add_argument("--photos", type=int, default=10, help="photos in the edit_photo probe; medians (10)")
    parser.add_argument(
        "--fresh-users",
        type=int,
        default=30_000,
        help="people made for the UseInvite scenarios, split between the in-flight slots (30000)",
    )
    parser.add_argument("--keep-workdir", action="store_true", help="keep the temporary database and server log")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.scenarios.split(",") if name.strip() and name.strip() != CEILING]
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    args.scenario_names = [CEILING, *names]
    args.probe_names = [] if args.probes.strip() == "none" else [n.strip() for n in args.probes.split(",") if n.strip()]
    unknown = [name for name in args.probe_names if name not in probes.PROBES]
    if unknown:
        parser.error(f"unknown probe(s) {', '.join(unknown)}; known: {', '.join(probes.PROBES)}")
    if args.fresh_users < args.in_flight:
        parser.error("--fresh-users must be at least --in-flight")
    args.server_env_map = {}
    for item in args.server_env:
        name, equals, value = item.partition("=")
        if not equals or not name:
            parser.error(f"--server-env expects NAME=VALUE, got {item!r}")
        args.server_env_map[name] = value
    if args.runs < 1 or args.duration <= 0 or args.warmup < 0 or args.clients < 1 or args.in_flight < args.clients:
        parser.error("need --runs >= 1, --duration > 0, --warmup >= 0, 1 <= --clients <= --in-flight")
    return args


def git_revision() -> str | None:
    try:
        revision = subprocess.run(
            ["git", "-C", str(PROJECT_DIR), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return revision or None


def export_revision(revision: str, into: Path) -> str:
    """Export a revision's files into `into`; returns its full commit id."""
    commit = subprocess.run(
        ["git", "-C", str(PROJECT_DIR), "rev-parse", "--verify", revision + "^{commit}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(PROJECT_DIR), "archive", commit], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return commit


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def busy_fraction(before: Any, after: Any) -> float:
    """Share of all cores not idle between two psutil.cpu_times() readings."""
    total = sum(after) - sum(before)
    idle = (after.idle - before.idle) + (getattr(after, "iowait", 0.0) - getattr(before, "iowait", 0.0))
    return (total - idle) / total if total > 0 else float("nan")


async def sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.monotonic()))


async def measure(
    args: argparse.Namespace,
    server: BenchServer,
    pool: ClientPool,
    name: str,
    workload: Workload,
    run: int,
    answered: Counter[str],
    profile_to: Path | None = None,
) -> Measurement:
    start_at = time.monotonic() + START_DELAY_S
    measure_from = start_at + args.warmup
    measure_until = measure_from + args.duration
    pool.submit(
        [
            Job(name, workload, slots, start_at, measure_from, measure_until, args.call_timeout)
            for slots in pool.slots(args.in_flight)
        ]
    )
    await sleep_until(measure_from)
    wall0, server0, clients0, machine0 = time.monotonic(), server.cpu_seconds(), pool.cpu_seconds(), psutil.cpu_times()
    sampler = perf = None
    if profile_to is not None:
        sampler = await profile.record(server.pid, args.duration, profile_to, native=args.native)
        perf = await profile.record_perf(server.pid, args.duration, profile_to.with_suffix(".perf.data"))
    await sleep_until(measure_until)
    wall1, server1, clients1, machine1 = time.monotonic(), server.cpu_seconds(), pool.cpu_seconds(), psutil.cpu_times()
    results = await pool.collect(within_s=args.call_timeout + 30)
    for result in results:
        answered.update(result.answered)
    for tool, process in (("py-spy", sampler), ("perf", perf)):
        if process is not None:
            _, errors = await process.communicate()
            if process.returncode != 0:
                log(f"{tool} exited {process.returncode}: {errors.decode().strip()}")
    return Measurement.of(
        name,
        run,
        args.duration,
        results,
        server_cpu_s=server1 - server0,
        server_cpu_window_s=wall1 - wall0,
        client_cpu_s=clients1 - clients0,
        machine_busy=busy_fraction(machine0, machine1),
        server_rss_mb=server.rss_bytes() / 2**20,
    )


def describe(m: Measurement) -> str:
    errors = sum(m.errors.values())
    return (
        f"run {m.run} {m.scenario}: {m.calls_per_s:,.0f} calls/s, p50 {m.p50_ms:.2f} ms, p99 {m.p99_ms:.2f} ms, "
        f"server {m.server_cpu_s:.2f} CPU-s ({m.server_cpu_util:.2f} cores), "
        f"{m.calls_per_server_cpu_s:,.0f} calls per server CPU-s, machine {m.machine_busy:.0%} busy"
        + (f", {errors} ERRORS {m.errors}" if errors else "")
    )


async def profile_scenarios(
    args: argparse.Namespace,
    server: BenchServer,
    pool: ClientPool,
    workloads: dict[str, Workload],
    answered: dict[str, Counter[str]],
) -> None:
    for name in args.scenario_names:
        await asyncio.sleep(args.pause)
        stacks = args.profile_stem.with_name(f"{args.profile_stem.name}-{name}.stacks")
        measurement = await measure(args, server, pool, name, workloads[name], 0, answered[name], profile_to=stacks)
        log(f"profiled (not reported): {describe(measurement)}")
        text = [describe(measurement), ""]
        perf_data = stacks.with_suffix(".perf.data")
        if perf_data.exists():
            text.append(await profile.perf_summary(perf_data))
        if stacks.exists():
            text += ["py-spy:", profile.summarize(profile.read_stacks(stacks))]
        stacks.with_suffix(".txt").write_text("\n".join(text))
        log(f"wrote {stacks.with_suffix('.txt')} (summary), {stacks.name} (collapsed stacks)")


async def bench(args: argparse.Namespace, workdir: Path) -> tuple[list[Measurement], dict[str, Any]]:
    database = args.database or f"sqlite:///{workdir / 'bench.db'}"
    source = workdir / "source" if args.revision else None
    server = BenchServer(
        database,
        workdir,
        log_level="INFO" if args.log_info else "WARNING",
        source=source,
        extra_env=args.server_env_map,
    )
    measurements: list[Measurement] = []
    extra: dict[str, Any] = {"checks": {}, "probes": {}}
    try:
        log(f"starting the server on {server.address} ({'sqlite' if is_sqlite(database) else 'postgresql'})")
        await server.start()
        log(f"server pid {server.pid} is serving; setting up scenarios")
        workloads: dict[str, Workload] = {}
        answered: dict[str, Counter[str]] = {name: Counter() for name in args.scenario_names}
        async with grpc.aio.insecure_channel(server.address) as channel:
            measurements_each = args.runs + (1 if args.profile else 0)
            context = SetupContext(
                server=server,
                channel=channel,
                clients=args.clients,
                in_flight=args.in_flight,
                workdir=workdir,
                seconds_per_scenario=(START_DELAY_S + args.warmup + args.duration) * measurements_each,
                fresh_users=args.fresh_users,
            )
            for name in args.scenario_names:
                started = time.monotonic()
                workloads[name] = await SCENARIOS[name].setup(context)
                log(f"set up {name} ({time.monotonic() - started:.1f} s)")
            if args.probe_names:
                log(f"single operations on the idle server: {', '.join(args.probe_names)}")
                extra["probes"] = await probes.run(
                    context, args.probe_names, target_ids=args.target_users, photos=args.photos
                )
                for name, result in extra["probes"].items():
                    log(f"{name}: " + ", ".join(f"{k} {v:.2f}" for k, v in result.items() if isinstance(v, float)))
            log(f"starting {args.clients} client processes")
            async with ClientPool(server.address, args.clients) as pool:
                for run in range(1, args.runs + 1):
                    for name in args.scenario_names:
                        await asyncio.sleep(args.pause)
                        measurement = await measure(args, server, pool, name, workloads[name], run, answered[name])
                        measurements.append(measurement)
                        log(describe(measurement))
                if args.profile:
                    await profile_scenarios(args, server, pool, workloads, answered)
            for name in args.scenario_names:
                verify = SCENARIOS[name].verify
                if verify is not None:
                    check = await verify(context, workloads[name], answered[name])
                    extra["checks"][name] = {"ok": check.ok, "text": check.text, "answered": dict(answered[name])}
                    log(f"check {name}: {'ok' if check.ok else 'FAILED'}: {check.text}")
    finally:
        exit_code = await server.stop()
        problems, first = server.log_problems()
        log(f"server stopped, exit code {exit_code}; {problems} error line(s) in its log")
        for line in first[:5]:
            log(f"  server log: {line}")
    extra["server"] = {"exit_code": exit_code, "problem_lines": problems, "first_problems": first}
    return measurements, extra


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"bench-{started.strftime('%Y%m%d-%H%M%S')}"
    args.profile_stem = stem
    args.load_before = os.getloadavg()
    if args.profile:
        profile.py_spy()  # fail early when py-spy is missing
    workdir = Path(tempfile.mkdtemp(prefix="communities-bench-"))
    try:
        if args.revision:
            args.revision_commit = export_revision(args.revision, workdir / "source")
            log(f"server from revision {args.revision} ({args.revision_commit[:12]})")
        measurements, extra = asyncio.run(bench(args, workdir))
    except KeyboardInterrupt:
        log("interrupted; everything this bench started is stopped")
        return 130
    except ServerFailed as error:
        log(f"failed: {error}")
        return 1
    finally:
        if args.keep_workdir:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    database = args.database or "sqlite:///TMPDIR/bench.db"
    meta = {
        "started": started.isoformat(timespec="seconds"),
        "command": "python -m bench.run " + " ".join(sys.argv[1:] if argv is None else argv),
        "revision": args.revision_commit if args.revision else git_revision(),
        "server_from": f"git archive {args.revision}" if args.revision else "working tree",
        "scenarios": {name: SCENARIOS[name].description for name in args.scenario_names},
        "probes": args.probe_names,
        "fresh_users": args.fresh_users,
        "runs": args.runs,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "in_flight": args.in_flight,
        "clients": args.clients,
        "database_kind": "sqlite" if is_sqlite(database) else "postgresql",
        "server_log_level": "INFO" if args.log_info else "WARNING",
        "server_env": args.server_env_map,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "platform": platform.platform(),
    }
    load_before, load_after = args.load_before, os.getloadavg()
    meta["load_average"] = {"before": load_before, "after": load_after}
    server_info = extra["server"]
    doc = report.document(meta, measurements, server_info, checks=extra["checks"], probes=extra["probes"])
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    plot_path = args.plot or stem.with_suffix(".png")
    json_path.write_text(json.dumps(doc, indent=2) + "\n")
    table = report.markdown(doc)
    md_path.write_text(table)
    report.plot(doc, plot_path)
    print(table)
    log(f"wrote {json_path}, {md_path}, {plot_path}")
    checks_ok = all(check["ok"] for check in extra["checks"].values())
    return 0 if server_info["exit_code"] == 0 and not server_info["problem_lines"] and checks_ok else 1


if __name__ == "__main__":
    sys.exit(main())
