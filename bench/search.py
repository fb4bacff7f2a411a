"""taskledger search benchmark (issue 11): list latency against the task view's size, and bulk actions.

  fill        the view grown to each size THROUGH THE LEDGER: Created (and Started, Failed, ...) events
              appended in-process, 1,000 tasks per append, applied by the running service's projections
  lists       p50/p99 of each search (native GET /tasks filters and sorts, the Kylin and HugeGraph facade
              lists, a bulk dry run) at each size, and the p99 ratio largest/smallest size (goal <= 1.5)
  bulk        POST /bulk/cancel of --bulk-tasks QUEUED tasks, cursor after cursor, against the single-task
              POST /tasks/{id}/cancel from 8 threads (events/s ratio)

Run: .venv/bin/python bench/search.py [--sizes 10000,100000,1000000] [--rounds 3] [--json]  (see bench/README.md)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

try:
    import psycopg
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    from api.facades.kylin.build import BUILD_STEPS
    from api.resources.tasks import DEFAULT_LIMIT, EXACT_TOTAL, FILTERS
    from bench import services as svc
    from bench.client import Answer, Client, basic_auth
    from bench.loadgen import progress
    from bench.run import choose_server, server_env
    from ledger import commands as c
    from ledger import state as st
    from ledger.application import TaskLedger, external_task_id, sequence_id
    from ledger.domain import Meta, Task
    from ledger.errors import LedgerError
    from ledger.sequence import IdSequence
    from ledger.streams import Pending
    from projections.queries import PostgresTaskView, TaskFilter
    from taskledger.config import eventsourcing_env
except ImportError as exc:  # psycopg and falcon live in the project's venv
    sys.exit(f"bench/search.py needs the project's environment ({exc}); run it as .venv/bin/python bench/search.py")

API = "/ledger/v1"
SCRATCH_DB = "taskledger_bench_search"
KYLIN_V2 = "application/vnd.apache.kylin-v2+json"
GOAL_RATIO = 1.5  # issue 11: p99 at 1M tasks at most 1.5x the p99 at 10k
SETTLE_REQUESTS = 200  # untimed GET /tasks/{id} before each size's measurements

# ------------------------------------------------------------------------------------------ the data
# Every task's fields follow from its index alone (a seeded Random per index), so any size's queries can
# name existing ids, names and labels without keeping a million of them in memory.
NAMESPACES = tuple(f"ns-{k:02d}" for k in range(20))
KYLIN_PROJECTS = ("learn_kylin", "sales", "finance", "marketing", "ops")
KYLIN_CUBES = 200
HUGEGRAPH_NS = "hugegraph:DEFAULT/hugegraph"
HUGEGRAPH_GRAPH = "/graphs/hugegraph/tasks"
TEAMS = ("search", "billing", "ads", "growth", "infra", "data", "ml", "risk", "ops", "web")
WORDS = ("orders", "users", "clicks", "payments", "invoices", "sessions", "events", "inventory", "refunds",
         "shipments", "reviews", "ratings", "carts", "coupons", "ledger", "accounts", "devices", "metrics",
         "alerts", "tickets", "leads", "campaigns", "impressions", "auctions", "bids", "fraud", "scores",
         "profiles", "segments", "cohorts", "funnels", "pageviews", "searches", "queries", "catalog", "prices",
         "stock", "vendors", "contracts", "payroll", "budgets", "forecasts", "audits", "backups", "snapshots",
         "exports", "imports", "partners", "regions", "stores")
TYPES = ("spark", "sql", "python", "shell", "export", "import", "ml-train", "report")
SUBMITTERS = 100
WORKERS = 500
ERRORS = ("java.lang.OutOfMemoryError: Java heap space in stage {k}",
          "psycopg.OperationalError: connection to db-{k}.internal refused",
          "TimeoutError: lock on table t_{k} not granted after 600 s",
          "KeyError: 'column_{k}' missing from the input",
          "container killed: exit status 137 (memory limit {k} MiB)")
ERROR_CODES = 200  # the {k} of an error per block: ~1 task per code and template, at every size
# Rare values (a worker, an error code, a Kylin cube) are drawn per block of 10,000 tasks, each block from
# its own range, so a "few hits" query (a value of the first block) matches as many tasks at 1M as at 10k:
# what grows is the view, not the answer. Shared values (labels, words, states, submitters) keep their share.
BLOCK = 10_000
ERROR_MANY = ("heap space", "connection to db", "not granted", "missing from the", "exit status 137")
ERROR_FEW = ("on table t_{k} not", "'column_{k}' missing", "db-{k}.internal")
# Cumulative shares of the final state of ordinary tasks (~5% QUEUED, as the issue asks).
OUTCOMES = ((0.05, st.QUEUED), (0.10, st.RUNNING), (0.13, st.PAUSED), (0.23, st.FAILED), (0.30, st.CANCELLED),
            (1.00, st.SUCCEEDED))
HUGEGRAPH_PER_100 = 2  # indices i % 100 < 2 are HugeGraph tasks,
KYLIN_PER_100 = 3  # the next 3 of every 100 Kylin jobs, the rest native tasks
# Running tasks must outlive the run: the service's watchdog expires a lease after heartbeat_timeout.
LEASE_SECONDS = 90 * 86400.0
HISTORY = timedelta(days=30)  # creation times spread over the 30 days before the run, in index order
BENCH_IDS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:taskledger:bench:search")
FILL_CALLER = {facade: c.Caller("bench-search", "bench-search-fill", facade)
               for facade in ("native", "kylin", "hugegraph")}


@dataclass(frozen=True)
class TaskSpec:
    """One task of the filled view: how it is created and which state it is left in."""

    index: int
    task_id: uuid.UUID
    facade: str
    namespace: str
    name: str
    word: str
    type: str
    submitter: str
    labels: dict[str, str]
    input: Any
    steps: tuple[str, ...]
    external_id: str | None
    outcome: str
    worker: str
    error: str


def hugegraph_number(index: int) -> int | None:
    """The HugeGraph task number of an index (1, 2, 3... in index order), None for other tasks."""
    r = index % 100
    return (index // 100) * HUGEGRAPH_PER_100 + r + 1 if r < HUGEGRAPH_PER_100 else None


def hugegraph_count(end: int) -> int:
    """How many HugeGraph tasks indices 0..end-1 hold."""
    return (end // 100) * HUGEGRAPH_PER_100 + min(end % 100, HUGEGRAPH_PER_100)


def task_id_of(index: int) -> uuid.UUID:
    number = hugegraph_number(index)
    if number is not None:
        return external_task_id(HUGEGRAPH_NS, str(number))  # the id the ledger gives a numbered task
    return uuid.uuid5(BENCH_IDS, str(index))


def _worker(block: int, k: int) -> str:
    return f"worker-{block:03d}-{k:03d}"


def spec_of(index: int) -> TaskSpec:
    """The task at an index: ~20 native namespaces, Kylin jobs of 5 projects, a HugeGraph graph's tasks."""
    rnd = random.Random(index * 7919 + 17)
    word = rnd.choice(WORDS)
    u = rnd.random()
    outcome = next(state for share, state in OUTCOMES if u < share)
    number = hugegraph_number(index)
    kylin = number is None and index % 100 < HUGEGRAPH_PER_100 + KYLIN_PER_100
    facade = "hugegraph" if number is not None else "kylin" if kylin else "native"
    labels = {"team": rnd.choice(TEAMS), "env": "prod" if rnd.random() < 0.7 else "staging"}
    if rnd.random() < 0.5:
        labels["run"] = str(rnd.randrange(10_000))
    block = index // BLOCK
    error = rnd.choice(ERRORS).format(k=block * ERROR_CODES + rnd.randrange(ERROR_CODES))
    common: dict[str, Any] = {
        "index": index, "task_id": task_id_of(index), "facade": facade, "word": word, "outcome": outcome,
        "submitter": f"user-{rnd.randrange(SUBMITTERS):02d}", "worker": _worker(block, rnd.randrange(WORKERS)),
        "error": error}
    if kylin:
        cube = f"cube_{block * KYLIN_CUBES + rnd.randrange(KYLIN_CUBES)}"
        return TaskSpec(namespace=f"kylin:{rnd.choice(KYLIN_PROJECTS)}",
                        name=f"BUILD CUBE - {cube} - FULL_BUILD - GMT+00:00 #{index}", type="BUILD", labels={},
                        input={"cube": cube, "segment": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
                               "segmentName": "FULL_BUILD", "startTime": 0, "endTime": 0, "buildType": "BUILD",
                               "force": False},
                        steps=BUILD_STEPS, external_id=None, **common)
    return TaskSpec(namespace=HUGEGRAPH_NS if number is not None else rnd.choice(NAMESPACES),
                    name=f"etl-{word}-{index}", type="gremlin" if number is not None else rnd.choice(TYPES),
                    labels=labels, input={"partition": index % 365, "source": f"s3://lake/{word}"},
                    steps=(), external_id=None if number is None else str(number), **common)


# ------------------------------------------------------------------------------------------ the fill
@dataclass
class FillResult:
    tasks: int
    events: int
    append_seconds: float
    projected_seconds: float = 0.0
    catch_up_seconds: float = 0.0

    @property
    def tasks_per_s(self) -> float:
        return self.tasks / self.append_seconds if self.append_seconds else 0.0

    @property
    def events_per_s(self) -> float:
        return self.events / self.append_seconds if self.append_seconds else 0.0


class Filler:
    """Appends tasks through the ledger application (here, and in worker processes): one append per batch.

    It does what TaskLedger.create_task does (Task.create with the ledger's own created fields, then
    `streams.append` of each task's pending events) for a whole batch at once, and drives each task to its
    final state with the aggregate's own commands before the append, so a task's events are adjacent in the
    log and the projections apply them as the service would. No row is written to the read tables here.
    """

    def __init__(self, url: str, threads: int, batch: int, total: int, *, processes: int = 0,
                 started: datetime | None = None, timeout: float = 3600.0) -> None:
        self.url, self.total, self.timeout = url, total, timeout
        self.app = TaskLedger(eventsourcing_env(url, pool_size=threads + 1))
        self.threads, self.batch, self.processes = threads, batch, processes
        self.started = started or datetime.now(timezone.utc)
        self.origin = self.started - HISTORY
        self.spacing = HISTORY / max(total, 1)
        self._pool: ProcessPoolExecutor | None = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self.app.close()

    def fill(self, start: int, end: int, label: str) -> FillResult:
        """Tasks start..end-1 (their HugeGraph numbers allocated first), from worker processes (each its
        own TaskLedger: building events is Python, and one process's GIL would cap the fill at one core) or,
        with --fill-processes 0, from threads of this process."""
        self.allocate_hugegraph(hugegraph_count(end) - hugegraph_count(start), hugegraph_count(end))
        if self.processes > 0:
            return self._run_processes(label, start, end)
        return self._run(label, end - start, self.fill_chunk, start, end)

    def fill_chunk(self, lo: int, hi: int) -> int:
        """Tasks lo..hi-1 in one append; how many events it wrote."""
        return self._append([self.build(spec_of(i)) for i in range(lo, hi)])

    def _run_processes(self, label: str, start: int, end: int) -> FillResult:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_worker,
                                             initargs=(self.url, self.batch, self.total, self.started))
        began = last = time.monotonic()
        futures = {self._pool.submit(_fill_chunk, lo, min(lo + self.batch, end)): min(self.batch, end - lo)
                   for lo in range(start, end, self.batch)}
        tasks = events = 0
        try:
            for future in as_completed(futures, timeout=self.timeout):
                events += future.result()
                tasks += futures[future]
                if time.monotonic() - last >= 5:
                    last = time.monotonic()
                    progress(f"  fill {label}: {tasks:,}/{end - start:,} tasks, {events:,} events, "
                             f"{tasks / (last - began):,.0f} tasks/s")
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        return FillResult(tasks, events, time.monotonic() - began)

    def fill_plain(self, namespace: str, count: int, label: str) -> tuple[FillResult, list[uuid.UUID]]:
        """`count` QUEUED tasks in a namespace of their own (the bulk and single-cancel targets)."""
        ids = [uuid.uuid4() for _ in range(count)]

        def step(lo: int, hi: int) -> int:
            return self._append([self._created(ids[k], namespace, f"{namespace}-{k}", "native", at=None)
                                 for k in range(lo, hi)])
        return self._run(label, count, step, 0, count), ids

    def _run(self, label: str, count: int, step: Callable[[int, int], int], start: int, end: int) -> FillResult:
        chunks = iter([(lo, min(lo + self.batch, end)) for lo in range(start, end, self.batch)])
        lock = threading.Lock()
        done = {"tasks": 0, "events": 0}
        failures: list[BaseException] = []

        def work() -> None:
            while not failures:
                with lock:
                    chunk = next(chunks, None)
                if chunk is None:
                    return
                try:
                    events = step(*chunk)
                except BaseException as exc:  # noqa: BLE001 -- reported by the main thread
                    failures.append(exc)
                    return
                with lock:
                    done["tasks"] += chunk[1] - chunk[0]
                    done["events"] += events

        began = time.monotonic()
        threads = [threading.Thread(target=work, name=f"fill-{k}", daemon=True) for k in range(self.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=5)
                seconds = time.monotonic() - began
                if seconds > self.timeout and not failures:
                    failures.append(TimeoutError(f"fill {label} not done after {seconds:.0f} s; raise --fill-timeout"))
                if thread.is_alive():
                    progress(f"  fill {label}: {done['tasks']:,}/{count:,} tasks, {done['events']:,} events, "
                             f"{done['tasks'] / max(seconds, 1e-9):,.0f} tasks/s")
        if failures:
            raise failures[0]
        return FillResult(done["tasks"], done["events"], time.monotonic() - began)

    def build(self, spec: TaskSpec) -> Task:
        """A task created as create_task creates it, then moved to its final state by its own commands."""
        at = self.origin + self.spacing * spec.index
        task = self._created(spec.task_id, spec.namespace, spec.name, spec.facade, at, spec)
        caller = FILL_CALLER[spec.facade]
        later = random.Random(spec.index).uniform
        started = Meta(caller.actor, caller.request_id, caller.facade,
                       min(at + timedelta(seconds=later(1, 60)), self.started))  # never in the future
        ended = Meta(caller.actor, caller.request_id, caller.facade,
                     min(started.at + timedelta(seconds=later(5, 7200)), self.started))
        if spec.outcome in (st.RUNNING, st.FAILED, st.SUCCEEDED):
            epoch = task.start(started, spec.worker)
            if spec.outcome == st.FAILED:
                task.fail(ended, epoch, spec.error, retry=False)
            elif spec.outcome == st.SUCCEEDED:
                task.complete(ended, epoch, {"rows": spec.index % 10_000})
        elif spec.outcome == st.PAUSED:
            task.pause(started, "bench: paused by an operator")
        elif spec.outcome == st.CANCELLED:
            task.cancel(started, "bench: no longer needed")
        return task

    def _created(self, task_id: uuid.UUID, namespace: str, name: str, facade: str, at: datetime | None,
                 spec: TaskSpec | None = None) -> Task:
        caller = FILL_CALLER[facade]
        cmd = c.CreateTask(namespace=namespace, name=name, heartbeat_timeout=LEASE_SECONDS)
        if spec is not None:
            cmd = c.CreateTask(namespace=namespace, name=name, type=spec.type, input=spec.input,
                               submitter=spec.submitter, labels=spec.labels, steps=spec.steps,
                               heartbeat_timeout=LEASE_SECONDS, external_id=spec.external_id)
        meta = self.app._meta(caller) if at is None else Meta(caller.actor, caller.request_id, caller.facade, at)
        return Task.create(meta, task_id, **self.app._created_fields(cmd, caller, None))

    def _append(self, tasks: list[Task]) -> int:
        """One append (one transaction) of every task's pending events; how many events it wrote."""
        pending = [Pending(t) for t in tasks]
        appended = self.app.streams.append([self.app._append_of(p) for p in pending])
        if appended.stale:
            raise RuntimeError(f"{len(appended.stale)} tasks of the fill already existed (is the database fresh?)")
        return sum(len(p.events) for p in pending)

    def allocate_hugegraph(self, count: int, expected_last: int) -> None:
        """Numbers for the HugeGraph tasks from the graph's own id sequence, as the ledger allocates them
        (many per append), so the numbers the fill gives its tasks are the sequence's and a later create
        through the facade gets the next one."""
        key, last = sequence_id(HUGEGRAPH_NS), 0
        while count > 0:
            n = min(count, 1000)
            existing = self.app.fetch([key]).get(key)
            if existing is None:
                sequence = IdSequence._create(IdSequence.Created, id=key, scope=HUGEGRAPH_NS,
                                              timestamp=self.app.clock())
                for _ in range(n):
                    last = sequence.allocate(self.app.clock())
                if key in self.app.streams.append([self.app._append_of(Pending(sequence))]).stale:
                    raise RuntimeError("the HugeGraph id sequence was created concurrently")
            else:
                acted = self.app.act(key, lambda s: [s.allocate(self.app.clock()) for _ in range(n)][-1],
                                     missing=lambda k: LedgerError(f"no sequence {k}"))
                last = int(acted.extra)
            count -= n
        if expected_last and last != expected_last:
            raise RuntimeError(f"HugeGraph sequence is at {last}, the fill expected {expected_last}: "
                               "the database was not fresh")


_WORKER: Filler | None = None


def _start_worker(url: str, batch: int, total: int, started: datetime) -> None:
    """A fill process's own ledger application (the same creation times as the parent's)."""
    global _WORKER
    _WORKER = Filler(url, 1, batch, total, started=started)


def _fill_chunk(lo: int, hi: int) -> int:
    assert _WORKER is not None
    return _WORKER.fill_chunk(lo, hi)


# ------------------------------------------------------------------------------------------ the service
class Service:
    """`taskledger migrate` and `taskledger serve` on the scratch database, as bench/run.py starts them."""

    def __init__(self, args: argparse.Namespace, workdir: Path, db: svc.ScratchDatabase) -> None:
        self.workdir, self.db = workdir, db
        self.password = secrets.token_urlsafe(18)
        self.auth = basic_auth("admin", self.password)
        self.env = server_env(args)
        self.process: svc.Process | None = None
        self.base = ""

    def start(self, reset_admin: bool = False) -> None:
        if reset_admin:  # a kept database's admin has an earlier run's password
            import subprocess

            done = subprocess.run([sys.executable, "-m", "taskledger.cli", "users", "add", "admin", "--role", "admin",
                                   "--password-stdin"], input=self.password, capture_output=True, text=True,
                                  env={**os.environ, "TASKLEDGER_DATABASE_URL": self.db.url}, timeout=120)
            if done.returncode != 0:
                raise svc.ServiceError(f"could not reset the kept database's admin password: {done.stderr.strip()}")
        self.process, url = svc.migrate_and_serve(self.db.url, self.workdir, self.password, self.env, progress)
        self.base = url[: -len(API)]

    def stop(self) -> None:
        if self.process is not None:
            progress(f"taskledger serve stopped (exit code {self.process.stop()})")

    def log_path(self) -> str:
        return str(self.process.log_path) if self.process is not None else "(not started)"


def wait_projected(db: svc.ScratchDatabase, timeout: float, service: Service) -> float:
    """Waits until both projections reached the log's head, printing how far behind they are; seconds."""
    began = time.monotonic()
    last_print = 0.0
    while True:
        head, position = db.projection_lag()
        if position >= head:
            return time.monotonic() - began
        waited = time.monotonic() - began
        if waited > timeout:
            raise svc.ServiceError(f"projections still {head - position:,} events behind after {waited:.0f} s; "
                                   f"see {service.log_path()}, or raise --projection-timeout")
        if waited - last_print >= 10:
            progress(f"  projections {head - position:,} events behind the head ({head:,})")
            last_print = waited
        time.sleep(0.5)


def analyze(db: svc.ScratchDatabase, vacuum: bool) -> None:
    """Fresh planner statistics, and (unless --analyze-only) the visibility map a table that grew over months
    has from autovacuum: a view just filled has no page all-visible, which makes index-only scans look dear
    and changes plans (see bench/README.md). Done now, so autovacuum does not start in the measurements."""
    with psycopg.connect(db.url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) tasks" if vacuum else "ANALYZE tasks")


# ------------------------------------------------------------------------------------------ the queries
@dataclass(frozen=True)
class Request:
    method: str
    path: str  # from the service root (/ledger/v1/..., /kylin/..., /graphs/...)
    body: Any = None
    kylin: bool = False


@dataclass(frozen=True)
class Query:
    """One search the benchmark times: a label and a maker of varied requests for a view of `size` tasks."""

    key: str
    label: str
    make: Callable[[random.Random, int], Request]
    expect: tuple[int, ...] = (200,)
    native_list: bool = False


def _native(params: dict[str, Any]) -> Request:
    return Request("GET", f"{API}/tasks?{urlencode(params, doseq=True)}")


def _limit(rnd: random.Random) -> int:
    """Queries that take no value vary their page size, so no two consecutive requests are the same."""
    return rnd.choice((25, 50, 75, 100))


def _name_few(rnd: random.Random, size: int) -> str:
    """The middle of an existing name (`etl-orders-4711` -> `rders-4711`): that task and a few like it."""
    for _ in range(50):
        spec = spec_of(rnd.randrange(size))
        if spec.facade != "kylin":
            return f"{spec.word[1:]}-{spec.index}"
    return "rders-1"


def _middle(word: str) -> str:
    """A word without its first and last letter (`orders` -> `rder`: 2% of the names); the API asks for 3
    characters or more, so a short word is searched whole."""
    return word[1:-1] if len(word) >= 5 else word


def _error_few(rnd: random.Random) -> str:
    return rnd.choice(ERROR_FEW).format(k=rnd.randrange(ERROR_CODES))


def _kylin_jobs(rnd: random.Random, _size: int) -> Request:
    """The project and cube of a Kylin job of the first block: that job and the few of its cube there."""
    spec = spec_of(rnd.randrange(BLOCK // 100) * 100 + HUGEGRAPH_PER_100 + rnd.randrange(KYLIN_PER_100))
    params = {"timeFilter": 4, "projectName": spec.namespace.removeprefix("kylin:"),
              "jobName": f"- {spec.input['cube']} -", "sortby": "cube_name", "pageSize": 10}
    return Request("GET", f"/kylin/api/jobs?{urlencode(params)}", kylin=True)


def _hugegraph_tasks(rnd: random.Random, _size: int) -> Request:
    # A page every size fills: the 10k view holds 200 HugeGraph tasks (10-21 queued, failed or cancelled,
    # 142 succeeded, 7 running), so `limit=100` answered 31 tasks on average there and 100 at 1M, and the
    # ratio measured the answer's size, not the view's.
    status = rnd.choice(("SUCCESS", "FAILED", "QUEUED", "CANCELLED"))
    return Request("GET", f"{HUGEGRAPH_GRAPH}?{urlencode({'status': status, 'limit': 10})}")


def _bulk_dry(rnd: random.Random, _size: int) -> Request:
    # max above any namespace's QUEUED count, so every size answers the dry run (not the 422 of too many).
    query = urlencode({"state": st.QUEUED, "namespace": rnd.choice(NAMESPACES)})
    return Request("POST", f"{API}/bulk/cancel?{query}", {"dry_run": True, "max": 1_000_000})


QUERIES: tuple[Query, ...] = (
    Query("get", "GET /tasks/{id}",
          lambda r, n: Request("GET", f"{API}/tasks/{task_id_of(r.randrange(n))}")),
    Query("ns_state", "?namespace&state&sort=-created_at&limit=10",
          lambda r, n: _native({"namespace": r.choice(NAMESPACES), "sort": "-created_at", "limit": 10,
                                "state": r.choice((st.QUEUED, st.RUNNING, st.FAILED, st.PAUSED, st.SUCCEEDED))}),
          native_list=True),
    Query("queued_name", "?state=QUEUED&sort=name",
          lambda r, n: _native({"state": st.QUEUED, "sort": "name", "limit": _limit(r)}), native_list=True),
    Query("recent", "?sort=-updated_at",
          lambda r, n: _native({"sort": "-updated_at", "limit": _limit(r)}), native_list=True),
    Query("label_team", "?label=team:T",
          lambda r, n: _native({"label": f"team:{r.choice(TEAMS)}"}), native_list=True),
    Query("label_team_env", "?label=team:T&label=env:prod",
          lambda r, n: _native({"label": [f"team:{r.choice(TEAMS)}", "env:prod"]}), native_list=True),
    Query("label_key", "?label=run (key present)",
          lambda r, n: _native({"label": "run", "limit": _limit(r)}), native_list=True),
    Query("name_few", "?name_contains= (few hits)",
          lambda r, n: _native({"name_contains": _name_few(r, n)}), native_list=True),
    Query("name_many", "?name_contains= (many hits)",
          lambda r, n: _native({"name_contains": _middle(r.choice(WORDS))}), native_list=True),
    Query("error_many", "?error_contains= (many hits)",
          lambda r, n: _native({"error_contains": r.choice(ERROR_MANY)}), native_list=True),
    Query("error_few", "?error_contains= (few hits)",
          lambda r, n: _native({"error_contains": _error_few(r)}), native_list=True),
    Query("submitter", "?submitter=U",
          lambda r, n: _native({"submitter": f"user-{r.randrange(SUBMITTERS):02d}"}), native_list=True),
    Query("worker", "?worker=W",
          lambda r, n: _native({"worker": _worker(0, r.randrange(WORKERS))}), native_list=True),
    Query("type_state", "?type=T&sort=state",
          lambda r, n: _native({"type": r.choice(TYPES), "sort": "state"}), native_list=True),
    Query("kylin", "kylin v2 jobs jobName, sortby=cube_name", _kylin_jobs),
    Query("hugegraph", "hugegraph tasks ?status=S&limit=10", _hugegraph_tasks),
    Query("bulk_dry", "POST /bulk/cancel dry run", _bulk_dry, expect=(200,)),
)


@dataclass
class Timing:
    """One query's requests at one size in one round."""

    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    hits: list[int] = field(default_factory=list)
    error: str | None = None
    cut_short: bool = False

    def pick(self, p: float) -> float | None:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return None
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


class Http:
    """Keep-alive clients of the service: native JSON, Kylin v2 (its Accept header), one connection per thread."""

    def __init__(self, base: str, auth: str) -> None:
        self.plain = Client(base, auth)
        self.kylin = Client(base, auth)
        self.kylin.headers["Accept"] = KYLIN_V2

    def send(self, request: Request) -> Answer:
        return (self.kylin if request.kylin else self.plain).call(request.method, request.path, request.body)


def hits_of(answer: Answer) -> int | None:
    """How many tasks matched, as each API says it: total, the Kylin envelope's size, HugeGraph's list, matched."""
    body = answer.body
    if not isinstance(body, dict):
        return None
    for key in ("total", "matched"):
        if isinstance(body.get(key), int):
            return int(body[key])
    data = body.get("data")
    if isinstance(data, dict) and isinstance(data.get("size"), int):
        return int(data["size"])
    if isinstance(body.get("tasks"), list):
        return len(body["tasks"])
    return None


def run_requests(http: Http, requests: Sequence[Request], clients: int, expect: tuple[int, ...],
                 deadline: float) -> Timing:
    """The requests from `clients` threads, each taking the next one; stops taking new ones at the deadline."""
    timing = Timing()
    feed: Iterator[Request] = iter(requests)
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                request = next(feed, None)
                if request is None:
                    return
                if time.monotonic() > deadline:
                    timing.cut_short = True
                    return
            began = time.perf_counter()
            try:
                answer = http.send(request)
            except OSError as exc:
                with lock:
                    timing.statuses[0] = timing.statuses.get(0, 0) + 1
                    timing.error = timing.error or f"{request.method} {request.path}: {exc}"
                continue
            ms = (time.perf_counter() - began) * 1000
            hits = hits_of(answer)
            with lock:
                timing.statuses[answer.status] = timing.statuses.get(answer.status, 0) + 1
                if answer.status in expect:
                    timing.latencies_ms.append(ms)
                    if hits is not None:
                        timing.hits.append(hits)
                elif timing.error is None:
                    timing.error = f"{request.method} {request.path} answered {answer.status}: {str(answer.body)[:300]}"

    threads = [threading.Thread(target=work, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return timing


def measure(http: Http, query: Query, size: int, args: argparse.Namespace, seed: int) -> Timing:
    """Warm-up requests (untimed), then `--requests` timed ones, every request's values drawn afresh."""
    rnd = random.Random(seed)
    deadline = time.monotonic() + args.query_timeout
    warm = run_requests(http, [query.make(rnd, size) for _ in range(args.warmup)], args.clients, query.expect, deadline)
    if warm.statuses.get(404) and not warm.latencies_ms and query.key == "bulk_dry":
        return warm  # not built: the caller reports it
    return run_requests(http, [query.make(rnd, size) for _ in range(args.requests)], args.clients, query.expect,
                        deadline)


def check_view(http: Http, size: int) -> None:
    """A few filled tasks read back through each API before anything is timed: a fill the service does not
    show as meant (wrong state, no HugeGraph number, not a Kylin job) would make every figure meaningless."""
    probes = {facade: next(i for i in range(size) if spec_of(i).facade == facade)
              for facade in ("native", "kylin", "hugegraph")}
    probes["last"] = size - 1
    for name, index in probes.items():
        spec = spec_of(index)
        answer = http.send(Request("GET", f"{API}/tasks/{spec.task_id}"))
        if answer.status != 200 or not isinstance(answer.body, dict) or answer.body.get("state") != spec.outcome:
            raise svc.ServiceError(f"task {index} ({name}) reads back as {answer.status} {str(answer.body)[:300]}; "
                                   f"expected state {spec.outcome}")
    kylin = spec_of(probes["kylin"])
    number = hugegraph_number(probes["hugegraph"])
    for request in (Request("GET", f"/kylin/api/jobs/{kylin.task_id}", kylin=True),
                    Request("GET", f"{HUGEGRAPH_GRAPH}/{number}")):
        answer = http.send(request)
        if answer.status != 200:
            raise svc.ServiceError(f"{request.path} answered {answer.status}: {str(answer.body)[:300]}")


# ------------------------------------------------------------------------------------------ EXPLAIN
# The service's read pool prepares a statement on its 5th execution (psycopg's prepare_threshold) and
# PostgreSQL may then switch to a generic plan (parameters unknown) after 5 more: a plan seen once by hand
# is not necessarily the plan the service runs. So the same request is run EXPLAIN_RUNS times on one
# connection and auto_explain reports the plan of each execution: the first (custom) and the last.
EXPLAIN_RUNS = 12
EXPLAIN_SETTINGS = ("LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0", "SET auto_explain.log_analyze = on",
                    "SET auto_explain.log_buffers = off", "SET auto_explain.log_timing = on",
                    "SET auto_explain.log_format = json", "SET auto_explain.log_level = notice",
                    "SET client_min_messages = notice")


class ExplainingView(PostgresTaskView):
    """The service's own read code (`PostgresTaskView.list`) on one connection, every statement's plan reported
    by auto_explain (LOAD needs a superuser; without it the bench says so and skips the plans)."""

    def __init__(self, conninfo: str) -> None:
        super().__init__(conninfo, min_size=1, max_size=1)
        self.pool = ConnectionPool(conninfo, min_size=1, max_size=1, open=False,
                                   kwargs={"row_factory": dict_row, "autocommit": True}, configure=self._configure)
        self.captured: list[dict[str, Any]] = []

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        for statement in EXPLAIN_SETTINGS:
            conn.execute(statement)
        conn.add_notice_handler(self._notice)

    def _notice(self, diag: psycopg.errors.Diagnostic) -> None:
        text = diag.message_primary or ""
        brace = text.find("{")
        if not text.startswith("duration:") or brace < 0:
            return
        plan = json.loads(text[brace:])
        if not str(plan.get("Query Text", "")).lstrip().upper().startswith("EXPLAIN"):
            plan["duration_ms"] = float(text.split()[1])
            self.captured.append(plan)


def filter_of(path: str) -> tuple[TaskFilter, str, bool, int]:
    """The TaskFilter, sort, direction and limit GET /tasks makes of a query string (api/resources/tasks.py)."""
    query = parse_qs(urlsplit(path).query)
    one: dict[str, Any] = {k: v[0] for k, v in query.items()}
    selectors = [label.partition(":") for label in query.get("label", [])]
    flt = TaskFilter(states=tuple(query.get("state", ())),
                     labels=tuple((key, value) for key, colon, value in selectors if colon),
                     label_keys=tuple(key for key, colon, _ in selectors if not colon),
                     **{k: one[k] for k in FILTERS if k in one})
    sort = one.get("sort", "created_at")
    return flt, sort.lstrip("-"), sort.startswith("-"), int(one.get("limit", DEFAULT_LIMIT))


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def describe_plan(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan's top nodes (down the first child, 4 deep), the indexes it used, how long it ran."""
    top = plan["Plan"]
    chain: list[str] = []
    node = top
    while node is not None and len(chain) < 4:
        chain.append(node["Node Type"])
        node = (node.get("Plans") or [None])[0]
    indexes = list(dict.fromkeys(n["Index Name"] for n in _nodes(top) if "Index Name" in n))
    statement = "count" if "count(*)" in str(plan.get("Query Text", "")) else "page"
    return {"statement": statement, "top": " > ".join(chain), "indexes": indexes,
            "ms": round(float(plan.get("duration_ms", 0.0)), 2), "rows": int(top.get("Actual Rows", 0))}


def explain_all(url: str, size: int, seed: int, budget: float = 30.0) -> dict[str, Any]:
    """For each native list query, one request run EXPLAIN_RUNS times: plans of the first and the last run."""
    view = ExplainingView(url)
    try:
        view.open()
    except psycopg.Error as exc:
        return {"error": f"auto_explain unavailable ({exc}); plans skipped"}
    found: dict[str, Any] = {}
    try:
        for query in QUERIES:
            if not query.native_list:
                continue
            request = query.make(random.Random(seed), size)
            flt, sort, descending, limit = filter_of(request.path)
            runs: list[list[dict[str, Any]]] = []
            deadline = time.monotonic() + budget
            while len(runs) < EXPLAIN_RUNS and time.monotonic() < deadline:
                view.captured = []
                view.list(flt, sort, descending, None, limit, exact_up_to=EXACT_TOTAL)
                runs.append([describe_plan(p) for p in view.captured])
            found[query.key] = {"request": request.path, "first": runs[0], "last": runs[-1], "runs": len(runs)}
    finally:
        view.close()
    return found


# ------------------------------------------------------------------------------------------ bulk
def bulk_cancel(http: Http, db: svc.ScratchDatabase, namespace: str, count: int, timeout: float) -> dict[str, Any]:
    """POST /bulk/cancel over every QUEUED task of the namespace, cursor after cursor until done."""
    path = f"{API}/bulk/cancel?{urlencode({'namespace': namespace, 'state': st.QUEUED})}"
    body: dict[str, Any] = {"max": count, "reason": "bench"}
    head = db.head()
    load = os.getloadavg()[0]
    began, acted, answers = time.monotonic(), 0, 0
    latencies: list[float] = []
    while True:
        t = time.perf_counter()
        answer = http.send(Request("POST", path, body))
        latencies.append((time.perf_counter() - t) * 1000)
        answers += 1
        if answer.status == 404 and answers == 1:
            return {"built": False}
        if answer.status != 200 or not isinstance(answer.body, dict):
            raise svc.ServiceError(f"POST {path} answered {answer.status}: {str(answer.body)[:500]}")
        if isinstance(answer.body.get("part"), dict):  # `acted` counts the whole run so far, `part` this answer
            acted = int(answer.body.get("acted", 0))
        else:
            acted += int(answer.body.get("acted", 0))
        if answer.body.get("done"):
            break
        if time.monotonic() - began > timeout:
            raise svc.ServiceError(f"bulk cancel not done after {timeout:.0f} s ({acted:,} acted); "
                                   "raise --bulk-timeout")
        body = {"cursor": answer.body.get("cursor"), "max": count, "reason": "bench"}
        progress(f"  bulk cancel: {acted:,} acted after {answers} answers")
    seconds = time.monotonic() - began
    load = max(load, os.getloadavg()[0])
    events = db.head() - head
    return {"built": True, "tasks": count, "acted": acted, "answers": answers, "seconds": round(seconds, 2),
            "tasks_per_s": acted / seconds, "events": events, "events_per_s": events / seconds,
            "answer_ms_max": round(max(latencies), 1), "load": load}


def single_cancel(http: Http, db: svc.ScratchDatabase, ids: list[uuid.UUID], threads: int,
                  timeout: float) -> dict[str, Any]:
    """The baseline: POST /tasks/{id}/cancel, one task per request, from `threads` threads."""
    requests = [Request("POST", f"{API}/tasks/{i}/cancel", {"reason": "bench"}) for i in ids]
    head = db.head()
    began = time.monotonic()
    timing = run_requests(http, requests, threads, (200,), began + timeout)
    seconds = time.monotonic() - began
    events = db.head() - head
    if timing.error:
        progress(f"  WARNING single cancel: {timing.error}")
    return {"tasks": len(ids), "threads": threads, "ok": len(timing.latencies_ms), "seconds": round(seconds, 2),
            "events": events, "events_per_s": events / seconds, "p50_ms": timing.pick(50),
            "p99_ms": timing.pick(99), "load": os.getloadavg()[0], "cut_short": timing.cut_short}


# ------------------------------------------------------------------------------------------ the run
@dataclass
class SizeResult:
    size: int
    fill: dict[str, Any]
    load: list[float]
    queries: dict[str, dict[str, Any]]
    # --paired: the smallest size's own database measured again, query by query, just before each of this
    # size's measurements (the same round, the same load): what the ratios are taken from.
    baseline: dict[str, dict[str, Any]] | None = None
    ratios: dict[str, float | None] | None = None


def paired_ratio(base: list[Timing], large: list[Timing]) -> float | None:
    """Median over rounds of p99(large) / p99(baseline), each pair measured back to back."""
    ratios = [b99 and l99 and l99 / b99 for b99, l99 in ((b.pick(99), t.pick(99)) for b, t in zip(base, large))]
    kept = [r for r in ratios if r]
    return statistics.median(kept) if kept else None


def summarise_query(rounds: list[Timing]) -> dict[str, Any]:
    """Median over rounds of p50 and p99; status counts and hits over all of them."""
    statuses: dict[int, int] = {}
    for t in rounds:
        for status, n in t.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
    p50s = [v for v in (t.pick(50) for t in rounds) if v is not None]
    p99s = [v for v in (t.pick(99) for t in rounds) if v is not None]
    hits = [h for t in rounds for h in t.hits]
    built = not (statuses.get(404) and not p50s)
    return {"p50_ms": statistics.median(p50s) if p50s else None, "p99_ms": statistics.median(p99s) if p99s else None,
            "requests": sum(len(t.latencies_ms) for t in rounds), "statuses": statuses,
            "hits_median": statistics.median(hits) if hits else None, "built": built,
            "error": next((t.error for t in rounds if t.error), None), "cut_short": any(t.cut_short for t in rounds)}


class Bench:
    """What one run starts, fills and measures."""

    def __init__(self, args: argparse.Namespace, workdir: Path, db: svc.ScratchDatabase,
                 base_db: svc.ScratchDatabase | None = None) -> None:
        self.args, self.db, self.base_db = args, db, base_db
        self.service = Service(args, workdir, db)
        self.base_service = Service(args, workdir / "baseline", base_db) if base_db is not None else None
        self.filler: Filler | None = None
        self.http: Http | None = None
        self.base_http: Http | None = None

    def run(self) -> dict[str, Any]:
        self.service.start(reset_admin=self.args.reuse_database)
        self.http = Http(self.service.base, self.service.auth)
        sizes = self.args.sizes
        self.filler = Filler(self.db.url, self.args.fill_threads, self.args.fill_batch, max(sizes),
                             processes=self.args.fill_processes, timeout=self.args.fill_timeout)
        if self.base_service is not None:
            self.start_baseline(sizes[0])
        results: list[SizeResult] = []
        filled = 0
        if self.args.reuse_database:  # no fill: the kept view, once projected, must hold the largest size
            wait_projected(self.db, self.args.projection_timeout, self.service)
            reuse_check(self.db, sizes[-1])
            analyze(self.db, not self.args.analyze_only)
            sizes = sizes[-1:]
            filled = sizes[0]
            results.append(self.measure_size(sizes[0], {"tasks": 0, "events": 0, "append_seconds": 0.0,
                                                        "projected_seconds": 0.0, "catch_up_seconds": 0.0,
                                                        "tasks_per_s": 0.0, "events_per_s": 0.0, "reused": True}))
        for size in sizes[len(results):]:
            fill = self.grow(filled, size)
            filled = size
            results.append(self.measure_size(size, fill))
        explain = None
        if self.args.explain:
            progress(f"EXPLAIN ANALYZE of the native list queries at {sizes[-1]:,} tasks")
            explain = explain_all(self.db.url, sizes[-1], seed=4242)
        bulk = self.bulk() if self.args.bulk_tasks > 0 else None
        return {"sizes": self.args.sizes, "results": [asdict(r) for r in results], "explain": explain, "bulk": bulk}

    def start_baseline(self, size: int) -> None:
        """The smallest size again in a database of its own, with its own service, filled like the first
        `size` tasks of the main one (the same specs, times and spacing), kept for the paired measurements."""
        assert self.base_service is not None and self.base_db is not None and self.filler is not None
        (self.base_service.workdir).mkdir(exist_ok=True)
        self.base_service.start()
        self.base_http = Http(self.base_service.base, self.base_service.auth)
        progress(f"baseline database {self.base_db.name}: filling tasks 0..{size:,}")
        filler = Filler(self.base_db.url, self.args.fill_threads, self.args.fill_batch, max(self.args.sizes),
                        processes=0, started=self.filler.started, timeout=self.args.fill_timeout)
        try:
            filler.fill(0, size, f"baseline {size:,}")
        finally:
            filler.close()
        wait_projected(self.base_db, self.args.projection_timeout, self.base_service)
        analyze(self.base_db, not self.args.analyze_only)
        check_view(self.base_http, size)

    def grow(self, start: int, end: int) -> dict[str, Any]:
        """Fills the view from `start` to `end` tasks, waits for the projections, runs ANALYZE."""
        assert self.filler is not None
        how = (f"{self.args.fill_processes} processes" if self.args.fill_processes > 0
               else f"{self.args.fill_threads} threads")
        progress(f"filling tasks {start:,}..{end:,} through the ledger ({how}, {self.args.fill_batch} tasks "
                 "per append)")
        began = time.monotonic()
        fill = self.filler.fill(start, end, f"to {end:,}")
        fill.catch_up_seconds = wait_projected(self.db, self.args.projection_timeout, self.service)
        analyze(self.db, not self.args.analyze_only)
        fill.projected_seconds = time.monotonic() - began
        progress(f"  filled {fill.tasks:,} tasks ({fill.events:,} events) in {fill.append_seconds:.1f} s: "
                 f"{fill.tasks_per_s:,.0f} tasks/s, {fill.events_per_s:,.0f} events/s appended; projections "
                 f"caught up {fill.catch_up_seconds:.1f} s later ({fill.tasks / fill.projected_seconds:,.0f} "
                 "tasks/s filled+projected)")
        return {**asdict(fill), "tasks_per_s": fill.tasks_per_s, "events_per_s": fill.events_per_s}

    def measure_size(self, size: int, fill: dict[str, Any]) -> SizeResult:
        assert self.http is not None
        check_view(self.http, size)
        # Every worker's read pool shrank while the fill ran (idle connections close after a minute): reopen
        # them with cheap reads before anything is timed.
        run_requests(self.http, [QUERIES[0].make(random.Random(k), size) for k in range(SETTLE_REQUESTS)],
                     self.args.clients, (200,), time.monotonic() + 60)
        smallest = self.args.sizes[0]
        paired = self.base_http is not None and size > smallest
        if paired:
            assert self.base_http is not None
            run_requests(self.base_http, [QUERIES[0].make(random.Random(k), smallest) for k in range(SETTLE_REQUESTS)],
                         self.args.clients, (200,), time.monotonic() + 60)
        loads = [os.getloadavg()[0]]
        per_query: dict[str, list[Timing]] = {q.key: [] for q in QUERIES}
        base_query: dict[str, list[Timing]] = {q.key: [] for q in QUERIES}
        for rnd in range(self.args.rounds):
            progress(f"size {size:,}, round {rnd + 1}/{self.args.rounds}: {len(QUERIES)} queries x "
                     f"{self.args.requests} requests, {self.args.clients} clients"
                     + (f", each just after the same query on the {smallest:,} baseline" if paired else ""))
            for k, query in enumerate(QUERIES):
                base_note = ""
                if paired:
                    assert self.base_http is not None
                    base = measure(self.base_http, query, smallest, self.args, seed=smallest * 1000 + rnd * 100 + k)
                    base_query[query.key].append(base)
                    base_note = f"  (baseline {_ms(base.pick(50))}/{_ms(base.pick(99))})"
                timing = measure(self.http, query, size, self.args, seed=size * 1000 + rnd * 100 + k)
                per_query[query.key].append(timing)
                p50, p99 = timing.pick(50), timing.pick(99)
                note = f"  {timing.error}" if timing.error else ""
                progress(f"  {query.label:<42} p50 {_ms(p50)} p99 {_ms(p99)} ms{base_note}{note}")
            loads.append(os.getloadavg()[0])
        result = SizeResult(size, fill, loads, {k: summarise_query(v) for k, v in per_query.items()})
        if paired:
            result.baseline = {k: summarise_query(v) for k, v in base_query.items()}
            result.ratios = {k: paired_ratio(base_query[k], per_query[k]) for k in per_query}
        return result

    def bulk(self) -> dict[str, Any]:
        """Extra QUEUED tasks for the bulk cancel and its single-task baseline, then both measured."""
        assert self.filler is not None and self.http is not None
        n, m = self.args.bulk_tasks, self.args.single_tasks
        progress(f"filling {n:,} QUEUED tasks in bench-bulk and {m:,} in bench-single")
        bulk_fill, _ = self.filler.fill_plain("bench-bulk", n, "bench-bulk")
        _, single_ids = self.filler.fill_plain("bench-single", m, "bench-single")
        wait_projected(self.db, self.args.projection_timeout, self.service)
        analyze(self.db, not self.args.analyze_only)
        progress(f"single-task cancels: {m:,} tasks, {self.args.single_threads} threads")
        single = single_cancel(self.http, self.db, single_ids, self.args.single_threads, self.args.bulk_timeout)
        wait_projected(self.db, self.args.projection_timeout, self.service)
        progress(f"bulk cancel of {n:,} QUEUED tasks")
        bulk = bulk_cancel(self.http, self.db, "bench-bulk", n, self.args.bulk_timeout)
        if bulk.get("built"):
            wait_projected(self.db, self.args.projection_timeout, self.service)
            left = self.http.send(Request("GET", f"{API}/tasks?namespace=bench-bulk&state=QUEUED&limit=1"))
            bulk["left_queued"] = left.body.get("total") if isinstance(left.body, dict) else None
        ratio = bulk["events_per_s"] / single["events_per_s"] if bulk.get("built") and single["events_per_s"] else None
        return {"fill": asdict(bulk_fill), "single": single, "bulk": bulk, "ratio": ratio}

    def close(self) -> None:
        if self.filler is not None:
            self.filler.close()
        self.service.stop()
        if self.base_service is not None:
            self.base_service.stop()


# ------------------------------------------------------------------------------------------ report
def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _cell(row: dict[str, Any]) -> str:
    if not row["built"]:
        return "not built"
    if row["p50_ms"] is None:
        return "errors"
    return f"{_ms(row['p50_ms'])}/{_ms(row['p99_ms'])}" + ("*" if row["cut_short"] else "")


def ratio_of(result: dict[str, Any], key: str) -> float | None:
    """The largest size's p99 over the smallest's: paired (the median of the rounds' back-to-back ratios)
    when the run kept a baseline, else the two sizes' medians, measured at different times."""
    paired = result["results"][-1].get("ratios")
    if paired is not None:
        value = paired.get(key)
        return None if value is None else float(value)
    first, last = result["results"][0]["queries"][key], result["results"][-1]["queries"][key]
    if first["p99_ms"] and last["p99_ms"] and len(result["results"]) > 1:
        return float(last["p99_ms"]) / float(first["p99_ms"])
    return None


def print_report(result: dict[str, Any]) -> None:
    sizes = [r["size"] for r in result["results"]]
    info = result["context"]
    print(f"taskledger search bench  {info['started']}  (nproc={info['nproc']}, PostgreSQL "
          f"{info['database'].get('server_version')}, gunicorn {info['gunicorn']['workers']} workers x "
          f"{info['gunicorn']['threads']} threads)")
    print(f"{info['requests']} requests per query per size and round after {info['warmup']} warm-up, "
          f"{info['clients']} keep-alive clients, {info['rounds']} round(s) (medians); {info['after_fill']} after "
          "each fill; cells are p50/p99 ms")
    print()
    width = 44
    baseline = result["results"][-1].get("baseline")
    # The baseline is the smallest size asked for (with --reuse-database it is not among the results).
    smallest = result.get("sizes", sizes)[0]
    paired_title = f"{smallest:,} paired" if baseline else ""
    header = (f"{'query':<{width}}" + "".join(f"{s:>16,}" for s in sizes) + (f"{paired_title:>18}" if baseline else "")
              + f"{'p99 ratio':>11}{'hits@max':>10}")
    print(header)
    print("-" * len(header))
    for query in QUERIES:
        rows = [r["queries"][query.key] for r in result["results"]]
        ratio = ratio_of(result, query.key)
        flag = "" if ratio is None else ("  " if ratio <= GOAL_RATIO else " !")
        hits = rows[-1]["hits_median"]
        paired_cell = f"{_cell(baseline[query.key]):>18}" if baseline else ""
        print(f"{query.label:<{width}}" + "".join(f"{_cell(r):>16}" for r in rows) + paired_cell +
              f"{('-' if ratio is None else f'{ratio:.2f}'):>9}{flag}{('-' if hits is None else f'{hits:,.0f}'):>10}")
    print("-" * len(header))
    footer: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
        ("load average (1 min, start..end)", lambda r: f"{min(r['load']):.2f}..{max(r['load']):.2f}"),
        ("fill: tasks/s appended (events/s)",
         lambda r: f"{r['fill']['tasks_per_s']:,.0f} ({r['fill']['events_per_s']:,.0f})"),
        ("fill: s appended + s projections behind",
         lambda r: f"{r['fill']['append_seconds']:.0f}+{r['fill']['catch_up_seconds']:.0f}"))
    for title, cell in footer:
        print(f"{title:<{width}}" + "".join(f"{cell(r):>16}" for r in result["results"]))
    print()
    if baseline:
        print(f"p99 ratio = median over rounds of p99 at {sizes[-1]:,} / p99 of the {smallest:,} baseline database "
              f"measured just before it (the '{paired_title}' column, same round, same load)")
    else:
        print(f"p99 ratio = p99 at {sizes[-1]:,} / p99 at {sizes[0]:,}, measured when each size was filled")
    print(f"(issue 11 wants <= {GOAL_RATIO}; ! = above); "
          "hits@max = median matches per request at the largest size (total, Kylin size, HugeGraph list length, "
          "bulk matched); * = cut short by --query-timeout")
    for query in QUERIES:
        for r in result["results"]:
            row = r["queries"][query.key]
            if row["error"] and row["built"]:
                print(f"note: {query.label} at {r['size']:,}: {row['error']}")
                break
    print_explain(result.get("explain"))
    print_bulk(result.get("bulk"))


def print_explain(explain: dict[str, Any] | None) -> None:
    if not explain:
        return
    if "error" in explain:
        print(f"\nEXPLAIN: {explain['error']}")
        return
    print(f"\nPlans at the largest size (auto_explain of the service's own statements, one request run "
          f"{EXPLAIN_RUNS} times on one connection; 1st = custom plan, last = what a warm connection runs):")
    for key, found in explain.items():
        label = next(q.label for q in QUERIES if q.key == key)
        print(f"  {label}   {found['request']}")
        for run, name in (("first", "#1"), ("last", f"#{found['runs']}")):
            for plan in found[run]:
                indexes = ", ".join(plan["indexes"]) or "(no index)"
                print(f"    {name:<5}{plan['statement']:<6}{plan['ms']:>9.1f} ms  {plan['top']:<54} {indexes}")


def print_bulk(bulk: dict[str, Any] | None) -> None:
    if not bulk:
        return
    single, done = bulk["single"], bulk["bulk"]
    print()
    print(f"single POST /tasks/{{id}}/cancel: {single['tasks']:,} tasks, {single['threads']} threads: "
          f"{single['events_per_s']:,.0f} events/s, p50 {_ms(single['p50_ms'])} p99 {_ms(single['p99_ms'])} ms, "
          f"load {single['load']:.2f}")
    if not done.get("built"):
        print("bulk POST /bulk/cancel: not built (404)")
        return
    print(f"bulk POST /bulk/cancel: {done['acted']:,} of {done['tasks']:,} tasks in {done['seconds']:.1f} s, "
          f"{done['answers']} answers (slowest {done['answer_ms_max']:.0f} ms): {done['tasks_per_s']:,.0f} tasks/s, "
          f"{done['events_per_s']:,.0f} events/s (head delta {done['events']:,}), load {done['load']:.2f}")
    if bulk["ratio"] is not None:
        print(f"bulk/single events/s = {bulk['ratio']:.1f}")
    if done.get("left_queued"):
        print(f"WARNING: {done['left_queued']:,} bench-bulk tasks are still QUEUED after the bulk cancel")
    if done["events"] != done["acted"]:
        print(f"WARNING: the log grew by {done['events']:,} events for {done['acted']:,} tasks acted")


# ------------------------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000",
                        help="view sizes, ascending, comma separated (default 10000,100000,1000000)")
    parser.add_argument("--requests", type=int, default=300, help="timed requests per query, size and round (300)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests before each query's (20)")
    parser.add_argument("--clients", type=int, default=4, help="keep-alive client threads (4)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat each size's queries; report medians (1)")
    parser.add_argument("--bulk-tasks", type=int, default=100_000,
                        help="QUEUED tasks the bulk cancel acts on (default 100000; 0: skip bulk)")
    parser.add_argument("--single-tasks", type=int, default=2000, help="tasks of the single-cancel baseline (2000)")
    parser.add_argument("--single-threads", type=int, default=8, help="threads of the single-cancel baseline (8)")
    parser.add_argument("--fill-processes", type=int, default=2,
                        help="processes appending the fill, each its own TaskLedger (2; 0: threads of this process)")
    parser.add_argument("--fill-threads", type=int, default=2,
                        help="threads appending with --fill-processes 0, and the bulk targets (2)")
    parser.add_argument("--fill-timeout", type=float, default=1800.0, help="seconds one fill step may take (1800)")
    parser.add_argument("--fill-batch", type=int, default=1000, help="tasks per append of the fill (1000)")
    parser.add_argument("--query-timeout", type=float, default=60.0,
                        help="seconds one query (warm-up included) may take at one size and round before it is cut "
                             "short, marked * (60)")
    parser.add_argument("--projection-timeout", type=float, default=900.0,
                        help="seconds to wait for the projections after a fill (900)")
    parser.add_argument("--bulk-timeout", type=float, default=900.0, help="seconds the bulk cancel may take (900)")
    parser.add_argument("--analyze-only", action="store_true",
                        help="after each fill run ANALYZE tasks only, not VACUUM (ANALYZE): a freshly filled view")
    parser.add_argument("--explain", action="store_true",
                        help="EXPLAIN ANALYZE each native list query's SQL at the largest size")
    parser.add_argument("--database-url", default=os.environ.get("TASKLEDGER_DATABASE_URL") or None,
                        help=f"PostgreSQL server (default: TASKLEDGER_DATABASE_URL, else {svc.DEFAULT_URL} if it "
                             f"answers, else an embedded one); the bench uses its own database {SCRATCH_DB}")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: ops/gunicorn.conf.py's)")
    parser.add_argument("--threads", type=int, help="gunicorn threads per worker (default: the conf's)")
    parser.add_argument("--paired", action=argparse.BooleanOptionalAction, default=True,
                        help="keep the smallest size in a second database with its own service and measure each "
                             "query there just before each larger size's, so each ratio compares two figures "
                             "taken under the same load (default on; --no-paired: the ratio of the sizes' figures "
                             "measured when each was filled)")
    parser.add_argument("--keep-database", action="store_true", help=f"do not drop {SCRATCH_DB} at the end")
    parser.add_argument("--reuse-database", action="store_true",
                        help=f"measure a {SCRATCH_DB} kept by an earlier --keep-database run that holds the largest "
                             "size (no fill; implies --keep-database and --paired: the smaller size comes from the "
                             "baseline database, filled afresh; two sizes only), e.g. to compare a query change at "
                             "1M tasks without refilling")
    parser.add_argument("--keep-logs", action="store_true", help="keep the temporary folder with the server log")
    parser.add_argument("--json", action="store_true", help="print machine-readable results instead of the table")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--sizes must be whole numbers separated by commas")
    if not args.sizes or any(s < 100 for s in args.sizes) or args.sizes != sorted(set(args.sizes)):
        parser.error("--sizes must be ascending, distinct, each at least 100")
    if args.reuse_database:
        if len(args.sizes) != 2 or not args.paired:
            parser.error("--reuse-database measures two sizes, the smaller in the paired baseline: give --sizes "
                         "SMALL,LARGE and leave --paired on")
        args.keep_database = True
    if min(args.requests, args.clients, args.rounds, args.fill_threads, args.fill_batch, args.single_threads) < 1:
        parser.error("--requests, --clients, --rounds, --fill-threads, --fill-batch, --single-threads must be >= 1")
    return args


def reuse_check(db: svc.ScratchDatabase, size: int) -> None:
    """--reuse-database: the kept database must hold exactly the largest size's filled tasks."""
    try:
        with psycopg.connect(db.url, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM tasks WHERE namespace NOT LIKE 'bench-%'").fetchone()
    except psycopg.Error as exc:
        raise svc.ServiceError(f"--reuse-database: cannot read {db.name} ({exc}); run once with --keep-database")
    held = int(row[0]) if row else 0
    if held != size:
        raise svc.ServiceError(f"--reuse-database: {db.name} holds {held:,} filled tasks, not {size:,}; run once "
                               f"with --sizes ...,{size} --keep-database")


def context(args: argparse.Namespace, db: svc.ScratchDatabase, service: Service) -> dict[str, Any]:
    return {"started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "nproc": len(os.sched_getaffinity(0)), "database": db.server_info(),
            "gunicorn": svc.gunicorn_settings(service.env), "requests": args.requests, "warmup": args.warmup,
            "clients": args.clients, "rounds": args.rounds,
            "after_fill": "ANALYZE tasks" if args.analyze_only else "VACUUM (ANALYZE) tasks"}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def interrupted(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, interrupted)

    workdir = Path(tempfile.mkdtemp(prefix="taskledger-bench-search-"))
    embedded = None
    db: svc.ScratchDatabase | None = None
    base_db: svc.ScratchDatabase | None = None
    bench: Bench | None = None
    began = time.monotonic()
    try:
        server_url, source, embedded = choose_server(args, workdir)
        db = svc.ScratchDatabase(server_url, SCRATCH_DB)
        progress(f"scratch database {db.name} on {svc.describe_url(server_url)} ({source}); logs in {workdir}")
        if not args.reuse_database:
            db.recreate()
        if args.paired and len(args.sizes) > 1:
            base_db = svc.ScratchDatabase(server_url, f"{SCRATCH_DB}_base")
            base_db.recreate()
        bench = Bench(args, workdir, db, base_db)
        info = context(args, db, bench.service)
        result = {"context": info, **bench.run()}
        result["context"]["seconds"] = round(time.monotonic() - began, 1)
    except (svc.ServiceError, RuntimeError, OSError, psycopg.Error) as exc:
        print(f"bench: {exc}\n(logs kept in {workdir}; rerun with smaller --sizes, or --keep-database to look at "
              f"{SCRATCH_DB})", file=sys.stderr)
        args.keep_logs = True
        return 1
    except KeyboardInterrupt:
        print(f"bench: interrupted; cleaning up (logs kept in {workdir})", file=sys.stderr)
        args.keep_logs = True
        return 130
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if bench is not None:
            bench.close()
        svc.drop_scratch(base_db, None, args.keep_database, progress)
        svc.drop_scratch(db, embedded, args.keep_database, progress)
        if not args.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
    progress(f"done in {result['context']['seconds']:.0f} s")
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
