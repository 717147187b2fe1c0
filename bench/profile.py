"""Where the server's CPU goes: py-spy samples of the server process during a measured window, and a summary.

`python -m bench.run --profile` runs one extra, unreported measurement per scenario with py-spy attached and
writes, per scenario, the collapsed stacks (bench/out/...-SCENARIO.stacks: one `frame;frame;... count` line per
stack, the input of flamegraph.pl or speedscope) and a text summary. Summarize a stacks file again with
`python -m bench.profile FILE`. py-spy has to be installed (`.venv/bin/pip install py-spy`); with --native it
also sees Cython and C frames (grpc's core), but pauses the server for every sample and slows it down a lot.

py-spy samples threads that are not idle, by wall clock: on a saturated machine a thread waiting for a core
counts too, which inflates the share of time without a Python frame (grpc core, uvloop). Where `perf` is
installed, the profile pass also runs `perf record` (CPU cycles, by shared object: libpython = Python code,
cygrpc = grpc core, libsqlite3, kernel) and writes its summary (...-SCENARIO.perf.txt); that split is the
reliable one, py-spy's tells which Python code the libpython share is.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

# Layers of the server, recognized from a frame's text (the first that matches in a stack, leaf first, wins).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sqlite3 (C)", ("sqlite3", "pysqlite")),
    ("SQLAlchemy", ("sqlalchemy/",)),
    ("protobuf", ("google/protobuf", "protobuf", "upb")),
    ("logging", ("logging/",)),
    ("communities storage", ("communities/storage/", "storage/")),
    ("communities services/domain", ("services/", "domain/")),
    ("communities api", ("api/",)),
    ("grpc (Python/Cython)", ("grpc/", "cygrpc", "_cython")),
    ("grpc core (C)", ("grpc_core", "grpc_", "gpr_", "absl", "tsi_")),
    ("asyncio/uvloop", ("asyncio/", "uvloop", "uv__", "uv_")),
    ("libc/kernel", ("libc.so", "libc-", "epoll_wait", "__GI_", "syscall")),
)
# Leaf frames of a thread waiting for work: py-spy --native counts them as running.
IDLE_LEAVES = ("epoll_wait", "epoll_pwait", "poll (libc", "futex", "pthread_cond_wait", "pthread_cond_timedwait")
_FRAME = re.compile(r"^(?P<name>.*?) \((?P<where>[^()]*)\)$")


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


async def record(pid: int, seconds: float, path: Path, *, native: bool, rate: int = 250) -> asyncio.subprocess.Process:
    """Start sampling `pid` for `seconds` into `path` (collapsed stacks); await .wait() on the result."""
    command = [py_spy(), "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", str(rate)]
    command += ["--format", "raw", "--output", str(path)]
    # Native stacks need the process paused for each sample; Python-only sampling can read it on the fly.
    if native:
        command.append("--native")
    return await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )


async def record_perf(pid: int, seconds: float, path: Path) -> asyncio.subprocess.Process | None:
    """Start `perf record` on `pid` for `seconds` when perf is installed; await .wait() on the result."""
    perf = shutil.which("perf")
    if perf is None:
        return None
    return await asyncio.create_subprocess_exec(
        perf, "record", "-F", "499", "-p", str(pid), "-o", str(path), "--", "sleep", str(seconds),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def perf_summary(path: Path, top: int = 15) -> str:
    """CPU samples by shared object, from a perf.data file."""
    perf = shutil.which("perf") or "perf"
    report = await asyncio.create_subprocess_exec(
        perf, "report", "-i", str(path), "--sort", "dso", "--stdio",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await report.communicate()
    rows = [line.rstrip() for line in out.decode(errors="replace").splitlines() if line.strip() and "%" in line]
    rows = [line for line in rows if not line.lstrip().startswith("#")]
    header = "CPU cycles by shared object (perf; libpython = Python code, cygrpc = grpc core):"
    return "\n".join([header, *rows[:top]]) + "\n"


def read_stacks(path: Path) -> Counter[tuple[str, ...]]:
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    where = match["where"].rsplit(":", 1)[0]  # drop the line number
    return f"{match['name']} ({where})"


# Without --native, time in C under the event loop or a thread's entry (grpc core and its Cython layer, uvloop,
# protobuf (de)serialization done by grpc) has no Python frame of its own and shows as these leaves.
NATIVE_LEAVES = ("Runner.run (asyncio/runners.py", "Thread.run (threading.py")


def layer_of(stack: tuple[str, ...]) -> str:
    if stack[-1].startswith(NATIVE_LEAVES):
        return "native under the loop / grpc threads (grpc core, uvloop)"
    for frame in reversed(stack):
        for layer, markers in LAYERS:
            if any(marker in frame for marker in markers):
                return layer
    return "other"


def summarize(stacks: Counter[tuple[str, ...]], top: int = 25) -> str:
    idle = sum(count for stack, count in stacks.items() if any(leaf in stack[-1] for leaf in IDLE_LEAVES))
    busy = Counter(
        {stack: count for stack, count in stacks.items() if not any(leaf in stack[-1] for leaf in IDLE_LEAVES)}
    )
    total = sum(busy.values())
    if not total:
        return "no samples\n"
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    for stack, count in busy.items():
        self_time[_short(stack[-1])] += count
        for frame in {_short(frame) for frame in stack}:
            inclusive[frame] += count
        layers[layer_of(stack)] += count

    def table(title: str, counter: Counter[str], limit: int) -> list[str]:
        rows = [f"{title}:"]
        rows += [f"  {count / total:6.1%}  {name}" for name, count in counter.most_common(limit)]
        return [*rows, ""]

    # Frames under nearly every sample (the event loop's own) say nothing; leave them out of the inclusive list.
    inclusive = Counter({name: count for name, count in inclusive.items() if count < 0.85 * total})
    lines = [f"{total} samples on CPU (all threads; {idle} more of threads waiting in epoll/futex left out)", ""]
    lines += table("by layer (the innermost recognized frame of each sample)", layers, len(layers))
    lines += table("self (leaf frame)", self_time, top)
    lines += table("inclusive (anywhere in the stack; frames under >= 85% of samples left out)", inclusive, top)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m bench.profile STACKS_FILE...", file=sys.stderr)
        return 2
    for path in paths:
        print(f"== {path}")
        print(summarize(read_stacks(Path(path))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
