"""taskledger benchmark: every write-path figure as a ratio to a baseline measured in the same run.

  create        POST /tasks, 16 connections              vs  a constant falcon endpoint, same gunicorn, 16
  heartbeat     POST /tasks/{id}/heartbeat, 8            vs  pgbench single-row INSERT+COMMIT, 8 (and constant)
  batch         POST /heartbeats x100, 8, disjoint tasks  vs  pgbench 100-row INSERT+COMMIT, 8 (rows/s)
  append        the store's append, 8 threads, no HTTP    vs  pgbench single-row INSERT+COMMIT, 8
  first write   after a restart, task of 10,000 events    vs  the same on a task of 2 events
  catch-up      each projection from position 0           vs  reading and decoding the same events
  rebuild       `taskledger rebuild`, both projections    (events/s; the time 1M events would take)
  skip test     8 writers committing out of order         (events a fenced reader skipped: must be 0)
  lag           write -> visible in both projections under load (p50/p99 ms)
  get task      GET /tasks/{id}                           vs  the constant endpoint

Run: .venv/bin/python bench/run.py [--duration 10] [--rounds 3] [--json]   (see bench/README.md)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

try:
    import psycopg

    from bench import inprocess, scenarios
    from bench import services as svc
    from bench.client import Client, LeasedTask, basic_auth, prepare_leased_tasks
    from bench.cpu import CpuSampler
    from bench.figures import print_figures
    from bench.profile import PySpy
    from projections.registry import PROJECTIONS
    from taskledger.migrate import migrate
    from bench.loadgen import INSTALL_HINT, Measurement, find_tools, progress, run_pgbench, run_wrk, tool_version, \
        write_plan
except ImportError as exc:  # psycopg and falcon live in the project's venv
    sys.exit(f"bench/run.py needs the project's environment ({exc}); run it as .venv/bin/python bench/run.py")

API = "/ledger/v1"
TRIVIAL_NOTE = 'trivial = falcon returning a constant 200 {"ok": true}: no auth parsing, no database'


@dataclass
class Round:
    """The five measurements of one round; ratios are taken within a round."""

    measurements: dict[str, Measurement] = field(default_factory=dict)
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)
    catch_up: dict[str, dict[str, Any]] = field(default_factory=dict)
    lag: dict[str, dict[str, Any]] = field(default_factory=dict)
    profiles: dict[str, dict[str, dict[str, dict[str, float]]]] = field(default_factory=dict)

    def ratio(self, top: str, bottom: str) -> float | None:
        if top not in self.measurements or bottom not in self.measurements:
            return None
        base = self.measurements[bottom].rate
        return self.measurements[top].rate / base if base else None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=8, help="connections for every measurement (default 8)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each (default 2; 0: none)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat all measurements; report medians (default 1)")
    parser.add_argument("--database-url", default=os.environ.get("TASKLEDGER_DATABASE_URL") or None,
                        help="PostgreSQL server to use (default: TASKLEDGER_DATABASE_URL, else "
                             f"{svc.DEFAULT_URL} if reachable, else an embedded PostgreSQL); "
                             f"the bench creates and drops its own database {svc.SCRATCH_DB} there")
    parser.add_argument("--create-connections", type=int, default=16,
                        help="connections for the create measurement and its baseline (default 16)")
    parser.add_argument("--batch-size", type=int, default=100, help="heartbeats per POST /heartbeats (default 100)")
    parser.add_argument("--long-task-events", type=int, default=10000,
                        help="events of the long task the first-write-after-restart figure uses (default 10000)")
    parser.add_argument("--restarts", type=int, default=3, help="service restarts for the first-write figure")
    parser.add_argument("--log-events", type=int, default=100000,
                        help="events the log is padded to before catch-up and rebuild are measured (default 100000)")
    parser.add_argument("--tasks-per-connection", type=int, default=16,
                        help="leased tasks each connection heartbeats and reads, round-robin (default 16)")
    parser.add_argument("--raw-row-bytes", type=int, default=512, help="bytes of `state` per raw row (default 512)")
    parser.add_argument("--no-protocol-baseline", action="store_true",
                        help="skip the informational pgbench run that uses the event store's write protocol")
    parser.add_argument("--workers", type=int, help="gunicorn workers for both servers (default: the conf's)")
    parser.add_argument("--threads", type=int,
                        help="gunicorn threads per worker for both servers (default: the conf's)")
    parser.add_argument("--baselines-only", action="store_true",
                        help="measure only pgbench and the trivial app (no taskledger service)")
    parser.add_argument("--keep-database", action="store_true", help=f"do not drop {svc.SCRATCH_DB} at the end")
    parser.add_argument("--py-spy", nargs="?", const="py-spy", metavar="PATH",
                        help="sample the service with py-spy during its measurements (slows it down) and "
                             "print the hottest frames; PATH defaults to py-spy on PATH")
    parser.add_argument("--keep-logs", action="store_true", help="keep the temporary folder with the server logs")
    parser.add_argument("--json", action="store_true", help="print machine-readable results instead of the table")
    args = parser.parse_args(argv)
    if args.connections < 1 or args.duration < 1 or args.rounds < 1 or args.tasks_per_connection < 1:
        parser.error("--connections, --duration, --rounds and --tasks-per-connection must be at least 1")
    return args


def server_env(args: argparse.Namespace) -> dict[str, str]:
    """Worker and thread counts, pinned explicitly so the service and the trivial app get the same."""
    env: dict[str, str] = {}
    workers = args.workers or os.environ.get("TASKLEDGER_WORKERS")
    threads = args.threads or os.environ.get("TASKLEDGER_THREADS")
    if workers:
        env["TASKLEDGER_WORKERS"] = str(workers)
    if threads:
        env["TASKLEDGER_THREADS"] = str(threads)
    resolved = svc.gunicorn_settings(env)
    env["TASKLEDGER_WORKERS"] = str(resolved["workers"])
    env["TASKLEDGER_THREADS"] = str(resolved["threads"])
    return env


def choose_server(args: argparse.Namespace, workdir: Path) -> tuple[str, str, Any]:
    """(server URL, how it was chosen, embedded server to clean up or None)."""
    if args.database_url:
        if not svc.reachable(args.database_url):
            raise svc.ServiceError(f"cannot connect to {svc.describe_url(args.database_url)}")
        return args.database_url, "given", None
    if svc.reachable(svc.DEFAULT_URL):
        return svc.DEFAULT_URL, "local server", None
    progress(f"no PostgreSQL at {svc.describe_url(svc.DEFAULT_URL)}: starting an embedded one")
    from taskledger.database import embedded_url, start_embedded

    server = start_embedded(workdir / "pgdata")
    return embedded_url(server, database="postgres"), "embedded", server


class Bench:
    """Holds what one run starts, and measures."""

    def __init__(self, args: argparse.Namespace, tools: dict[str, str], workdir: Path,
                 db: svc.ScratchDatabase) -> None:
        self.args = args
        self.tools = tools
        self.workdir = workdir
        self.db = db
        self.password = secrets.token_urlsafe(18)
        self.auth = basic_auth("admin", self.password)
        self.env = server_env(args)
        self.service: svc.Process | None = None
        self.trivial: svc.Process | None = None
        self.api_base = ""
        self.trivial_base = ""

    # ------------------------------------------------------------------ processes
    def start(self) -> None:
        port = svc.free_port()
        self.trivial = svc.start_trivial(port, self.env, self.workdir)
        self.trivial_base = f"http://127.0.0.1:{port}"
        self.trivial.wait_http_ok(f"{self.trivial_base}/healthz", timeout=60)
        if self.args.baselines_only:
            return
        self.service, url = svc.migrate_and_serve(self.db.url, self.workdir, self.password, self.env, progress)
        self.api_base = url[: -len(API)]

    def stop(self) -> None:
        for process in (self.service, self.trivial):
            if process is not None:
                code = process.stop()
                progress(f"{process.name} stopped (exit code {code})")

    def roles(self, process: svc.Process | None) -> Callable[[], dict[int, str]]:
        if process is None:
            return dict
        pids = process.pids()
        if process is self.service:
            table = {pid: "api" for pid in pids[1:]} | {pids[0]: "projections"}
        else:
            table = {pid: "trivial" for pid in pids}
        return lambda: table

    # --------------------------------------------------------------- measurements
    def raw(self, rnd: Round, rows: int = 1) -> None:
        """pgbench: `rows` rows of the event table's shape per INSERT+COMMIT (rows/s when more than one)."""
        row = "\\x" + "78" * self.args.raw_row_bytes
        script = (f"INSERT INTO {svc.RAW_TABLE} (originator_id, originator_version, topic, state) "
                  f"SELECT gen_random_uuid(), 1, 'bench.RawEvent', CAST('{row}' AS bytea) "
                  f"FROM generate_series(1, {rows});\n")
        key, label = ("raw", "raw INSERT+COMMIT (pgbench)") if rows == 1 else (
            "raw_batch", f"raw {rows}-row INSERT+COMMIT (pgbench)")

        def once(seconds: float) -> Measurement:
            m = run_pgbench(self.tools["pgbench"], label, self.db.url, script, self.args.connections, seconds)
            if rows > 1:
                m.rate, m.unit = m.rate * rows, "rows/s"
            return m
        self._measure(rnd, key, once, None)

    def raw_protocol(self, rnd: Round) -> None:
        """The same row written the way the event store writes one (eventsourcing's PostgreSQL recorder):
        one pipeline BEGIN; SET LOCAL lock_timeout; LOCK TABLE .. IN EXCLUSIVE MODE; NOTIFY; INSERT .. RETURNING,
        then COMMIT. Informational: it shows what the write protocol alone costs, from a C client."""
        row = "\\x" + "78" * self.args.raw_row_bytes
        script = ("\\startpipeline\nBEGIN;\nSET LOCAL lock_timeout = '10s';\n"
                  f"LOCK TABLE {svc.RAW_TABLE} IN EXCLUSIVE MODE;\nNOTIFY {svc.RAW_TABLE};\n"
                  f"INSERT INTO {svc.RAW_TABLE} (originator_id, originator_version, topic, state) "
                  f"VALUES (gen_random_uuid(), 1, 'bench.RawEvent', CAST('{row}' AS bytea)) "
                  "RETURNING notification_id;\n"
                  "\\endpipeline\nCOMMIT;\n")

        def once(seconds: float) -> Measurement:
            return run_pgbench(self.tools["pgbench"], "raw + event-store protocol", self.db.url, script,
                               self.args.connections, seconds, extra=["-M", "extended"])
        self._measure(rnd, "raw_protocol", once, None)

    def http(self, rnd: Round, key: str, label: str, base: str, method: str,
             threads: list[list[tuple[str, str | None]]], process: svc.Process | None,
             connections: int | None = None, items: int = 1) -> None:
        """wrk with the plan; `items` per request turns req/s into items/s (events of a batch)."""
        headers = {"Authorization": self.auth, "Accept": "application/json"}
        if method != "GET":
            headers["Content-Type"] = "application/json"
        plan = self.workdir / f"plan-{key}.lua"
        write_plan(plan, method, headers, threads)

        def once(seconds: float) -> Measurement:
            m = run_wrk(self.tools["wrk"], label, base, plan, connections or self.args.connections, seconds)
            if items > 1:
                m.rate, m.unit, m.details["per_request"] = m.rate * items, "ev/s", items
            return m
        self._measure(rnd, key, once, process)

    def _measure(self, rnd: Round, key: str, once: Callable[[float], Measurement],
                 process: svc.Process | None) -> None:
        if self.args.warmup > 0:
            once(self.args.warmup)
        head = self.db.head() if process is self.service and process is not None else None
        spy = None
        if self.args.py_spy and process is self.service and process is not None:
            spy = PySpy(self.args.py_spy, self.workdir / "py-spy", f"r{len(rnd.measurements)}-{key}",
                        self.roles(process)(), self.args.duration)
        with CpuSampler(self.roles(process)) as cpu, svc.SessionSampler(self.db.url, self.db.name) as sessions:
            result = once(self.args.duration)
        result.details["db_sessions"] = sessions.averages()
        if spy is not None:
            spy.wait()
            rnd.profiles[key] = spy.summary()
        if head is not None:
            result.details["events_appended"] = self.db.head() - head
        rnd.measurements[key] = result
        rnd.cpu[key] = cpu.cores()
        errors = f", {result.errors} errors" if result.errors else ""
        progress(f"  {result.label}: {result.rate:,.0f} {result.unit}, p50 {_ms(result.p50_ms)} ms{errors}")

    def catch_up(self, rnd: Round, key: str) -> None:
        caught, seconds, behind = self.db.wait_for_projections()
        rnd.catch_up[key] = {"events_behind": behind, "seconds": round(seconds, 2), "caught_up": caught}
        if not caught:
            progress(f"  WARNING: projections still behind {seconds:.0f} s after {key}; going on")
        elif behind:
            progress(f"  projections were {behind} events behind after {key}; caught up in {seconds:.1f} s")

    def run_round(self, index: int) -> Round:
        rnd = Round()
        n, tag = self.args.connections, f"r{index}-{secrets.token_hex(3)}"
        progress(f"round {index + 1}: raw PostgreSQL baselines (pgbench)")
        self.raw(rnd)
        self.raw(rnd, rows=self.args.batch_size)
        if not self.args.no_protocol_baseline:
            self.raw_protocol(rnd)
        self.constant_endpoints(rnd)
        if self.args.baselines_only:
            return rnd
        client = Client(self.api_base + API, self.auth)
        self.creates(rnd, client, tag)
        leased = prepare_leased_tasks(client, tag, n, self.args.tasks_per_connection,
                                      lambda: self.db.wait_for_projections(), parallel=min(8, n * 2))
        self.heartbeats(rnd, leased)
        self.batches(rnd, client, tag)
        reads = self._per_connection(leased, lambda t: (f"{API}/tasks/{t.task_id}", None))
        client.expect("GET", f"/tasks/{leased[0].task_id}", None, (200,))
        progress(f"round {index + 1}: API GET /tasks/{{id}}")
        self.http(rnd, "get", "http GET /tasks/{id}", self.api_base, "GET", reads, self.service)
        progress(f"round {index + 1}: the store's append path (threads, no HTTP)")
        rnd.measurements["append"] = inprocess.append_path(self.db.url, n, self.args.duration)
        rnd.measurements["python_raw"] = inprocess.python_raw(self.db.url, n, self.args.duration)
        self.catch_up(rnd, "append")
        return rnd

    def constant_endpoints(self, rnd: Round) -> None:
        """The constant falcon endpoint, POSTed as the create and the heartbeat are, and read as the GET."""
        n, m = self.args.connections, self.args.create_connections
        body = json.dumps({"namespace": "bench-constant", "name": "bench-create"})
        progress("constant falcon endpoint (the HTTP ceiling)")
        self.http(rnd, "trivial_post", f"constant POST, {m} connections", self.trivial_base, "POST",
                  [[(f"{API}/tasks", body)] for _ in range(m)], self.trivial, connections=m)
        self.http(rnd, "trivial_post_n", f"constant POST, {n} connections", self.trivial_base, "POST",
                  [[(f"{API}/tasks/00000000-0000-0000-0000-{c:012d}/heartbeat", '{"lease_epoch": 1}')]
                   for c in range(n)], self.trivial)
        self.http(rnd, "trivial", "constant GET (falcon)", self.trivial_base, "GET",
                  [[(f"{API}/tasks/00000000-0000-0000-0000-{c:012d}", None)] for c in range(n)], self.trivial)

    def creates(self, rnd: Round, client: Client, tag: str) -> None:
        m = self.args.create_connections
        bodies = [{"namespace": f"bench-create-{tag}-c{c}", "name": "bench-create"} for c in range(m)]
        client.expect("POST", "/tasks", bodies[0], (200, 201))
        progress(f"HTTP create, {m} connections")
        self.http(rnd, "create", f"http POST /tasks ({m} conn)", self.api_base, "POST",
                  [[(f"{API}/tasks", json.dumps(b))] for b in bodies], self.service, connections=m)
        self.catch_up(rnd, "create")

    def heartbeats(self, rnd: Round, leased: list[LeasedTask]) -> None:
        plan = self._per_connection(leased, lambda t: (
            f"{API}/tasks/{t.task_id}/heartbeat", json.dumps({"lease_epoch": t.lease_epoch, "progress": 10})))
        progress("HTTP heartbeat (one per request), with the lag probe")
        with scenarios.LagProbe(self.db.url) as probe:
            self.http(rnd, "heartbeat", "http POST /tasks/{id}/heartbeat", self.api_base, "POST", plan, self.service)
        rnd.lag["heartbeat"] = probe.summary()
        self.catch_up(rnd, "heartbeat")

    def batches(self, rnd: Round, client: Client, tag: str) -> None:
        n, size = self.args.connections, self.args.batch_size
        progress(f"preparing {n * size} claimed tasks for POST /heartbeats ({size} per request, disjoint)")
        leased = prepare_leased_tasks(client, f"{tag}-b", n, size, lambda: self.db.wait_for_projections(),
                                      parallel=min(8, n * 2))
        bodies = [json.dumps({"heartbeats": [{"task_id": t.task_id, "lease_epoch": t.lease_epoch, "progress": 5}
                                             for t in leased if t.connection == c]}) for c in range(n)]
        answer = client.expect("POST", "/heartbeats", json.loads(bodies[0]), (200,))
        if any(r["status"] != 200 for r in answer.body["results"]):
            raise RuntimeError(f"POST /heartbeats answered item errors: {str(answer.body)[:300]}")
        progress("HTTP POST /heartbeats, with the lag probe")
        with scenarios.LagProbe(self.db.url) as probe:
            self.http(rnd, "batch", f"http POST /heartbeats (x{size})", self.api_base, "POST",
                      [[(f"{API}/heartbeats", b)] for b in bodies], self.service, items=size)
        rnd.lag["batch"] = probe.summary()
        self.catch_up(rnd, "batch")

    def once(self) -> dict[str, Any]:
        """The measurements taken once per run (they restart the service or need the whole log)."""
        found: dict[str, Any] = {}
        if self.args.baselines_only:
            return found
        found["first_write"] = self.first_writes()
        progress(f"padding the log to {self.args.log_events:,} events (heartbeats, many per transaction)")
        head = inprocess.pad_log(self.db.url, self.args.log_events)
        self.db.wait_for_projections(timeout=600)
        progress(f"projection catch-up from position 0 over {head:,} events, and the read+decode floor")
        found["decode"] = inprocess.decode_only(self.db.url, head)
        found["catch_up"] = {name: inprocess.catch_up(self.db.url, name, head) for name in PROJECTIONS}
        found["rebuild"] = self.rebuild(head)
        found["skip"] = self.skip_test()
        return found

    def first_writes(self, per_restart: int = 3) -> dict[str, Any]:
        """First heartbeat on long tasks and on fresh ones: after service restarts, and in fresh processes."""
        events = self.args.long_task_events
        progress(f"{per_restart} tasks of {events:,} events and {per_restart} of 2; their first heartbeats after "
                 f"each of {self.args.restarts} restarts")
        tasks = {"long": [inprocess.make_task(self.db.url, f"bench-long-{k}", events) for k in range(per_restart)],
                 "short": [inprocess.make_task(self.db.url, f"bench-short-{k}", 2) for k in range(per_restart)]}
        spare = inprocess.make_task(self.db.url, "bench-spare", 2)
        http: dict[str, list[float]] = {"long": [], "short": []}
        for trial in range(self.args.restarts):
            self.restart_service()
            for k in range(per_restart):  # alternate which kind goes first
                for name in (("long", "short") if (trial + k) % 2 == 0 else ("short", "long")):
                    http[name].append(scenarios.first_heartbeat_ms(self.api_base, "admin", self.password,
                                                                   tasks[name][k], spare))
        cold = {name: inprocess.cold_first_write(self.db.url, found[0]) for name, found in tasks.items()}
        return {"events": tasks["long"][0].events, "http_ms": http, "process_ms": cold}

    def restart_service(self) -> None:
        if self.service is not None:
            self.service.stop()
        self.service = svc.start_service(self.workdir / "home", svc.free_port(), self.db.url, self.password,
                                         self.env, self.workdir)
        url = self.service.wait_ready_line(svc.READY_LINE, timeout=120).group(1)
        self.api_base = url[: -len(API)]

    def rebuild(self, head: int) -> Measurement:
        progress(f"taskledger rebuild (both projections) over {head:,} events, the service running")
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "taskledger.cli", "rebuild", "--quiet", "--drop-retired"],
                              cwd=svc.REPO, env={**os.environ, "TASKLEDGER_DATABASE_URL": self.db.url},
                              capture_output=True, text=True, timeout=3600)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise svc.ServiceError(f"taskledger rebuild failed ({done.returncode}):\n{done.stderr[-2000:]}")
        return Measurement(label="taskledger rebuild (both)", tool="cli", connections=1, duration_s=round(seconds, 1),
                           rate=head / seconds, unit="ev/s", completed=head, errors=0)

    def skip_test(self) -> dict[str, Any]:
        progress("skip test: 8 writers committing out of position order, a fenced and a naive reader")
        scratch = svc.ScratchDatabase(self.db.admin_url, f"{self.db.name}_skip")
        scratch.recreate()
        try:
            migrate(scratch.url)
            return inprocess.skip_test(scratch.url)
        finally:
            scratch.drop()

    def _per_connection(self, leased: list[LeasedTask],
                        request: Callable[[LeasedTask], tuple[str, str | None]]) -> list[list[tuple[str, str | None]]]:
        return [[request(t) for t in leased if t.connection == c] for c in range(self.args.connections)]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _median_dict(dicts: list[dict[str, float]]) -> dict[str, float | None]:
    keys = dict.fromkeys(k for d in dicts for k in d)
    return {k: _median([d.get(k, 0.0) for d in dicts]) for k in keys}


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


# (path, name, measured, baseline, kind, goal): the ratio is measured rate / baseline rate, per round.
RATIOS = (("write", "create", "create", "trivial_post", "http/constant", 0.25),
          ("write", "heartbeat", "heartbeat", "trivial_post_n", "http/constant", 0.25),
          ("write", "heartbeat", "heartbeat", "raw", "http/raw", None),
          ("write", "batch", "batch", "raw_batch", "http/raw rows", None),
          ("write", "append", "append", "raw", "store/raw", 0.7),
          ("write", "append", "append", "python_raw", "store/python raw", None),
          ("read", "get task", "get", "trivial", "api/constant", None),
          # Informational: what eventsourcing's own write protocol (table lock + NOTIFY) reaches in pgbench.
          ("info", "protocol", "raw_protocol", "raw", "protocol/raw", None))


def summarise(rounds: list[Round], context: dict[str, Any]) -> dict[str, Any]:
    """One row per measurement (medians over rounds when there are several) and the ratios."""
    measurements = {}
    for key in rounds[0].measurements:
        per_round = [r.measurements[key] for r in rounds]
        first = per_round[0]
        row: dict[str, Any] = {
            "label": first.label, "tool": first.tool, "unit": first.unit, "connections": first.connections,
            "duration_s": first.duration_s,
            **{f: _median([getattr(m, f) for m in per_round])
               for f in ("rate", "p50_ms", "p90_ms", "p99_ms", "mean_ms")},
            "completed": sum(m.completed for m in per_round), "errors": sum(m.errors for m in per_round)}
        if all("events_appended" in m.details for m in per_round):
            row["events_appended"] = sum(m.details["events_appended"] for m in per_round)
        row["db_sessions"] = _median_dict([m.details.get("db_sessions", {}) for m in per_round])
        row["cpu_cores"] = _median_dict([r.cpu.get(key, {}) for r in rounds])
        row["per_round"] = [m.as_dict() for m in per_round]
        measurements[key] = row
    ratios = []
    for path, name, top, bottom, kind, goal in RATIOS:
        value = _median([r.ratio(top, bottom) for r in rounds])
        if value is not None:
            ratios.append({"path": path, "name": name, "kind": kind, "ratio": round(value, 3), "goal": goal,
                           "measured": top, "baseline": bottom, "per_round": [r.ratio(top, bottom) for r in rounds]})
    lag = {key: [r.lag[key] for r in rounds if key in r.lag] for key in ("heartbeat", "batch")}
    return {**context, "measurements": measurements, "ratios": ratios, "lag": lag,
            "projection_catch_up": [r.catch_up for r in rounds], "profiles": rounds[0].profiles or None}


def print_report(result: dict[str, Any]) -> None:
    m = result["measurements"]
    print(f"taskledger bench  {result['started']}")
    machine = result["machine"]
    print(f"machine:   nproc={machine['nproc']}  {machine['cpu']}  ({machine['system']}); "
          "load generators run on the same cores")
    db = result["database"]
    print(f"database:  PostgreSQL {db['server_version']} ({db['source']}, {db['where']}); fsync={db['fsync']}, "
          f"synchronous_commit={db['synchronous_commit']}, shared_buffers={db['shared_buffers']}x8kB")
    g = result["gunicorn"]
    print(f"servers:   gunicorn {g['worker_class']} {g['workers']} workers x {g['threads']} threads, keepalive "
          f"{g['keepalive']} s, access log {g['accesslog']!r} (ops/gunicorn.conf.py, both servers)")
    print(f"load:      {result['connections']} connections, {result['duration_s']:g} s per measurement "
          f"(+{result['warmup_s']:g} s warm-up), {result['rounds']} round(s); wrk -t{result['connections']} "
          f"-c{result['connections']}, pgbench -c{result['connections']} -j{result['connections']}")
    print(f"tools:     {result['tools']['wrk']}; {result['tools']['pgbench']}")
    print()
    print(f"{'measurement':<34} {'rate':>14} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'errors':>7}  cpu cores")
    for key, row in m.items():
        cpu = row.get("cpu_cores") or {}
        cpu_text = " ".join(f"{k}={v:.2f}" for k, v in cpu.items() if v >= 0.01)
        print(f"{row['label']:<34} {row['rate']:>9,.0f} {row['unit']:<4} {_ms(row['p50_ms']):>8} "
              f"{_ms(row['p90_ms']):>8} {_ms(row['p99_ms']):>8} {row['errors']:>7}  {cpu_text}")
    print()
    print("PostgreSQL sessions of the scratch database, average count per sample (pg_stat_activity):")
    for key, row in m.items():
        sessions = row.get("db_sessions") or {}
        if sessions:
            print(f"  {row['label']:<34} " + "  ".join(f"{k}={v:.2f}" for k, v in sessions.items()))
    notes = [f"raw = pgbench INSERT of one {result['raw_row_bytes']}-byte row per transaction (autocommit) into a "
             "table shaped like taskledger_events, scratch database, same server",
             TRIVIAL_NOTE + "; same request bytes (incl. Authorization) as the API GET"]
    for key, info in (result["projection_catch_up"][0] or {}).items():
        notes.append(f"after {key}: projections {info['events_behind']} events behind, caught up in "
                     f"{info['seconds']} s (before the next measurement)")
    for key, row in m.items():
        appended = row.get("events_appended")
        if appended and row["completed"]:
            notes.append(f"{row['label']}: {appended / row['completed']:.2f} events appended per successful request")
    notes.append("cpu cores = average cores busy per process group during the measurement (api = gunicorn "
                 "workers, projections = the serve process, other = processes not under test: noise)")
    if result.get("event_sizes"):
        notes.append("stored event size (bytes of state): " +
                     ", ".join(f"{k} {v:.0f}" for k, v in result["event_sizes"].items()))
    print()
    for note in notes:
        print(f"note: {note}")
    for key, roles in (result.get("profiles") or {}).items():
        for role, kinds in roles.items():
            print(f"\npy-spy {m[key]['label']} [{role}] "
                  "(% of samples; psycopg Connection.wait = waiting on PostgreSQL)")
            for kind, frames in kinds.items():
                for frame, share in frames.items():
                    print(f"  {kind:<9} {share:5.1f}%  {frame}")
    info = [r for r in result["ratios"] if r["path"] == "info"]
    if info:
        print("note: raw + event-store protocol = pgbench doing what eventsourcing's recorder does per write "
              "(pipeline BEGIN; LOCK TABLE EXCLUSIVE; NOTIFY; INSERT; then COMMIT): " +
              ", ".join(f"{r['name']} {r['kind']} = {r['ratio']:.2f}" for r in info))
    print()
    for ratio in result["ratios"]:
        if ratio["path"] == "info":
            continue
        top, bottom = m[ratio["measured"]], m[ratio["baseline"]]
        who = ratio["kind"].split("/")
        extra = '; trivial = plain 200 {"ok": true}, no auth, no db' if ratio["baseline"] == "trivial" else ""
        print(f"{ratio['path']:<6} {ratio['name']:<10} {ratio['kind']} = {ratio['ratio']:.2f}   "
              f"({who[0]} {top['rate']:,.0f} {top['unit']}, {who[1]} {bottom['rate']:,.0f} {bottom['unit']}, "
              f"{top['connections']} connections{extra})")
    print_figures(result)
    for key, row in m.items():
        if row["completed"] and row["errors"] > 0.01 * row["completed"]:
            print(f"WARNING: {row['label']}: {row['errors']} errors in {row['completed']} requests; "
                  "its ratio is not meaningful", file=sys.stderr)


def context(args: argparse.Namespace, tools: dict[str, str], db: svc.ScratchDatabase, source: str,
            server_url: str, env: dict[str, str]) -> dict[str, Any]:
    info = db.server_info()
    cpu_model = "unknown cpu"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    return {
        "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "machine": {"nproc": len(os.sched_getaffinity(0)), "cpu": cpu_model,
                    "system": f"{platform.system()} {platform.release()}, Python {platform.python_version()}"},
        "database": {**info, "source": source, "where": f"{svc.describe_url(server_url).rsplit('/', 1)[0]}/{db.name}"},
        "gunicorn": svc.gunicorn_settings(env),
        "connections": args.connections, "duration_s": args.duration, "warmup_s": args.warmup,
        "rounds": args.rounds, "raw_row_bytes": args.raw_row_bytes,
        "tools": {name: tool_version(path) for name, path in tools.items()},
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tools, missing = find_tools()
    if missing:
        print(f"bench: missing {', '.join(missing)}; install with:\n  {INSTALL_HINT}", file=sys.stderr)
        return 2

    def interrupted(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, interrupted)

    workdir = Path(tempfile.mkdtemp(prefix="taskledger-bench-"))
    embedded = None
    db: svc.ScratchDatabase | None = None
    bench: Bench | None = None
    try:
        server_url, source, embedded = choose_server(args, workdir)
        db = svc.ScratchDatabase(server_url)
        progress(f"scratch database {db.name} on {svc.describe_url(server_url)} ({source}); logs in {workdir}")
        db.recreate()
        db.create_raw_table()
        bench = Bench(args, tools, workdir, db)
        info = context(args, tools, db, source, server_url, bench.env)
        bench.start()
        rounds = [bench.run_round(i) for i in range(args.rounds)]
        once = bench.once()
        result = summarise(rounds, info)
        result["once"] = {k: (v.as_dict() if isinstance(v, Measurement) else
                              {n: x.as_dict() for n, x in v.items()} if k == "catch_up" else v)
                          for k, v in once.items()}
        if not args.baselines_only:
            result["event_sizes"] = db.event_sizes()
    except (svc.ServiceError, RuntimeError, OSError, psycopg.Error) as exc:
        print(f"bench: {exc}\n(logs kept in {workdir})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"bench: interrupted; cleaning up (logs kept in {workdir})", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if bench is not None:
            bench.stop()
        svc.drop_scratch(db, embedded, args.keep_database, progress)
    if args.keep_logs:
        progress(f"logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
