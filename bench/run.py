"""Benchmark the communities server: `python -m bench.run` from the project root (see bench/README.md).

For each database (a fresh SQLite file, then PostgreSQL: a throwaway local server started like the tests start
it), starts `communities serve` on 127.0.0.1 from a copy of the working tree, sets up every scenario, then for
each run measures each scenario in turn with the same client processes; then the unloaded latency
(bench/latency.py) and the scale part (bench/scale.py) on the same server. Writes JSON, a markdown report and a
plot. The figure that matters is calls per server CPU-second, compared with the ceiling (the server's own
health check) measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import psutil

from bench import latency, probes, profile, report, scale
from bench.load import ClientPool, Job
from bench.report import Measurement
from bench.scenarios import CEILING, SCENARIOS, SetupContext, Workload
from bench.server import BenchServer, ServerFailed, is_sqlite

DATABASES = ("sqlite", "postgresql")

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
        "--databases",
        default=",".join(DATABASES),
        help="which databases, in turn, each with its own server: sqlite (a fresh file), postgresql (a throwaway "
        "local server, or a new database on --postgres); default both",
    )
    parser.add_argument(
        "--database", help="one database URL instead of --databases (sqlite:///PATH or postgresql://.../DB)"
    )
    parser.add_argument(
        "--postgres",
        help="a PostgreSQL server URL whose user may CREATE DATABASE (postgresql://USER@HOST:PORT), instead of "
        "starting one; COMMUNITIES_TEST_POSTGRES_URL works too",
    )
    parser.add_argument(
        "--latency-calls",
        type=int,
        default=5000,
        help="unloaded latency: calls of each of GetCommunities and the health check, one in flight (5000; 0: skip)",
    )
    parser.add_argument("--latency-warmup", type=int, default=500, help="unmeasured calls of each first (500)")
    parser.add_argument(
        "--scale",
        default="10,1000,100000",
        help="members per community for the scale part, comma-separated, or 'none' (10,1000,100000)",
    )
    parser.add_argument("--scale-runs", type=int, help="runs of the scale part (default: --runs)")
    parser.add_argument("--scale-duration", type=float, default=5.0, help="measured seconds per scale scenario (5)")
    parser.add_argument("--scale-warmup", type=float, default=1.5, help="warm-up seconds per scale scenario (1.5)")
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
        "'none' for none (default: all, on the first database only)",
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
    if args.database:
        args.database_list = ["sqlite" if is_sqlite(args.database) else "postgresql"]
    else:
        args.database_list = [name.strip() for name in args.databases.split(",") if name.strip()]
        if not args.database_list or any(name not in DATABASES for name in args.database_list):
            parser.error(f"--databases takes a comma-separated list from {', '.join(DATABASES)}")
    try:
        args.scale_sizes = [] if args.scale.strip() == "none" else sorted({int(n) for n in args.scale.split(",")})
    except ValueError:
        parser.error("--scale takes comma-separated member counts, e.g. 10,1000,100000, or none")
    if any(size < 2 for size in args.scale_sizes):
        parser.error("--scale sizes must be at least 2 (the owner and the reader)")
    args.scale_runs = args.scale_runs or args.runs
    # Latency and scale use the GetCommunities (and UseInvite) scenarios' setup: without them, they are skipped.
    if "get_communities" not in names:
        args.latency_calls = 0
    if not {"get_communities", "use_invite_unlimited"} <= set(names):
        args.scale_sizes = []
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
    *,
    label: str | None = None,
    warmup: float | None = None,
    duration: float | None = None,
) -> Measurement:
    """One measurement of scenario `name` (reported as `label`, default the name)."""
    warmup = args.warmup if warmup is None else warmup
    duration = args.duration if duration is None else duration
    start_at = time.monotonic() + START_DELAY_S
    measure_from = start_at + warmup
    measure_until = measure_from + duration
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
        sampler = await profile.record(server.pid, duration, profile_to, native=args.native)
        perf = await profile.record_perf(server.pid, duration, profile_to.with_suffix(".perf.data"))
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
        label or name,
        run,
        duration,
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


async def bench(
    args: argparse.Namespace, workdir: Path, database: str, source: Path, *, probe_names: list[str]
) -> tuple[list[Measurement], dict[str, Any]]:
    """Everything on one database: throughput runs, latency, scale. `source`: the server's source tree."""
    kind = "sqlite" if is_sqlite(database) else "postgresql"
    server = BenchServer(
        database,
        workdir,
        log_level="INFO" if args.log_info else "WARNING",
        source=source,
        extra_env=args.server_env_map,
    )
    measurements: list[Measurement] = []
    extra: dict[str, Any] = {"checks": {}, "probes": {}, "latency": None, "scale": None}
    try:
        log(f"{kind}: starting the server on {server.address}")
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
            if probe_names:
                log(f"single operations on the idle server: {', '.join(probe_names)}")
                extra["probes"] = await probes.run(
                    context, probe_names, target_ids=args.target_users, photos=args.photos
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
                if args.latency_calls:
                    log(f"unloaded latency: {args.latency_calls} calls of each, one in flight")
                    extra["latency"] = await latency.measure(
                        server.address, workloads, args.latency_calls, args.latency_warmup
                    )
                    log(report.latency_line(extra["latency"]))
                if args.scale_sizes:
                    extra["scale"] = await run_scale(args, server, pool, context, workloads[CEILING])
    finally:
        exit_code = await server.stop()
        problems, first = server.log_problems()
        log(f"server stopped, exit code {exit_code}; {problems} error line(s) in its log")
        for line in first[:5]:
            log(f"  server log: {line}")
    extra["server"] = {"exit_code": exit_code, "problem_lines": problems, "first_problems": first}
    return measurements, extra


async def run_scale(
    args: argparse.Namespace, server: BenchServer, pool: ClientPool, context: SetupContext, ceiling: Workload
) -> dict[str, Any]:
    """bench/scale.py: set up the sizes, then runs of the ceiling and each size's two scenarios."""
    started = time.monotonic()
    made = await scale.setup(context, args.scale_sizes)
    log(
        f"set up scale {args.scale_sizes} ({time.monotonic() - started:.1f} s; bulk insert of "
        f"{made['member_rows']:,} memberships and {made['filler_people']:,} people {made['fill_s']:.1f} s)"
    )
    workloads = {CEILING: ceiling, **made["workloads"]}
    answered: dict[str, Counter[str]] = {name: Counter() for name in workloads}
    measurements = []
    for run in range(1, args.scale_runs + 1):
        for name, workload in workloads.items():
            await asyncio.sleep(args.pause)
            scenario = name.split("@")[0]
            measurement = await measure(
                args, server, pool, scenario, workload, run, answered[name],
                label=name, warmup=args.scale_warmup, duration=args.scale_duration,
            )  # fmt: skip
            measurements.append(measurement)
            log("scale " + describe(measurement))
    summary = scale.summarize(measurements, args.scale_sizes)
    summary["checks"] = await scale.verify(context, made["workloads"], answered)
    summary["setup_s"] = time.monotonic() - started - sum(m.duration_s for m in measurements)
    summary["fill_s"], summary["member_rows"] = made["fill_s"], made["member_rows"]
    summary["measurements"] = [asdict(m) for m in measurements]
    for name, check in summary["checks"].items():
        log(f"check scale {name}: {'ok' if check['ok'] else 'FAILED'}: {check['text']}")
    return summary


def snapshot_tree(into: Path) -> Path:
    """A copy of the working tree's src/ and generated/, so edits made while the bench runs do not mix in."""
    for part in ("src", "generated"):
        shutil.copytree(PROJECT_DIR / part, into / part, ignore=shutil.ignore_patterns("__pycache__"))
    return into


async def bench_all(
    args: argparse.Namespace, workdir: Path, source: Path, started: datetime, revision: str | None
) -> dict[str, dict[str, Any]]:
    """Each database in turn, in one event loop; a PostgreSQL server started here is stopped at the end."""
    docs: dict[str, dict[str, Any]] = {}
    with contextlib.ExitStack() as stack:
        for index, kind in enumerate(args.database_list):
            if args.database:
                database = args.database
            elif kind == "sqlite":
                database = f"sqlite:///{workdir / kind / 'bench.db'}"
            else:
                from tests.support.postgres import create_database, postgres_server

                if args.postgres:
                    os.environ["COMMUNITIES_TEST_POSTGRES_URL"] = args.postgres
                log("starting a local PostgreSQL server (tests/support/postgres.py)")
                database = await create_database(stack.enter_context(postgres_server()))
            (workdir / kind).mkdir(exist_ok=True)
            args.profile_stem = args.stem.with_name(f"{args.stem.name}-{kind}")
            db_started = time.monotonic()
            probe_names = args.probe_names if index == 0 else []
            measurements, extra = await bench(args, workdir / kind, database, source, probe_names=probe_names)
            meta = {
                "database_kind": kind,
                "database": database if args.database else f"{kind} (fresh, made by the bench)",
                "seconds": time.monotonic() - db_started,
                **common_meta(args, started, revision),
            }
            docs[kind] = report.document(
                meta, measurements, extra["server"], checks=extra["checks"], probes=extra["probes"],
                latency=extra["latency"], scale=extra["scale"],
            )  # fmt: skip
            log(f"{kind} done in {meta['seconds']:.0f} s")
    return docs


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    # SIGTERM, and SIGINT also where it was ignored (a background job), stop the servers and PostgreSQL cleanly.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    started = datetime.now(UTC)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.stem = args.out / f"bench-{started.strftime('%Y%m%d-%H%M%S')}"
    load_before = os.getloadavg()
    if args.profile:
        profile.py_spy()  # fail early when py-spy is missing
    workdir = Path(tempfile.mkdtemp(prefix="communities-bench-"))
    try:
        if args.revision:
            args.revision_commit = export_revision(args.revision, workdir / "source")
            source = workdir / "source"
            log(f"server from revision {args.revision} ({args.revision_commit[:12]})")
        else:
            source = snapshot_tree(workdir / "source")
        revision = args.revision_commit if args.revision else git_revision()
        docs = asyncio.run(bench_all(args, workdir, source, started, revision))
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
    meta = common_meta(args, started, revision)
    meta["load_average"] = {"before": load_before, "after": os.getloadavg()}
    meta["seconds"] = (datetime.now(UTC) - started).total_seconds()
    doc = report.combined(docs, meta)
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    plot_path = args.plot or stem.with_suffix(".png")
    json_path.write_text(json.dumps(doc, indent=2) + "\n")
    text = report.combined_markdown(doc)
    md_path.write_text(text)
    report.plot(doc, plot_path)
    print(text)
    log(f"wrote {json_path}, {md_path}, {plot_path} ({doc['meta']['seconds']:.0f} s in all)")
    ok = all(
        d["server"]["exit_code"] == 0
        and not d["server"]["problem_lines"]
        and all(check["ok"] for check in d["checks"].values())
        and all(check["ok"] for check in ((d.get("scale") or {}).get("checks") or {}).values())
        for d in docs.values()
    )
    return 0 if ok else 1


def common_meta(args: argparse.Namespace, started: datetime, revision: str | None) -> dict[str, Any]:
    return {
        "started": started.isoformat(timespec="seconds"),
        "command": "python -m bench.run " + " ".join(args.argv),
        "revision": revision,
        "server_from": f"git archive {args.revision}" if args.revision else "a copy of the working tree",
        "scenarios": {name: SCENARIOS[name].description for name in args.scenario_names},
        "probes": args.probe_names,
        "fresh_users": args.fresh_users,
        "runs": args.runs,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "in_flight": args.in_flight,
        "clients": args.clients,
        "scale_sizes": args.scale_sizes,
        "scale_runs": args.scale_runs,
        "scale_duration_s": args.scale_duration,
        "scale_warmup_s": args.scale_warmup,
        "latency_calls": args.latency_calls,
        "server_log_level": "INFO" if args.log_info else "WARNING",
        "server_env": args.server_env_map,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "platform": platform.platform(),
    }


if __name__ == "__main__":
    sys.exit(main())
